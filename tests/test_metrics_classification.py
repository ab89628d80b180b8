"""Note-level classification metrics: hand-worked cases, edge cases, and agreement with sklearn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    label_ranking_average_precision_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from medcoder.metrics.classification import (
    DEFAULT_THRESHOLD_GRID,
    binarize,
    classification_metrics,
    micro_f1_by_threshold,
    tune_threshold,
)

# 3 notes x 4 codes. Column 3 has no gold positive in this split.
Y = np.array(
    [
        [1, 0, 1, 0],
        [0, 1, 0, 0],
        [1, 1, 0, 0],
    ]
)
S = np.array(
    [
        [0.9, 0.2, 0.4, 0.7],  # predicted @0.5: codes 0, 3   -> tp code0, fp code3, fn code2
        [0.1, 0.8, 0.3, 0.2],  # predicted: code 1           -> tp code1
        [0.6, 0.4, 0.55, 0.1],  # predicted: codes 0, 2      -> tp code0, fp code2, fn code1
    ]
)


def random_case(seed: int, n: int = 40, n_labels: int = 12):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, n_labels)) < 0.25).astype(int)
    y[:, -1] = 0  # one code absent from the split
    y[0] = 0  # one note without gold codes
    s = np.clip(0.5 * y + 0.6 * rng.random((n, n_labels)), 0, 1)  # informative, distinct scores
    return y, s


def test_micro_and_macro_by_hand():
    m = classification_metrics(Y, S, threshold=0.5)
    # tp = 3 (n1 code0, n2 code1, n3 code0), fp = 2 (n1 code3, n3 code2), fn = 2 (n1 code2, n3 code1)
    assert m["micro_precision"] == pytest.approx(3 / 5)
    assert m["micro_recall"] == pytest.approx(3 / 5)
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 2))
    # per present code (0, 1, 2; code 3 has no gold and is left out of macro):
    #   code0: tp2 fp0 fn0 -> P1 R1 F1=1;  code1: tp1 fp0 fn1 -> P1 R.5 F1=2/3;  code2: tp0 fp1 fn1 -> 0 0 0
    assert m["macro_precision"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["macro_recall"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    # no note has exactly its gold set predicted except n2
    assert m["exact_match"] == pytest.approx(1 / 3)


def test_ranking_metrics_by_hand():
    m = classification_metrics(Y, S, threshold=0.5)
    # rankings: n1 [c0 .9, c3 .7, c2 .4, c1 .2] gold {0,2}; n2 [c1, c2, c3, c0] gold {1};
    #           n3 [c0 .6, c2 .55, c1 .4, c3 .1] gold {0,1}
    # P@5 with 4 labels: every gold code is in the top 5, divided by 5: (2/5 + 1/5 + 2/5) / 3
    assert m["precision_at_5"] == pytest.approx((2 / 5 + 1 / 5 + 2 / 5) / 3)
    assert m["precision_at_8"] == pytest.approx((2 / 8 + 1 / 8 + 2 / 8) / 3)
    assert m["recall_at_10"] == pytest.approx(1.0)
    # R-precision: n1 top2 {0,3} -> 1/2; n2 top1 {1} -> 1; n3 top2 {0,2} -> 1/2
    assert m["r_precision"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    # AP: n1 hits at ranks 1,3 -> (1/1 + 2/3)/2; n2 rank 1 -> 1; n3 ranks 1,3 -> (1 + 2/3)/2
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + 1 + (1 + 2 / 3) / 2) / 3)


def test_precision_and_recall_at_k_match_sort_based_definition_for_distinct_scores():
    y, s = random_case(0, n=30, n_labels=20)
    m = classification_metrics(y, s, threshold=0.5)
    rows = [i for i in range(len(y)) if y[i].sum() > 0]
    order = {i: np.argsort(-s[i]) for i in rows}
    for k in (5, 8, 15):
        expected = np.mean([y[i][order[i][:k]].sum() / k for i in rows])
        assert m[f"precision_at_{k}"] == pytest.approx(expected)
    for k in (10, 15):
        expected = np.mean([y[i][order[i][:k]].sum() / y[i].sum() for i in rows])
        assert m[f"recall_at_{k}"] == pytest.approx(expected)
    expected_rp = np.mean([y[i][order[i][: y[i].sum()]].sum() / y[i].sum() for i in rows])
    assert m["r_precision"] == pytest.approx(expected_rp)


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_sklearn(seed):
    y, s = random_case(seed)
    m = classification_metrics(y, s, threshold=0.5)
    pred = (s > 0.5).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, average="micro", zero_division=0)
    assert (m["micro_precision"], m["micro_recall"], m["micro_f1"]) == pytest.approx((p, r, f))
    present = np.flatnonzero(y.sum(0) > 0)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=present, average="macro", zero_division=0)
    assert (m["macro_precision"], m["macro_recall"], m["macro_f1"]) == pytest.approx((p, r, f))
    rows = y.sum(1) > 0
    assert m["map"] == pytest.approx(average_precision_score(y[rows], s[rows], average="samples"))
    # with distinct scores, label-ranking AP is the same quantity
    assert m["map"] == pytest.approx(label_ranking_average_precision_score(y[rows], s[rows]))
    assert m["auc_micro"] == pytest.approx(roc_auc_score(y.ravel(), s.ravel()))
    assert m["auc_macro"] == pytest.approx(roc_auc_score(y[:, present], s[:, present], average="macro"))
    assert m["exact_match"] == pytest.approx(accuracy_score(y, pred))


def test_every_value_is_a_python_float():
    y, s = random_case(3)
    m = classification_metrics(y, s, threshold=0.3)
    assert set(m) == {
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "precision_at_5",
        "precision_at_8",
        "precision_at_15",
        "recall_at_10",
        "recall_at_15",
        "r_precision",
        "map",
        "auc_micro",
        "auc_macro",
        "exact_match",
    }
    assert all(type(v) is float for v in m.values())


def test_score_equal_to_threshold_is_not_predicted():
    assert binarize(np.array([[0.5, 0.51, 0.49]]), 0.5).tolist() == [[0, 1, 0]]
    m = classification_metrics(np.array([[1, 0]]), np.array([[0.5, 0.1]]), threshold=0.5)
    assert m["micro_recall"] == 0.0


def test_note_without_gold_codes_counts_its_false_positives_but_not_in_ranking():
    y = np.array([[1, 0], [0, 0]])
    s = np.array([[0.9, 0.1], [0.8, 0.7]])
    m = classification_metrics(y, s, threshold=0.5)
    # note 2 has no gold code: its two predictions are false positives -> P = 1/3
    assert m["micro_precision"] == pytest.approx(1 / 3)
    # ranking metrics use note 1 only: R-precision 1, AP 1
    assert m["r_precision"] == 1.0 and m["map"] == 1.0


def test_no_predictions_at_all_gives_zero_not_an_error():
    m = classification_metrics(Y, np.zeros_like(S, dtype=float), threshold=0.5)
    assert m["micro_precision"] == 0.0 and m["micro_recall"] == 0.0 and m["micro_f1"] == 0.0
    assert m["macro_f1"] == 0.0
    assert m["exact_match"] == 0.0


def test_constant_scores_give_chance_level_ranking_not_label_order():
    # 10 labels, note gold = labels 0 and 1 (first in label order). All scores tie.
    y = np.zeros((1, 10), dtype=int)
    y[0, :2] = 1
    m = classification_metrics(y, np.zeros((1, 10)), threshold=0.5)
    # a random order puts 5 * 2/10 = 1 expected gold label in the top 5 -> P@5 = 1/5
    assert m["precision_at_5"] == pytest.approx(1 / 5)
    # top 2 hold 2 * 2/10 = 0.4 expected gold labels -> R-precision 0.4 / 2
    assert m["r_precision"] == pytest.approx(0.2)
    assert m["recall_at_10"] == pytest.approx(1.0)
    # one tied block: AP = precision of the whole list = 2/10
    assert m["map"] == pytest.approx(0.2)
    # ROC AUC of a constant score is 0.5
    assert m["auc_micro"] == pytest.approx(0.5)


def test_split_without_any_gold_code_gives_nan_for_undefined_metrics():
    y = np.zeros((2, 3), dtype=int)
    m = classification_metrics(y, np.full((2, 3), 0.2), threshold=0.5)
    for key in (
        "micro_recall",
        "micro_f1",
        "macro_f1",
        "map",
        "r_precision",
        "precision_at_5",
        "auc_micro",
        "auc_macro",
    ):
        assert math.isnan(m[key]), key
    assert m["micro_precision"] == 0.0 and m["exact_match"] == 1.0  # nothing predicted: a rate over nothing is 0


def test_single_label_space_is_multilabel_not_binary():
    # sklearn would read an (n, 1) matrix as binary and micro-average over both classes
    y = np.array([[1], [0], [1]])
    s = np.array([[0.9], [0.8], [0.1]])
    m = classification_metrics(y, s, threshold=0.5)
    assert m["micro_precision"] == pytest.approx(1 / 2) and m["micro_recall"] == pytest.approx(1 / 2)


def test_tune_threshold_by_hand():
    y = np.array([[1, 0, 1], [0, 1, 0]])
    s = np.array([[0.9, 0.2, 0.35], [0.3, 0.8, 0.1]])
    # the gold positives score .9 .8 .35, the negatives at most .3: any t in [0.30, 0.34] is perfect,
    # ties go to the lowest threshold
    assert tune_threshold(y, s) == pytest.approx(0.30)
    assert micro_f1_by_threshold(y, s, np.array([0.30, 0.35]))[0] == pytest.approx(1.0)
    # at 0.35 the positive scored exactly .35 is not predicted: F1 = 2*2 / (2*2 + 0 + 1)
    assert micro_f1_by_threshold(y, s, np.array([0.35]))[0] == pytest.approx(4 / 5)


def test_threshold_curve_matches_metrics_at_every_grid_point():
    y, s = random_case(4, n=20, n_labels=6)
    curve = micro_f1_by_threshold(y, s)
    assert len(curve) == 99 and DEFAULT_THRESHOLD_GRID[0] == 0.01 and DEFAULT_THRESHOLD_GRID[-1] == 0.99
    for t, f1 in zip(DEFAULT_THRESHOLD_GRID[::7], curve[::7]):
        assert f1 == pytest.approx(classification_metrics(y, s, float(t))["micro_f1"])
    best = tune_threshold(y, s)
    assert type(best) is float
    assert classification_metrics(y, s, best)["micro_f1"] == pytest.approx(curve.max())


def test_all_zero_scores_tune_to_the_lowest_threshold():
    assert tune_threshold(Y, np.zeros(Y.shape)) == pytest.approx(0.01)


@pytest.mark.parametrize(
    ("y", "s", "threshold", "message"),
    [
        (Y, S[:, :3], 0.5, "does not match"),
        (Y[0], S[0], 0.5, "2-D"),
        (Y, S + 1.0, 0.5, r"\[0, 1\]"),
        (Y, np.where(S > 0.5, np.nan, S), 0.5, "NaN"),
        (Y * 2, S, 0.5, "only 0 and 1"),
        (Y, S, 1.5, "threshold"),
        (np.zeros((2, 0)), np.zeros((2, 0)), 0.5, "empty"),
    ],
)
def test_bad_input_is_a_clear_error(y, s, threshold, message):
    with pytest.raises(ValueError, match=message):
        classification_metrics(y, s, threshold)


def test_map_with_heavy_ties_matches_sklearn_per_note_average_precision():
    rng = np.random.default_rng(7)
    y = (rng.random((25, 9)) < 0.3).astype(int)
    y[:, 0] = 1  # every note has a gold code
    s = np.round(rng.random((25, 9)) * 3) / 3  # only 4 distinct scores: many ties
    expected = np.mean([average_precision_score(y[i], s[i]) for i in range(len(y))])
    assert classification_metrics(y, s, 0.5)["map"] == pytest.approx(expected)
