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
    # the evidence verifier's probability that the quoted text supports the code (None: no verifier ran)
    support: float | None = None
    # guideline rules that added or changed this code (medcoder.inference.guidelines), by rule id
    rules_applied: tuple[str, ...] = ()
    # the note states the code in the code's own words (verifier support at its stated bar): a code the
    # model scored low but the text states plainly is not routed to review for low confidence
    stated: bool = False


@dataclass(frozen=True)
class RuleEvent:
    """One change a guideline rule made to a prediction: which rule, its ICD-10-CM Official Guidelines
    section, and the (system, code) labels it removed and added."""

    rule: str
    section: str
    removed: tuple[tuple[str, str], ...] = ()
    added: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict:
        return {"rule": self.rule, "section": self.section,
                "removed": [code for _, code in self.removed], "added": [code for _, code in self.added]}  # fmt: skip


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
    # hypothetical (or outpatient-uncertain) mentions: not coded (medcoder.inference.grounding.evidence)
    context_blocked: tuple[tuple[str, str], ...] = ()
    # why each of those was blocked, (system, code, status): the status of its mentions that blocked it (negated
    # first, as grounding.context.PRIORITY orders them). Evaluation counts the gold codes per status: data coded
    # mention by mention (CodiEsp codes "HIV negative" as B20) disagrees with the guidelines there
    context_blocked_status: tuple[tuple[str, str, str], ...] = ()
    # of those, the ones blocked as HISTORICAL mentions: (system, code, score, span). "Old MI" is not
    # a current I21.4, but it is I25.2; the guideline layer turns these into history codes, scored `score`:
    # with a verifier, its support for the mention (the model's score is for the current disease)
    historical_mentions: tuple[tuple[str, str, float, Span], ...] = ()
    # in a note that is not inpatient and whose diagnosis was blocked as uncertain ("probable
    # pneumonia"): sign and symptom codes of the label space whose words the verifier finds in a plainly
    # asserting sentence, (system, code, support, span); the guideline layer codes them (Section IV.H)
    documented_signs: tuple[tuple[str, str, float, Span], ...] = ()
    # codes whose documentation is less specific than the code (grounding.specificity), with the code it
    # does support: (system, code, fallback, support, grounded); the guideline layer swaps them (I.B.2)
    specificity_fallbacks: tuple[tuple[str, str, str, float, bool], ...] = ()
    # codes scored above the threshold that the evidence verifier found no support for in the text and
    # that were therefore left out (medcoder.inference.grounding.verifier, rejected_action "drop")
    verifier_rejected: tuple[tuple[str, str], ...] = ()
    # diagnoses the note states in its diagnostic statements that no label codes, as their ICD-10-CM category
    # and the clause stating them ("A: common cold" -> J00): a coder must code them (routed to review), and the
    # guideline layer reads them when it removes integral symptoms (verifier.outside_categories)
    outside_diagnoses: tuple[tuple[str, Span], ...] = ()
    # what the guideline layer changed (medcoder.inference.guidelines), in the order the rules ran
    rules: tuple[RuleEvent, ...] = ()
    # characters the coder read when it had to cut the note (more tokens than its chunks hold);
    # None when it read the whole note. A cut note is routed to review ("truncated:<n>").
    read_chars: int | None = None

    def code_set(self) -> set[tuple[str, str]]:
        return {(c.system, c.code) for c in self.codes}
