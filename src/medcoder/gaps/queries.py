"""A draft physician query per care gap, in the form compliant query practice asks for (docs/GAPS.md).

Following the ACDIS/AHIMA "Guidelines for Achieving a Compliant Query Practice" (2022 update): the query
quotes the clinical indicators it rests on (value, date, the words of the note), asks an open question that
names no diagnosis, and offers multiple choices that are all clinically reasonable for those indicators,
always with "Other" (free text) and "Clinically undetermined"; a value band picks the options (a BMI of 41
offers obesity class 3, never class 1 or overweight; an A1c of 7.1% never prediabetes). A yes/no query is
used only to confirm a condition already documented elsewhere in the patient's record, quoting where. Nothing
in a query speaks of payment, reimbursement, HCCs, risk scores or revenue. Each option carries the
ICD-10-CM code a coder adds when the provider picks it and documents it (`trail.answer_correction`); the
query shows the provider words, never codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from medcoder.gaps.measurements import A1C, BMI, EGFR, FASTING_GLUCOSE, FEV1_FVC, Measurement
from medcoder.gaps.rules import Gap

MULTIPLE_CHOICE, YES_NO = "multiple_choice", "yes_no"
DIAGNOSIS, NOT_SIGNIFICANT, OTHER, UNDETERMINED, YES, NO = (
    "diagnosis", "not_significant", "other", "undetermined", "yes", "no",
)  # fmt: skip
OTHER_LABEL, UNDETERMINED_LABEL = "Other (please specify)", "Clinically undetermined"
_QUESTION = (
    "Based on your clinical judgment and the indicators above, can the clinical significance of these "
    "findings be clarified in the medical record? Select the option that applies, or describe another."
)
NOT_SIGNIFICANT_BMI = "BMI not clinically significant for this patient (no weight diagnosis)"
_CLOSING = "This query does not imply that any particular answer is desired or expected."
# KDIGO 2012 GFR categories below 60 mL/min/1.73 m2, as the N18 stages name them
CKD_STAGES: tuple[tuple[float, str, str], ...] = ((45, "3a", "N18.31"), (30, "3b", "N18.32"), (15, "4", "N18.4"),
                                                  (0, "5", "N18.5"))  # fmt: skip
_UNITS = {BMI: ("BMI", " kg/m2"), A1C: ("HbA1c", "%"), EGFR: ("eGFR", " mL/min/1.73 m2"),
          FEV1_FVC: ("FEV1/FVC", ""), FASTING_GLUCOSE: ("fasting plasma glucose", " mg/dL")}  # fmt: skip


@dataclass(frozen=True)
class Indicator:
    """A clinical indicator the query cites: the value as a reader sees it, when, and the note's own words."""

    note_id: str
    date: str | None
    value: str
    start: int
    end: int
    quote: str


@dataclass(frozen=True)
class Option:
    """One answer: the words the provider sees, and the code a coder adds when it is chosen (None: no code)."""

    label: str
    code: str | None
    kind: str


@dataclass(frozen=True)
class Query:
    """A draft query: where it goes, what it cites, the options, and its text as the provider reads it."""

    query_id: str
    note_id: str
    rule: str
    format: str
    indicators: tuple[Indicator, ...]
    options: tuple[Option, ...]
    text: str
    confirms: Indicator | None = None  # yes/no only: the documentation of the condition it asks to confirm

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Query:
        """The query `to_dict` wrote (a `medcoder care-gaps --queries` line's "query"); KeyError or TypeError when
        a field is missing or unknown."""
        confirms = data.get("confirms")
        return cls(
            query_id=data["query_id"], note_id=data["note_id"], rule=data["rule"], format=data["format"],
            text=data["text"], indicators=tuple(Indicator(**i) for i in data["indicators"]),
            options=tuple(Option(**o) for o in data["options"]), confirms=Indicator(**confirms) if confirms else None,
        )  # fmt: skip


def _number(kind: str, value: float) -> str:
    return f"{value:.2f}" if kind == FEV1_FVC else f"{value:g}"


def indicator(m: Measurement, texts: Mapping[str, str]) -> Indicator:
    name, unit = _UNITS[m.kind]
    return Indicator(m.note_id, m.date, f"{name} {_number(m.kind, m.value)}{unit}", m.start, m.end,
                     texts[m.note_id][m.start : m.end])  # fmt: skip


def ckd_stage(egfr: float) -> tuple[str, str]:
    """(stage, N18 code) of an eGFR below 60 (KDIGO G3a-G5)."""
    return next((stage, code) for floor, stage, code in CKD_STAGES if egfr >= floor)


def obesity_class(bmi: float) -> int:
    """Obesity class of an adult BMI of 30 or more (CDC: 30-34.9 class 1, 35-39.9 class 2, 40+ class 3)."""
    return 1 if bmi < 35 else 2 if bmi < 40 else 3


def _diagnosis_options(gap: Gap) -> list[Option]:
    """The clinically reasonable answers for the gap's values (the module docstring's policy)."""
    values = [m.value for m in gap.evidence]
    kind = gap.rule.kind
    if kind == BMI:
        n = obesity_class(max(values))
        excess = ("Morbid (severe) obesity due to excess calories", "E66.01") if n == 3 else (
            "Obesity due to excess calories", "E66.09")  # fmt: skip
        return [Option(f"Obesity, class {n}", f"E66.81{n}", DIAGNOSIS), Option(*excess, DIAGNOSIS),
                Option(NOT_SIGNIFICANT_BMI, None, NOT_SIGNIFICANT)]  # fmt: skip
    if kind in (A1C, FASTING_GLUCOSE):
        return [Option("Type 2 diabetes mellitus", "E11.9", DIAGNOSIS),
                Option("Type 1 diabetes mellitus", "E10.9", DIAGNOSIS),
                Option("Other specified diabetes mellitus (please specify type or cause)", "E13.9", DIAGNOSIS),
                Option("Abnormal glucose, diabetes not confirmed", "R73.09", DIAGNOSIS)]  # fmt: skip
    if kind == EGFR:
        stages = dict(ckd_stage(v) for v in reversed(values))  # latest value's stage first
        return [Option(f"Chronic kidney disease, stage {stage}", code, DIAGNOSIS) for stage, code in stages.items()] + [
            Option("Abnormal kidney function, chronic kidney disease not established", "R94.4", DIAGNOSIS)]  # fmt: skip
    return [Option("Chronic obstructive pulmonary disease", "J44.9", DIAGNOSIS),
            Option("Emphysema", "J43.9", DIAGNOSIS), Option("Asthma", "J45.909", DIAGNOSIS),
            Option("Abnormal pulmonary function study, diagnosis not established", "R94.2", DIAGNOSIS)]  # fmt: skip


def _query_id(gap: Gap) -> str:
    key = "|".join([gap.note_id, gap.rule.id, *(f"{m.note_id}:{m.start}-{m.end}" for m in gap.evidence)])
    return "q-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def _render(header: str, indicators: tuple[Indicator, ...], question: str, options: list[Option]) -> str:
    lines = [header, "Clinical indicators in the record:"]
    lines += [f'- {i.value} on {i.date or "date not recorded"} (note {i.note_id}): "{i.quote}"' for i in indicators]
    lines += [question, *(f"[ ] {o.label}" for o in options), _CLOSING]
    return "\n".join(lines)


def draft_query(gap: Gap, texts: Mapping[str, str], dates: Mapping[str, str | None]) -> Query:
    """The query for `gap`: yes/no when another note documents the condition, else multiple choice.
    `texts` and `dates` map each note id of the patient to its text and encounter date."""
    indicators = tuple(indicator(m, texts) for m in gap.evidence)
    header = f"Documentation query for note {gap.note_id} (encounter {dates.get(gap.note_id) or 'undated'})"
    closing = [Option(OTHER_LABEL, None, OTHER), Option(UNDETERMINED_LABEL, None, UNDETERMINED)]
    found = gap.documented_elsewhere
    if found is None:
        options = _diagnosis_options(gap) + closing
        return Query(_query_id(gap), gap.note_id, gap.rule.id, MULTIPLE_CHOICE, indicators, tuple(options),
                     _render(header, indicators, _QUESTION, options))  # fmt: skip
    quote = texts[found.note_id][found.start : found.end]
    confirms = Indicator(found.note_id, found.date, quote, found.start, found.end, quote)
    name = gap.rule.family.name
    question = (
        f'The note of {found.date or "an undated encounter"} (note {found.note_id}) documents "{quote}". '
        f"Is {name}, as documented there, a current condition of the patient at this encounter?"
    )
    options = [Option("Yes", gap.rule.family.default_code, YES), Option("No", None, NO), *closing]
    return Query(_query_id(gap), gap.note_id, gap.rule.id, YES_NO, indicators, tuple(options),
                 _render(header, indicators, question, options), confirms)  # fmt: skip
