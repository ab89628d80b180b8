"""Small helpers every metric module shares: input checks, safe ratios, prediction alignment.

Two rules for values that cannot be computed, used everywhere in `medcoder.metrics`:
- a *rate* whose denominator is empty (precision with nothing predicted, share of zero predicted
  codes that are invalid) is 0.0, as sklearn's `zero_division=0`; a model that predicts nothing
  must not look perfect;
- a quantity that is *undefined on the data* (AUC without both classes, average precision or
  R-precision with no gold code at all) is NaN, so that it can never pass a registry gate by accident.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord


def safe_div(numerator: float, denominator: float) -> float:
    """numerator / denominator as a Python float, 0.0 when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else 0.0


def prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts (F1 = 2tp / (2tp + fp + fn), 0.0 when all are 0)."""
    return safe_div(tp, tp + fp), safe_div(tp, tp + fn), safe_div(2 * tp, 2 * tp + fp + fn)


def check_label_arrays(y_true: np.ndarray, y_score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate the (n_notes, n_labels) gold matrix and score matrix; return them as int8 / float64.

    Raises ValueError saying which argument is wrong, so a caller who swapped or mis-shaped arrays
    sees it at once instead of getting a silently wrong metric.
    """
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2:
        raise ValueError(f"y_true must be 2-D (n_notes, n_labels), got shape {y_true.shape}")
    if y_score.shape != y_true.shape:
        raise ValueError(f"y_score shape {y_score.shape} does not match y_true shape {y_true.shape}")
    if y_true.size and not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    if y_score.size:
        if not np.isfinite(y_score).all():
            raise ValueError(f"y_score has {int((~np.isfinite(y_score)).sum())} NaN or infinite values")
        if y_score.min() < 0.0 or y_score.max() > 1.0:
            raise ValueError(
                f"y_score must be probabilities in [0, 1], got range [{y_score.min():.4g}, {y_score.max():.4g}]"
                " (apply a sigmoid to logits first)"
            )
    return y_true.astype(np.int8), y_score


def check_threshold(threshold: float) -> float:
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def align_predictions(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> list[NotePrediction]:
    """Return the predictions in record order, or raise if any note is missing, extra or duplicated.

    A metric silently computed over a subset of notes is the classic evaluation bug, so the two
    lists must cover exactly the same note ids. Messages name ids (never text), at most five.
    """
    by_id: dict[str, NotePrediction] = {}
    duplicates: list[str] = []
    for p in predictions:
        if p.id in by_id:
            duplicates.append(p.id)
        by_id[p.id] = p
    if duplicates:
        raise ValueError(f"predictions contain duplicate note ids: {_some(duplicates)}")
    record_ids = [r.id for r in records]
    missing = [i for i in record_ids if i not in by_id]
    extra = sorted(set(by_id) - set(record_ids))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} record(s) have no prediction ({_some(missing)})")
        if extra:
            parts.append(f"{len(extra)} prediction(s) match no record ({_some(extra)})")
        raise ValueError("predictions do not match records: " + "; ".join(parts))
    return [by_id[i] for i in record_ids]


def _some(ids: Sequence[str], n: int = 5) -> str:
    shown = ", ".join(ids[:n])
    return shown + (f", ... (+{len(ids) - n})" if len(ids) > n else "")
