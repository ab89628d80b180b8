"""Documented values with their offsets: BMI, HbA1c, eGFR, FEV1/FVC ratio and fasting plasma glucose.

BMI and HbA1c are read by the same patterns and goal/bound filter as the code-set value rules
(`medcoder.codes.values`), so "target A1c < 7%" is no measurement here either. A value counts only when the
patient's own and current: a value the ConText check finds negated, family, historical, hypothetical or
uncertain ("mother's A1c", "if the A1c is 8 we will...", "A1c 7.2% in 2019") is left out, as is a number
that is an interval ("recheck A1c in 12 months"). A spirometry ratio written as pre-bronchodilator does
not count (GOLD reads the post-bronchodilator ratio).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from medcoder.codes.values import A1C_PATTERN, BMI_PATTERN, measured_matches
from medcoder.inference.grounding.context import detect_context

BMI, A1C, EGFR, FEV1_FVC, FASTING_GLUCOSE = "bmi", "a1c", "egfr", "fev1_fvc", "fasting_glucose"

_EGFR = re.compile(r"\b(?:eGFR|estimated\s+GFR|GFR)\b[^0-9\n]{0,20}?(\d{1,3}(?:\.\d+)?)", re.IGNORECASE)
_FEV1_FVC = re.compile(r"\bFEV1\s*/\s*FVC\b(?:\s+ratio)?[^0-9\n]{0,20}?(\d?\.\d+|\d{2}(?:\.\d+)?)\s*%?", re.IGNORECASE)
_FASTING_GLUCOSE = re.compile(
    r"\b(?:fasting\s+(?:plasma\s+|blood\s+|serum\s+)?glucose|FPG|fasting\s+blood\s+sugar|FBS|fasting\s+BG)\b"
    r"[^0-9\n]{0,20}?(\d{2,3})(?:\s*mg/dL)?",
    re.IGNORECASE,
)
_PATTERNS: dict[str, re.Pattern[str]] = {
    BMI: BMI_PATTERN, A1C: A1C_PATTERN, EGFR: _EGFR, FEV1_FVC: _FEV1_FVC, FASTING_GLUCOSE: _FASTING_GLUCOSE,
}  # fmt: skip
# what a measurement of each kind can be: anything else is a date, a dose or a misread
_PLAUSIBLE: dict[str, tuple[float, float]] = {
    BMI: (10, 90), A1C: (3, 20), EGFR: (1, 200), FEV1_FVC: (0.2, 1.0), FASTING_GLUCOSE: (40, 600),
}  # fmt: skip
_INTERVAL_AFTER = re.compile(r"\s*(?:months?|mos?\b|weeks?|wks?\b|days?|years?|yrs?\b)", re.IGNORECASE)
_PRE_BRONCHODILATOR = re.compile(r"\bpre[\s-]?(?:bronchodilator|BD)\b|\bbefore\s+bronchodilator", re.IGNORECASE)
_POST_BRONCHODILATOR = re.compile(r"\bpost[\s-]?(?:bronchodilator|BD)\b|\bafter\s+bronchodilator", re.IGNORECASE)
_LINE_START = re.compile(r"[\n;.](?=\s)")


@dataclass(frozen=True)
class Measurement:
    """One documented value: its kind, the number (FEV1/FVC as a ratio), where it is and when it was taken
    (the note's encounter date)."""

    kind: str
    value: float
    note_id: str
    start: int
    end: int
    date: str | None


def _clause_before(text: str, start: int) -> str:
    """The words from the last line, sentence or list break before `start` up to it."""
    breaks = [m.end() for m in _LINE_START.finditer(text, max(0, start - 120), start)]
    return text[breaks[-1] if breaks else max(0, start - 120) : start]


def _is_pre_bronchodilator(text: str, match: re.Match[str]) -> bool:
    around = _clause_before(text, match.start()) + text[match.start() : match.end()]
    pre = [m.end() for m in _PRE_BRONCHODILATOR.finditer(around)]
    post = [m.end() for m in _POST_BRONCHODILATOR.finditer(around)]
    return bool(pre) and (not post or max(pre) > max(post))


def _value(kind: str, match: re.Match[str]) -> float:
    number = float(match.group(1))
    return number / 100 if kind == FEV1_FVC and number > 1 else number


def measurements(kind: str, text: str, note_id: str, date: str | None) -> Iterator[Measurement]:
    """Every measured, current value of `kind` in a note's `text`, in text order."""
    for match in measured_matches(_PATTERNS[kind], text):
        if _INTERVAL_AFTER.match(text, match.end(1)):
            continue
        value = _value(kind, match)
        low, high = _PLAUSIBLE[kind]
        if not low <= value <= high:
            continue
        if kind == FEV1_FVC and _is_pre_bronchodilator(text, match):
            continue
        if detect_context(text, match.start(), match.end()) is not None:
            continue
        yield Measurement(kind, value, note_id, match.start(), match.end(), date)
