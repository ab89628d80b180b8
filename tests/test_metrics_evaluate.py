"""`evaluate_split`: the single entry point that training, eval and the baseline call."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import parse_record
from medcoder.metrics import EvaluationResult, evaluate_split, train_label_counts
from medcoder.metrics.classification import classification_metrics
from medcoder.metrics.evidence import evidence_metrics

TEXT = "Cough for a week. Hypertension, on lisinopril. No pneumonia on x-ray."
COUGH, HTN, PNA = ("ICD-10-CM", "R05.9"), ("ICD-10-CM", "I10"), ("ICD-10-CM", "J18.9")


def at(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return start, start + len(phrase)


def rec(note_id: str, codes: list[tuple[tuple[str, str], tuple[int, int] | None]], em: str | None = None):
    items = [{"system": s, "code": c, "evidence": [list(span)] if span else []} for (s, c), span in codes]
    if em:
        items.append({"system": "CPT", "code": em})
    return parse_record(
        {
            "id": note_id,
            "text": TEXT,
            "setting": "outpatient",
            "codes": items,
            "mentions": [
                {"start": at("pneumonia")[0], "end": at("pneumonia")[1], "code": "J18.9", "status": "negated"}
            ],
        }
    )


RECORDS = [
    rec("a", [(COUGH, at("Cough")), (HTN, at("Hypertension"))], em="99213"),
    rec("b", [(HTN, at("Hypertension"))], em="99214"),
    rec("c", []),
]
LABELS = LabelSpace((HTN, COUGH, PNA))
SCORES = np.array([[0.9, 0.8, 0.1], [0.7, 0.6, 0.2], [0.1, 0.1, 0.9]])
THRESHOLD = 0.5


def code(label, score, span=None, grounded=True):
    return PredictedCode(
        system=label[0], code=label[1], score=score, evidence=(span,) if span else (), grounded=grounded
    )


PREDICTIONS = [
    NotePrediction("a", (code(HTN, 0.9, at("Hypertension")), code(COUGH, 0.8, at("Cough"))), em_code="99213"),
    NotePrediction("b", (code(HTN, 0.7, at("Hypertension")), code(COUGH, 0.6, at("Cough for a week")))),
    NotePrediction("c", (code(PNA, 0.9, at("pneumonia"), grounded=False),), em_code="99212"),
]


def test_scores_only_gives_classification_metrics_and_tables():
    result = evaluate_split(RECORDS, LABELS, SCORES, THRESHOLD)
    assert isinstance(result, EvaluationResult) and result.threshold == THRESHOLD
    expected = classification_metrics(LABELS.encode_many(RECORDS), SCORES, THRESHOLD)
    assert {k: result.metrics[k] for k in expected} == pytest.approx(expected, nan_ok=True)
    assert "expected_calibration_error" in result.metrics
    assert not any(k.startswith(("evidence_", "distractor_", "em_")) for k in result.metrics)
    assert result.by_frequency is None and result.em_confusion is None
    assert len(result.per_code) == len(LABELS) and len(result.by_length) == 5


def test_full_evaluation_with_predictions_train_counts_and_validator():
    valid = {HTN, COUGH}
    result = evaluate_split(
        RECORDS,
        LABELS,
        SCORES,
        THRESHOLD,
        predictions=PREDICTIONS,
        train_counts=train_label_counts(RECORDS),
        is_valid=lambda s, c: (s, c) in valid,
    )
    m = result.metrics
    # note-level, by hand: tp a:HTN,COUGH b:HTN; fp b:COUGH, c:PNA; fn none -> P 3/5 R 1
    assert m["micro_precision"] == pytest.approx(3 / 5) and m["micro_recall"] == 1.0
    # predicted codes: 5; ungrounded 1 (PNA); invalid by this validator 1 (PNA)
    assert m["ungrounded_code_rate"] == pytest.approx(1 / 5) and m["invalid_code_rate"] == pytest.approx(1 / 5)
    # the negated pneumonia is a distractor on all 3 notes (none has J18.9 gold); c predicted it
    assert m["distractor_pairs"] == 3.0 and m["distractor_false_positive_rate"] == pytest.approx(1 / 3)
    # 5 predicted / 3 gold labels in the label space
    assert m["over_generation_ratio"] == pytest.approx(5 / 3)
    # E/M: a right, b predicted none -> 1/2
    assert m["em_accuracy"] == pytest.approx(1 / 2)
    assert m["evidence_exact_span_f1"] == pytest.approx(
        evidence_metrics(RECORDS, PREDICTIONS, labels=set(LABELS.labels))["evidence_exact_span_f1"]
    )
    # gold spans: Cough, Hypertension (a), Hypertension (b); predicted also "Cough for a week" (b) and
    # pneumonia (c): tp 3, fp 2, fn 0
    assert m["evidence_exact_span_precision"] == pytest.approx(3 / 5)
    assert result.em_confusion.loc["99214", "none"] == 1 and result.em_confusion.loc["none", "99212"] == 1
    assert result.by_frequency is not None and result.by_frequency["n_codes"].sum() == len(LABELS)
    assert all(type(v) is float for v in m.values())
    json.dumps(m)  # serialisable as is


def test_no_predictions_at_all_and_all_zero_scores():
    empty = [NotePrediction(r.id) for r in RECORDS]
    result = evaluate_split(RECORDS, LABELS, np.zeros(SCORES.shape), THRESHOLD, predictions=empty)
    m = result.metrics
    assert m["micro_f1"] == 0.0 and m["ungrounded_code_rate"] == 0.0 and m["over_generation_ratio"] == 0.0
    assert m["distractor_false_positive_rate"] == 0.0 and m["evidence_exact_span_recall"] == 0.0
    assert m["em_accuracy"] == 0.0
    assert "invalid_code_rate" not in m  # no validator given
    assert all(type(v) is float for v in m.values())


def test_wrong_score_shape_and_mismatched_predictions_are_errors():
    with pytest.raises(ValueError, match="expected \\(n_records=3, n_labels=3\\)"):
        evaluate_split(RECORDS, LABELS, SCORES[:2], THRESHOLD)
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_split(RECORDS, LABELS, SCORES, THRESHOLD, predictions=PREDICTIONS[:2])


def test_nan_marks_undefined_values():
    # a split whose notes carry no label of the label space
    result = evaluate_split([RECORDS[2]], LABELS, SCORES[2:], THRESHOLD)
    assert math.isnan(result.metrics["map"]) and math.isnan(result.metrics["macro_f1"])


def test_set_metrics_score_the_codes_the_coder_emitted():
    # note c's J18.9 scored 0.9, but its only evidence is "No pneumonia": the grounding step left it out
    emitted = PREDICTIONS[:2] + [NotePrediction("c", (), context_blocked=(PNA,))]
    with_all = evaluate_split(RECORDS, LABELS, SCORES, THRESHOLD, predictions=PREDICTIONS)
    left_out = evaluate_split(RECORDS, LABELS, SCORES, THRESHOLD, predictions=emitted)
    assert with_all.metrics["micro_precision"] == pytest.approx(3 / 5)
    assert left_out.metrics["micro_precision"] == pytest.approx(3 / 4)  # the false positive is gone
    assert (
        left_out.metrics["distractor_false_positive_rate"] == 0.0 < with_all.metrics["distractor_false_positive_rate"]
    )
    assert left_out.metrics["map"] == with_all.metrics["map"]  # ranking metrics read the scores
    pna = left_out.per_code.set_index("code").loc["J18.9"]
    assert (pna.tp, pna.fp) == (0, 0)
