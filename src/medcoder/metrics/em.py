"""Evaluation and Management (E/M) level metrics: one E/M class per note, or "none".

An E/M class is a visit-level E/M code (`medcoder.codes.em.is_visit_em`: office or preventive).
A note's gold class is its one gold E/M code, or "none" when it has none; two gold E/M codes on one
note is an error (a single
class cannot be scored, and picking one would hide a data problem). The predicted class is
`NotePrediction.em_code` when set, else the highest-scoring E/M code among the predicted codes
(for coders that predict E/M codes as ordinary labels), else "none".

- em_accuracy: share of notes WITH a gold E/M code whose predicted class is exactly right.
- em_macro_f1: mean F1 over the E/M classes that occur in gold, computed over ALL notes, so an E/M
  code predicted on a note without one lowers that class's precision.
- em_confusion_matrix: gold rows x predicted columns over all notes, "none" included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from medcoder.codes.em import EM_NONE, is_visit_em
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.metrics._common import align_predictions

NONE = EM_NONE


def gold_em_class(record: NoteRecord) -> str:
    """The note's gold E/M code, or "none"; more than one is a ValueError naming the note."""
    codes = [c.code for c in record.codes if is_visit_em(c.system, c.code)]
    if len(codes) > 1:
        raise ValueError(f"note {record.id} has {len(codes)} gold E/M codes ({', '.join(codes)}); expected at most one")
    return codes[0] if codes else NONE


def predicted_em_class(prediction: NotePrediction) -> str:
    """`em_code` if set, else the top-scoring predicted E/M code, else "none"."""
    if prediction.em_code:
        return prediction.em_code
    em = [c for c in prediction.codes if is_visit_em(c.system, c.code)]
    return max(em, key=lambda c: c.score).code if em else NONE


def em_classes(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> tuple[list[str], list[str]]:
    """Gold and predicted E/M classes, in record order."""
    aligned = align_predictions(records, predictions)
    return [gold_em_class(r) for r in records], [predicted_em_class(p) for p in aligned]


def em_metrics(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> dict[str, float]:
    """em_accuracy and em_macro_f1 (NaN when no note has a gold E/M code), plus em_notes (the count)."""
    gold, pred = em_classes(records, predictions)
    with_em = [i for i, g in enumerate(gold) if g != NONE]
    if not with_em:
        return {"em_accuracy": float("nan"), "em_macro_f1": float("nan"), "em_notes": 0.0}
    gold_classes = sorted({gold[i] for i in with_em})
    return {
        "em_accuracy": float(np.mean([gold[i] == pred[i] for i in with_em])),
        "em_macro_f1": float(f1_score(gold, pred, labels=gold_classes, average="macro", zero_division=0)),
        "em_notes": float(len(with_em)),
    }


def em_confusion_matrix(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> pd.DataFrame:
    """Counts of notes by gold class (rows, index name "gold") and predicted class (columns, "predicted").

    Classes are every class seen on either side, E/M codes in numeric order, then "none".
    """
    gold, pred = em_classes(records, predictions)
    classes = sorted(set(gold) | set(pred) | {NONE}, key=lambda c: (c == NONE, c))
    matrix = confusion_matrix(gold, pred, labels=classes) if gold else np.zeros((len(classes), len(classes)), dtype=int)
    return pd.DataFrame(
        matrix,
        index=pd.Index(classes, name="gold"),
        columns=pd.Index(classes, name="predicted"),
    )
