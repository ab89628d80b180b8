"""Which predictions a human coder must look at before they are billed, and why.

A prediction is never auto-accepted when it is unsure (score under `min_confidence`, unless the note
states the code in its own words: `PredictedCode.stated`, the verifier's strictest bar), unsupported
by the text (ungrounded: no evidence span, or evidence only on a negated/family/historical/
hypothetical mention), or costly when wrong: conditions payers audit most (sepsis; acute MI, acute
stroke and active cancer outside a hospital stay) and the top office E/M levels (99205, 99215),
which are the usual targets of upcoding reviews; and incomplete where a drug code's condition is not coded
(`CONDITIONS_OF_DRUG_CODES`) or a combination code's required companion is not
(`COMPANIONS_OF_COMBINATION_CODES`). Ungrounded codes are either kept and routed to review or removed, by
configuration; they are never passed through as accepted.

Every reason is `<rule>:<code>`; the list is sorted by rule (REASON_ORDER), then system, then
code, and has no repeats, so the same prediction always gives the same list.
`RoutingPolicy` is built by Hydra from `configs/routing/default.yaml`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from medcoder.codes.age_sex import EDIT_RULES, PatientFacts, prediction_edits
from medcoder.codes.formats import CODE_SYSTEMS, CPT, ICD10CM, is_canonical
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.inference.guidelines import LOWER_RESPIRATORY_INFECTIONS

UNGROUNDED_ACTIONS: tuple[str, ...] = ("review", "drop")
# Rule order in `review.reasons`; invalid_code_removed, truncated, outside_label_space and no_diagnosis_code
# (note-level: a count of removed codes, the characters read of a note that was cut, the ICD-10-CM category of a
# diagnosis the note states that no label codes, the code system of which the line has no code) are added by
# `contract.render_prediction`.
REASON_ORDER: tuple[str, ...] = (
    "invalid_code_removed",
    "truncated",
    "outside_label_space",
    "no_diagnosis_code",
    "low_confidence",
    "ungrounded",
    "condition_not_coded",
    "additional_code_missing",
    "high_risk",
    "em_level",
    *EDIT_RULES,  # a code the patient's age, sex or visit history rules out (medcoder.codes.age_sex)
    "denial_risk",  # a billed line the payer will likely deny (medcoder predict --denial-risk; claims.risk)
    "hcc_high_risk",  # an HCC HHS-OIG lists as high-risk (medcoder predict --risk-adjustment; medcoder.risk)
)
COUNT_REASONS: tuple[str, ...] = ("invalid_code_removed", "truncated")  # their detail is a positive number, not a code
CATEGORY_REASONS: tuple[str, ...] = ("outside_label_space",)  # their detail is an ICD-10-CM category, not a line's code
# a claim needs at least one diagnosis code (its medical necessity): a note left with none goes to a coder, whose
# detail is the code system it lacks ("no_diagnosis_code:ICD-10-CM"); "right ankle sprain" with no sprain label
# would otherwise leave as a line with nothing to bill and nothing to review
SYSTEM_REASONS: tuple[str, ...] = ("no_diagnosis_code",)
HCC_REASONS: tuple[str, ...] = ("hcc_high_risk",)  # their detail is a CMS-HCC number of the line's risk_adjustment
# ICD-10-CM prefixes routed in every setting: sepsis (A40, A41, severe sepsis R65.2), whose inpatient
# claims payers re-audit for clinical validation.
DEFAULT_HIGH_RISK_PREFIXES: tuple[str, ...] = ("A40", "A41", "R65.2")
# Routed outside a hospital stay only: acute MI (I21, I22), acute stroke (I60-I63) and active malignant
# neoplasms (C00-C96). HHS-OIG's audits of these diagnoses found them unsupported where a physician's
# office claim carried them with no hospital stay or treatment (the patient had a history of the
# condition, Z86.73 / I25.2 / Z85); on a discharge summary of the admission that treated them they are
# the expected codes. In situ (D00-D09), benign and uncertain-behaviour neoplasms (D10-D49) are not
# "active cancer" and history of cancer is Z85, so neither matches.
DEFAULT_OUTPATIENT_HIGH_RISK_PREFIXES: tuple[str, ...] = ("I21", "I22", "I60", "I61", "I62", "I63", "C")
DEFAULT_REVIEW_EM_CODES: tuple[str, ...] = ("99205", "99215")
# Long-term drug use codes whose drug class names the condition it treats: coded with that condition (Z79 is
# an additional code, Guidelines I.C.21.c.3), so a line carrying the drug code but none of the condition's
# codes has lost a diagnosis ("raise the metformin dose" coded Z79.84 while "his diabetes" gave nothing) and
# goes to a coder: `condition_not_coded:<drug code>`. Diabetes (E08-E13), prediabetes (R73.0-), diabetes in
# pregnancy (O24) for the antidiabetic drug codes; drug codes of many possible conditions (anticoagulants,
# aspirin, steroids) are not listed.
CONDITIONS_OF_DRUG_CODES: dict[str, tuple[str, ...]] = {
    code: ("E08", "E09", "E10", "E11", "E13", "R73.0", "O24") for code in ("Z79.4", "Z79.84", "Z79.85")
}
# Combination codes whose tabular entry says "use additional code" (or "code also") for a companion the claim
# must carry: the CKD stage of diabetic or hypertensive kidney disease (E08-E13 .22: N18.1-N18.6; I12, I13:
# N18), the type of heart failure of hypertensive heart disease (I11.0, I13.0, I13.2: I50), the infection of
# COPD with an acute lower respiratory infection (J44.0: J09-J22). A line holding the combination code without
# one of its companions ("type 2 diabetes with CKD stage 3a" where no label codes N18.31) goes to a coder:
# `additional_code_missing:<code>`. Each tuple is one companion, any of its prefixes will do.
COMPANIONS_OF_COMBINATION_CODES: dict[str, tuple[tuple[str, ...], ...]] = {
    **{f"{category}.22": (("N18",),) for category in ("E08", "E09", "E10", "E11", "E13")},
    "I11.0": (("I50",),),
    "I12.0": (("N18",),),
    "I12.9": (("N18",),),
    "I13.0": (("I50",), ("N18",)),
    "I13.10": (("N18",),),
    "I13.11": (("N18",),),
    "I13.2": (("I50",), ("N18",)),
    "J44.0": (LOWER_RESPIRATORY_INFECTIONS,),
}
_ICD10CM_PREFIX = re.compile(r"^[A-Z]([0-9]([0-9A-Z](\.[0-9A-Z]{0,4})?)?)?$")


def _as_str_tuple(name: str, values: Any) -> tuple[str, ...]:
    """A YAML/Hydra list (ListConfig, list, tuple) as a tuple of strings, or a clear error."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"RoutingPolicy.{name} must be a list of strings, got {type(values).__name__}")
    out = tuple(values)
    for i, v in enumerate(out):
        if not isinstance(v, str):
            raise ValueError(
                f"RoutingPolicy.{name}[{i}] must be a string, got {type(v).__name__} {v!r} (quote it in YAML)"
            )
    return out


@dataclass(frozen=True)
class RoutingPolicy:
    """Review rules. `min_em_confidence` is separate from `min_confidence` because the E/M score is a
    softmax over ten levels, where 0.5 is a confident answer, while code scores are independent sigmoids."""

    min_confidence: float = 0.7
    min_em_confidence: float = 0.5
    ungrounded: str = "review"
    high_risk_prefixes: tuple[str, ...] = DEFAULT_HIGH_RISK_PREFIXES
    outpatient_high_risk_prefixes: tuple[str, ...] = DEFAULT_OUTPATIENT_HIGH_RISK_PREFIXES
    review_em_codes: tuple[str, ...] = DEFAULT_REVIEW_EM_CODES

    def __post_init__(self) -> None:
        for name in ("min_confidence", "min_em_confidence"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"RoutingPolicy.{name} must be a number from 0 to 1, got {value!r}")
        if self.ungrounded not in UNGROUNDED_ACTIONS:
            raise ValueError(
                f"RoutingPolicy.ungrounded must be one of {', '.join(UNGROUNDED_ACTIONS)}, got {self.ungrounded!r}"
            )
        for name in ("high_risk_prefixes", "outpatient_high_risk_prefixes"):
            prefixes = _as_str_tuple(name, getattr(self, name))
            for i, p in enumerate(prefixes):
                if not _ICD10CM_PREFIX.match(p):
                    raise ValueError(
                        f"RoutingPolicy.{name}[{i}]: {p!r} is not the start of a canonical "
                        "ICD-10-CM code (e.g. 'I21', 'R65.2', 'C')"
                    )
            object.__setattr__(self, name, prefixes)
        em_codes = _as_str_tuple("review_em_codes", self.review_em_codes)
        for i, c in enumerate(em_codes):
            if not is_canonical(CPT, c):
                raise ValueError(
                    f"RoutingPolicy.review_em_codes[{i}]: {c!r} is not a canonical CPT code (e.g. '99215')"
                )
        object.__setattr__(self, "review_em_codes", em_codes)

    def is_high_risk(self, system: str, code: str, setting: str | None = None) -> bool:
        """ICD-10-CM only: HCPCS codes also start with letters (C9xxx are not cancers). An unknown
        setting counts as outpatient, the side that sends more to review."""
        prefixes = self.high_risk_prefixes + (self.outpatient_high_risk_prefixes if setting != "inpatient" else ())
        return system == ICD10CM and any(code.startswith(p) for p in prefixes)


def is_grounded(code: PredictedCode) -> bool:
    """The contract's `grounded`: the coder said so AND there is at least one evidence span."""
    return bool(code.grounded and code.evidence)


def sort_reasons(reasons: Iterable[tuple[str, str, str]]) -> list[str]:
    """(rule, system, detail) triples -> ordered, de-duplicated `rule:detail` strings."""
    system_rank = {s: i for i, s in enumerate(CODE_SYSTEMS)}
    keyed = sorted(
        set(reasons), key=lambda r: (REASON_ORDER.index(r[0]), system_rank.get(r[1], len(system_rank)), r[2])
    )
    return list(dict.fromkeys(f"{rule}:{detail}" for rule, _, detail in keyed))


def apply_routing(
    pred: NotePrediction, policy: RoutingPolicy, setting: str | None = None, patient: PatientFacts | None = None
) -> tuple[tuple[PredictedCode, ...], dict[str, Any]]:
    """(codes that stay in the output, in input order; `{"required": bool, "reasons": [...]}`) for a
    note of `setting` (inpatient, outpatient; None: unknown).

    Ungrounded codes are removed when `policy.ungrounded == "drop"` (and then give no reasons),
    else kept with an `ungrounded:` reason. An E/M level with no score counts as low confidence. A drug
    code kept without any code of the condition its drug treats is routed (`CONDITIONS_OF_DRUG_CODES`), and so is a
    combination code without a companion its tabular entry requires (`COMPANIONS_OF_COMBINATION_CODES`). With the
    `patient`'s facts, each code or E/M level they rule out is routed with its edit named (`codes.age_sex`:
    `sex_conflict:N40.0`, `em_patient_status:99203`); a fact the input does not give fires no edit.
    """
    kept: list[PredictedCode] = []
    reasons: list[tuple[str, str, str]] = []
    for c in pred.codes:
        grounded = is_grounded(c)
        if not grounded and policy.ungrounded == "drop":
            continue
        kept.append(c)
        if c.score < policy.min_confidence and not (grounded and c.stated):
            reasons.append(("low_confidence", c.system, c.code))
        if not grounded:
            reasons.append(("ungrounded", c.system, c.code))
        if policy.is_high_risk(c.system, c.code, setting):
            reasons.append(("high_risk", c.system, c.code))
        if c.system == CPT and c.code in policy.review_em_codes:
            reasons.append(("em_level", c.system, c.code))
    diagnoses = [c.code for c in kept if c.system == ICD10CM]
    for code in diagnoses:
        conditions = CONDITIONS_OF_DRUG_CODES.get(code, ())
        if conditions and not any(d.startswith(conditions) for d in diagnoses):
            reasons.append(("condition_not_coded", ICD10CM, code))
        companions = COMPANIONS_OF_COMBINATION_CODES.get(code, ())
        if any(not any(d.startswith(prefixes) for d in diagnoses) for prefixes in companions):
            reasons.append(("additional_code_missing", ICD10CM, code))
    if pred.em_code is not None:
        if pred.em_score is None or pred.em_score < policy.min_em_confidence:
            reasons.append(("low_confidence", CPT, pred.em_code))
        if pred.em_code in policy.review_em_codes:
            reasons.append(("em_level", CPT, pred.em_code))
    if patient is not None:
        labels = [(c.system, c.code) for c in kept] + ([(CPT, pred.em_code)] if pred.em_code is not None else [])
        reasons += [(edit.rule, edit.system, edit.code) for edit in prediction_edits(labels, patient)]
    ordered = sort_reasons(reasons)
    return tuple(kept), {"required": bool(ordered), "reasons": ordered}
