"""Pairing what was billed (837 `Claim`) with what the payer did (835 `ClaimRemittance`), claim by claim
and line by line, so a denial lands on the code that was billed for it.

Claims pair on CLP01 = CLM01. Lines pair on REF*6R, the line control number the 837 sent and the 835
echoes; a remittance line without one falls back to the submitted line at the same position billing the
same procedure (SVC01, or SVC06 when the payer adjudicated another code). Whatever does not pair is
reported by position, never dropped: remittance claims and lines with no submitted counterpart, submitted
lines the payer did not report, and submitted claims with no remittance yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medcoder.claims.remittance import ClaimRemittance, RemittanceLine
from medcoder.claims.submission import Claim, ClaimLine


@dataclass(frozen=True)
class JoinedLine:
    """A submitted line and the payer's line for it; `by` says how they paired ("line_control", "position")."""

    submitted: ClaimLine
    remitted: RemittanceLine
    by: str


@dataclass(frozen=True)
class JoinedClaim:
    """A submitted claim and one remittance for it (a claim can have several: a reversal, a re-adjudication).

    Positions are 0-based indices into `claim.lines` and `remittance.lines`."""

    claim: Claim
    remittance: ClaimRemittance
    lines: tuple[JoinedLine, ...]
    unmatched_remittance_lines: tuple[int, ...]  # the payer's lines no submitted line pairs with
    unremitted_lines: tuple[int, ...]  # submitted lines the payer did not report


@dataclass
class JoinReport:
    """Pairs, and everything left unpaired as 0-based indices into the lists given to `join_remittance`."""

    joined: list[JoinedClaim] = field(default_factory=list)
    unmatched_remittances: list[int] = field(default_factory=list)  # CLP01 matches no submitted claim
    unremitted_claims: list[int] = field(default_factory=list)  # no remittance yet

    @property
    def counts(self) -> dict[str, int]:
        """How many of each, for a log line (positions and counts only: no claim ids)."""
        return {
            "joined_claims": len(self.joined),
            "joined_lines": sum(len(j.lines) for j in self.joined),
            "unmatched_remittances": len(self.unmatched_remittances),
            "unmatched_remittance_lines": sum(len(j.unmatched_remittance_lines) for j in self.joined),
            "unremitted_claims": len(self.unremitted_claims),
            "unremitted_lines": sum(len(j.unremitted_lines) for j in self.joined),
        }


def _join_lines(claim: Claim, remittance: ClaimRemittance) -> JoinedClaim:
    by_control = {line.line_control: k for k, line in enumerate(claim.lines)}
    used: set[int] = set()
    pairs: list[JoinedLine] = []
    unmatched: list[int] = []
    for position, remitted in enumerate(remittance.lines):
        if remitted.line_control is not None:
            k, by = by_control.get(remitted.line_control), "line_control"
        else:
            billed = remitted.submitted_procedure or remitted.procedure
            same = position < len(claim.lines) and claim.lines[position].procedure == billed
            k, by = (position if same else None), "position"
        if k is None or k in used:
            unmatched.append(position)
            continue
        used.add(k)
        pairs.append(JoinedLine(claim.lines[k], remitted, by))
    unremitted = tuple(k for k in range(len(claim.lines)) if k not in used)
    return JoinedClaim(claim, remittance, tuple(pairs), tuple(unmatched), unremitted)


def join_remittance(claims: list[Claim], remittances: list[ClaimRemittance]) -> JoinReport:
    """Each remittance with the submitted claim whose CLM01 it echoes, and their lines paired.

    Claim ids must be unique among `claims` (a corrected claim reuses its CLM01: join each submission
    batch with its own remittances), else a ValueError names the two positions."""
    by_id: dict[str, int] = {}
    for k, claim in enumerate(claims):
        if claim.claim_id in by_id:
            raise ValueError(f"submitted claims at positions {by_id[claim.claim_id]} and {k} share a claim id")
        by_id[claim.claim_id] = k
    report = JoinReport()
    remitted: set[int] = set()
    for position, remittance in enumerate(remittances):
        k = by_id.get(remittance.claim_id)
        if k is None:
            report.unmatched_remittances.append(position)
            continue
        remitted.add(k)
        report.joined.append(_join_lines(claims[k], remittance))
    report.unremitted_claims = [k for k in range(len(claims)) if k not in remitted]
    return report
