"""A prediction's claim checked before submission: the note's codes billed to its payer, each line's denial
risk (the user's edits first, then the learnt history: `claims.risk`) written into the prediction
(`denial_risk`, docs/schemas/prediction.schema.json), and a line at or above the flag routed to review
(`denial_risk:<code>`), so a claim the payer would likely deny goes to a coder before it goes out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from medcoder.claims.edits import MueEdits, PtpEdits
from medcoder.claims.risk import DenialRiskModel, pre_submission_risks
from medcoder.claims.simulate import billed_claim
from medcoder.claims.submission import Claim
from medcoder.codes.formats import ICD10CM
from medcoder.inference.inputs import InputNote

RISK_FLAG = 0.5  # a line whose denial risk reaches this is routed to review before submission


@dataclass(frozen=True)
class ClaimCheck:
    """What the claim check reads: the payers' history, the user's edit files, and the flag."""

    model: DenialRiskModel | None
    ptp: PtpEdits | None = None
    mue: MueEdits | None = None
    flag: float = RISK_FLAG


def claim_of(prediction: dict[str, Any], note: InputNote) -> Claim | None:
    """The claim a practice would file for the prediction (`simulate.billed_claim`; the E/M level is a line
    too); None without a payer or a line to bill. The date of service is the note's `encounter_date`, else
    today's."""
    if not note.payer:
        return None
    diagnoses = [c["code"] for c in prediction["codes"] if c["system"] == ICD10CM]
    billed = [c["code"] for c in prediction["codes"] if c["system"] != ICD10CM]
    if prediction.get("em"):
        billed.append(prediction["em"]["code"])
    day = (note.encounter_date or date.today().isoformat()).replace("-", "")
    return billed_claim(note.id, note.payer, note.setting, note.age, note.sex, day, diagnoses, billed, note.id)


def billed_scores(prediction: dict[str, Any]) -> dict[str, float]:
    """The model's score for each code of the prediction and for its E/M level: what the history's confidence
    patterns read (`claims.risk`)."""
    scores = {c["code"]: float(c["score"]) for c in prediction["codes"]}
    if prediction.get("em"):
        scores[prediction["em"]["code"]] = float(prediction["em"]["score"])
    return scores


def with_denial_risk(prediction: dict[str, Any], note: InputNote, check: ClaimCheck) -> dict[str, Any]:
    """The prediction with its claim's `denial_risk` and, for each flagged line, a `denial_risk:<code>` review
    reason; unchanged when the note has no payer or nothing to bill, or the line is an error entry."""
    claim = None if "error" in prediction else claim_of(prediction, note)
    if claim is None:
        return prediction
    risks = pre_submission_risks(claim, check.model, check.ptp, check.mue, billed_scores(prediction))
    lines = [{"code": r.procedure, "risk": round(r.risk, 4), "reason": r.reason, "denied": r.denied, "seen": r.seen}
             for r in risks]  # fmt: skip
    out = {
        **prediction,
        "denial_risk": {"payer": note.payer, "claim_risk": max(x["risk"] for x in lines), "lines": lines},
    }
    flagged = sorted({x["code"] for x in lines if x["risk"] >= check.flag})
    if flagged:
        reasons = [*prediction["review"]["reasons"], *(f"denial_risk:{code}" for code in flagged)]
        out["review"] = {"required": True, "reasons": reasons}
    return out
