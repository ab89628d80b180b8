"""Denial risk before submission, learnt from remittance history: smoothed coding-denial rates of a
payer's lines by what is known before a claim is sent (the line's code with another code on the claim,
with the patient's age band, with the patient's sex and a diagnosis, with each diagnosis on the claim,
with the coder's own confidence in the line's code, and alone), each with the counts behind it, so a
reviewer reads why a line is risky.

The coder's confidence (the score the model gave the line's code, or its E/M level) is known before
submission and tells apart some of the denials no history of codes can predict: a payer's medical review
picks lines at random and denies those the record does not support, and a low-scored line is more often one
the record does not support (most wrong visit levels are still scored high: those stay unpredictable). Its
pattern is the payer, the code (all office and preventive visits as one, "visit": the level is what is
uncertain) and a band of the score (`SCORE_BANDS`), and only level-of-service and diagnosis-support (CARC
150, 50, 11) denials count for it.

Only coding-caused denials count (`claims.carc`): eligibility or authorisation denials say nothing about
the codes. A line's risk is the highest smoothed rate among its specific patterns seen at least
`min_count` times (a code pair, an age band, a sex), and for diagnoses the lowest among the claim's
diagnoses (one diagnosis that supports the service is enough); the code's own rate is the fallback when
no specific pattern has history. A code pair is read from its first past line (`min_pair_count`) and smoothed
towards one half, not towards the payer's rate: a payer's pair edit denies every line it applies to or none, so
the share of a payer's lines it denies says nothing about whether this pair is edited, and a pair billed once
a quarter, denied for the pair (CARC 236), must be caught the next time (1 of 1 denied: 0.67; 0 of 1: 0.33).
Features come from the `Claim` and the coder's scores alone: `fit` reads remittances only for the outcome,
and `line_risks` takes nothing adjudicated (tests/test_claims_payer_risk.py checks both).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medcoder.claims.edit_check import edit_hits
from medcoder.claims.edits import MueEdits, PtpEdits
from medcoder.claims.remittance import ClaimRemittance
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.codes.em import VISIT_EM_CODES

AGE_BANDS = ((0, 0), (1, 4), (5, 11), (12, 17), (18, 39), (40, 64), (65, 200))
# lower edges of the coder's confidence bands, highest first: a score of 0.62 is in band "0.50-0.70"
SCORE_BANDS: tuple[float, ...] = (0.9, 0.7, 0.5, 0.0)
VISIT_FAMILY = "visit"  # the score pattern's code for every office or preventive visit level
# which denials are evidence about which pattern: a code-pair denial (236) says nothing about the patient's
# age, so it does not raise the age pattern's rate, and an age denial not the pair's; the code alone counts all
PATTERN_CATEGORIES: dict[str, frozenset[str] | None] = {
    "pair": frozenset({"code_pair", "bundled", "modifier"}),
    "age": frozenset({"age"}),
    "sex": frozenset({"sex"}),
    "dx": frozenset({"diagnosis_support"}),
    "score": frozenset({"level_of_service", "diagnosis_support"}),
    "code": None,
}


def age_band(age: int | None) -> str:
    if age is None:
        return "unknown"
    return next((f"{lo}-{hi}" for lo, hi in AGE_BANDS if lo <= age <= hi), "unknown")


def score_band(score: float) -> str:
    """The confidence band of a score, as the pattern names it: "0.90-1.00" for 0.93, "0.00-0.50" for 0.31."""
    k = next(k for k, edge in enumerate(SCORE_BANDS) if score >= edge)
    return f"{SCORE_BANDS[k]:.2f}-{(SCORE_BANDS[k - 1] if k else 1.0):.2f}"


def _specific_keys(claim: Claim, line: ClaimLine, scores: Mapping[str, float] | None) -> list[tuple[str, ...]]:
    """The patterns of a line whose history decides its risk ("max" kind: any one of them can deny it).
    `scores`: the coder's score per billed code, when the claim's codes came from a model."""
    keys: list[tuple[str, ...]] = [("pair", claim.payer, line.procedure, other.procedure, ",".join(line.modifiers))
                                   for other in claim.lines if other is not line]  # fmt: skip
    keys.append(("age", claim.payer, line.procedure, age_band(claim.age)))
    keys += [("sex", claim.payer, dx[:3], claim.sex or "U") for dx in line.diagnoses]
    if scores is not None and line.procedure in scores:
        family = VISIT_FAMILY if line.procedure in VISIT_EM_CODES else line.procedure
        keys.append(("score", claim.payer, family, score_band(scores[line.procedure])))
    return keys


def _diagnosis_keys(claim: Claim, line: ClaimLine) -> list[tuple[str, ...]]:
    """Each diagnosis on the claim with the line's code ("min" kind: one that supports the service suffices)."""
    return [("dx", claim.payer, line.procedure, dx[:3]) for dx in dict.fromkeys(claim.diagnoses)]


@dataclass(frozen=True)
class LineRisk:
    """A line's denial risk, the pattern it comes from, and how many past lines showed that pattern."""

    line_control: str
    procedure: str
    risk: float
    reason: str  # e.g. "history: pair medicare 90471 with G0008: 9 of 10 lines denied (CARC 236)"
    denied: int
    seen: int
    kind: str  # what decided it: "edit" (a user's NCCI/MUE file), a history pattern ("pair", "age", "sex", "dx",
    # "code"), or "none"; a coder reviewing a "pair" line checks whether the services were distinct (a modifier)


@dataclass(frozen=True)
class _Evidence:
    """A pattern and its history: how many past lines showed it, how many of those its kind of denial hit."""

    pattern: str
    denied: int
    seen: int
    carcs: tuple[str, ...]

    @property
    def kind(self) -> str:
        """The pattern's kind ("pair", "age", "sex", "dx", "score", "code")."""
        return self.pattern.split(" ", 1)[0]


@dataclass
class DenialRiskModel:
    """Counts of past lines and their coding denials per pattern, and the payer's base rate (the prior)."""

    min_count: int = 5
    min_pair_count: int = 1
    prior_weight: float = 2.0
    pair_prior: float = 0.5  # a pair edit is all or nothing: the prior of a pair's rate (module docstring)
    covering_rate: float = 0.1  # a diagnosis under which a code was (almost) never denied supports it
    seen: Counter[tuple[str, ...]] = field(default_factory=Counter)
    denied: Counter[tuple[str, ...]] = field(default_factory=Counter)
    carcs: dict[tuple[str, ...], Counter[str]] = field(default_factory=dict)
    payer_lines: Counter[str] = field(default_factory=Counter)
    payer_denied: Counter[str] = field(default_factory=Counter)
    # (payer, code) -> per past line: the claim's diagnosis categories, and the diagnosis-support CARCs that hit it
    dx_history: dict[tuple[str, str], list[tuple[frozenset[str], tuple[str, ...]]]] = field(default_factory=dict)

    def fit(
        self, claims: Sequence[Claim], remittances: Iterable[ClaimRemittance],
        scores: Mapping[str, Mapping[str, float]] | None = None,
    ) -> DenialRiskModel:  # fmt: skip
        """Learn from adjudicated history: each submitted line, joined to its remittance line on its control
        number, is one observation of each of its patterns; denied when a coding-caused CARC of the pattern's
        kind (PATTERN_CATEGORIES) denied it. `scores`: claim id -> the coder's score per billed code, as it was
        when the claim went out (no scores: no confidence patterns)."""
        by_id = {c.claim_id: c for c in claims}
        scores = scores or {}
        for remittance in remittances:
            claim = by_id.get(remittance.claim_id)
            if claim is None:
                continue
            outcome = {rl.line_control: [a for a in rl.adjustments if a.is_coding_denial] for rl in remittance.lines}
            for line in claim.lines:
                if line.line_control not in outcome:  # denied as a whole at claim level, or not adjudicated
                    continue
                denials = outcome[line.line_control]
                self.payer_lines[claim.payer] += 1
                self.payer_denied[claim.payer] += bool(denials)
                keys = [
                    *_specific_keys(claim, line, scores.get(claim.claim_id)),
                    *_diagnosis_keys(claim, line),
                    ("code", claim.payer, line.procedure),
                ]
                for key in keys:
                    categories = PATTERN_CATEGORIES[key[0]]
                    carcs = [a.carc for a in denials if categories is None or a.category in categories]
                    self.seen[key] += 1
                    self.denied[key] += bool(carcs)
                    self.carcs.setdefault(key, Counter()).update(carcs)
                support = tuple(a.carc for a in denials if a.category in PATTERN_CATEGORIES["dx"])
                dx = frozenset(d[:3] for d in claim.diagnoses)
                self.dx_history.setdefault((claim.payer, line.procedure), []).append((dx, support))
        return self

    def _minimum(self, key: tuple[str, ...]) -> int:
        """Past lines a specific pattern needs before its own rate is read (module docstring)."""
        return self.min_pair_count if key[0] == "pair" else self.min_count

    def _rate(self, payer: str, evidence: _Evidence) -> float:
        """The pattern's denial rate smoothed towards its prior: the payer's rate, or for a code pair `pair_prior`."""
        if evidence.kind == "pair":
            prior = self.pair_prior
        else:
            prior = (self.payer_denied[payer] + 1) / (self.payer_lines[payer] + 2)
        return (evidence.denied + self.prior_weight * prior) / (evidence.seen + self.prior_weight)

    def _evidence(self, key: tuple[str, ...]) -> _Evidence:
        carcs = tuple(c for c, _ in self.carcs.get(key, Counter()).most_common(2))
        return _Evidence(" ".join(part for part in key if part), self.denied[key], self.seen[key], carcs)

    def _diagnosis_evidence(self, claim: Claim, line: ClaimLine) -> _Evidence | None:
        """Whether the claim's diagnoses support the line's code, from history: the diagnoses under which the
        code was (almost) never denied for support support it; a claim with none of them is judged by the
        past lines that had none of them either ("medicare 82962 without E11, E10: 20 of 22 denied")."""
        keys = [k for k in _diagnosis_keys(claim, line) if self.seen[k] >= self.min_count]
        history = self.dx_history.get((claim.payer, line.procedure), [])
        if not any(carcs for _, carcs in history):
            return None
        covering = {
            key[3]
            for key in self.seen
            if key[:3] == ("dx", claim.payer, line.procedure)
            and self.seen[key] >= self.min_count
            and self._rate(claim.payer, self._evidence(key)) <= self.covering_rate
        }
        supporting = [k for k in keys if k[3] in covering]
        if supporting:
            return self._evidence(min(supporting, key=lambda k: self.denied[k] / self.seen[k]))
        without = [carcs for dx, carcs in history if not dx & covering]
        if len(without) < self.min_count:
            return None
        named = ", ".join(sorted(covering)) or "any diagnosis seen paid"
        pattern = f"dx {claim.payer} {line.procedure} without {named}"
        carcs = tuple(c for c, _ in Counter(c for hit in without for c in hit).most_common(2))
        return _Evidence(pattern, sum(bool(hit) for hit in without), len(without), carcs)

    def line_risks(self, claim: Claim, scores: Mapping[str, float] | None = None) -> list[LineRisk]:
        """Each line's risk from history (module docstring), from what is known before submission: the claim,
        and the coder's score per billed code when a model coded it."""
        out = []
        for line in claim.lines:
            keys = _specific_keys(claim, line, scores)
            evidence = [self._evidence(k) for k in keys if self.seen[k] >= self._minimum(k)]
            if (dx := self._diagnosis_evidence(claim, line)) is not None:
                evidence.append(dx)
            if not evidence:
                evidence = [self._evidence(("code", claim.payer, line.procedure))]
            best = max(evidence, key=lambda e: self._rate(claim.payer, e))
            reason = f"history: {best.pattern}: {best.denied} of {best.seen} lines denied" + (
                f" (CARC {', '.join(best.carcs)})" if best.carcs else ""
            )
            risk = self._rate(claim.payer, best)
            out.append(LineRisk(line.line_control, line.procedure, risk, reason, best.denied, best.seen, best.kind))
        return out


def pre_submission_risks(
    claim: Claim, model: DenialRiskModel | None, ptp: PtpEdits | None = None, mue: MueEdits | None = None,
    scores: Mapping[str, float] | None = None,
) -> list[LineRisk]:  # fmt: skip
    """Each line's risk before the claim is sent: a line that breaks a deterministic edit (NCCI PTP, MUE) is
    certain to be denied and says which edit (`claims.edit_check`), ahead of what history says; the others get
    the learnt risk (no model: none), with the coder's `scores` when it has them."""
    hits = {h.line_control: h for h in edit_hits(claim, ptp, mue)}
    learnt = {r.line_control: r for r in model.line_risks(claim, scores)} if model is not None else {}
    out = []
    for line in claim.lines:
        hit = hits.get(line.line_control)
        if hit is not None:
            reason = f"edit: {hit.rule}: {hit.detail}"
            out.append(LineRisk(line.line_control, line.procedure, 1.0, reason, 0, 0, "edit"))
        elif line.line_control in learnt:
            out.append(learnt[line.line_control])
        else:
            out.append(LineRisk(line.line_control, line.procedure, 0.0, "no history", 0, 0, "none"))
    return out


RISK_FORMAT = "medcoder-denial-risk/1"


def save_risk_model(model: DenialRiskModel, path: str | Path) -> Path:
    """The model's counts as JSON (codes, payers and counts only: no patient data is in them)."""
    payload = {
        "format": RISK_FORMAT, "min_count": model.min_count, "min_pair_count": model.min_pair_count,
        "prior_weight": model.prior_weight, "pair_prior": model.pair_prior,
        "covering_rate": model.covering_rate,
        "patterns": [[list(k), model.seen[k], model.denied[k], dict(model.carcs.get(k, {}))] for k in model.seen],
        "payers": {p: [model.payer_lines[p], model.payer_denied[p]] for p in model.payer_lines},
        "dx_history": [[list(k), [[sorted(dx), list(carcs)] for dx, carcs in v]] for k, v in model.dx_history.items()],
    }  # fmt: skip
    out = Path(path)
    out.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    return out


def load_risk_model(path: str | Path) -> DenialRiskModel:
    """A model saved by `save_risk_model`; another file is an error naming it."""
    source = Path(path)
    try:
        payload = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{source}: cannot be read as a denial-risk model ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != RISK_FORMAT:
        raise ValueError(f"{source}: not a denial-risk model (format is not {RISK_FORMAT!r})")
    model = DenialRiskModel(
        min_count=payload["min_count"], min_pair_count=payload.get("min_pair_count", payload["min_count"]),
        prior_weight=payload["prior_weight"], covering_rate=payload["covering_rate"],
        pair_prior=payload.get("pair_prior", DenialRiskModel.pair_prior),
    )  # fmt: skip
    for key, seen, denied, carcs in payload["patterns"]:
        model.seen[tuple(key)], model.denied[tuple(key)] = seen, denied
        model.carcs[tuple(key)] = Counter(carcs)
    for payer, (lines, denied) in payload["payers"].items():
        model.payer_lines[payer], model.payer_denied[payer] = lines, denied
    for key, rows in payload["dx_history"]:
        model.dx_history[(key[0], key[1])] = [(frozenset(dx), tuple(carcs)) for dx, carcs in rows]
    return model
