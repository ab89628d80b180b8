"""The neural coder's code scores averaged with a TF-IDF model's, as one model.

Why: on CodiEsp the bag-of-words model and the fine-tuned encoder make different mistakes (exact
rare words against paraphrase), and a weighted mean of their probabilities scores better than either
(experiments/*codiesp*). The blend changes only the scores: the neural label attention still decides
where each code's evidence is, so grounding, routing and the contract work as for the neural coder.

    blended = (1 - weight) * neural + weight * lexical

`weight` and the decision threshold are chosen together on val (micro-F1, the protocol's metric),
never on test. The lexical part is a `LinearTfidfScorer` over hashed n-grams: arrays only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from medcoder.data.labels import LabelSpace
from medcoder.data.schema import NoteRecord
from medcoder.metrics import tune_threshold
from medcoder.metrics.classification import micro_f1_by_threshold
from medcoder.models.lexical import LinearTfidfScorer

DEFAULT_WEIGHT_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.0, 1.0001, 0.1), 2))


@dataclass(frozen=True)
class ScoreBlend:
    """`weight` of the lexical model's probabilities in the blended score (0 = neural only)."""

    lexical: LinearTfidfScorer
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"blend weight must be in [0, 1], got {self.weight}")

    def mix(self, neural: np.ndarray, lexical: np.ndarray) -> np.ndarray:
        """Blend two probability arrays of the same shape."""
        if neural.shape != lexical.shape:
            raise ValueError(f"neural scores {neural.shape} and lexical scores {lexical.shape} differ in shape")
        return ((1.0 - self.weight) * neural + self.weight * lexical).astype(np.float32)

    def lexical_scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.lexical.predict_scores(texts)


def tune_blend(
    y_val: np.ndarray,
    neural_val: np.ndarray,
    lexical_val: np.ndarray,
    weights: Sequence[float] = DEFAULT_WEIGHT_GRID,
    threshold_grid: np.ndarray | None = None,
) -> tuple[float, float, pd.DataFrame]:
    """(weight, threshold, table): the pair with the best val micro-F1; ties go to the smaller weight
    (the neural coder's own scores). The table has one row per weight: its threshold and val micro-F1."""
    if not len(weights):
        raise ValueError("tune_blend: the weight grid is empty")
    rows, best = [], None
    for w in sorted(float(w) for w in weights):
        scores = (1.0 - w) * neural_val + w * lexical_val
        threshold = tune_threshold(y_val, scores, threshold_grid)
        f1 = float(micro_f1_by_threshold(y_val, scores, np.asarray([threshold]))[0])
        rows.append({"weight": w, "threshold": threshold, "val_micro_f1": f1})
        if best is None or f1 > best[2]:
            best = (w, threshold, f1)
    assert best is not None
    table = pd.DataFrame(rows)
    table["selected"] = table["weight"] == best[0]
    return best[0], best[1], table


def fit_blend(
    train: Sequence[NoteRecord],
    val: Sequence[NoteRecord],
    label_space: LabelSpace,
    neural_val: np.ndarray,
    *,
    c_grid: Sequence[float] = (1.0, 10.0, 100.0, 1000.0),
    class_weight: str | None = "balanced",
    min_df: int = 2,
    weights: Sequence[float] = DEFAULT_WEIGHT_GRID,
    threshold_grid: np.ndarray | None = None,
) -> tuple[ScoreBlend, dict[str, pd.DataFrame]]:
    """Fit the hashed TF-IDF model on train (C chosen on val as `medcoder baseline` does), then the
    blend weight on val against the neural coder's val scores `neural_val` (n_val, L).

    Returns the blend and its selection tables: "C" (one row per C) and "weight" (one per weight).
    """
    from medcoder.metrics.classification import DEFAULT_THRESHOLD_GRID
    from medcoder.models.tfidf_baseline import select_model

    grid = DEFAULT_THRESHOLD_GRID if threshold_grid is None else np.asarray(threshold_grid, dtype=np.float64)
    model, _, lexical_val, c_table = select_model(train, val, label_space, c_grid=c_grid, class_weight=class_weight,
                                                  threshold_grid=grid, features="hashed", min_df=min_df)  # fmt: skip
    weight, _, w_table = tune_blend(label_space.encode_many(val), neural_val, lexical_val, weights, grid)
    return ScoreBlend(model.linear_scorer(), weight), {"C": c_table, "weight": w_table}


def blend_fitter(
    settings: Mapping[str, Any] | None,
    train: Sequence[NoteRecord],
    val: Sequence[NoteRecord],
    label_space: LabelSpace,
    threshold_grid: np.ndarray,
) -> Callable[[np.ndarray], tuple[ScoreBlend, dict[str, pd.DataFrame]]] | None:
    """The `blend` settings (configs/blend/: enabled, C, class_weight, min_df) as the function
    `evaluate_trained_coder` calls on the neural coder's val scores; None when the blend is off. One
    place, so medcoder-train and medcoder-eval fit the same blend from the same data."""
    if not settings or not settings.get("enabled"):
        return None

    def fit(neural_val: np.ndarray) -> tuple[ScoreBlend, dict[str, pd.DataFrame]]:
        return fit_blend(
            train, val, label_space, neural_val, c_grid=[float(c) for c in settings["C"]],
            class_weight=settings.get("class_weight"), min_df=int(settings["min_df"]), threshold_grid=threshold_grid,
        )  # fmt: skip

    return fit
