"""Evaluation plots: each returns a Figure that renders to PNG and draws the numbers the metrics compute."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from medcoder.data.labels import LabelSpace
from medcoder.metrics.breakdowns import f1_by_frequency, per_code_table
from medcoder.metrics.classification import DEFAULT_THRESHOLD_GRID, micro_f1_by_threshold
from medcoder.metrics.hallucination import calibration_bins
from medcoder.metrics.plots import (
    plot_calibration,
    plot_f1_by_frequency,
    plot_f1_vs_threshold,
    plot_per_code_f1,
    plot_precision_recall,
)

RNG = np.random.default_rng(0)
Y = (RNG.random((30, 5)) < 0.3).astype(int)
S = np.clip(0.5 * Y + 0.5 * RNG.random((30, 5)), 0, 1)
LABELS = LabelSpace(tuple(("ICD-10-CM", c) for c in ("I10", "E11.9", "J45.909", "R05.9", "N18.3")))
TRAIN = {label: n for label, n in zip(LABELS.labels, (300, 60, 20, 5, 1))}


def png_bytes(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def test_every_plot_renders_to_png():
    per_code = per_code_table(Y, S, 0.4, LABELS, TRAIN)
    figures = [
        plot_precision_recall(Y, S),
        plot_calibration(Y, S),
        plot_f1_vs_threshold(Y, S, threshold=0.4),
        plot_f1_by_frequency(f1_by_frequency(per_code)),
        plot_per_code_f1(per_code),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert png_bytes(fig).startswith(b"\x89PNG")


def test_f1_vs_threshold_draws_the_curve_and_marks_the_threshold():
    fig = plot_f1_vs_threshold(Y, S, threshold=0.37)
    ax = fig.axes[0]
    curve, marker = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(curve.get_xdata(), DEFAULT_THRESHOLD_GRID)
    np.testing.assert_allclose(curve.get_ydata(), micro_f1_by_threshold(Y, S))
    assert list(marker.get_xdata()) == [0.37, 0.37]
    assert "0.37" in ax.get_legend().get_texts()[0].get_text()


def test_calibration_plot_draws_the_ece_bins():
    ax = plot_calibration(Y, S).axes[0]
    table = calibration_bins(Y, S).query("count > 0")
    model_line = ax.lines[1]
    np.testing.assert_allclose(model_line.get_xdata(), table["mean_score"])
    np.testing.assert_allclose(model_line.get_ydata(), table["positive_rate"])


def test_per_code_plot_shows_most_frequent_codes_first():
    per_code = per_code_table(Y, S, 0.4, LABELS, TRAIN)
    ax = plot_per_code_f1(per_code, top_n=2).axes[0]
    top_to_bottom = [t.get_text() for _, t in sorted(zip(ax.get_yticks(), ax.get_yticklabels()), key=lambda p: -p[0])]
    top2 = per_code[per_code["support"] > 0].sort_values(["support", "code"], ascending=[False, True]).head(2)
    expected = [f"ICD-10-CM {c} (n={n})" for c, n in zip(top2["code"], top2["support"])]
    assert top_to_bottom == expected
    assert len(ax.patches) == 2


def test_precision_recall_plot_without_gold_labels_does_not_crash():
    fig = plot_precision_recall(np.zeros((2, 3), dtype=int), np.full((2, 3), 0.5))
    assert png_bytes(fig)


@pytest.mark.parametrize("n_bins", [5, 15])
def test_calibration_plot_accepts_bin_count(n_bins):
    ax = plot_calibration(Y, S, n_bins=n_bins).axes[0]
    assert len(ax.lines[1].get_xdata()) == int((calibration_bins(Y, S, n_bins)["count"] > 0).sum())
