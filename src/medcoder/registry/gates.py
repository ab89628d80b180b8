"""Promotion gates: the rules a challenger must pass, on the same evaluation set, to become champion.

A gate is either RELATIVE (compared with the current champion: micro-F1 may not drop by more than
`max_micro_f1_drop`; the ungrounded-code and distractor false-positive rates may not rise by more
than their allowance) or ABSOLUTE (the challenger alone: invalid-code rate, contract violations,
an optional micro-F1 floor). With no champion yet (the first promotion) relative gates do not
apply and the challenger is promoted when the absolute gates pass.

Why these: micro-F1 is the headline accuracy; the ungrounded and distractor rates are how a coder
creates compliance risk (codes without support, codes for negated or family-history mentions), so by
default they may not get worse at all, whatever the F1 gain; an invalid or contract-breaking output
means the package itself is broken, so those are absolute zeros.

A metric that is NaN (undefined on the evaluation set) or missing FAILS its gate: an undefined
number must never let a model through. Comparisons allow `FLOAT_TOLERANCE` so that float noise in
equal rates (0.1 + 0.2 vs 0.3) does not refuse a model. The values live in
`configs/registry/default.yaml`; `load_gates` reads that file (or any other) and checks every key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from medcoder.export.fast_path_tags import FAST_PATH_AGREEMENT

FLOAT_TOLERANCE = 1e-9
TABLE_COLUMNS: tuple[str, ...] = ("gate", "metric", "challenger", "champion", "change", "limit", "passed")


# Gates that `None` switches off: the optional floor, and the distractor gate for evaluation sets
# that carry no distractor mentions (CodiEsp), where the rate is undefined and would refuse every model.
OPTIONAL_GATES: tuple[str, ...] = ("min_micro_f1", "max_distractor_fp_rate_increase", "min_fast_path_agreement")
# The challenger version's tag (medcoder.export.fast_packaging) that `min_fast_path_agreement` reads: the share of
# notes on which its packaged ONNX encoder returned the float path's code set. A version without the tag has no
# fast path, and the gate does not apply to it.
# How much gold an evaluation set needs before any gate is applied (medcoder.registry.eval_guard).
COUNT_FIELDS: tuple[str, ...] = ("min_labelled_notes", "min_gold_codes")


@dataclass(frozen=True)
class Gates:
    """Gate limits (rates and F1 are fractions in [0, 1]; `None` switches an OPTIONAL_GATES gate off)
    and what an evaluation set must hold to decide them (COUNT_FIELDS, counts >= 1)."""

    max_micro_f1_drop: float = 0.01
    max_ungrounded_rate_increase: float = 0.0
    max_distractor_fp_rate_increase: float | None = 0.0
    max_invalid_code_rate: float = 0.0
    max_contract_violation_rate: float = 0.0
    min_micro_f1: float | None = None
    min_fast_path_agreement: float | None = 0.99
    min_labelled_notes: int = 10
    min_gold_codes: int = 20

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in COUNT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"gates.{f.name} must be a whole number of at least 1, got {value!r}")
                continue
            if value is None and f.name in OPTIONAL_GATES:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"gates.{f.name} must be a number from 0 to 1, got {value!r}")
            object.__setattr__(self, f.name, float(value))

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass(frozen=True)
class GateDecision:
    """The outcome: `passed`, one reason per failed gate (or why it passed), and the full table.

    `table` has one row per gate: gate, metric, challenger, champion (NaN without one), change
    (challenger - champion), limit, passed.
    """

    passed: bool
    reasons: list[str]
    table: pd.DataFrame

    def summary(self) -> str:
        """One line for a tag or a log: the decision and its reasons."""
        return ("passed: " if self.passed else "refused: ") + "; ".join(self.reasons)


def load_gates(path: str | Path) -> Gates:
    """Read gate limits from a YAML file (`configs/registry/default.yaml` layout).

    Unknown keys are an error naming the file and the key (a misspelt gate would otherwise be
    silently ignored, leaving the default in force). `_target_` (for Hydra) is accepted.
    """
    from omegaconf import OmegaConf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: gates file not found")
    raw = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: must be a YAML mapping of gate name -> limit")
    raw = {k: v for k, v in raw.items() if k != "_target_"}
    known = {f.name for f in fields(Gates)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown gate(s) {', '.join(unknown)}; known gates: {', '.join(sorted(known))}")
    try:
        return Gates(**raw)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _value(metrics: Mapping[str, float] | None, key: str) -> float:
    if metrics is None or key not in metrics or metrics[key] is None:
        return math.nan
    return float(metrics[key])


def check_gates(
    challenger_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    gates: Gates,
) -> GateDecision:
    """Apply `gates` to a challenger's metrics (and the champion's, measured on the same set).

    Metric keys are those of `contract_eval` (`micro_f1`, `ungrounded_code_rate`,
    `distractor_false_positive_rate`, `invalid_code_rate`, `contract_violation_rate`).
    `champion_metrics=None` means there is no champion: relative gates are reported as not
    applicable and do not block. `fast_path_agreement` among the challenger's metrics (its version tag,
    `fast_path_metrics`) is held to `min_fast_path_agreement`; without it that gate does not apply.
    """
    rows: list[dict[str, Any]] = []
    reasons: list[str] = []

    def relative(gate: str, metric: str, limit: float, higher_is_better: bool) -> None:
        new, old = _value(challenger_metrics, metric), _value(champion_metrics, metric)
        if champion_metrics is None:
            rows.append(
                {
                    "gate": gate,
                    "metric": metric,
                    "challenger": new,
                    "champion": math.nan,
                    "change": math.nan,
                    "limit": limit,
                    "passed": None,
                }
            )
            return
        change = new - old
        worsening = -change if higher_is_better else change
        ok = math.isfinite(worsening) and worsening <= limit + FLOAT_TOLERANCE
        rows.append(
            {
                "gate": gate,
                "metric": metric,
                "challenger": new,
                "champion": old,
                "change": change,
                "limit": limit,
                "passed": ok,
            }
        )
        if not ok:
            if not math.isfinite(worsening):
                reasons.append(f"{metric} is undefined (challenger {new}, champion {old})")
            else:
                direction = "dropped" if higher_is_better else "rose"
                reasons.append(
                    f"{metric} {direction} by {abs(change):.4f} ({old:.4f} -> {new:.4f}); {gate} is {limit:g}"
                )

    def absolute(gate: str, metric: str, limit: float, at_most: bool) -> None:
        new = _value(challenger_metrics, metric)
        ok = math.isfinite(new) and (new <= limit + FLOAT_TOLERANCE if at_most else new >= limit - FLOAT_TOLERANCE)
        rows.append(
            {
                "gate": gate,
                "metric": metric,
                "challenger": new,
                "champion": _value(champion_metrics, metric),
                "change": math.nan,
                "limit": limit,
                "passed": ok,
            }
        )
        if not ok:
            bound = "above the maximum" if at_most else "below the minimum"
            shown = f"{new:.4f}" if math.isfinite(new) else "undefined"
            reasons.append(f"{metric} is {shown}, {bound} {limit:g} ({gate})")

    relative("max_micro_f1_drop", "micro_f1", gates.max_micro_f1_drop, higher_is_better=True)
    relative(
        "max_ungrounded_rate_increase",
        "ungrounded_code_rate",
        gates.max_ungrounded_rate_increase,
        higher_is_better=False,
    )
    if gates.max_distractor_fp_rate_increase is not None:
        relative(
            "max_distractor_fp_rate_increase",
            "distractor_false_positive_rate",
            gates.max_distractor_fp_rate_increase,
            higher_is_better=False,
        )
    absolute("max_invalid_code_rate", "invalid_code_rate", gates.max_invalid_code_rate, at_most=True)
    absolute("max_contract_violation_rate", "contract_violation_rate", gates.max_contract_violation_rate, at_most=True)
    if gates.min_micro_f1 is not None:
        absolute("min_micro_f1", "micro_f1", gates.min_micro_f1, at_most=False)
    if gates.min_fast_path_agreement is not None and FAST_PATH_AGREEMENT in challenger_metrics:
        absolute("min_fast_path_agreement", FAST_PATH_AGREEMENT, gates.min_fast_path_agreement, at_most=False)

    passed = not reasons
    if passed:
        reasons = (
            ["first promotion (no champion): every absolute gate passed"]
            if champion_metrics is None
            else ["every gate passed against the champion"]
        )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return GateDecision(passed=passed, reasons=reasons, table=table)


def fast_path_metrics(version_tags: Mapping[str, str]) -> dict[str, float]:
    """`{fast_path_agreement: value}` from a version's tags when it packages a fast path, else empty; a tag
    that is not a number reads as NaN, which fails the gate."""
    if FAST_PATH_AGREEMENT not in version_tags:
        return {}
    try:
        return {FAST_PATH_AGREEMENT: float(version_tags[FAST_PATH_AGREEMENT])}
    except ValueError:
        return {FAST_PATH_AGREEMENT: math.nan}
