"""A care-gap evaluation set: office notes from the corpus's own builders, with planted values and gold gap labels.

Opt-in (`generate_gap_set`): the default corpus (`generate_corpus`) is untouched, and `make train` never sees
these notes. Each case draws a patient and renders an office visit with `outpatient.plan_visit`/`render`, then
adds the planted values in an addendum (results that came back after the visit), each written through the
NoteBuilder, so its offsets are exact by construction. Case kinds, in the stated proportions
(`CASE_PROPORTIONS`, written into the evaluation record):

- `gap`: a value that meets a rule (BMI >= 30, A1c >= 6.5%, two fasting glucose >= 126 mg/dL, two eGFR < 60
  at least 90 days apart in two notes, FEV1/FVC < 0.70 after bronchodilator) in a patient without the
  condition; sometimes the condition is named only negated or in a relative, which documents nothing;
- `near_under`: a value just under the threshold (BMI 29.x, A1c 6.0-6.4%, FEV1/FVC 0.70-0.74 or a low ratio
  only before bronchodilator, glucose in the impaired range or only one high, one low eGFR, two low eGFRs under
  90 days apart, or low-normal-low), the exact threshold on the miss side (eGFR 60, ratio 0.70) now and then;
- `with_diagnosis`: a value that meets the rule in a patient whose note codes the condition;
- `plain`: an office note with nothing planted.

Gold labels name the rule (ids as in `medcoder.gaps.rules`, checked by tests/test_care_gaps.py) and the
planted value spans; base notes carry no BMI (the corpus's own vitals BMI would be an unlabelled gap) and are
redrawn until they hold no value of the rule being planted, so every true gap is labelled.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from medcoder.data.schema import NoteRecord
from medcoder.data.synth import _record, outpatient
from medcoder.data.synth.builder import NoteBuilder, ev
from medcoder.data.synth.catalog import MORBID_OBESITY_NAMES, OBESITY_NAMES, icd
from medcoder.data.synth.chronic import A1C_FORMS, bmi_piece
from medcoder.data.synth.patients import FY_DAYS, FY_START, Encounter, Patient, make_patient
from medcoder.data.synth.phrasing import chance, make_style, name_of, pick, weighted

OBESITY_BMI, DIABETES_A1C, DIABETES_GLUCOSE, CKD_EGFR, COPD_SPIROMETRY = (
    "obesity_bmi", "diabetes_a1c", "diabetes_fasting_glucose", "ckd_egfr", "copd_spirometry",
)  # fmt: skip
GAP_RULES: tuple[str, ...] = (OBESITY_BMI, DIABETES_A1C, DIABETES_GLUCOSE, CKD_EGFR, COPD_SPIROMETRY)
CASE_PROPORTIONS: dict[str, float] = {"gap": 0.40, "near_under": 0.25, "with_diagnosis": 0.20, "plain": 0.15}
# the patient's own condition keys (catalog.CHRONIC) and ICD-10-CM prefixes of each rule's condition
_CONDITION_KEYS = {OBESITY_BMI: (), DIABETES_A1C: ("t2dm", "prediabetes"), DIABETES_GLUCOSE: ("t2dm", "prediabetes"),
                   CKD_EGFR: ("ckd3", "ckd4"), COPD_SPIROMETRY: ("copd", "asthma")}  # fmt: skip
_WITH_KEY = {DIABETES_A1C: "t2dm", DIABETES_GLUCOSE: "t2dm", CKD_EGFR: "ckd3", COPD_SPIROMETRY: "copd"}
_CODE_PREFIXES = {OBESITY_BMI: ("E66",), DIABETES_A1C: ("E08", "E09", "E10", "E11", "E13"),
                  DIABETES_GLUCOSE: ("E08", "E09", "E10", "E11", "E13"), CKD_EGFR: ("N18", "I12", "I13"),
                  COPD_SPIROMETRY: ("J43", "J44", "J45")}  # fmt: skip
_KEYWORDS = {OBESITY_BMI: ("BMI", "body mass"), DIABETES_A1C: ("A1c",), DIABETES_GLUCOSE: ("fasting", "FPG"),
             CKD_EGFR: ("GFR",), COPD_SPIROMETRY: ("FEV1",)}  # fmt: skip
_UNRELATED_WORDS = {OBESITY_BMI: "obesity", DIABETES_A1C: "diabetes", DIABETES_GLUCOSE: "diabetes",
                    CKD_EGFR: "chronic kidney disease", COPD_SPIROMETRY: "COPD"}  # fmt: skip
_ADDENDUM = ("Addendum", "Results addendum", "Lab addendum", "Results received after the visit")
_TRIES = 400


@dataclass(frozen=True)
class GoldGap:
    """A planted gap: the note it is in, the rule, and the value spans (note id, start, end) that meet it."""

    note_id: str
    rule: str
    spans: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class GapCase:
    """One case: its notes (one, or several of one patient), the gold gaps and what kind of case it is."""

    kind: str
    rule: str | None
    variant: str
    notes: tuple[NoteRecord, ...]
    gold: tuple[GoldGap, ...]


def _patient(rng: random.Random, pid: str, rule: str | None, kind: str) -> Patient:
    """A patient old enough for every rule, with the rule's condition exactly when the case wants it."""
    for _ in range(_TRIES):
        patient = make_patient(rng, pid)
        if patient.age < 45:
            continue
        keys = _CONDITION_KEYS.get(rule, ()) if rule else ()
        wanted = _WITH_KEY.get(rule) if kind == "with_diagnosis" and rule else None
        if (wanted is None and any(patient.has(k) for k in keys)) or (wanted and not patient.has(wanted)):
            continue
        patient.bmi = None  # the vitals BMI of the corpus would be an unlabelled gap
        return patient
    raise RuntimeError(f"no patient for a {kind} case of {rule} in {_TRIES} draws")


def _base(rng: random.Random, patient: Patient, enc: Encounter, rule: str | None, kind: str) -> NoteBuilder:
    """An office note of the corpus: without any value of the rule (gap and near-miss cases), or coding the
    rule's condition (with-diagnosis cases other than obesity, which the addendum documents)."""
    for _ in range(_TRIES):
        style = make_style(rng)
        b = outpatient.render(rng, style, patient, enc, outpatient.plan_visit(rng, style, patient, enc))
        codes = [code for _, code in b.evidence]
        coded = rule is not None and any(c.startswith(_CODE_PREFIXES[rule]) for c in codes)
        if kind == "with_diagnosis" and rule != OBESITY_BMI:
            if coded:
                return b
        elif not coded and not (rule and any(word.lower() in b.text.lower() for word in _KEYWORDS[rule])):
            return b
    raise RuntimeError(f"no base note for a {kind} case of {rule} in {_TRIES} renders")


def _addendum(rng: random.Random, b: NoteBuilder, values: list[str], note: str = "") -> list[tuple[int, int]]:
    """Append "Addendum: <value>; <value>. <note>" and return each value's span."""
    b.add(f"{pick(rng, _ADDENDUM)}: ")
    spans = []
    for i, value in enumerate(values):
        if i:
            b.add("; ")
        spans.append(b.add(value))
    b.add(f". {note}\n" if note else ".\n")
    return spans


def _distractor(rng: random.Random, rule: str) -> str:
    """A mention of the condition that documents nothing: negated, or a relative's."""
    word = _UNRELATED_WORDS[rule]
    return pick(rng, (f"No history of {word}.", f"Mother with {word}.", f"Denies {word}."))


def _value_text(rng: random.Random, rule: str, value: float, bronchodilator: str = "post-bronchodilator") -> str:
    if rule == OBESITY_BMI:
        return pick(rng, ("BMI {v}", "BMI {v} kg/m2", "BMI: {v}", "body mass index {v}")).format(v=f"{value:.1f}")
    if rule == DIABETES_A1C:
        return pick(rng, A1C_FORMS).format(v=f"{value:.1f}")
    if rule == DIABETES_GLUCOSE:
        return pick(rng, ("fasting plasma glucose {v} mg/dL", "fasting glucose {v} mg/dL", "FPG {v} mg/dL")).format(
            v=int(value)
        )
    if rule == CKD_EGFR:
        return pick(rng, ("eGFR {v}", "eGFR {v} mL/min/1.73m2", "estimated GFR {v}")).format(v=int(value))
    return f"{bronchodilator} " + pick(rng, ("FEV1/FVC {v}", "FEV1/FVC ratio {v}", "FEV1/FVC of {v}")).format(
        v=f"{value:.2f}"
    )


def _meets_value(rng: random.Random, rule: str) -> float:
    """A value that meets the rule, the threshold itself one time in seven."""
    edge = chance(rng, 1 / 7)
    lo, hi, at = {OBESITY_BMI: (30.0, 52.0, 30.0), DIABETES_A1C: (6.5, 10.5, 6.5), DIABETES_GLUCOSE: (126, 190, 126),
                  CKD_EGFR: (22, 59, 59), COPD_SPIROMETRY: (0.45, 0.69, 0.69)}[rule]  # fmt: skip
    return at if edge else round(rng.uniform(lo, hi), 2 if rule == COPD_SPIROMETRY else 1)


def _under_value(rng: random.Random, rule: str) -> float:
    """A value just on the miss side of the threshold, the threshold itself for the strict rules."""
    lo, hi = {OBESITY_BMI: (29.0, 29.9), DIABETES_A1C: (6.0, 6.4), DIABETES_GLUCOSE: (110, 125),
              CKD_EGFR: (60, 75), COPD_SPIROMETRY: (0.70, 0.74)}[rule]  # fmt: skip
    return round(rng.uniform(lo, hi), 2 if rule == COPD_SPIROMETRY else 1)


def _dates(rng: random.Random, gaps_days: list[int]) -> list[dt.date]:
    first = FY_START + dt.timedelta(days=rng.randint(0, FY_DAYS - 1 - sum(gaps_days)))
    out = [first]
    for days in gaps_days:
        out.append(out[-1] + dt.timedelta(days=days))
    return out


class _CaseWriter:
    """Numbers notes and patients across the set and turns builders into contract records."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.notes, self.patients = rng, 0, 0

    def patient(self, rule: str | None, kind: str) -> Patient:
        self.patients += 1
        return _patient(self.rng, f"g{self.patients:05d}", rule, kind)

    def note_id(self) -> str:
        self.notes += 1
        return f"gap{self.notes:06d}"


def _one_note_case(w: _CaseWriter, kind: str, rule: str | None) -> GapCase:
    rng = w.rng
    patient = w.patient(rule, kind)
    enc = Encounter(0, _dates(rng, [])[0], "outpatient", patient.age)
    b = _base(rng, patient, enc, rule, kind)
    note_id, gold, variant = w.note_id(), (), kind
    if rule == DIABETES_GLUCOSE:
        values = {"gap": [_meets_value(rng, rule), _meets_value(rng, rule)],
                  "with_diagnosis": [_meets_value(rng, rule), _meets_value(rng, rule)],
                  "near_under": pick(rng, ([_under_value(rng, rule), _under_value(rng, rule)],
                                           [_meets_value(rng, rule), _under_value(rng, rule)]))}[kind]  # fmt: skip
        texts = [_value_text(rng, rule, v) for v in values]
        texts[1] = "repeat " + texts[1]
    elif rule == COPD_SPIROMETRY and kind == "near_under" and chance(rng, 0.4):
        variant = "low_only_before_bronchodilator"
        texts = [_value_text(rng, rule, _meets_value(rng, rule), "pre-bronchodilator"),
                 _value_text(rng, rule, _under_value(rng, rule))]  # fmt: skip
    elif rule is not None:
        texts = [_value_text(rng, rule, _under_value(rng, rule) if kind == "near_under" else _meets_value(rng, rule))]
    if rule == OBESITY_BMI and kind == "with_diagnosis":
        bmi = _meets_value(rng, rule)
        names, code = (MORBID_OBESITY_NAMES, "E66.01") if bmi >= 40 else (OBESITY_NAMES, "E66.9")
        b.add(f"{pick(rng, _ADDENDUM)}: ", ev(name_of(rng, make_style(rng), names), icd(code)), ", ")
        b.add(bmi_piece(rng, bmi, coded=True), ".\n")
    elif rule is not None:
        note = _distractor(rng, rule) if kind == "gap" and chance(rng, 0.4) else ""
        spans = _addendum(rng, b, texts, note)
        if kind == "gap":
            gold = (GoldGap(note_id, rule, tuple((note_id, s, e) for s, e in spans)),)
            variant = "gap_with_distractor" if note else "gap"
    return GapCase(kind, rule, variant, (_record(note_id, patient, enc, b),), gold)


def _egfr_case(w: _CaseWriter, kind: str) -> GapCase:
    """Two or three notes of one patient: the eGFR rule reads them together by date."""
    rng = w.rng
    patient = w.patient(CKD_EGFR, kind)
    low = lambda: _meets_value(rng, CKD_EGFR)  # noqa: E731
    variant, plan = kind, [(0, low()), (rng.randint(90, 200), low())]
    if kind == "near_under":
        variant, plan = pick(rng, (
            ("one_low", [(0, low()), (rng.randint(90, 200), _under_value(rng, CKD_EGFR))]),
            ("under_90_days", [(0, low()), (rng.randint(20, 89), low())]),
            ("low_normal_low", [(0, low()), (rng.randint(30, 60), _under_value(rng, CKD_EGFR)),
                                (rng.randint(40, 80), low())]),
        ))  # fmt: skip
    dates = _dates(rng, [days for days, _ in plan[1:]])
    notes, spans = [], []
    for index, ((_, value), date) in enumerate(zip(plan, dates, strict=True)):
        enc = Encounter(index, date, "outpatient", patient.age)
        b = _base(rng, patient, enc, CKD_EGFR, kind)
        note_id = w.note_id()
        prefix = f"BMP: Cr {round(rng.uniform(1.2, 2.4), 1)}, "
        b.add(f"{pick(rng, _ADDENDUM)}: {prefix}")
        start, end = b.add(_value_text(rng, CKD_EGFR, value))
        b.add(".\n")
        spans.append((note_id, start, end))
        notes.append(_record(note_id, patient, enc, b))
    gold = (GoldGap(notes[-1].id, CKD_EGFR, (spans[0], spans[-1])),) if kind == "gap" else ()
    return GapCase(kind, CKD_EGFR, variant, tuple(notes), gold)


def generate_gap_set(n_cases: int, seed: int) -> list[GapCase]:
    """`n_cases` cases in CASE_PROPORTIONS (rules drawn uniformly within a kind), identical for the same seed."""
    if n_cases < 1:
        raise ValueError(f"n_cases must be at least 1, got {n_cases}")
    rng = random.Random(seed)
    writer = _CaseWriter(rng)
    kinds = list(CASE_PROPORTIONS)
    cases = []
    for _ in range(n_cases):
        kind = weighted(rng, kinds, [CASE_PROPORTIONS[k] for k in kinds])
        rule = None if kind == "plain" else pick(rng, GAP_RULES)
        if rule == CKD_EGFR:
            cases.append(_egfr_case(writer, kind))
        else:
            cases.append(_one_note_case(writer, kind, rule))
    return cases
