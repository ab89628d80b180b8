"""A small hand-made corpus for the neural-coder tests, and checks that it says what it claims.

Each note affirms 1-3 conditions (the gold codes, with the evidence phrase as span), mentions one
other condition as a distractor (negated or family, recorded in `mentions`), and has filler
sentences. Real NoteRecords built through `parse_record`, so every span is validated.
"""

from __future__ import annotations

import random

from medcoder.data.schema import NoteRecord, parse_record

# code -> (evidence phrases, short name used in distractor sentences)
CONDITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "E11.65": (("uncontrolled hyperglycemia", "type 2 diabetes with hyperglycemia"), "diabetes"),
    "I10": (("essential hypertension", "elevated blood pressure readings"), "hypertension"),
    "J18.9": (("community acquired pneumonia", "right lower lobe pneumonia"), "pneumonia"),
    "J45.909": (("asthma with wheezing", "reactive airway disease"), "asthma"),
    "N39.0": (("urinary tract infection", "cystitis with dysuria"), "urinary infection"),
}
FILLERS = (
    "Patient seen today for follow up.",
    "Vitals are stable.",
    "Lungs clear to auscultation bilaterally.",
    "Continue current medications.",
    "Follow up in three months.",
    "Medication list reviewed with the patient.",
)
DISTRACTORS = (("Denies {x}.", "negated"), ("Mother with {x}.", "family"), ("Return if {x} develops.", "hypothetical"))
EM_LEVELS = ("99212", "99213", "99214")  # by number of conditions addressed: learnable from the text


def make_note(rng: random.Random, note_id: str, setting: str = "outpatient", em_evidence: bool = False) -> NoteRecord:
    """One note as a validated NoteRecord. `em_evidence`: the E/M level's evidence is its
    "Assessment: ..." sentences, the problems addressed that set the level (no extra random draws)."""
    codes = rng.sample(sorted(CONDITIONS), k=rng.randint(1, 3))
    other = rng.choice([c for c in sorted(CONDITIONS) if c not in codes])
    sentences: list[tuple[str, str | None, str | None]] = [(s, None, None) for s in rng.sample(FILLERS, k=3)]
    for code in codes:
        phrase = rng.choice(CONDITIONS[code][0])
        sentences.append((f"Assessment: {phrase}.", code, phrase))
    template, status = rng.choice(DISTRACTORS)
    name = CONDITIONS[other][1]
    sentences.append((template.format(x=name), f"mention:{other}:{status}", name))
    rng.shuffle(sentences)

    text, record_codes, mentions, assessments = "", [], [], []
    for sentence, tag, phrase in sentences:
        start = len(text) + (sentence.index(phrase) if phrase else 0)
        if tag and tag.startswith("mention:"):
            _, code, status = tag.split(":")
            mentions.append({"start": start, "end": start + len(phrase), "code": code, "status": status})
        elif tag:
            record_codes.append({"system": "ICD-10-CM", "code": tag, "evidence": [[start, start + len(phrase)]]})
            assessments.append([len(text), len(text) + len(sentence)])
        text += sentence + " "
    if setting == "outpatient":
        evidence = assessments if em_evidence else []
        record_codes.append({"system": "CPT", "code": EM_LEVELS[len(codes) - 1], "evidence": evidence})
    obj = {"id": note_id, "setting": setting, "text": text.strip(), "codes": record_codes, "mentions": mentions}
    return parse_record(obj, source="test_model_corpus")


def make_corpus(n: int, seed: int = 0, setting: str = "outpatient", em_evidence: bool = False) -> list[NoteRecord]:
    rng = random.Random(seed)
    return [make_note(rng, f"n{seed:02d}{i:04d}", setting, em_evidence) for i in range(n)]


def test_evidence_spans_point_at_the_phrases() -> None:
    for record in make_corpus(30, seed=3):
        for c in record.codes:
            if c.system == "ICD-10-CM":
                ((start, end),) = c.evidence
                assert record.text[start:end] in CONDITIONS[c.code][0]
        for m in record.mentions:
            assert record.text[m.start : m.end] == CONDITIONS[m.code][1]
            assert m.code not in record.codes_of("ICD-10-CM")


def test_em_level_follows_the_number_of_conditions() -> None:
    for record in make_corpus(20, seed=4):
        (level,) = record.codes_of("CPT")
        assert level == EM_LEVELS[len(record.codes_of("ICD-10-CM")) - 1]


def test_em_evidence_is_the_assessment_sentences() -> None:
    plain, with_em = make_corpus(10, seed=5), make_corpus(10, seed=5, em_evidence=True)
    for a, b in zip(plain, with_em):
        assert a.text == b.text and a.mentions == b.mentions
        ((em,), (em_plain,)) = ([c for c in r.codes if c.system == "CPT"] for r in (b, a))
        assert em_plain.evidence == () and len(em.evidence) == len(b.codes_of("ICD-10-CM"))
        assert all(b.text[s:e].startswith("Assessment: ") and b.text[s:e].endswith(".") for s, e in em.evidence)


def test_same_seed_same_corpus() -> None:
    assert make_corpus(5, seed=1) == make_corpus(5, seed=1)
    assert make_corpus(5, seed=1) != make_corpus(5, seed=2)
