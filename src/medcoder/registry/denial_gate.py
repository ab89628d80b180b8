"""The promotion gate of the denial-feedback retraining (configs/registry/denial_feedback.yaml): a
challenger retrained on denials and corrections replaces the champion only if, on the same held-out
months adjudicated by the same payers, its coding-caused denial rate is lower with a paired-bootstrap
interval that excludes 0, its micro-F1 is no more than half a point lower, its recall and codes per
encounter are not lower (a model must not avoid denials by under-coding), and it breaks no more
deterministic edits. When the challenger comes with the denial-risk history the loop learnt (its claims
routed to a coder before submission), its coding-denied claims must also not outnumber those of the champion's
codes routed by the same history: the retrained weights must not be worse than routing alone. A missing or
undefined number fails its gate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from medcoder.registry.gates import FLOAT_TOLERANCE, TABLE_COLUMNS, GateDecision

# gated metrics that count claims (shown as whole numbers); the others are rates and scores
COUNT_METRICS = frozenset({"claims/coding_denied"})


def shown(metric: str, value: float, sign: bool = False) -> str:
    """A gate number as the record prints it: counts whole, rates and scores to 4 places."""
    return format(value, ("+" if sign else "") + (".0f" if metric in COUNT_METRICS else ".4f"))


@dataclass(frozen=True)
class DenialGate:
    """Limits of the denial-feedback gate (module docstring); rates and F1 are fractions."""

    confidence: float = 0.95
    bootstrap_samples: int = 2000
    max_micro_f1_drop: float = 0.005
    max_recall_drop: float = 0.0
    max_codes_per_encounter_drop: float = 0.0
    max_new_edit_violations: int = 0
    # the retrained weights themselves: the challenger's coding-denied claims minus those of the champion's codes
    # routed by the same history (the pre-submission check), so routing cannot carry a worse model through
    max_retraining_denied_claims: int = 0

    def __post_init__(self) -> None:
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"denial gate: confidence must be in [0.5, 1), got {self.confidence!r}")
        if self.bootstrap_samples < 100:
            raise ValueError(f"denial gate: bootstrap_samples must be at least 100, got {self.bootstrap_samples!r}")

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def load_denial_gate(path: str | Path) -> DenialGate:
    """The gate from a YAML file; unknown keys are refused with the file's name."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    data.pop("_target_", None)
    known = {f.name for f in fields(DenialGate)}
    if unknown := sorted(set(data) - known):
        raise ValueError(f"{path}: unknown denial-gate key(s) {unknown}; expected {sorted(known)}")
    return DenialGate(**data)


def paired_bootstrap(
    champion: Sequence[float | None], challenger: Sequence[float | None], samples: int, confidence: float, seed: int = 0
) -> tuple[float, float, float]:
    """(difference, low, high) of the mean of `challenger` minus the mean of `champion`, each over the
    encounters it has a value for (a claim; None: no claim), resampling encounters with replacement."""
    a = np.array([np.nan if v is None else v for v in champion], dtype=float)
    b = np.array([np.nan if v is None else v for v in challenger], dtype=float)
    if len(a) != len(b) or not len(a):
        raise ValueError("paired bootstrap needs two equally long, non-empty sequences over the same encounters")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(a), size=(samples, len(a)))
    diffs = np.nanmean(b[draws], axis=1) - np.nanmean(a[draws], axis=1)
    tail = (1 - confidence) / 2
    return (
        float(np.nanmean(b) - np.nanmean(a)),
        float(np.nanquantile(diffs, tail)),
        float(np.nanquantile(diffs, 1 - tail)),
    )


def check_denial_gate(
    champion: Mapping[str, float],
    challenger: Mapping[str, float],
    interval: tuple[float, float, float],
    gate: DenialGate,
    history_only: Mapping[str, float] | None = None,
) -> GateDecision:
    """Every gate with its numbers; `interval` is (difference, low, high) of the coding-denial rate.
    `history_only`: the champion's codes routed by the challenger's denial-risk history; with it, the
    retraining's own share of the change is gated too (`max_retraining_denied_claims`): in claims, not in a rate,
    since the two codings of the same encounters may bill a different number of claims (a dropped or added
    procedure), and one claim fewer with the same denials is not a higher denial count."""
    rows = []

    def row(name: str, metric: str, change: float, limit: float, passed: bool) -> None:
        ok = passed and math.isfinite(change)
        rows.append((name, metric, challenger.get(metric, math.nan), champion.get(metric, math.nan), change, limit, ok))

    diff, low, high = interval
    row("coding denial rate lower (interval below 0)", "claims/coding_denial_rate", diff, 0.0, high < 0)
    for name, metric, limit in (
        ("micro-F1 drop", "micro_f1", gate.max_micro_f1_drop),
        ("recall drop", "recall", gate.max_recall_drop),
        ("codes per encounter drop", "codes_per_encounter", gate.max_codes_per_encounter_drop),
    ):
        change = challenger.get(metric, math.nan) - champion.get(metric, math.nan)
        row(name, metric, change, -limit, change >= -limit - FLOAT_TOLERANCE)
    new = challenger.get("edit_violations", math.nan) - champion.get("edit_violations", math.nan)
    row(
        "new edit violations", "edit_violations", new, gate.max_new_edit_violations, new <= gate.max_new_edit_violations
    )
    if history_only is not None:
        metric = "claims/coding_denied"
        ours, theirs = challenger.get(metric, math.nan), history_only.get(metric, math.nan)
        change, limit = ours - theirs, gate.max_retraining_denied_claims
        ok = math.isfinite(change) and change <= limit
        rows.append(("retraining adds no coding-denied claims (champion column: same history)", metric, ours, theirs,
                     change, limit, ok))  # fmt: skip
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    failed = table[~table["passed"]]
    reasons = [
        f"{g}: change {shown(m, c, sign=True)}, limit {shown(m, lim, sign=True)}"
        for g, m, c, lim in zip(failed["gate"], failed["metric"], failed["change"], failed["limit"])
    ]
    interval_text = f"{gate.confidence:.0%} interval {low:+.4f} to {high:+.4f}"
    if not reasons:
        reasons = [f"coding denial rate {diff:+.4f} ({interval_text}); every gate passed"]
    elif not rows[0][-1]:
        reasons[0] += f" ({interval_text})"
    return GateDecision(passed=failed.empty, reasons=reasons, table=table)
