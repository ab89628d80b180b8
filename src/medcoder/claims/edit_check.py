"""Deterministic edits a claim breaks before it is sent, each with the rule named: NCCI procedure-to-procedure
pairs and MUE unit limits from the files a user supplies (`claims.edits`), and the age and sex edits of the code
sets (`codes.age_sex`, the rules review routing and the simulated payer apply too). They come before the learnt
denial risk (`claims.risk`): a line that breaks an edit is denied whatever its history, and the edit says why."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from medcoder.claims.edits import MueEdits, PtpEdits
from medcoder.claims.submission import Claim
from medcoder.codes.age_sex import line_edits


@dataclass(frozen=True)
class EditHit:
    """One line that breaks one edit: which line, which rule, and what about it (codes and counts only)."""

    line_control: str
    procedure: str
    rule: str  # "NCCI PTP", "MUE" or an age or sex edit of codes.age_sex ("sex_conflict", "preventive_age", ...)
    detail: str


def edit_hits(claim: Claim, ptp: PtpEdits | None = None, mue: MueEdits | None = None) -> list[EditHit]:
    """The edits `claim` breaks on its service dates: a PTP pair's column-2 line unless a modifier the edit
    allows is on it; units of a code on one date above its MUE (per line for adjudication indicator 1, summed
    over the date's lines for 2 and 3); a procedure or diagnosis the patient's age or sex rules out (the first
    such edit of the line, as a payer reports one reason a line is denied for)."""
    hits: list[EditHit] = []
    for line in claim.lines:
        age_sex = line_edits(line.procedure, line.diagnoses, claim.age, claim.sex)
        if age_sex:
            hits.append(EditHit(line.line_control, line.procedure, age_sex[0].rule, age_sex[0].detail))
        for other in claim.lines:
            if other is line or ptp is None or other.service_date != line.service_date:
                continue
            edit = ptp.conflict(line.procedure, other.procedure, line.service_date)
            if edit is not None and edit.column_2 == line.procedure and not edit.bypassed_by(line.modifiers):
                detail = f"column 2 of {edit.column_1} (modifier indicator {edit.modifier_indicator})"
                hits.append(EditHit(line.line_control, line.procedure, "NCCI PTP", detail))
        limit = mue.limit(line.procedure, line.service_date) if mue is not None else None
        if limit is None:
            continue
        same_day = [x for x in claim.lines if x.procedure == line.procedure and x.service_date == line.service_date]
        units = line.units if limit.adjudication_indicator == 1 else sum((x.units for x in same_day), Decimal(0))
        if units > limit.max_units and (limit.adjudication_indicator == 1 or line is same_day[-1]):
            detail = f"{units} units, limit {limit.max_units} (adjudication indicator {limit.adjudication_indicator})"
            hits.append(EditHit(line.line_control, line.procedure, "MUE", detail))
    return hits
