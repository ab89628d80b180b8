"""Codes that a documented value decides: BMI -> Z68, HbA1c -> prediabetes range, CKD stage -> N18.

A number is where a similarity model is weakest ("BMI 27.4" and "BMI 47.2" read alike) and where a
rule is exact, so these codes are checked against the value itself. The ranges are the code set's
own: Z68 titles give the adult BMI bands (ICD-10-CM, chapter 21, Z68), N18 titles the CKD stages
(a sentence encoder hears "stage 3b" and "stage 4" alike); prediabetes R73.03 is an
HbA1c of 5.7-6.4% (American Diabetes Association, Standards of Care, "Classification and Diagnosis").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_BMI = re.compile(r"\b(?:BMI|body mass index)\b[^0-9\n]{0,20}?(\d{2}(?:\.\d+)?)", re.IGNORECASE)
_A1C = re.compile(
    r"\b(?:Hb\s?A1c|HgbA1c|A1c|hemoglobin A1c|glycated hemoglobin)\b[^0-9\n]{0,20}?(\d{1,2}(?:\.\d+)?)\s*%?",
    re.IGNORECASE,
)
# a goal or a bound is not a measurement: "goal is a BMI under 35", "target A1c < 7%", "BMI over 30"
_NOT_MEASURED = re.compile(
    r"\b(?:under|below|over|above|less\s+than|greater\s+than|more\s+than|at\s+least|goal|target|aim)\b|[<>\u2264\u2265]",
    re.IGNORECASE,
)
_GOAL_BEFORE = re.compile(r"\b(?:goal|target|aim(?:ing)?|ideal)\b[^.,;\n]{0,8}$", re.IGNORECASE)
# a roman numeral is a stage only after the word "stage": "CKD, I will refer" names no stage I
_STAGE = r"[1-5][ab]?|iv|v|i{1,3}[ab]?"
_CKD = r"(?:ckd|chronic\s+kidney\s+disease)"
_CKD_STAGE = re.compile(
    rf"\b{_CKD}[\s,:-]*(?:(?:stage|stg)\.?\s*(?P<stage>{_STAGE})|(?P<digits>[1-5][ab]?))\b"
    rf"|\b(?:stage|stg)\.?\s*(?P<before>{_STAGE})\s+{_CKD}\b"
    r"|\b(?P<esrd>esrd|end[\s-]stage\s+(?:renal|kidney)\s+disease)\b",
    re.IGNORECASE,
)
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}
# the N18 code of each documented stage (ICD-10-CM N18; end-stage renal disease is N18.6, I.C.14.a.2)
CKD_STAGE_CODES = {"1": "N18.1", "2": "N18.2", "3": "N18.30", "3a": "N18.31", "3b": "N18.32", "4": "N18.4",
                   "5": "N18.5", "esrd": "N18.6"}  # fmt: skip
BMI_PATTERN, A1C_PATTERN = _BMI, _A1C  # group 1: the number (measured_matches)
PREDIABETES_A1C = (5.7, 6.4)
PREDIABETES_CODE = "R73.03"


def adult_bmi_code(bmi: float) -> str:
    """The Z68 code for an adult (age 20+) BMI: Z68.1 (<20), Z68.20-Z68.39 by whole unit, Z68.41-Z68.45."""
    if bmi < 20:
        return "Z68.1"
    if bmi < 40:
        return f"Z68.{int(bmi)}"
    for upper, code in ((45, "Z68.41"), (50, "Z68.42"), (60, "Z68.43"), (70, "Z68.44")):
        if bmi < upper:
            return code
    return "Z68.45"


def measured_matches(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Every match of `pattern` (its group 1 is the number) in `text` that is a measurement, not a goal or a
    bound (`_NOT_MEASURED` between the name and the number, or a goal word just before the name). Care-gap
    detection (`medcoder.gaps`) reads the same values with their offsets."""
    for m in pattern.finditer(text):
        if not _NOT_MEASURED.search(text, m.start(), m.start(1)) and not _GOAL_BEFORE.search(text, 0, m.start()):
            yield m


def _measured(pattern: re.Pattern[str], text: str) -> float | None:
    """The first measured value of `pattern` in `text`."""
    m = next(measured_matches(pattern, text), None)
    return None if m is None else float(m.group(1))


def documented_bmi(text: str) -> float | None:
    """The first measured BMI value written in `text` ("BMI 33.4", "BMI: 41", "body mass index of 30.2")."""
    found = documented_bmi_at(text)
    return None if found is None else found[0]


def documented_bmi_at(text: str) -> tuple[float, tuple[int, int]] | None:
    """`documented_bmi` and the span of its words ("BMI 33.4"), which a BMI code quotes as its evidence."""
    m = next(measured_matches(_BMI, text), None)
    return None if m is None else (float(m.group(1)), m.span())


def documented_a1c(text: str) -> float | None:
    """The first measured HbA1c percentage written in `text` ("A1c 9.8%", "HbA1c of 5.9")."""
    return _measured(_A1C, text)


def documented_ckd_stage(text: str) -> str | None:
    """The first CKD stage written in `text` as a key of CKD_STAGE_CODES ("CKD stage 3b", "CKD3b",
    "ckd stg 4", "stage IV CKD", "ESRD")."""
    m = _CKD_STAGE.search(text)
    if m is None:
        return None
    if m.group("esrd"):
        return "esrd"
    stage = (m.group("stage") or m.group("digits") or m.group("before")).lower()
    number = stage.rstrip("ab")  # "iii" of "iiib", "3" of "3b"
    return _ROMAN.get(number, number) + stage[len(number) :]


def _is_ckd_code(code: str) -> bool:
    return code in CKD_STAGE_CODES.values() or code == "N18.9"


def _is_adult_bmi_code(code: str) -> bool:
    return code == "Z68.1" or (code.startswith("Z68.") and code[4:5] in ("2", "3", "4"))


def is_value_code(code: str) -> bool:
    """Whether a documented value decides `code` (the adult BMI bands, prediabetes, the CKD stages)."""
    return _is_adult_bmi_code(code) or code == PREDIABETES_CODE or _is_ckd_code(code)


def value_supports(code: str, text: str) -> bool | None:
    """Whether a value in `text` supports `code`: True/False when the code is value-decided and
    `text` documents its value, None when the value rules have nothing to say.
    Only a goal or a bound ("target BMI under 30") is no measurement: it supports no value code (False)."""
    if _is_ckd_code(code):  # a documented stage is its code; N18.9 ("unspecified") only when none is
        stage = documented_ckd_stage(text)
        return None if stage is None else CKD_STAGE_CODES[stage] == code
    if _is_adult_bmi_code(code):
        bmi = documented_bmi(text)
        if bmi is None:
            return False if _BMI.search(text) else None
        return adult_bmi_code(bmi) == code
    if code == PREDIABETES_CODE:
        a1c = documented_a1c(text)
        if a1c is None:
            return False if _A1C.search(text) else None
        return PREDIABETES_A1C[0] <= a1c <= PREDIABETES_A1C[1]
    return None
