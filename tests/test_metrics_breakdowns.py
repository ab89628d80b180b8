"""Per-code table, F1 by training-frequency bucket, micro-F1 by note-length bucket."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_fscore_support

from medcoder.data.labels import LabelSpace
from medcoder.data.schema import parse_record
from medcoder.metrics.breakdowns import (
    bucket_names,
    f1_by_frequency,
    f1_by_note_length,
    per_code_table,
    train_label_counts,
)

LABELS = LabelSpace((("ICD-10-CM", "I10"), ("ICD-10-CM", "E11.9"), ("ICD-10-CM", "J45.909"), ("CPT", "99213")))
Y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0]])
S = np.array([[0.9, 0.2, 0.4, 0.7], [0.1, 0.8, 0.3, 0.2], [0.6, 0.4, 0.55, 0.1]])
TRAIN = {("ICD-10-CM", "I10"): 250, ("ICD-10-CM", "E11.9"): 12, ("ICD-10-CM", "J45.909"): 3}  # 99213: never


def test_per_code_table_by_hand_and_against_sklearn():
    table = per_code_table(Y, S, 0.5, LABELS, TRAIN)
    assert list(table.columns) == [
        "system",
        "code",
        "train_count",
        "support",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1",
        "average_precision",
    ]
    assert table["code"].tolist() == ["I10", "E11.9", "J45.909", "99213"]
    assert table["train_count"].tolist() == [250, 12, 3, 0]
    # E11.9: gold notes 2,3; predicted (>0.5) note 2 only -> tp1 fp0 fn1
    row = table.set_index("code").loc["E11.9"]
    assert (row["support"], row["tp"], row["fp"], row["fn"]) == (2, 1, 0, 1)
    assert row["recall"] == pytest.approx(0.5) and row["f1"] == pytest.approx(2 / 3)
    p, r, f, support = precision_recall_fscore_support(Y, (S > 0.5).astype(int), average=None, zero_division=0)
    np.testing.assert_allclose(table["precision"], p)
    np.testing.assert_allclose(table["recall"], r)
    np.testing.assert_allclose(table["f1"], f)
    np.testing.assert_array_equal(table["support"], support)
    for j in range(3):
        assert table["average_precision"][j] == pytest.approx(average_precision_score(Y[:, j], S[:, j]))
    assert math.isnan(table["average_precision"][3])  # 99213 has no gold note in this split


def test_per_code_table_without_train_counts():
    table = per_code_table(Y, S, 0.5, LABELS)
    assert table["train_count"].isna().all()
    with pytest.raises(ValueError, match="train_count"):
        f1_by_frequency(table)


def test_f1_by_frequency_buckets_by_train_count():
    table = per_code_table(Y, S, 0.5, LABELS, TRAIN)
    by = f1_by_frequency(table).set_index("bucket")
    # 99213 (never in train) gets the '<1' bucket; J45.909 (3) 1-9; E11.9 (12) 10-49; I10 (250) 200+
    assert list(by.index) == ["<1", "1-9", "10-49", "50-199", "200+"]
    assert by["n_codes"].tolist() == [1, 1, 1, 0, 1]
    # J45.909: gold note 1 (0.4 not predicted), predicted note 3 (0.55) -> tp0 fp1 fn1 -> F1 0
    assert (by.loc["1-9", "tp"], by.loc["1-9", "fp"], by.loc["1-9", "fn"]) == (0, 1, 1)
    assert by.loc["10-49", "micro_f1"] == pytest.approx(2 / 3)
    # I10: predicted notes 1,3 = gold -> F1 1
    assert by.loc["200+", "micro_f1"] == 1.0 and by.loc["200+", "macro_f1"] == 1.0
    # 99213 is not present in this split: it counts its false positive (note 1, .7) but has no macro F1
    assert by.loc["<1", "n_present"] == 0 and by.loc["<1", "fp"] == 1 and math.isnan(by.loc["<1", "macro_f1"])
    assert by.loc["50-199", "n_codes"] == 0 and by.loc["50-199", "micro_f1"] == 0.0


def test_frequency_edges_are_configurable():
    table = per_code_table(Y, S, 0.5, LABELS, TRAIN)
    by = f1_by_frequency(table, edges=(0, 100))
    assert by["bucket"].tolist() == ["0-99", "100+"] and by["n_codes"].tolist() == [3, 1]
    assert bucket_names((1, 10, 50, 200)) == ["1-9", "10-49", "50-199", "200+"]
    with pytest.raises(ValueError, match="increasing"):
        f1_by_frequency(table, edges=(10, 5))


def record(note_id: str, n_words: int, codes: list[str]):
    return parse_record(
        {
            "id": note_id,
            "text": " ".join(["word"] * n_words),
            "codes": [{"system": "ICD-10-CM", "code": c} for c in codes],
        }
    )


def test_f1_by_note_length():
    records = [record("a", 3, ["I10"]), record("b", 5, ["E11.9"]), record("c", 20, ["I10", "E11.9"])]
    labels = LabelSpace((("ICD-10-CM", "I10"), ("ICD-10-CM", "E11.9")))
    y = labels.encode_many(records)
    s = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.9]])
    by = f1_by_note_length(records, y, s, 0.5, edges=(0, 4, 10)).set_index("bucket")
    assert list(by.index) == ["0-3", "4-9", "10+"] and by["n_notes"].tolist() == [1, 1, 1]
    # 0-3: note a right -> F1 1;  4-9: note b predicts I10 (fp), misses E11.9 (fn) -> 0;  10+: both right
    assert by.loc["0-3", "micro_f1"] == 1.0 and by.loc["4-9", "micro_f1"] == 0.0 and by.loc["10+", "micro_f1"] == 1.0
    assert (by.loc["4-9", "fp"], by.loc["4-9", "fn"]) == (1, 1)
    # default edges keep empty buckets so tables line up across models
    default = f1_by_note_length(records, y, s, 0.5)
    assert default["bucket"].tolist() == ["0-127", "128-255", "256-511", "512-1023", "1024+"]
    assert default["n_notes"].tolist() == [3, 0, 0, 0, 0]


def test_train_label_counts():
    records = [record("a", 1, ["I10"]), record("b", 1, ["I10", "E11.9"])]
    assert train_label_counts(records) == {("ICD-10-CM", "I10"): 2, ("ICD-10-CM", "E11.9"): 1}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="label space has 4"):
        per_code_table(Y[:, :3], S[:, :3], 0.5, LABELS)
    with pytest.raises(ValueError, match="2 records but 3 rows"):
        f1_by_note_length([record("a", 1, []), record("b", 1, [])], Y, S, 0.5)
