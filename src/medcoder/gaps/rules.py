"""The care-gap rules and their detection: a documented value meets a diagnostic threshold, and the note neither
codes nor states the condition it points to.

Rule table and sources (thresholds read from them, no text copied; the table is RULES below):

- `obesity_bmi`: BMI >= 30 kg/m2 in an adult (20+), not pregnant -> obesity (E66). CDC, "Adult BMI
  Categories"; WHO, "Obesity and overweight" fact sheet.
- `diabetes_a1c`: HbA1c >= 6.5% -> diabetes mellitus (E08-E13). American Diabetes Association, Standards of
  Care in Diabetes, section 2 "Diagnosis and Classification of Diabetes".
- `diabetes_fasting_glucose`: two fasting plasma glucose >= 126 mg/dL -> diabetes mellitus. The same ADA
  section (two abnormal results confirm the diagnosis).
- `ckd_egfr`: two eGFR < 60 mL/min/1.73 m2 at least 90 days apart, none >= 60 between them, across the
  patient's notes -> chronic kidney disease (N18). KDIGO 2012 Clinical Practice Guideline for the Evaluation
  and Management of CKD (GFR < 60 for more than 3 months).
- `copd_spirometry`: FEV1/FVC < 0.70, not written as pre-bronchodilator -> COPD (J44). Global Initiative for
  Chronic Obstructive Lung Disease (GOLD) report, "Diagnosis and assessment" (post-bronchodilator ratio).

A gap is a finding for a query, not a diagnosis: ADA wants a single A1c confirmed unless hyperglycaemia is
unequivocal, and a low FEV1/FVC may be asthma; the provider decides (`queries`). Prediabetes (R73.03) is not a
diabetes code, so an A1c of 6.5% or more beside it is still a gap.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from medcoder.codes.bmi import ADULT_MIN_AGE, indicates_pregnancy
from medcoder.gaps.diagnoses import (
    CKD,
    DIABETES,
    OBESITY,
    OBSTRUCTIVE_LUNG_DISEASE,
    DiagnosisFamily,
    current_mentions,
    is_documented,
)
from medcoder.gaps.measurements import A1C, BMI, EGFR, FASTING_GLUCOSE, FEV1_FVC, Measurement, measurements
from medcoder.gaps.notes import CareNote

OBESITY_BMI, DIABETES_A1C, DIABETES_GLUCOSE, CKD_EGFR, COPD_SPIROMETRY = (
    "obesity_bmi", "diabetes_a1c", "diabetes_fasting_glucose", "ckd_egfr", "copd_spirometry",
)  # fmt: skip
CKD_MIN_DAYS = 90  # KDIGO: reduced GFR for more than 3 months


@dataclass(frozen=True)
class GapRule:
    """One row of the rule table: which value, what meets it, the diagnosis it points to and the source."""

    id: str
    kind: str
    criterion: str
    family: DiagnosisFamily
    source: str
    meets: Callable[[float], bool]
    values_needed: int = 1  # results that must meet it (two for the glucose and eGFR rules)
    min_days_apart: int = 0


RULES: tuple[GapRule, ...] = (
    GapRule(OBESITY_BMI, BMI, "BMI >= 30 kg/m2 in an adult (20+), not pregnant", OBESITY,
            "CDC Adult BMI Categories; WHO Obesity and overweight fact sheet", lambda v: v >= 30),
    GapRule(DIABETES_A1C, A1C, "HbA1c >= 6.5%", DIABETES,
            "ADA Standards of Care in Diabetes, section 2 (Diagnosis and Classification)", lambda v: v >= 6.5),
    GapRule(DIABETES_GLUCOSE, FASTING_GLUCOSE, "two fasting plasma glucose >= 126 mg/dL", DIABETES,
            "ADA Standards of Care in Diabetes, section 2 (Diagnosis and Classification)", lambda v: v >= 126,
            values_needed=2),
    GapRule(CKD_EGFR, EGFR, "two eGFR < 60 mL/min/1.73 m2 at least 90 days apart, none >= 60 between", CKD,
            "KDIGO 2012 CKD guideline (GFR < 60 for more than 3 months)", lambda v: v < 60,
            values_needed=2, min_days_apart=CKD_MIN_DAYS),
    GapRule(COPD_SPIROMETRY, FEV1_FVC, "post-bronchodilator FEV1/FVC < 0.70", OBSTRUCTIVE_LUNG_DISEASE,
            "GOLD report, Diagnosis and assessment (post-bronchodilator FEV1/FVC < 0.70)", lambda v: v < 0.70),
)  # fmt: skip
RULES_BY_ID: dict[str, GapRule] = {rule.id: rule for rule in RULES}


@dataclass(frozen=True)
class Documentation:
    """Where another note of the patient states the condition: what a yes/no query may ask to confirm."""

    note_id: str
    start: int
    end: int
    date: str | None


@dataclass(frozen=True)
class Gap:
    """A care gap in one note: the rule, the values that meet it (possibly from earlier notes of the patient)
    and, when another note of the patient documents the condition, where."""

    rule: GapRule
    note_id: str
    patient_id: str | None
    evidence: tuple[Measurement, ...]
    documented_elsewhere: Documentation | None = None


def _applies(rule: GapRule, note: CareNote) -> bool:
    """Rules with a population: BMI >= 30 is obesity in adults, and not in pregnancy."""
    if rule.kind == BMI:
        return (note.age is None or note.age >= ADULT_MIN_AGE) and not indicates_pregnancy(note.codes)
    return True


def _when(m: Measurement) -> tuple[str, str, int]:
    """Time order of values: by date, then note and place (values of one note share its date)."""
    return (m.date or "", m.note_id, m.start)


def _days(earlier: Measurement, later: Measurement) -> int | None:
    if earlier.date is None or later.date is None:
        return None
    return (dt.date.fromisoformat(later.date) - dt.date.fromisoformat(earlier.date)).days


def _persistent_pair(rule: GapRule, history: Sequence[Measurement], last: Measurement) -> tuple[Measurement, ...]:
    """Two values meeting the rule that end with `last`: an earlier meeting value at least `min_days_apart`
    before it with no value in between that misses the rule (KDIGO's persistence), the most recent such one."""
    earlier = [m for m in history if _when(m) < _when(last)]
    for first in reversed(earlier):
        days = _days(first, last)
        if not rule.meets(first.value) or (rule.min_days_apart and (days is None or days < rule.min_days_apart)):
            continue
        between = [m for m in earlier if (first.date or "") < (m.date or "") < (last.date or "")]
        if all(rule.meets(m.value) for m in between):
            return (first, last)
    return ()


def _documented_elsewhere(rule: GapRule, note: CareNote, others: Sequence[CareNote]) -> Documentation | None:
    """The latest other note of the patient that states the condition as current."""
    for other in sorted(others, key=lambda n: n.encounter_date or "", reverse=True):
        spans = current_mentions(rule.family, other.text, other.setting)
        if other.id != note.id and spans:
            return Documentation(other.id, spans[0][0], spans[0][1], other.encounter_date)
    return None


def _patient_gaps(rule: GapRule, notes: Sequence[CareNote]) -> Iterator[Gap]:
    values = {n.id: list(measurements(rule.kind, n.text, n.id, n.encounter_date)) for n in notes}
    history = sorted((m for found in values.values() for m in found), key=_when)
    for note in notes:
        if not _applies(rule, note) or is_documented(rule.family, note.text, note.codes, note.setting):
            continue
        meeting = [m for m in values[note.id] if rule.meets(m.value)]
        if rule.values_needed == 1 and meeting:  # every value of the note that meets it is evidence
            yield Gap(rule, note.id, note.patient_id, tuple(meeting), _documented_elsewhere(rule, note, notes))
            continue
        for last in reversed(meeting):
            evidence = _persistent_pair(rule, history, last)
            if evidence:
                yield Gap(rule, note.id, note.patient_id, evidence, _documented_elsewhere(rule, note, notes))
                break


def detect_gaps(notes: Sequence[CareNote], rules: Sequence[GapRule] = RULES) -> list[Gap]:
    """Every care gap in `notes`, in note order then rule order; notes of one patient are read together."""
    by_patient: dict[str, list[CareNote]] = defaultdict(list)
    for note in notes:
        by_patient[note.patient_key].append(note)
    found = [gap for rule in rules for group in by_patient.values() for gap in _patient_gaps(rule, group)]
    order = {note.id: i for i, note in enumerate(notes)}
    return sorted(found, key=lambda g: (order[g.note_id], rules.index(g.rule)))
