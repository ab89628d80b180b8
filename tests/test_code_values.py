"""Value-decided codes: a measured BMI or HbA1c decides Z68 and R73.03; a goal or a bound decides nothing."""

from __future__ import annotations

import pytest

from medcoder.codes.values import documented_a1c, documented_bmi, documented_ckd_stage, value_supports


@pytest.mark.parametrize("text, bmi", [
    ("BMI 33.4", 33.4),
    ("Vitals: Ht 163 cm, Wt 109.4 kg, BMI 41.2", 41.2),
    ("body mass index of 30.2", 30.2),
    ("Target BMI under 30 discussed. Measured today: BMI 43.2.", 43.2),  # the goal is skipped, not the value
    ("goal is a BMI under 35 first", None),
    ("BMI > 40 qualifies for surgery", None),
    ("BMI 31, goal weight 80 kg", 31.0),
])  # fmt: skip
def test_a_bmi_is_read_only_where_it_was_measured(text, bmi):
    assert documented_bmi(text) == bmi


@pytest.mark.parametrize("text, a1c", [
    ("A1c 9.8% (goal < 7%)", 9.8),
    ("A1c goal <7%, today A1c 8.2%", 8.2),
    ("target HbA1c below 7", None),
    ("HbA1c of 5.9", 5.9),
])  # fmt: skip
def test_an_a1c_is_read_only_where_it_was_measured(text, a1c):
    assert documented_a1c(text) == a1c


def test_a_goal_supports_no_value_code_while_a_measurement_decides_its_band():
    assert value_supports("Z68.30", "Target BMI under 30 discussed") is False
    assert value_supports("Z68.41", "BMI 43.2") is True and value_supports("Z68.30", "BMI 43.2") is False
    assert value_supports("R73.03", "target A1c under 6") is False
    assert value_supports("Z68.30", "obesity counselling") is None  # no BMI written: similarity decides
    assert value_supports("E66.9", "BMI 43.2") is None  # not a value-decided code


@pytest.mark.parametrize("text, code", [
    ("CKD stage 3b - eGFR 36", "N18.32"),
    ("2) DM2 w/ CKD3 3) HLD", "N18.30"),
    ("stage IV CKD, nephrology following", "N18.4"),
    ("chronic kidney disease, stage 3a", "N18.31"),
    ("ESRD on hemodialysis MWF", "N18.6"),
    ("ckd stg 4, htn, on amlodipne", "N18.4"),  # the abbreviated "stage" of problem lists
])  # fmt: skip
def test_a_documented_ckd_stage_decides_the_n18_code(text, code):
    """A sentence encoder hears "stage 3b" and "stage 4" alike; the stage itself decides."""
    assert value_supports(code, text) is True
    assert all(value_supports(other, text) is False for other in ("N18.30", "N18.4", "N18.9") if other != code)
    assert value_supports("N18.9", "CKD, followed by nephrology") is None  # no stage written: similarity decides


@pytest.mark.parametrize("text", ["CKD, I will refer to nephrology", "CKD - V/Q scan pending"])
def test_a_pronoun_or_an_abbreviation_after_ckd_is_no_roman_stage(text):
    assert documented_ckd_stage(text) is None and value_supports("N18.1", text) is None
