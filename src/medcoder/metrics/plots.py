"""Evaluation plots for MLflow artifacts, model cards and experiment records.

Each function returns a `matplotlib.figure.Figure` built directly (not through pyplot): no global
figure state, nothing to close, safe in servers and parallel jobs, and no display needed (saving
uses the Agg renderer). Save with `fig.savefig(path)` or `mlflow.log_figure(fig, "name.png")`.
The numbers drawn come from the same functions that produce the metrics, so plots and tables agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve

from medcoder.metrics._common import check_label_arrays
from medcoder.metrics.classification import DEFAULT_THRESHOLD_GRID, micro_f1_by_threshold
from medcoder.metrics.hallucination import DEFAULT_N_BINS, calibration_bins


def _figure(width: float = 5.5, height: float = 4.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def plot_precision_recall(y_true: np.ndarray, y_score: np.ndarray) -> Figure:
    """Micro-averaged precision-recall curve over all (note, label) pairs, with its average precision."""
    y_true, y_score = check_label_arrays(y_true, y_score)
    fig, ax = _figure()
    flat_true, flat_score = y_true.ravel(), y_score.ravel()
    if flat_true.any():
        precision, recall, _ = precision_recall_curve(flat_true, flat_score)
        ap = average_precision_score(flat_true, flat_score)
        ax.step(recall, precision, where="post", label=f"micro AP = {ap:.3f}")
        ax.legend(loc="lower left")
    else:
        ax.text(0.5, 0.5, "no gold labels", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall (micro)")
    return fig


def plot_calibration(y_true: np.ndarray, y_score: np.ndarray, n_bins: int = DEFAULT_N_BINS) -> Figure:
    """Reliability diagram: positive rate against mean score per equal-width bin (same bins as ECE),
    point size by the number of pairs in the bin; the diagonal is perfect calibration."""
    table = calibration_bins(y_true, y_score, n_bins).query("count > 0")
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    if len(table):
        sizes = 20 + 180 * np.sqrt(table["count"] / table["count"].max())
        ax.plot(table["mean_score"], table["positive_rate"], color="C0")
        ax.scatter(table["mean_score"], table["positive_rate"], s=sizes, color="C0", label="model")
    ax.set(xlabel="mean predicted score", ylabel="fraction gold", xlim=(0, 1), ylim=(0, 1), title="Calibration")
    ax.legend(loc="upper left")
    return fig


def plot_f1_vs_threshold(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float, grid: np.ndarray | None = None
) -> Figure:
    """Micro-F1 across decision thresholds, with the chosen threshold marked."""
    grid = DEFAULT_THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    f1 = micro_f1_by_threshold(y_true, y_score, grid)
    fig, ax = _figure()
    ax.plot(grid, f1, color="C0")
    ax.axvline(threshold, color="C3", linestyle="--", label=f"threshold = {threshold:.2f}")
    ax.set(xlabel="threshold", ylabel="micro-F1", xlim=(0, 1), ylim=(0, 1), title="Micro-F1 vs threshold")
    ax.legend(loc="upper right")
    return fig


def plot_f1_by_frequency(by_frequency: pd.DataFrame) -> Figure:
    """Micro- and macro-F1 per training-frequency bucket (a `breakdowns.f1_by_frequency` table),
    with the number of codes under each bucket name."""
    fig, ax = _figure()
    x = np.arange(len(by_frequency))
    ax.bar(x - 0.2, by_frequency["micro_f1"], width=0.4, label="micro-F1")
    ax.bar(x + 0.2, by_frequency["macro_f1"].fillna(0.0), width=0.4, label="macro-F1 (codes present)")
    ax.set_xticks(x, [f"{b}\n({n} codes)" for b, n in zip(by_frequency["bucket"], by_frequency["n_codes"])])
    ax.set(xlabel="training notes per code", ylabel="F1", ylim=(0, 1), title="F1 by code frequency")
    ax.legend(loc="upper left")
    return fig


def plot_per_code_f1(per_code: pd.DataFrame, top_n: int = 30) -> Figure:
    """Horizontal bars of F1 for the `top_n` codes with the most gold notes in the split (a
    `breakdowns.per_code_table`), most frequent on top, support in the label."""
    shown = per_code[per_code["support"] > 0].sort_values(["support", "code"], ascending=[False, True]).head(top_n)
    fig, ax = _figure(width=6.0, height=max(2.5, 0.25 * len(shown) + 1.0))
    y = np.arange(len(shown))[::-1]
    ax.barh(y, shown["f1"], color="C0")
    ax.set_yticks(y, [f"{s} {c} (n={n})" for s, c, n in zip(shown["system"], shown["code"], shown["support"])])
    ax.set(xlabel="F1", xlim=(0, 1), title=f"F1 of the {len(shown)} most frequent codes")
    return fig
