"""Evaluation metrics: the one place that scores every model, the baseline and the registry gates.

Callers use `evaluate_split` and never assemble metrics themselves, so every number in MLflow, a
model card or an experiment record means the same thing. Metric keys are snake_case without a
split prefix (`micro_f1`, `precision_at_5`); callers add `val/` or `test/`. Every value is a
Python float; NaN marks a value undefined on the data (see `_common`).

Modules: `classification` (note-level, Edin et al. 2023), `evidence` (MDACE span/token matching,
seqeval), `hallucination` (invalid/ungrounded/distractor codes, over-generation, calibration),
`em` (E/M level), `breakdowns` (per code, by frequency, by note length), `plots` (figures; import
it explicitly, it loads matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medcoder.data.labels import Label, LabelSpace
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.metrics._common import align_predictions
from medcoder.metrics.breakdowns import (
    f1_by_frequency,
    f1_by_note_length,
    f1_by_subgroup,
    per_code_table,
    train_label_counts,
)
from medcoder.metrics.classification import binarize, classification_metrics, tune_threshold
from medcoder.metrics.em import em_confusion_matrix, em_metrics
from medcoder.metrics.evidence import evidence_metrics, seqeval_span_f1
from medcoder.metrics.hallucination import (
    CodeValidator,
    distractor_metrics,
    expected_calibration_error,
    invalid_code_rate,
    over_generation_ratio,
    ungrounded_code_rate,
)

__all__ = [
    "EvaluationResult",
    "evaluate_split",
    "binarize",
    "tune_threshold",
    "classification_metrics",
    "evidence_metrics",
    "seqeval_span_f1",
    "train_label_counts",
]


@dataclass
class EvaluationResult:
    """Everything one evaluation of one split produces.

    `metrics` is flat and JSON-ready (log it with a `val/` or `test/` prefix); the tables are for
    artifacts and cards. `by_frequency` is None without train counts, `em_confusion` None without
    predictions.
    """

    threshold: float
    metrics: dict[str, float]
    per_code: pd.DataFrame
    by_frequency: pd.DataFrame | None
    by_length: pd.DataFrame
    em_confusion: pd.DataFrame | None
    by_subgroup: pd.DataFrame | None = None  # sex, age band, payer, setting (breakdowns.f1_by_subgroup)


def emitted_matrix(
    records: Sequence[NoteRecord], predictions: Sequence[NotePrediction], label_space: LabelSpace
) -> np.ndarray:
    """(len(records), len(label_space)) 0/1: the label-space codes each note's prediction emitted."""
    out = np.zeros((len(records), len(label_space)), dtype=np.int64)
    for row, prediction in enumerate(align_predictions(records, predictions)):
        for label in prediction.code_set():
            if label in label_space:
                out[row, label_space.index(label)] = 1
    return out


def evaluate_split(
    records: Sequence[NoteRecord],
    label_space: LabelSpace,
    y_score: np.ndarray,
    threshold: float,
    predictions: Sequence[NotePrediction] | None = None,
    train_counts: Mapping[Label, int] | None = None,
    is_valid: CodeValidator | None = None,
) -> EvaluationResult:
    """Score one split.

    records: the split's notes, in the row order of `y_score`.
    y_score: (len(records), len(label_space)) probabilities.
    threshold: the decision threshold, tuned on validation (`tune_threshold`), never on test.
    predictions: the coder's per-note output (codes above threshold, evidence, grounding, E/M);
        enables the evidence, hallucination and E/M metrics, and makes the set metrics (P/R/F1,
        exact match, per-code and per-length tables) score the codes it emitted, which can be fewer
        than the scores above threshold (codes left out for lack of support, see
        medcoder.inference.grounding.evidence). Must cover exactly the records' ids.
    train_counts: (system, code) -> training notes (`train_label_counts(train_records)`); enables
        the frequency-bucket table.
    is_valid: `is_valid(system, code)` of the configured code set; enables invalid_code_rate.

    The note-level metrics see only the label space by construction. Evidence, distractor and
    over-generation metrics are restricted to it as well, so gold codes a model cannot predict do not
    count against it; invalid, ungrounded and E/M metrics look at everything the coder emitted.
    """
    y_true = label_space.encode_many(records)
    if np.shape(y_score) != y_true.shape:
        raise ValueError(
            f"y_score has shape {np.shape(y_score)}, expected (n_records={len(records)}, n_labels={len(label_space)})"
        )
    labels = set(label_space.labels)

    # note-level classification and calibration
    y_pred = None if predictions is None else emitted_matrix(records, predictions, label_space)
    metrics = classification_metrics(y_true, y_score, threshold, y_pred=y_pred)
    metrics["expected_calibration_error"] = expected_calibration_error(y_true, y_score)

    # what the coder actually emitted
    em_confusion = None
    if predictions is not None:
        metrics.update(evidence_metrics(records, predictions, labels=labels))
        metrics["ungrounded_code_rate"] = ungrounded_code_rate(predictions)
        if is_valid is not None:
            metrics["invalid_code_rate"] = invalid_code_rate(predictions, is_valid)
        metrics.update(distractor_metrics(records, predictions, codes_in_scope=set(label_space.codes)))
        metrics["over_generation_ratio"] = over_generation_ratio(records, predictions, labels=labels)
        metrics.update(em_metrics(records, predictions))
        em_confusion = em_confusion_matrix(records, predictions)
        # notes the coder could not read to the end: their later codes are missing from every number above
        metrics["truncated_note_rate"] = (
            sum(p.read_chars is not None for p in predictions) / len(predictions) if predictions else 0.0
        )

    # breakdowns
    per_code = per_code_table(y_true, y_score, threshold, label_space, train_counts, y_pred=y_pred)
    by_frequency = f1_by_frequency(per_code) if train_counts is not None else None
    by_length = f1_by_note_length(records, y_true, y_score, threshold, y_pred=y_pred)
    by_subgroup = f1_by_subgroup(records, y_true, y_pred if y_pred is not None else binarize(y_score, threshold))

    return EvaluationResult(
        threshold=float(threshold),
        metrics={key: float(value) for key, value in metrics.items()},
        per_code=per_code,
        by_frequency=by_frequency,
        by_length=by_length,
        em_confusion=em_confusion,
        by_subgroup=by_subgroup,
    )
