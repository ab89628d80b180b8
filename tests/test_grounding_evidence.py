"""ground_note: evidence chosen by attention mass over tagged spans, context checks, fallback, E/M, threshold."""

from __future__ import annotations

import numpy as np
import pytest

from medcoder.codes.em import EM_CLASSES
from medcoder.data.chunking import Chunking, chunk_note
from medcoder.data.spans import bio_tags_for_spans
from medcoder.data.tokenizer import load_tokenizer
from medcoder.inference.grounding.evidence import ground_note

TEXT = (
    "Assessment: essential hypertension, well controlled. Denies chest pain. "
    "Probable community acquired pneumonia. Vitals are stable today."
)
LABELS = [("ICD-10-CM", "I10"), ("ICD-10-CM", "R07.9"), ("ICD-10-CM", "J18.9")]


def span_of(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return start, start + len(phrase)


HTN, CHEST, PNA, VITALS = (
    span_of(p) for p in ("essential hypertension", "chest pain", "community acquired pneumonia", "Vitals are stable")
)


@pytest.fixture(scope="module")
def offsets() -> np.ndarray:
    chunks = chunk_note(TEXT, load_tokenizer(None), Chunking(chunk_size=12, chunk_overlap=2, max_chunks=20))
    return np.array([o for offs in chunks.offsets for o in offs])


def attention_on(offsets: np.ndarray, *weighted_spans: tuple[tuple[int, int], float]) -> np.ndarray:
    """A probability row with the given mass spread evenly over each span's tokens."""
    row = np.zeros(len(offsets), dtype=np.float32)
    for (s, e), mass in weighted_spans:
        members = (offsets[:, 0] >= 0) & (offsets[:, 0] < e) & (s < offsets[:, 1])
        row[members] += mass / members.sum()
    return row


def ground(offsets, tagged, attention_rows, scores, setting="outpatient", threshold=0.5, em_probs=None):
    tags = np.array(bio_tags_for_spans(offsets.tolist(), tagged))
    return ground_note("n1", TEXT, setting, LABELS, np.array(scores, dtype=np.float32), np.stack(attention_rows),
                       tags, offsets, threshold, em_probs=em_probs)  # fmt: skip


def evidence_text(code) -> list[str]:
    return [TEXT[s:e] for s, e in code.evidence]


def test_each_code_gets_the_tagged_span_its_attention_points_at(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 0.9), (VITALS, 0.1)), attention_on(offsets, (CHEST, 1.0)),
            attention_on(offsets, (PNA, 1.0))]  # fmt: skip
    pred = ground(offsets, [HTN, CHEST, PNA], rows, [0.9, 0.2, 0.1])
    (htn,) = pred.codes
    assert (htn.code, htn.grounded, evidence_text(htn)) == ("I10", True, ["essential hypertension"])
    assert htn.score == pytest.approx(0.9)


def test_a_code_whose_only_evidence_is_negated_is_not_coded(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0)), attention_on(offsets, (CHEST, 1.0)), attention_on(offsets, (PNA, 1.0))]
    pred = ground(offsets, [HTN, CHEST, PNA], rows, [0.9, 0.8, 0.1])
    assert [(c.code, c.grounded) for c in pred.codes] == [("I10", True)]  # "Denies chest pain"
    assert pred.context_blocked == (("ICD-10-CM", "R07.9"),)
    assert pred.context_blocked_status == (("ICD-10-CM", "R07.9", "negated"),)  # why, for evaluation's counts


def test_a_blocked_attention_window_also_leaves_the_code_out(offsets) -> None:
    rows = [attention_on(offsets, (CHEST, 1.0))] * 3  # no tagged span: the window falls on "Denies chest pain"
    pred = ground(offsets, [], rows, [0.1, 0.9, 0.1])
    assert pred.codes == () and pred.context_blocked == (("ICD-10-CM", "R07.9"),)


def test_uncertain_evidence_grounds_only_inpatient(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0)), attention_on(offsets, (CHEST, 1.0)), attention_on(offsets, (PNA, 1.0))]
    scores = [0.1, 0.1, 0.9]
    outpatient = ground(offsets, [HTN, CHEST, PNA], rows, scores, setting="outpatient")
    inpatient = ground(offsets, [HTN, CHEST, PNA], rows, scores, setting="inpatient")
    assert outpatient.codes == () and outpatient.context_blocked == (
        ("ICD-10-CM", "J18.9"),
    )  # symptoms, not "probable"
    assert [c.grounded for c in inpatient.codes] == [True]
    assert evidence_text(inpatient.codes[0]) == ["community acquired pneumonia"]


def test_without_tagged_spans_a_clean_mention_read_almost_as_much_wins_over_a_blocked_peak(offsets) -> None:
    """The windows around the attention peaks are the code's mentions: blocked only when all of them are."""
    # the peak on "Denies chest pain", then the tokens of a clean sentence read 0.75 as much
    both = [attention_on(offsets, (span_of("chest"), 0.4), (span_of("Vitals"), 0.6))] * 3
    pred = ground(offsets, [], both, [0.1, 0.9, 0.1])
    (code,) = pred.codes
    assert code.code == "R07.9" and not code.grounded and pred.context_blocked == ()
    assert "Vitals" in evidence_text(code)[0]
    # a clean sentence read far less than the blocked peak is no mention of the code: it stays out
    faint = [attention_on(offsets, (span_of("chest"), 0.8), (span_of("Vitals"), 0.2))] * 3
    assert ground(offsets, [], faint, [0.1, 0.9, 0.1]).context_blocked == (("ICD-10-CM", "R07.9"),)


def test_clean_spans_win_over_blocked_ones(offsets) -> None:
    rows = [attention_on(offsets, (CHEST, 0.5), (HTN, 0.5))] * 3
    pred = ground(offsets, [HTN, CHEST], rows, [0.9, 0.1, 0.1])
    (code,) = pred.codes
    assert code.grounded and evidence_text(code) == ["essential hypertension"]
    # even when the blocked span carries most of the attention
    mostly_chest = [attention_on(offsets, (CHEST, 0.9), (HTN, 0.1))] * 3
    (code,) = ground(offsets, [HTN, CHEST], mostly_chest, [0.9, 0.1, 0.1]).codes
    assert code.grounded and evidence_text(code) == ["essential hypertension"]


def test_fallback_window_is_whole_words_on_one_line() -> None:
    from medcoder.inference.grounding.evidence import _attention_windows

    text = "Name: Jane Doe\nchronic obstructive pulmonary disease"
    tokenizer = load_tokenizer(None)
    chunks = chunk_note(text, tokenizer, Chunking(chunk_size=64, chunk_overlap=8, max_chunks=2))
    offsets = np.array([o for offs in chunks.offsets for o in offs])
    peak = next(i for i, (s, e) in enumerate(offsets) if text[s:e] == "chronic")
    attention = np.zeros(len(offsets), dtype=np.float32)
    attention[peak] = 1.0
    ((start, end),) = _attention_windows(attention, offsets, 4, text, max_spans=1)
    window = text[start:end]
    assert "\n" not in window and "Doe" not in window  # stays on the peak's line
    assert window.startswith("chronic") and text[end : end + 1] in ("", " ")  # whole words only


def test_without_tagged_spans_the_attention_window_is_evidence_but_not_grounded(offsets) -> None:
    rows = [attention_on(offsets, (VITALS, 1.0))] * 3
    pred = ground(offsets, [], rows, [0.9, 0.1, 0.1])
    (code,) = pred.codes
    assert not code.grounded and len(code.evidence) == 1
    start, end = code.evidence[0]
    assert start < VITALS[1] and VITALS[0] < end  # the window sits on the attention peak
    # with a tagged span under the peak, the same window grounds
    weak = [attention_on(offsets, (VITALS, 0.99), (HTN, 0.01))] * 3
    tagged_peak = ground(offsets, [HTN, VITALS], weak, [0.9, 0.1, 0.1])
    assert tagged_peak.codes[0].grounded


def test_threshold_is_strict_and_codes_sorted_by_score(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0)), attention_on(offsets, (CHEST, 1.0)), attention_on(offsets, (PNA, 1.0))]
    pred = ground(offsets, [HTN, CHEST, PNA], rows, [0.6, 0.5, 0.95], setting="inpatient")
    assert [c.code for c in pred.codes] == ["J18.9", "I10"]  # 0.5 is not above 0.5


def test_em_level(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0))] * 3
    probs = np.full(len(EM_CLASSES), 0.02)
    probs[EM_CLASSES.index("99214")] = 0.82
    pred = ground(offsets, [HTN], rows, [0.1, 0.1, 0.1], em_probs=probs)
    assert pred.em_code == "99214" and pred.em_score == pytest.approx(0.82)
    none = np.full(len(EM_CLASSES), 0.05)
    none[0] = 0.55
    assert ground(offsets, [HTN], rows, [0.1, 0.1, 0.1], em_probs=none).em_code is None


def em_probs_for(level: str) -> np.ndarray:
    probs = np.full(len(EM_CLASSES), 0.02)
    probs[EM_CLASSES.index(level)] = 0.82
    return probs


def sentence_of(phrase: str) -> tuple[int, int]:
    """The sentence of TEXT holding `phrase`, full stop included."""
    start = TEXT.rfind(". ", 0, TEXT.index(phrase))
    start = 0 if start < 0 else start + 2
    return start, TEXT.index(".", TEXT.index(phrase)) + 1


def is_whole_words(text: str, start: int, end: int) -> bool:
    return (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())


def test_em_evidence_is_whole_words_on_the_em_attention_peaks_sentences_best_first(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0))] * 3
    em_row = attention_on(offsets, (VITALS, 0.6), (HTN, 0.3), (CHEST, 0.1))
    tags = np.array(bio_tags_for_spans(offsets.tolist(), [HTN]))
    pred = ground_note("n1", TEXT, "outpatient", LABELS, np.array([0.1, 0.1, 0.1], dtype=np.float32), np.stack(rows),
                       tags, offsets, 0.5, em_probs=em_probs_for("99214"), em_attention=em_row)  # fmt: skip
    assert pred.em_code == "99214" and len(pred.em_evidence) == 3
    for (start, end), peak in zip(pred.em_evidence, (VITALS, HTN, CHEST)):  # best first
        sentence = sentence_of(TEXT[peak[0] : peak[1]])
        assert sentence[0] <= start < end <= sentence[1]  # on the peak's sentence only
        assert start < peak[1] and peak[0] < end  # around the peak
        assert is_whole_words(TEXT, start, end) and TEXT[start:end] == TEXT[start:end].strip()


def test_em_evidence_takes_one_window_per_sentence() -> None:
    from medcoder.inference.grounding.evidence import _attention_windows

    text = ("Problems addressed: two stable chronic illnesses with medication management and also one acute "
            "uncomplicated illness today.\nRisk: prescription drug management.")  # fmt: skip
    chunks = chunk_note(text, load_tokenizer(None), Chunking(chunk_size=64, chunk_overlap=8, max_chunks=2))
    offsets = np.array([o for offs in chunks.offsets for o in offs])
    attention = np.zeros(len(offsets), dtype=np.float32)
    for word, weight in (("two", 0.4), ("acute", 0.35), ("prescription", 0.25)):
        attention[next(i for i, (s, e) in enumerate(offsets) if text[s:e] == word)] = weight
    windows = _attention_windows(attention, offsets, 5, text, max_spans=3)
    first_line = text.index("\n")
    assert len(windows) == 2  # "acute" is outside the first window but in its sentence: skipped
    (s1, e1), (s2, e2) = windows
    assert "two" in text[s1:e1].split() and "acute" not in text[s1:e1] and e1 <= first_line
    assert "prescription" in text[s2:e2].split() and s2 > first_line
    assert _attention_windows(attention, offsets, 5, text, max_spans=1) == windows[:1]


def test_no_em_level_no_em_evidence(offsets) -> None:
    rows = [attention_on(offsets, (HTN, 1.0))] * 3
    em_row = attention_on(offsets, (VITALS, 1.0))
    tags = np.array(bio_tags_for_spans(offsets.tolist(), [HTN]))
    none = np.full(len(EM_CLASSES), 0.05)
    none[0] = 0.55

    def em_of(probs, attention):
        pred = ground_note("n1", TEXT, "outpatient", LABELS, np.array([0.1, 0.1, 0.1], dtype=np.float32),
                           np.stack(rows), tags, offsets, 0.5, em_probs=probs, em_attention=attention)  # fmt: skip
        return pred.em_code, pred.em_evidence

    assert em_of(none, em_row) == (None, ())
    assert em_of(em_probs_for("99213"), None) == ("99213", ())  # a caller without the attention row
    assert em_of(em_probs_for("99213"), em_row)[1] != ()


@pytest.mark.parametrize("text, mention, code, status", [
    ("PMH: history of hypertension, on lisinopril.", "hypertension", "I10", None),
    ("hx of HTN, HLD, DM2.", "DM2", "E11.9", None),
    ("History of pneumonia in March, treated.", "pneumonia", "J18.9", "historical"),
    ("No history of hypertension.", "hypertension", "I10", "negated"),
    ("Mother has hypertension.", "hypertension", "I10", "family"),
])  # fmt: skip
def test_a_history_of_a_chronic_condition_names_a_current_one_and_of_an_acute_one_a_past_one(
    text, mention, code, status
) -> None:
    """Section IV.J: code the conditions that coexist with the visit; a chronic one does not end."""
    from medcoder.inference.grounding.evidence import _status

    start = text.index(mention)
    assert _status(text, (start, start + len(mention)), "ICD-10-CM", code) == status


@pytest.mark.parametrize(
    "text, named, at, status",
    [
        ("Fever and cough, likely COVID-19. COVID-19 PCR sent.", "COVID-19", -1, "hypothetical"),
        ("Fever and cough, likely COVID-19. COVID-19 PCR sent.", "COVID-19 PCR", -1, "hypothetical"),
        ("Rapid strep test: positive. Dx: strep pharyngitis.", "strep", 0, "hypothetical"),
        ("Rapid strep test: positive. Dx: strep pharyngitis.", "strep pharyngitis", 0, None),
        ("Dx: COVID-19 pneumonia, PCR positive.", "COVID-19", 0, None),
    ],
)
def test_a_disease_named_as_what_a_test_looks_for_is_no_mention_of_it(text, named, at, status) -> None:
    """ "COVID-19 PCR sent" beside "likely COVID-19" grounded U07.1 on the test's name (an outpatient note)."""
    from medcoder.inference.grounding.evidence import _status

    start = text.rindex(named) if at == -1 else text.index(named)
    code = "U07.1" if "COVID" in named else "J02.0"
    assert _status(text, (start, start + len(named)), "ICD-10-CM", code) == status


def test_the_visit_code_takes_the_family_the_note_states_and_quotes_those_words() -> None:
    text = "New patient, establishing care. " + TEXT
    tokens = chunk_note(text, load_tokenizer(None), Chunking(chunk_size=12, chunk_overlap=2, max_chunks=20))
    offs = np.array([o for o_ in tokens.offsets for o in o_])
    htn = (text.index("essential hypertension"), text.index("essential hypertension") + len("essential hypertension"))
    rows = np.stack([attention_on(offs, (htn, 1.0))] * 3)
    tags = np.array(bio_tags_for_spans(offs.tolist(), [htn]))
    scores = np.array([0.1, 0.1, 0.1], dtype=np.float32)
    pred = ground_note("n1", text, "outpatient", LABELS, scores, rows, tags, offs, 0.5,
                       em_probs=em_probs_for("99214"), em_attention=rows[0])  # fmt: skip
    assert pred.em_code == "99204"  # the head's level 4, billed as the new patient the note says it is
    assert "New patient" in [text[s:e] for s, e in pred.em_evidence]
