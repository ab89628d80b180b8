"""TfidfBaseline on small hand-made notes: shapes, decision rule, ungrounded output, one-class labels."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medcoder.data.labels import LabelSpace
from medcoder.data.schema import CodeAssignment, NoteRecord
from medcoder.models.tfidf_baseline import TfidfBaseline, predictions_from_scores

PHRASES = {"I10": "essential hypertension", "E11.9": "type 2 diabetes", "J18.9": "community acquired pneumonia"}


def _note(i: int, codes: list[str], extra: str = "") -> NoteRecord:
    """A short note naming its conditions, with filler so notes are not identical."""
    findings = "; ".join(PHRASES[c] for c in codes) or "no acute problems"
    text = f"Visit {i}. Assessment: {findings}. Vitals stable, follow up in {i % 5 + 1} weeks. {extra}"
    return NoteRecord(id=f"n{i:03d}", text=text, codes=tuple(CodeAssignment("ICD-10-CM", c) for c in codes))


def _corpus(n: int, offset: int = 0) -> list[NoteRecord]:
    combos = [["I10"], ["E11.9"], ["J18.9"], ["I10", "E11.9"], [], ["I10", "J18.9"]]
    return [_note(offset + i, combos[i % len(combos)]) for i in range(n)]


def test_scores_have_label_space_columns_and_separate_classes():
    train, test = _corpus(60), _corpus(12, offset=100)
    space = LabelSpace.from_records(train)
    model = TfidfBaseline(C=10.0).fit(train, space)
    scores = model.predict_scores(test)
    assert scores.shape == (12, 3) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    y = space.encode_many(test)
    # every gold label outscores every absent one of the same column
    for j in range(len(space)):
        assert scores[y[:, j] == 1, j].min() > scores[y[:, j] == 0, j].max()
    assert model.predict_scores([]).shape == (0, 3)


def test_same_data_and_seed_give_identical_scores():
    train, test = _corpus(40), _corpus(8, offset=100)
    space = LabelSpace.from_records(train)
    first = TfidfBaseline(C=100.0, class_weight="balanced").fit(train, space).predict_scores(test)
    second = TfidfBaseline(C=100.0, class_weight="balanced").fit(train, space).predict_scores(test)
    np.testing.assert_array_equal(first, second)


def test_predict_uses_strict_threshold_and_marks_codes_ungrounded():
    train = _corpus(60)
    space = LabelSpace.from_records(train)
    model = TfidfBaseline(C=10.0).fit(train, space)
    note = _note(500, ["I10", "E11.9"])
    (prediction,) = model.predict([note], threshold=0.5)
    assert prediction.id == note.id
    assert prediction.code_set() == {("ICD-10-CM", "I10"), ("ICD-10-CM", "E11.9")}
    assert all(not c.grounded and c.evidence == () for c in prediction.codes)
    assert [c.score for c in prediction.codes] == sorted((c.score for c in prediction.codes), reverse=True)
    # the metrics' rule: a score equal to the threshold is not predicted
    scores = np.array([[0.5, 0.7, 0.2]], dtype=np.float32)
    (exact,) = predictions_from_scores([note], space, scores, threshold=0.5)
    assert exact.code_set() == {space.labels[1]}


def test_single_class_labels_get_constant_scores_and_a_named_warning(caplog):
    # Z23 is in every train note, K21.9 in none: neither can train a classifier.
    train = [
        NoteRecord(id=r.id, text=r.text, codes=r.codes + (CodeAssignment("ICD-10-CM", "Z23"),)) for r in _corpus(30)
    ]
    space = LabelSpace(LabelSpace.from_records(train).labels + (("ICD-10-CM", "K21.9"),))
    with caplog.at_level(logging.WARNING, logger="medcoder.models.tfidf_baseline"):
        model = TfidfBaseline().fit(train, space)
    assert set(model.constant_labels) == {("ICD-10-CM", "Z23"), ("ICD-10-CM", "K21.9")}
    assert "ICD-10-CM:Z23" in caplog.text and "ICD-10-CM:K21.9" in caplog.text and "single class" in caplog.text
    scores = model.predict_scores(_corpus(4, offset=200))
    assert (scores[:, space.index(("ICD-10-CM", "Z23"))] == 1.0).all()
    assert (scores[:, space.index(("ICD-10-CM", "K21.9"))] == 0.0).all()


def test_no_note_text_in_warnings(caplog):
    secret = "CANARYWORD"
    train = [_note(i, ["I10"], extra=secret) for i in range(5)]
    with caplog.at_level(logging.DEBUG):
        TfidfBaseline().fit(train, LabelSpace.from_records(train))
    assert caplog.records  # the single-class warning was emitted ...
    assert secret not in caplog.text  # ... without note text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"C": 0.0}, "C must be positive"), ({"class_weight": "auto"}, "class_weight must be None or 'balanced'")],
)
def test_bad_hyperparameters_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TfidfBaseline(**kwargs)


def test_misuse_is_a_clear_error():
    train = _corpus(6)
    with pytest.raises(RuntimeError, match="before fit"):
        TfidfBaseline().predict_scores(train)
    with pytest.raises(ValueError, match="label space is empty"):
        TfidfBaseline().fit(train, LabelSpace(()))
    with pytest.raises(ValueError, match="no training records"):
        TfidfBaseline().fit([], LabelSpace.from_records(train))
    with pytest.raises(ValueError, match=r"expected \(6, 3\)"):
        predictions_from_scores(train, LabelSpace.from_records(train), np.zeros((6, 2)), 0.5)
