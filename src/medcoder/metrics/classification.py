"""Note-level multi-label classification metrics, following Edin et al. (SIGIR 2023).

Inputs everywhere: `y_true` (n_notes, n_labels) in {0, 1} and `y_score` (n_notes, n_labels) in
[0, 1], columns in `LabelSpace` order. A code is predicted when `score > threshold` (strictly
greater, as in Edin et al.'s code); `binarize` is that rule, so inference and evaluation agree.

Definitions, and where they differ from Edin et al.'s reference code (JoakimEdin/
medical-coding-reproducibility, src/metrics.py) and why:
- micro P/R/F1 and exact match count every label of the label space on every note. Edin et al.
  drop labels absent from the split and notes without gold codes before scoring; a code predicted
  for a note with no gold codes, or a code that never occurs in the split, is still a wrong code on
  a claim, so we count it. Our micro scores are therefore <= theirs on the same predictions.
- macro P/R/F1 and macro AUC average over codes PRESENT in the split (>= 1 gold positive; for AUC
  also >= 1 negative): the macro score of a code without positives is undefined (Edin et al.,
  "macro F1 over codes present").
- precision@k, recall@k, R-precision and mAP are per-note ranking metrics averaged over notes
  with >= 1 gold code (they are undefined, or constant, for a note without gold codes), as in
  Edin et al. precision@k divides by k even when fewer than k codes are gold.
- mAP is example-based: the mean over notes of the average precision of that note's ranking of
  all labels (Edin et al.'s MeanAveragePrecision). It asks "for a coder reviewing one note's
  suggestions, how high are the right codes?", which is how the ranking is used. Per-code
  (label-based) average precision is in `breakdowns.per_code_table`.
- Ties in scores never depend on label order: average precision uses sklearn's tie-aware
  definition (a block of equal scores is one threshold), and the cut-off metrics count a tie that
  straddles rank k by its expected value under random tie-breaking. For distinct scores both equal
  Edin et al.'s sort-based definitions; for constant scores they give chance level rather than a
  value decided by label order (labels are frequency-sorted, which would flatter a constant model).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from medcoder.metrics._common import check_label_arrays, check_threshold, prf

DEFAULT_THRESHOLD_GRID: np.ndarray = np.round(np.arange(1, 100) / 100.0, 2)  # 0.01, 0.02, ..., 0.99
PRECISION_AT: tuple[int, ...] = (5, 8, 15)
RECALL_AT: tuple[int, ...] = (10, 15)


def binarize(y_score: np.ndarray, threshold: float) -> np.ndarray:
    """The decision rule: a label is predicted when its score is strictly above the threshold."""
    return (np.asarray(y_score) > threshold).astype(np.int8)


# ---------------------------------------------------------------- threshold
def check_decisions(y_pred: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """`y_pred` as a 0/1 int array shaped like `y_true`, or a ValueError saying how it differs."""
    y_pred = np.asarray(y_pred)
    if y_pred.shape != np.shape(y_true):
        raise ValueError(f"y_pred has shape {y_pred.shape}, expected {np.shape(y_true)} like y_true")
    if not np.isin(y_pred, (0, 1)).all():
        raise ValueError("y_pred must hold only 0 and 1 (emitted or not)")
    return y_pred.astype(np.int64)


def micro_f1_by_threshold(y_true: np.ndarray, y_score: np.ndarray, grid: np.ndarray | None = None) -> np.ndarray:
    """Micro-F1 at every threshold of `grid`, in one pass over sorted scores (not one per threshold).

    For threshold t, tp(t) = #positive scores > t and fp(t) = #negative scores > t.
    """
    y_true, y_score = check_label_arrays(y_true, y_score)
    grid = DEFAULT_THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    positive = y_true.astype(bool)
    pos_scores, neg_scores = np.sort(y_score[positive]), np.sort(y_score[~positive])
    tp = pos_scores.size - np.searchsorted(pos_scores, grid, side="right")
    fp = neg_scores.size - np.searchsorted(neg_scores, grid, side="right")
    fn = pos_scores.size - tp
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(grid.shape, dtype=np.float64), where=denominator > 0)


def tune_threshold(y_true: np.ndarray, y_score: np.ndarray, grid: np.ndarray | None = None) -> float:
    """The one global threshold that maximises micro-F1 (on the validation split), from `grid`.

    The default grid is 0.01..0.99 in steps of 0.01. Ties go to the lowest threshold, which is also
    what a model that scores everything 0 gets (0.01).
    """
    grid = DEFAULT_THRESHOLD_GRID if grid is None else np.asarray(grid, dtype=np.float64)
    if grid.size == 0:
        raise ValueError("threshold grid is empty")
    f1 = micro_f1_by_threshold(y_true, y_score, grid)
    return float(grid[int(np.argmax(f1))])


# ---------------------------------------------------------------- counts
def label_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label true positives, false positives and false negatives (each shape (n_labels,)).

    Computed with numpy rather than sklearn because sklearn reads a one-label (n, 1) matrix as a
    binary/multiclass problem and then micro-averages over both classes.
    """
    t, p = y_true.astype(bool), y_pred.astype(bool)
    return (t & p).sum(axis=0), (~t & p).sum(axis=0), (t & ~p).sum(axis=0)


# ---------------------------------------------------------------- ranking
def _expected_hits_at(y_true: np.ndarray, y_score: np.ndarray, descending: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Expected number of gold labels among each note's top k[i] labels, ties broken at random.

    `descending` is each row of `y_score` sorted high to low. With v the k-th highest score: labels
    scoring > v are all in; of the g labels scoring == v, k - (#scoring > v) are in, so each tied
    gold label counts (k - #above) / g.
    """
    k = np.minimum(k, y_score.shape[1])
    kth = descending[np.arange(y_score.shape[0]), k - 1][:, None]
    above, tied = y_score > kth, y_score == kth
    gold = y_true.astype(bool)
    return (gold & above).sum(1) + (gold & tied).sum(1) * (k - above.sum(1)) / tied.sum(1)


def _average_precision_per_note(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """Tie-aware average precision of each row (rows must have >= 1 gold label), vectorised.

    Same definition as sklearn's `average_precision_score` on one row: every gold label adds
    precision/n_gold, where precision is taken at the END of its block of tied scores (a tie block is
    one threshold). Vectorised because a per-row sklearn call costs ~1 ms, too slow for MIMIC sizes.
    """
    n, n_labels = y_score.shape
    order = np.argsort(-y_score, axis=1, kind="stable")
    desc = np.take_along_axis(y_score, order, axis=1)
    rel = np.take_along_axis(y_true, order, axis=1).astype(np.float64)
    hits = np.cumsum(rel, axis=1)
    position = np.arange(n_labels)
    block_ends_here = np.ones((n, n_labels), dtype=bool)
    block_ends_here[:, :-1] = desc[:, 1:] != desc[:, :-1]
    # index of the end of each position's tie block: the first block end at or after it
    end = np.where(block_ends_here, position, n_labels)
    end = np.flip(np.minimum.accumulate(np.flip(end, axis=1), axis=1), axis=1)
    precision_at_block_end = np.take_along_axis(hits, end, axis=1) / (end + 1)
    return (rel * precision_at_block_end).sum(axis=1) / rel.sum(axis=1)


def ranking_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """precision@5/8/15, recall@10/15, R-precision and mAP over notes with >= 1 gold label."""
    keys = [f"precision_at_{k}" for k in PRECISION_AT] + [f"recall_at_{k}" for k in RECALL_AT] + ["r_precision", "map"]
    rows = y_true.sum(axis=1) > 0
    if not rows.any():
        return {key: float("nan") for key in keys}
    t, s = y_true[rows], y_score[rows]
    n_gold = t.sum(axis=1)
    descending = -np.sort(-s, axis=1)

    def hits_at(k: np.ndarray) -> np.ndarray:
        return _expected_hits_at(t, s, descending, k)

    out: dict[str, float] = {}
    for k in PRECISION_AT:
        out[f"precision_at_{k}"] = float(np.mean(hits_at(np.full(len(t), k)) / k))
    for k in RECALL_AT:
        out[f"recall_at_{k}"] = float(np.mean(hits_at(np.full(len(t), k)) / n_gold))
    out["r_precision"] = float(np.mean(hits_at(n_gold) / n_gold))
    out["map"] = float(np.mean(_average_precision_per_note(t, s)))
    return out


def auc_metrics(y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    """ROC AUC over all (note, label) pairs (micro) and the mean over labels with both classes (macro)."""
    flat = y_true.ravel()
    micro = float(roc_auc_score(flat, y_score.ravel())) if 0 < flat.sum() < flat.size else float("nan")
    positives = y_true.sum(axis=0)
    both = np.flatnonzero((positives > 0) & (positives < y_true.shape[0]))
    macro = float(np.mean([roc_auc_score(y_true[:, j], y_score[:, j]) for j in both])) if both.size else float("nan")
    return {"auc_micro": micro, "auc_macro": macro}


# ---------------------------------------------------------------- all of it
def classification_metrics(
    y_true: np.ndarray, y_score: np.ndarray, threshold: float, y_pred: np.ndarray | None = None
) -> dict[str, float]:
    """Every note-level metric at one threshold; all values are Python floats (NaN when undefined).

    `y_pred` is what the coder emitted when that is not simply `binarize(y_score, threshold)` (the
    grounding step leaves out codes whose only evidence is a negated or family mention): set metrics
    (P/R/F1, exact match) score the emitted codes, ranking metrics (P@k, mAP, AUC) the scores.

    Keys: micro_/macro_ precision, recall, f1; precision_at_5/8/15; recall_at_10/15; r_precision;
    map; auc_micro; auc_macro; exact_match.
    """
    y_true, y_score = check_label_arrays(y_true, y_score)
    if y_true.shape[1] == 0:
        raise ValueError("the label space is empty: there is nothing to score")
    threshold = check_threshold(threshold)
    y_pred = binarize(y_score, threshold) if y_pred is None else check_decisions(y_pred, y_true)
    tp, fp, fn = label_counts(y_true, y_pred)

    out: dict[str, float] = {}
    out["micro_precision"], out["micro_recall"], out["micro_f1"] = prf(tp.sum(), fp.sum(), fn.sum())
    if (
        not y_true.any()
    ):  # no gold code at all: recall, and so F1, are undefined (a model must not pass a gate on 0 vs 0)
        out["micro_recall"] = out["micro_f1"] = float("nan")
    present = np.flatnonzero(y_true.sum(axis=0) > 0)
    if present.size:
        per_code = np.array([prf(tp[j], fp[j], fn[j]) for j in present])
        out["macro_precision"], out["macro_recall"], out["macro_f1"] = (float(v) for v in per_code.mean(axis=0))
    else:
        out["macro_precision"] = out["macro_recall"] = out["macro_f1"] = float("nan")
    out.update(ranking_metrics(y_true, y_score))
    out.update(auc_metrics(y_true, y_score))
    out["exact_match"] = float(np.mean((y_pred == y_true).all(axis=1))) if len(y_true) else float("nan")
    return out
