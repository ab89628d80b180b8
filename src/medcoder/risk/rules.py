"""Our rules before hccinfhir scores a set of codes: what the library does not check, each with its source.

hccinfhir maps every code it is given (its Medicare Code Editor edits check age and sex only), so:
- `bmi_needs_weight_diagnosis`: a BMI code (Z68) counts only beside an associated weight diagnosis (ICD-10-CM
  Official Guidelines I.C.21.c.3, I.B.14). The library scores Z68.41 alone as morbid obesity (V28 HCC 48).
- `bmi_age_band`: adult bands Z68.1-Z68.45 at 20 and over, pediatric percentiles Z68.51-Z68.54 at 2-19 (the
  Z68 tabular notes); the library's MCE edit only invalidates Z68.41-Z68.45 under 15.
- `bmi_in_pregnancy`: no BMI code in pregnancy (I.C.21.c.3).
- `hcc_high_risk_not_stated`: an HCC HHS-OIG lists as high-risk for unsupported submission
  (`resources/oig_high_risk_hcc.tsv`) counts only when one of its listed codes is grounded AND stated by the
  evidence verifier; its codes are left out otherwise (`risk.section` routes every such HCC to review).
The BMI rules themselves are `medcoder.codes.bmi`'s, shared with the guideline layer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from medcoder.codes.bmi import has_weight_diagnosis, in_age_band, is_bmi
from medcoder.inference.contract import HIGH_RISK_NOT_STATED
from medcoder.paths import resources_dir

HIGH_RISK_FILE = "oig_high_risk_hcc.tsv"
RULE_SOURCES: dict[str, str] = {
    "bmi_in_pregnancy": "ICD-10-CM Official Guidelines I.C.21.c.3",
    "bmi_age_band": "ICD-10-CM Tabular List, Z68 notes (I.C.21.c.3)",
    "bmi_needs_weight_diagnosis": "ICD-10-CM Official Guidelines I.C.21.c.3, I.B.14",
    HIGH_RISK_NOT_STATED: "HHS-OIG A-07-23-01213, high-risk diagnosis codes",
}


@dataclass(frozen=True)
class Exclusion:
    """A code kept out of a score, the rule that did it and its source; `hcc` for a high-risk HCC's code."""

    code: str
    rule: str
    source: str
    hcc: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _excluded(code: str, rule: str, hcc: str | None = None) -> Exclusion:
    return Exclusion(code, rule, RULE_SOURCES[rule], hcc)


def bmi_exclusions(codes: Sequence[str], age: int, pregnant: bool) -> list[Exclusion]:
    """The BMI codes of `codes` that may not be reported for this patient: in pregnancy, outside the age
    band, or without a weight diagnosis among `codes` (checked in that order, one rule per code)."""
    weight_diagnosis = has_weight_diagnosis(codes)
    out = []
    for code in filter(is_bmi, codes):
        if pregnant:
            out.append(_excluded(code, "bmi_in_pregnancy"))
        elif not in_age_band(code, age):
            out.append(_excluded(code, "bmi_age_band"))
        elif not weight_diagnosis:
            out.append(_excluded(code, "bmi_needs_weight_diagnosis"))
    return out


@dataclass(frozen=True)
class HighRiskHcc:
    """One row of the OIG list: a condition's HCC in a model and the code prefixes of the condition."""

    condition: str
    model: str
    hcc: str
    prefixes: tuple[str, ...]


@functools.cache
def high_risk_hccs() -> tuple[HighRiskHcc, ...]:
    """The rows of the packaged resources/oig_high_risk_hcc.tsv."""
    path = resources_dir() / HIGH_RISK_FILE
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    data = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    for n, line in data[1:]:  # the first is the header
        fields = line.split("\t")
        if len(fields) != 4 or not fields[2].isdigit():
            raise ValueError(f"{path}:{n}: expected condition, model, hcc (digits) and prefixes, tab-separated")
        condition, model, hcc, prefixes = fields
        rows.append(HighRiskHcc(condition, model, hcc, tuple(p.strip() for p in prefixes.split(","))))
    return tuple(rows)


def high_risk_condition(code: str, hcc: str, model: str) -> str | None:
    """The OIG condition `code` is, when it maps to `hcc` in `model` and the list names that HCC for it."""
    for row in high_risk_hccs():
        if row.model == model and row.hcc == hcc and code.startswith(row.prefixes):
            return row.condition
    return None


def unstated_high_risk(hccs: Mapping[str, Iterable[str]], stated: set[str], model: str) -> list[Exclusion]:
    """For each HCC of `hccs` (HCC -> its codes) on the OIG list none of whose listed codes is in `stated`, those
    codes: they do not count (a listed HCC needs a span the verifier accepts as stating it)."""
    out = []
    for hcc, codes in sorted(hccs.items()):
        listed = sorted(code for code in codes if high_risk_condition(code, hcc, model))
        if listed and not stated.intersection(listed):
            out += [_excluded(code, HIGH_RISK_NOT_STATED, hcc) for code in listed]
    return out
