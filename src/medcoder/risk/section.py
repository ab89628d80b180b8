"""A prediction's `risk_adjustment` section: the CMS-HCCs of its ICD-10-CM codes with the evidence behind each,
the risk score, and the change the suggestions make to the codes already submitted for the patient.

Three code sets are scored by hccinfhir (`risk.scoring`), each after our rules (`risk.rules`):
- the suggested codes: the prediction's ICD-10-CM codes (`risk_score`, `hccs`, `excluded`);
- the baseline: the input's `submitted_codes` (none: the demographic score alone);
- both together (`combined_score`); `delta` = combined - baseline is what the suggestions would add.
An HCC on HHS-OIG's high-risk list routes the note to review (`hcc_high_risk:<HCC>`), whether it counts (a
listed code is grounded and stated by the verifier) or was left out; a coder checks it against the record
(OIG: a hospital stay for an acute stroke or MI, an anticoagulant for an embolism, treatment for a cancer).
Without an age and a sex of F or M nothing can be scored: the section then says what is `missing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hccinfhir import RAFResult

from medcoder.codes.bmi import indicates_pregnancy
from medcoder.codes.formats import ICD10CM
from medcoder.inference.contract import routed_hccs
from medcoder.inference.inputs import InputNote
from medcoder.inference.schema import DEFAULT_HCC_MODEL, HCC_MODELS
from medcoder.risk.rules import Exclusion, bmi_exclusions, high_risk_condition, unstated_high_risk
from medcoder.risk.scoring import Enrollment, raf, superseded

SCORED_SEXES = ("F", "M")  # CMS-HCC has no other: "U" cannot be scored


@dataclass(frozen=True)
class RiskSettings:
    """The HCC model, and the verifier's stated bar (`VerifierWeights.stated_bar`): a code whose grounded
    support reaches it is stated; None (no verifier, or none fitted with that bar): no code is."""

    model: str = DEFAULT_HCC_MODEL
    stated_support: float | None = None

    def __post_init__(self) -> None:
        if self.model not in HCC_MODELS:
            raise ValueError(f"--hcc-model must be one of {', '.join(HCC_MODELS)}, got {self.model!r}")


def is_stated(code: dict[str, Any], stated_support: float | None) -> bool:
    """A contract code the note states: grounded, with support at the verifier's stated bar."""
    support = code.get("support")
    return bool(code["grounded"] and stated_support is not None and support is not None and support >= stated_support)


def _kept(codes: Iterable[str], excluded: Iterable[Exclusion]) -> list[str]:
    out = {e.code for e in excluded}
    return [c for c in codes if c not in out]


def _hcc_codes(result: RAFResult, codes: Iterable[str]) -> dict[str, list[str]]:
    """HCC -> the dotted codes hccinfhir put in it (after its edits, before its hierarchies)."""
    spelled = {code.replace(".", ""): code for code in codes}
    return {hcc: sorted(spelled[dx] for dx in dxs) for hcc, dxs in result.cc_to_dx.items()}


def _hcc_entries(result: RAFResult, suggested: dict[str, dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """hccinfhir's HCCs, lowest number first, each with its codes and theirs of the HCCs it wins over in the
    hierarchy (each such code under the first HCC that wins over its own)."""
    by_hcc = _hcc_codes(result, suggested)
    details = {d.hcc: d for d in result.hcc_details}
    dropped = set(by_hcc) - set(result.hcc_list)
    entries = []
    for hcc in sorted(result.hcc_list, key=int):
        members = [hcc, *sorted(dropped & superseded(hcc, model), key=int)]
        dropped -= set(members)
        codes = [{"code": code, "hcc": member, "high_risk": high_risk_condition(code, member, model) is not None,
                  "grounded": suggested[code]["grounded"], "support": suggested[code].get("support"),
                  "evidence": suggested[code]["evidence"]}
                 for member in members for code in by_hcc[member]]  # fmt: skip
        entries.append({"hcc": hcc, "label": details[hcc].label, "coefficient": details[hcc].coefficient,
                        "codes": codes})  # fmt: skip
    return entries


def risk_adjustment(
    codes: Sequence[dict[str, Any]], enrollment: Enrollment, submitted: Sequence[str], pregnant: bool,
    settings: RiskSettings,
) -> dict[str, Any]:  # fmt: skip
    """The section for a prediction's `codes` (contract code objects) and the patient's `submitted` codes."""
    model, age = settings.model, enrollment.age
    suggested = {c["code"]: c for c in codes if c["system"] == ICD10CM}
    pregnant = pregnant or indicates_pregnancy([*suggested, *submitted])
    excluded = bmi_exclusions(list(suggested), age, pregnant)
    stated = {code for code, c in suggested.items() if is_stated(c, settings.stated_support)}
    candidates = _kept(suggested, excluded)
    excluded += unstated_high_risk(_hcc_codes(raf(candidates, enrollment, model), candidates), stated, model)
    kept = _kept(suggested, excluded)
    result = raf(kept, enrollment, model)
    baseline_excluded = bmi_exclusions(list(submitted), age, pregnant)
    baseline_kept = _kept(submitted, baseline_excluded)
    baseline = raf(baseline_kept, enrollment, model)
    combined = raf([*baseline_kept, *kept], enrollment, model)
    return {
        "model": HCC_MODELS[model],
        "demographics": {
            "age": age,
            "sex": enrollment.sex,
            "dual_status": enrollment.dual_status,
            "new_enrollee": enrollment.new_enrollee,
            "institutional": enrollment.institutional,
            "pregnant": pregnant,
        },  # fmt: skip
        "hccs": _hcc_entries(result, suggested, model),
        "excluded": [e.to_dict() for e in excluded],
        "demographic_score": result.risk_score_demographics,
        "risk_score": result.risk_score,
        "baseline": {
            "codes": list(submitted),
            "excluded": [e.to_dict() for e in baseline_excluded],
            "hccs": sorted(baseline.hcc_list, key=int),
            "risk_score": baseline.risk_score,
        },  # fmt: skip
        "combined_score": combined.risk_score,
        "delta": combined.risk_score - baseline.risk_score,
        "added_hccs": sorted(set(combined.hcc_list) - set(baseline.hcc_list), key=int),
    }


def with_risk_adjustment(prediction: dict[str, Any], note: InputNote, settings: RiskSettings) -> dict[str, Any]:
    """The prediction with its `risk_adjustment` section and an `hcc_high_risk:<HCC>` review reason per high-risk
    HCC; an error entry unchanged. Runs after every other step that adds review reasons (its rule is the last)."""
    if "error" in prediction:
        return prediction
    missing = [name for name, ok in (("age", note.age is not None), ("sex", note.sex in SCORED_SEXES)) if not ok]
    if missing:
        return {**prediction, "risk_adjustment": {"model": HCC_MODELS[settings.model], "missing": missing}}
    enrollment = Enrollment(note.age, note.sex, note.dual_status, bool(note.new_enrollee), bool(note.institutional))
    section = risk_adjustment(prediction["codes"], enrollment, note.submitted_codes or (), bool(note.pregnant),
                              settings)  # fmt: skip
    out = {**prediction, "risk_adjustment": section}
    flagged = routed_hccs(section)
    if flagged:
        reasons = [*prediction["review"]["reasons"], *(f"hcc_high_risk:{hcc}" for hcc in flagged)]
        out["review"] = {"required": True, "reasons": reasons}
    return out
