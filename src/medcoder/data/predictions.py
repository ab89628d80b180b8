"""What a coder (model or baseline) predicts for one note, before it is rendered to the contract.

Metrics, grounding and the packaged model all exchange these, so evaluation code never depends on
which model produced them. `evidence` holds character spans into the note text.
"""

from __future__ import annotations

from dataclasses import dataclass

from medcoder.data.schema import Span


@dataclass(frozen=True)
class PredictedCode:
    """One code the coder assigns, with its score and the spans it points at.

    `grounded` is True only when at least one evidence span exists and none of the evidence falls on
    a negated, family, historical or hypothetical mention (docs/ARCHITECTURE.md, prediction contract).
    """

    system: str
    code: str
    score: float
    evidence: tuple[Span, ...] = ()
    grounded: bool = False


@dataclass(frozen=True)
class NotePrediction:
    """All codes predicted for one note (above the decision threshold) and its E/M level, if any."""

    id: str
    codes: tuple[PredictedCode, ...] = ()
    em_code: str | None = None
    em_score: float | None = None
    # where the E/M level's attention pool looked (whole-word windows, best first); () without an E/M code
    em_evidence: tuple[Span, ...] = ()
    # codes that scored above the threshold but whose evidence was all negated, family, historical,
    # hypothetical (or outpatient-uncertain) mentions: not coded (medcoder.grounding.evidence)
    context_blocked: tuple[tuple[str, str], ...] = ()

    def code_set(self) -> set[tuple[str, str]]:
        return {(c.system, c.code) for c in self.codes}
