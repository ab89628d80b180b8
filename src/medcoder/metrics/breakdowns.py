"""Where a model is good and where it is not: per code, by training frequency, by note length.

Averages hide the rare codes (most codes are rare, Edin et al. 2023) and long notes (truncated by
the encoder), so model cards and comparisons show these tables next to the headline numbers.
All counts use the same decision rule as `classification.binarize`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from medcoder.data.labels import Label, LabelSpace
from medcoder.data.schema import NoteRecord
from medcoder.metrics._common import check_label_arrays, check_threshold, prf
from medcoder.metrics.classification import binarize, check_decisions, label_counts

DEFAULT_FREQUENCY_EDGES: tuple[int, ...] = (1, 10, 50, 200)  # buckets 1-9, 10-49, 50-199, 200+
DEFAULT_LENGTH_EDGES: tuple[int, ...] = (0, 128, 256, 512, 1024)  # words: 0-127, ..., 1024+


def train_label_counts(records: Iterable[NoteRecord]) -> Counter[Label]:
    """How many training notes carry each (system, code) label: the `train_counts` argument."""
    return Counter((c.system, c.code) for r in records for c in r.codes)


def note_length(record: NoteRecord) -> int:
    """Note length in white-space separated words (independent of any model's tokenizer)."""
    return len(record.text.split())


def bucket_names(edges: Sequence[int]) -> list[str]:
    """'lo-hi' names for [edges[i], edges[i+1]) and 'lo+' for the last, e.g. 1-9, 10-49, 200+."""
    _check_edges(edges)
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]


def _check_edges(edges: Sequence[int]) -> None:
    if len(edges) == 0 or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ValueError(f"bucket edges must be a non-empty increasing sequence, got {list(edges)}")


def _bucket_of(values: np.ndarray, edges: Sequence[int]) -> np.ndarray:
    """Index of the bucket [edges[i], edges[i+1]) of each value; -1 below the first edge."""
    return np.searchsorted(np.asarray(edges), values, side="right") - 1


# ---------------------------------------------------------------- per code
def per_code_table(
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    label_space: LabelSpace,
    train_counts: Mapping[Label, int] | None = None,
    y_pred: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per label in label-space order: system, code, train_count, support (gold notes in
    this split), tp, fp, fn, precision, recall, f1, average_precision (NaN when support is 0, or
    when train_counts is None for train_count)."""
    y_true, y_score = check_label_arrays(y_true, y_score)
    if y_true.shape[1] != len(label_space):
        raise ValueError(f"y_true has {y_true.shape[1]} columns but the label space has {len(label_space)} labels")
    threshold = check_threshold(threshold)
    tp, fp, fn = label_counts(
        y_true, binarize(y_score, threshold) if y_pred is None else check_decisions(y_pred, y_true)
    )
    support = y_true.sum(axis=0)
    scores = np.array([prf(tp[j], fp[j], fn[j]) for j in range(len(label_space))]).reshape(-1, 3)
    ap = [
        float(average_precision_score(y_true[:, j], y_score[:, j])) if support[j] > 0 else float("nan")
        for j in range(len(label_space))
    ]
    train = (
        pd.array([int(train_counts.get(label, 0)) for label in label_space.labels], dtype="Int64")
        if train_counts is not None
        else pd.array([pd.NA] * len(label_space), dtype="Int64")
    )
    return pd.DataFrame(
        {
            "system": [s for s, _ in label_space.labels],
            "code": label_space.codes,
            "train_count": train,
            "support": support.astype(int),
            "tp": tp.astype(int),
            "fp": fp.astype(int),
            "fn": fn.astype(int),
            "precision": scores[:, 0],
            "recall": scores[:, 1],
            "f1": scores[:, 2],
            "average_precision": ap,
        }
    )


# ---------------------------------------------------------------- by training frequency
def f1_by_frequency(per_code: pd.DataFrame, edges: Sequence[int] = DEFAULT_FREQUENCY_EDGES) -> pd.DataFrame:
    """F1 of codes grouped by TRAINING frequency, from a `per_code_table` with train counts.

    Rows: bucket, n_codes (labels in the bucket), n_present (of those, with >= 1 gold note in this
    split), support, tp, fp, fn, micro_f1 (pooled counts), macro_f1 (mean F1 over present codes;
    NaN if none). Labels below the first edge (e.g. never seen in training) get a '<lo' bucket,
    shown only when there are some.
    """
    if per_code["train_count"].isna().any():
        raise ValueError("per_code has no train_count: pass train_counts to per_code_table (or evaluate_split)")
    _check_edges(edges)
    names = bucket_names(edges)
    bucket = _bucket_of(per_code["train_count"].to_numpy(dtype=np.int64), edges)
    rows = []
    for b in ([-1] if (bucket < 0).any() else []) + list(range(len(edges))):
        group = per_code[bucket == b]
        present = group[group["support"] > 0]
        tp, fp, fn = (int(group[c].sum()) for c in ("tp", "fp", "fn"))
        rows.append(
            {
                "bucket": f"<{edges[0]}" if b < 0 else names[b],
                "n_codes": len(group),
                "n_present": len(present),
                "support": int(group["support"].sum()),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "micro_f1": prf(tp, fp, fn)[2],
                "macro_f1": float(present["f1"].mean()) if len(present) else float("nan"),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- by note length
def f1_by_note_length(
    records: Sequence[NoteRecord],
    y_true: np.ndarray,
    y_score: np.ndarray,
    threshold: float,
    edges: Sequence[int] = DEFAULT_LENGTH_EDGES,
    y_pred: np.ndarray | None = None,
) -> pd.DataFrame:
    """Micro P/R/F1 of notes grouped by length in words (`note_length`), one row per bucket.

    Rows: bucket, n_notes, support (gold labels), tp, fp, fn, micro_precision, micro_recall,
    micro_f1. Empty buckets stay in the table (n_notes 0) so tables of different models line up.
    """
    y_true, y_score = check_label_arrays(y_true, y_score)
    if len(records) != len(y_true):
        raise ValueError(f"{len(records)} records but {len(y_true)} rows of scores")
    if edges[0] != 0:
        raise ValueError(f"note-length edges must start at 0 so every note has a bucket, got {list(edges)}")
    threshold = check_threshold(threshold)
    y_pred = binarize(y_score, threshold) if y_pred is None else check_decisions(y_pred, y_true)
    bucket = _bucket_of(np.array([note_length(r) for r in records], dtype=np.int64), edges)
    rows = []
    for b, name in enumerate(bucket_names(edges)):
        in_bucket = bucket == b
        tp, fp, fn = (int(v.sum()) for v in label_counts(y_true[in_bucket], y_pred[in_bucket]))
        p, r, f = prf(tp, fp, fn)
        rows.append(
            {
                "bucket": name,
                "n_notes": int(in_bucket.sum()),
                "support": int(y_true[in_bucket].sum()),
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "micro_precision": p,
                "micro_recall": r,
                "micro_f1": f,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- by patient and encounter subgroup
AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "0-17"), (40, "18-39"), (65, "40-64"), (200, "65+"))
SUBGROUP_FIELDS: tuple[str, ...] = ("sex", "age_band", "payer", "setting")


def _age_band(age: int | None) -> str | None:
    return None if age is None else next(name for upper, name in AGE_BANDS if age < upper)


def f1_by_subgroup(records: Sequence[NoteRecord], y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """Micro P/R/F1 per value of each subgroup field the records carry (sex, age band, payer, setting):
    the numbers behind a model card's fairness section. Rows: field, group, n_notes, support, tp, fp,
    fn, micro_precision, micro_recall, micro_f1; a field no record has gives no rows."""
    y_true, y_pred = check_decisions(y_true, y_true), check_decisions(y_pred, y_true)
    if len(records) != len(y_true):
        raise ValueError(f"{len(records)} records but {len(y_true)} rows of labels")
    values = {
        "sex": [r.sex for r in records], "age_band": [_age_band(r.age) for r in records],
        "payer": [r.payer for r in records], "setting": [r.setting for r in records],
    }  # fmt: skip
    rows = []
    for field_name in SUBGROUP_FIELDS:
        column = np.array([v if v is not None else "" for v in values[field_name]], dtype=object)
        for group in sorted(set(column) - {""}):
            members = column == group
            tp, fp, fn = (int(v.sum()) for v in label_counts(y_true[members], y_pred[members]))
            p, r, f = prf(tp, fp, fn)
            rows.append({"field": field_name, "group": group,
                         "n_notes": int(members.sum()), "support": int(y_true[members].sum()),
                         "tp": tp, "fp": fp, "fn": fn,
                         "micro_precision": p, "micro_recall": r, "micro_f1": f})  # fmt: skip
    return pd.DataFrame(
        rows,
        columns=[
            "field",
            "group",
            "n_notes",
            "support",
            "tp",
            "fp",
            "fn",
            "micro_precision",
            "micro_recall",
            "micro_f1",
        ],
    )
