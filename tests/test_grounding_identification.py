"""Evidence never quotes an identification line: when the attention peak of a code (fallback window)
or of the E/M level falls on the patient's name, SSN, MRN or payer, no window is taken there, and a
tagger's span there is no evidence either."""

from __future__ import annotations

import numpy as np
import pytest

from medcoder.codes.em import EM_CLASSES
from medcoder.data.chunking import Chunking, chunk_note
from medcoder.data.predictions import NotePrediction
from medcoder.data.tokenizer import load_tokenizer
from medcoder.inference.grounding.evidence import ground_note
from medcoder.inference.grounding.identification import is_identification_line

# Written the way the embedded corpus writes its header (medcoder.data.synth), plus the identifiers
# an attacker's note carried.
TEXT = (
    "OFFICE VISIT\n"
    "Date of service: 2024-03-05\n"
    "Patient: Zyxwv Quortlebaum, 67 y/o male, established patient, insurance: medicare.\n"
    "SSN 987-65-4329, MRN 55501234\n"
    "Assessment: essential hypertension, well controlled.\n"
)
IDENTIFIERS = ("Zyxwv", "Quortlebaum", "987-65-4329", "55501234", "medicare", "2024-03-05")
LABELS = [("ICD-10-CM", "I10")]


@pytest.fixture(scope="module")
def offsets() -> np.ndarray:
    chunks = chunk_note(TEXT, load_tokenizer(None), Chunking(chunk_size=64, chunk_overlap=8, max_chunks=8))
    return np.array([o for offs in chunks.offsets for o in offs])


def peak_on(offsets: np.ndarray, phrase: str) -> np.ndarray:
    start = TEXT.index(phrase)
    row = np.full(len(offsets), 1e-4, dtype=np.float32)
    row[(offsets[:, 0] >= start) & (offsets[:, 0] < start + len(phrase))] = 1.0
    return row / row.sum()


def ground(
    offsets: np.ndarray, attention: np.ndarray, tags: np.ndarray | None = None, **em: np.ndarray
) -> NotePrediction:
    """TEXT grounded for I10 at score 0.9 (threshold 0.5) with this attention row and these BIO tags."""
    tags = np.zeros(len(offsets), dtype=np.int64) if tags is None else tags
    scores = np.array([0.9], dtype=np.float32)
    return ground_note("n1", TEXT, "outpatient", LABELS, scores, attention[None, :], tags, offsets, 0.5, **em)


@pytest.mark.parametrize("phrase", ["Quortlebaum", "987-65-4329", "medicare", "2024-03-05"])
def test_no_fallback_or_em_window_on_an_identification_line(offsets, phrase) -> None:
    attention = peak_on(offsets, phrase)
    em = np.zeros(len(EM_CLASSES), dtype=np.float32)
    em[EM_CLASSES.index("99213")] = 1.0
    pred = ground(offsets, attention, em_probs=em, em_attention=attention)
    (code,) = pred.codes  # kept, ungrounded, for review: but pointing at nothing on the header
    assert code.code == "I10" and not code.grounded and code.evidence == ()
    assert pred.em_code == "99213"
    quoted = " ".join(TEXT[s:e] for s, e in (*code.evidence, *pred.em_evidence))
    assert not any(identifier in quoted for identifier in IDENTIFIERS), quoted


def test_a_peak_on_the_clinical_text_still_gets_its_window(offsets) -> None:
    attention = peak_on(offsets, "hypertension")
    pred = ground(offsets, attention)
    (code,) = pred.codes
    assert [TEXT[s:e] for s, e in code.evidence] and "hypertension" in TEXT[slice(*code.evidence[0])]


def tagged(offsets: np.ndarray, *phrases: str) -> np.ndarray:
    """BIO tag ids (0 O, 1 B, 2 I) marking each phrase's tokens as one tagged run."""
    tags = np.zeros(len(offsets), dtype=np.int64)
    for phrase in phrases:
        start = TEXT.index(phrase)
        inside = np.flatnonzero((offsets[:, 0] >= start) & (offsets[:, 1] <= start + len(phrase)) & (offsets[:, 1] > 0))
        tags[inside] = 2
        tags[inside[0]] = 1
    return tags


def test_a_tagged_span_on_an_identification_line_is_no_evidence(offsets) -> None:
    # the tagger marked the SSN and the assessment, and the code's attention sits on the SSN: the SSN
    # is not a span at all, so the code's evidence is its other tagged span
    attention = 0.8 * peak_on(offsets, "987-65-4329") + 0.2 * peak_on(offsets, "essential hypertension")
    pred = ground(offsets, attention, tagged(offsets, "987-65-4329", "essential hypertension"))
    (code,) = pred.codes
    assert [TEXT[s:e] for s, e in code.evidence] == ["essential hypertension"]
    # tagged only on the header: no span, and the fallback window refuses the header too
    only_header = ground(offsets, peak_on(offsets, "Quortlebaum"), tagged(offsets, "Zyxwv Quortlebaum"))
    (code,) = only_header.codes
    assert code.evidence == () and not code.grounded


@pytest.mark.parametrize(
    "line, identifies",
    [
        ("Patient: Ann Lee, 54 y/o female; payer: medicaid.", True),
        ("Name: ___  Unit No: ___", True),
        ("Admission date: 2024-01-02  Discharge date: 2024-01-05", True),
        ("DOB: 01/02/1950", True),
        ("Seen today, MRN 123456, for follow-up.", True),
        ("Contact 555-12-3456 on file", True),
        ("Patient presents with chest pain radiating to the left arm.", False),
        ("Patient: Doe, Jane (MRN withheld)", True),
        ("Pt: Mrs. Delgado", True),
        ("Pt: hypothyroidism dx 2015, on levothyroxine 75 mcg.", False),  # "Pt:" labels a clinical line too
        ("Patient: 67M here for follow-up of COPD.", False),
        ("Assessment: essential hypertension.", False),
        ("No insurance concerns raised; medications reviewed.", False),
    ],
)
def test_identification_lines(line, identifies) -> None:
    text = f"HPI: cough.\n{line}\nPlan: rest."
    assert is_identification_line(text, text.index(line) + 2) is identifies
    assert not is_identification_line(text, 1)


def test_identification_lookups_from_the_note_s_lines_equal_a_scan_of_the_line() -> None:
    """`is_identification_line` judges each line of a note once (a one-line transcription was scanned again per
    sentence and span: quadratic); at every position it says what judging the line around it says."""
    from medcoder.data.synth import generate_notes
    from medcoder.inference.grounding.identification import identifies_patient

    def scanned(text: str, position: int) -> bool:
        start = text.rfind("\n", 0, position) + 1
        end = text.find("\n", position)
        return identifies_patient(text[start : len(text) if end < 0 else end])

    notes = [
        TEXT,
        TEXT.replace("\n", " "),
        "",
        "\n",
        "\n\nSSN 987-65-4329\n",
        *(n.text for n in generate_notes(4, seed=3)),
    ]
    for text in notes:
        answers = [is_identification_line(text, position) for position in range(len(text) + 1)]
        assert answers == [scanned(text, position) for position in range(len(text) + 1)], text[:40]
    assert any(is_identification_line(TEXT, p) for p in range(len(TEXT))) and not all(
        is_identification_line(TEXT, p) for p in range(len(TEXT))
    )
