"""The one door to `hccinfhir`: a set of ICD-10-CM codes and a patient's enrollment -> CMS-HCC categories and score.

Every HCC, label, coefficient and score medcoder reports is hccinfhir's (`calculate_raf`, with the CMS data
tables of payment year 2026 it ships, and its Medicare Code Editor age/sex edits on: `switch_edits=True`,
CMS's SEDITS). Nothing here computes a coefficient, so the numbers equal the library's on the same codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hccinfhir import RAFResult, calculate_raf
from hccinfhir.defaults import hierarchies_default

from medcoder.inference.schema import HCC_MODELS  # `--hcc-model` (V28, V24) -> hccinfhir's model name


@dataclass(frozen=True)
class Enrollment:
    """What the score needs besides the codes: the patient's age and sex (F or M) and the plan's enrollment
    fields. `dual_status` is CMS's Medicare-Medicaid dual eligibility code ("00" not dual, "02"/"04"/"08" full,
    "01"/"03"/"05"/"06" partial; None: not dual); `institutional`: a long-term institutional resident."""

    age: int
    sex: str
    dual_status: str | None = None
    new_enrollee: bool = False
    institutional: bool = False


def raf(codes: Iterable[str], enrollment: Enrollment, model: str) -> RAFResult:
    """hccinfhir's result for `codes` (canonical dotted ICD-10-CM) under `model` ("V28" or "V24")."""
    if model not in HCC_MODELS:
        raise ValueError(f"unknown HCC model {model!r}; expected one of {', '.join(HCC_MODELS)}")
    return calculate_raf(
        sorted({code.replace(".", "") for code in codes}),
        model_name=HCC_MODELS[model],
        age=enrollment.age,
        sex=enrollment.sex,
        dual_elgbl_cd=enrollment.dual_status or "NA",
        new_enrollee=enrollment.new_enrollee,
        lti=enrollment.institutional,
        switch_edits=True,
    )


def superseded(hcc: str, model: str) -> frozenset[str]:
    """The HCCs `hcc` wins over in `model`'s hierarchy (hccinfhir's table): their codes count through it."""
    return frozenset(hierarchies_default.get((hcc, HCC_MODELS[model]), ()))
