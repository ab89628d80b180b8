"""The office E/M code takes its new/established family from the note's words and its level from the head."""

import numpy as np
import pytest

from medcoder.codes.em import EM_CLASSES
from medcoder.inference.grounding.visit_level import stated_status, visit_level


def _probs(**by_code: float) -> np.ndarray:
    """E/M head probabilities with the named classes set and the rest of the mass on "none"."""
    probs = np.zeros(len(EM_CLASSES))
    for code, p in by_code.items():
        probs[EM_CLASSES.index(code.removeprefix("c"))] = p
    probs[EM_CLASSES.index("none")] = 1.0 - probs.sum()
    return probs


@pytest.mark.parametrize(
    "text, status",
    [
        ("Patient: Ana, 54 y/o F, new patient, payer: medicare.", "new"),
        ("New to the practice, establishing care for chronic conditions.", "new"),
        ("Est. patient here for refills.", "established"),
        ("Return visit for blood pressure. Since her last visit she walks daily.", "established"),
        ("Follow-up of hypertension.", None),  # a new patient follows up on an ED visit too
        ("New patient referred by Dr. Lee; no change since his last visit there.", None),  # both said: not read
        ("Renew patient's prescriptions.", None),  # "new patient" must start a word
    ],
)
def test_stated_status_reads_the_patients_status_words(text: str, status: str | None) -> None:
    found, spans = stated_status(text)
    assert found == status
    assert bool(spans) == (status is not None)
    for start, end in spans:
        assert text[start:end].strip() == text[start:end] and end > start


def test_a_note_that_says_new_patient_gets_the_new_patient_code_at_the_heads_level() -> None:
    # the head put the level at 4 but on the established code (99214 0.5, 99204 0.3)
    probs = _probs(c99214=0.5, c99204=0.3, c99213=0.1)
    text = "OFFICE VISIT\nPatient: Raj, 61 y/o M, new patient.\nAssessment: ..."
    chosen = visit_level(probs, text)
    assert chosen is not None
    assert chosen.code == "99204"
    assert chosen.score == pytest.approx(0.8)  # the level's probability over both families
    assert [text[s:e] for s, e in chosen.status_evidence] == ["new patient"]


def test_an_established_patient_keeps_the_level_summed_over_families() -> None:
    probs = _probs(c99203=0.45, c99213=0.2, c99214=0.3)
    chosen = visit_level(probs, "Established patient seen for diabetes follow-up.")
    assert chosen is not None and chosen.code == "99213"  # level 3: 0.65 against level 4: 0.3
    assert chosen.score == pytest.approx(0.65)


def test_a_nurse_visits_probability_counts_for_the_lowest_new_patient_level() -> None:
    probs = _probs(c99211=0.5, c99203=0.3)
    assert visit_level(probs, "new patient").code == "99202"  # 99211 has no new-patient code: 0.5 -> level 2
    assert visit_level(probs, "established patient").code == "99211"


def test_no_stated_status_keeps_the_heads_choice_and_none_stays_none() -> None:
    probs = _probs(c99214=0.5, c99204=0.3)
    chosen = visit_level(probs, "Chest pain for two days.")
    assert chosen is not None and chosen.code == "99214" and chosen.score == pytest.approx(0.5)
    assert chosen.status_evidence == ()
    assert visit_level(_probs(c99213=0.1), "new patient") is None  # "no office visit" is the head's most likely


def test_a_level_whose_two_codes_hold_all_the_mass_scores_at_most_one() -> None:
    """float32 softmax: 99204 + 99214 summed to 1.000000073 once, which the contract refuses as a score."""
    probs = np.zeros(len(EM_CLASSES), dtype=np.float32)
    probs[EM_CLASSES.index("99214")] = np.float32(0.7000001)
    probs[EM_CLASSES.index("99204")] = np.float32(0.3000001)
    probs[EM_CLASSES.index("99211")] = np.float32(1e-7)
    for status in ("new patient", "established patient"):
        chosen = visit_level(probs, status)
        assert chosen is not None and chosen.score <= 1.0 and chosen.score == pytest.approx(1.0)
