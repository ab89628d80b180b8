"""How a quoted line is cut into the pieces grounding may quote instead (medcoder.inference.grounding.quotes)."""

from __future__ import annotations

import pytest

from medcoder.inference.grounding.quotes import pieces


@pytest.mark.parametrize("line, expected", [
    ("5. Obstructive sleep apnea: using CPAP nightly, good adherence",
     ["Obstructive sleep apnea", "using CPAP nightly", "good adherence"]),
    ("Chronic conditions (type 2 diabetes mellitus, COPD) remained stable during the stay",
     ["Chronic conditions", "type 2 diabetes mellitus", "COPD", "remained stable during the stay"]),
    ("- F/u hypertension and CKD 4; BMI 45.3", ["F/u hypertension", "CKD 4", "BMI 45.3"]),
    ("Vitals: BP 133/79, HR 63, BMI 45.3", ["Vitals", "BP 133/79", "HR 63", "BMI 45.3"]),
    ("BP 112/78, HR 94, T 37.2 C, BMI: 45.8", ["BP 112/78", "HR 94", "T 37.2 C", "BMI: 45.8"]),
    ("Right knee: primary osteoarthritis, stable on meloxicam; x-ray unchanged",
     ["Right knee: primary osteoarthritis", "stable on meloxicam", "x-ray unchanged"]),
    ("Lungs: scattered wheezes, no crackles", ["Lungs: scattered wheezes", "no crackles"]),
])  # fmt: skip
def test_a_line_is_cut_at_its_clauses_and_list_items_without_bullets_or_numbers(line, expected) -> None:
    text = f"Note. {line}. End."
    start = text.index(line)
    assert [text[a:b] for a, b in pieces(text, (start, start + len(line)))] == expected


@pytest.mark.parametrize("line", ["Shortness of breath on exertion for 6 months", "BMI: 45.8", "Sandler"])
def test_a_span_with_one_worded_piece_is_kept_whole(line) -> None:
    text = f"{line}."
    assert pieces(text, (0, len(line))) == [(0, len(line))]
