"""How a coder goes wrong in ways that matter for billing: invented, unsupported or distracted codes,
too many codes, and scores that do not mean what they say.

- invalid_code_rate: share of predicted codes that are not valid billable codes of the configured
  code set (checked by the `is_valid(system, code)` callable the caller passes, e.g.
  `medcoder.codes.is_valid_code`). Any value above 0 means the output filter is broken.
- ungrounded_code_rate: share of predicted codes with `grounded=False` (no evidence, or evidence on
  a negated/family/historical/hypothetical mention).
- distractor_false_positive_rate: the ICD-10-CM guidelines say negated, family-history, historical
  and hypothetical mentions are not coded as current conditions, and neither are uncertain
  diagnoses in OUTPATIENT notes (inpatient uncertain diagnoses at discharge are coded as if
  established, so they are not distractors; nor are uncertain mentions in notes of unknown
  setting). Among (note, code) pairs where the code is mentioned with such a status and is NOT a
  gold code of that note, the share the coder predicted. Per-status counts come with it; a pair
  mentioned with two statuses counts once overall and once under each status.
- over_generation_ratio: predicted codes / gold codes over the split (1.0 = as many as the coders).
- expected_calibration_error: see its docstring.

Codes are compared as (system, code) where both sides have a system; mentions carry only a code
string, so distractor pairs compare code strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.metrics._common import align_predictions, check_label_arrays, safe_div

CodeValidator = Callable[[str, str], bool]

ALWAYS_DISTRACTOR: tuple[str, ...] = ("negated", "family", "historical", "hypothetical")
OUTPATIENT_ONLY_DISTRACTOR: tuple[str, ...] = ("uncertain",)
DISTRACTOR_STATUSES: tuple[str, ...] = ALWAYS_DISTRACTOR + OUTPATIENT_ONLY_DISTRACTOR
DEFAULT_N_BINS = 10


def invalid_code_rate(predictions: Sequence[NotePrediction], is_valid: CodeValidator) -> float:
    """Share of all predicted codes for which `is_valid(system, code)` is False (0.0 if none predicted)."""
    codes = [c for p in predictions for c in p.codes]
    return safe_div(sum(not is_valid(c.system, c.code) for c in codes), len(codes))


def ungrounded_code_rate(predictions: Sequence[NotePrediction]) -> float:
    """Share of all predicted codes marked `grounded=False` (0.0 if none predicted)."""
    codes = [c for p in predictions for c in p.codes]
    return safe_div(sum(not c.grounded for c in codes), len(codes))


def distractor_statuses(record: NoteRecord) -> dict[str, set[str]]:
    """For one note: code -> the distractor statuses it is mentioned with, gold codes excluded."""
    gold = {c.code for c in record.codes}
    out: dict[str, set[str]] = {}
    for m in record.mentions:
        is_distractor = m.status in ALWAYS_DISTRACTOR or (
            m.status in OUTPATIENT_ONLY_DISTRACTOR and record.setting == "outpatient"
        )
        if is_distractor and m.code not in gold:
            out.setdefault(m.code, set()).add(m.status)
    return out


def distractor_metrics(
    records: Sequence[NoteRecord],
    predictions: Sequence[NotePrediction],
    codes_in_scope: set[str] | None = None,
) -> dict[str, float]:
    """Distractor false-positive rate overall and per status, with the pair and false-positive counts.

    `codes_in_scope` (e.g. the label space's codes) drops distractors the coder can never predict,
    which would otherwise dilute the rate. Keys: distractor_pairs, distractor_false_positives,
    distractor_false_positive_rate, and the same three with a `_<status>` suffix.
    """
    aligned = align_predictions(records, predictions)
    pairs = {status: 0 for status in ("all",) + DISTRACTOR_STATUSES}
    hits = dict.fromkeys(pairs, 0)
    for record, prediction in zip(records, aligned):
        predicted = {c.code for c in prediction.codes}
        for code, statuses in distractor_statuses(record).items():
            if codes_in_scope is not None and code not in codes_in_scope:
                continue
            hit = code in predicted
            for key in ("all", *statuses):
                pairs[key] += 1
                hits[key] += hit
    out: dict[str, float] = {}
    for key in pairs:
        suffix = "" if key == "all" else f"_{key}"
        out[f"distractor_pairs{suffix}"] = float(pairs[key])
        out[f"distractor_false_positives{suffix}"] = float(hits[key])
        out[f"distractor_false_positive_rate{suffix}"] = safe_div(hits[key], pairs[key])
    return out


def over_generation_ratio(
    records: Sequence[NoteRecord],
    predictions: Sequence[NotePrediction],
    labels: set[Label] | None = None,
) -> float:
    """Predicted codes / gold codes over the split; `labels` restricts both sides to a label space.

    NaN when the split has no gold codes but the coder predicted some (the ratio is undefined);
    0.0 when neither side has codes.
    """
    aligned = align_predictions(records, predictions)
    n_gold = sum(1 for r in records for c in r.codes if labels is None or (c.system, c.code) in labels)
    n_pred = sum(1 for p in aligned for c in p.codes if labels is None or (c.system, c.code) in labels)
    if n_gold == 0:
        return 0.0 if n_pred == 0 else float("nan")
    return n_pred / n_gold


# ---------------------------------------------------------------- calibration
def calibration_bins(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> pd.DataFrame:
    """Reliability table over all (note, label) pairs: equal-width score bins on [0, 1].

    Bins are right-closed, (lo, hi], except the first, [0, hi]: the same assignment as
    `sklearn.calibration.calibration_curve(strategy="uniform")`. Columns: lo, hi, count,
    mean_score, positive_rate (NaN for an empty bin).
    """
    y_true, y_score = check_label_arrays(y_true, y_score)
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    scores, truth = y_score.ravel(), y_true.ravel().astype(np.float64)
    bin_of = np.searchsorted(edges[1:-1], scores, side="left")
    count = np.bincount(bin_of, minlength=n_bins)
    score_sum = np.bincount(bin_of, weights=scores, minlength=n_bins)
    true_sum = np.bincount(bin_of, weights=truth, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.DataFrame(
            {
                "lo": edges[:-1],
                "hi": edges[1:],
                "count": count,
                "mean_score": np.where(count > 0, score_sum / count, np.nan),
                "positive_rate": np.where(count > 0, true_sum / count, np.nan),
            }
        )


def expected_calibration_error(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> float:
    """ECE = sum over bins of (bin share of pairs) * |positive rate - mean score|.

    Each (note, label) score is read as the probability that the label is gold, so all pairs are
    pooled. n_bins defaults to 10 equal-width bins (`calibration_bins`). Most pairs are true
    negatives scored near 0, so the first bin carries most of the weight: compare ECE between models
    on the same split, and read the reliability plot for the high-score bins. NaN with no scores.
    """
    table = calibration_bins(y_true, y_score, n_bins)
    total = table["count"].sum()
    if total == 0:
        return float("nan")
    filled = table[table["count"] > 0]
    gap = (filled["positive_rate"] - filled["mean_score"]).abs()
    return float((filled["count"] / total * gap).sum())
