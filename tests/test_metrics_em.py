"""E/M level metrics: accuracy over notes with a gold E/M code, macro-F1, confusion matrix."""

from __future__ import annotations

import math

import pytest

from medcoder.codes.em import is_visit_em
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import parse_record
from medcoder.metrics.em import em_confusion_matrix, em_metrics, predicted_em_class


def note(note_id: str, *cpt: str):
    codes = [{"system": "ICD-10-CM", "code": "I10"}] + [{"system": "CPT", "code": c} for c in cpt]
    return parse_record({"id": note_id, "text": "Follow-up visit.", "codes": codes})


def pred(note_id: str, em: str | None) -> NotePrediction:
    return NotePrediction(id=note_id, em_code=em, em_score=0.8 if em else None)


def test_is_visit_em():
    assert is_visit_em("CPT", "99213") and is_visit_em("CPT", "99202") and is_visit_em("CPT", "99392")
    assert not is_visit_em("CPT", "99201")  # deleted in 2021
    # services added to a visit are not its level: a visit with tobacco counselling has one E/M level
    assert not is_visit_em("CPT", "99406") and not is_visit_em("CPT", "99210") and not is_visit_em("CPT", "99499")
    assert not is_visit_em("CPT", "93000") and not is_visit_em("ICD-10-CM", "I10") and not is_visit_em("CPT", "0001U")


RECORDS = [note("a", "99213"), note("b", "99213"), note("c", "99214"), note("d", "99215"), note("e")]
PREDS = [pred("a", "99213"), pred("b", "99214"), pred("c", "99214"), pred("d", None), pred("e", "99213")]


def test_accuracy_and_macro_f1_by_hand():
    m = em_metrics(RECORDS, PREDS)
    # notes with gold E/M: a b c d -> right: a, c -> 2/4 (e has no gold E/M and is not in accuracy)
    assert m["em_accuracy"] == pytest.approx(2 / 4) and m["em_notes"] == 4.0
    # over all notes, classes present in gold: 99213, 99214, 99215
    #   99213: gold {a,b}, predicted {a,e}  -> tp1 fp1 fn1 -> F1 = 2/4
    #   99214: gold {c},   predicted {b,c}  -> tp1 fp1 fn0 -> F1 = 2/3
    #   99215: gold {d},   predicted {}     -> F1 = 0
    assert m["em_macro_f1"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert all(type(v) is float for v in m.values())


def test_confusion_matrix_has_labelled_classes_and_none():
    cm = em_confusion_matrix(RECORDS, PREDS)
    assert list(cm.index) == ["99213", "99214", "99215", "none"] == list(cm.columns)
    assert cm.index.name == "gold" and cm.columns.name == "predicted"
    assert cm.loc["99213", "99214"] == 1 and cm.loc["99215", "none"] == 1 and cm.loc["none", "99213"] == 1
    assert int(cm.to_numpy().sum()) == len(RECORDS)


def test_prediction_falls_back_to_top_scoring_em_code_among_codes():
    p = NotePrediction(
        id="a",
        codes=(
            PredictedCode("CPT", "99213", 0.6),
            PredictedCode("CPT", "99214", 0.7),
            PredictedCode("ICD-10-CM", "I10", 0.99),
        ),
    )
    assert predicted_em_class(p) == "99214"
    assert predicted_em_class(NotePrediction(id="a", codes=(PredictedCode("ICD-10-CM", "I10", 0.9),))) == "none"
    assert (
        predicted_em_class(NotePrediction(id="a", em_code="99212", codes=(PredictedCode("CPT", "99214", 0.9),)))
        == "99212"
    )


def test_no_gold_em_anywhere_gives_nan():
    m = em_metrics([note("a")], [pred("a", "99213")])
    assert math.isnan(m["em_accuracy"]) and math.isnan(m["em_macro_f1"]) and m["em_notes"] == 0.0


def test_two_gold_em_codes_on_one_note_is_an_error():
    with pytest.raises(ValueError, match="note a has 2 gold E/M codes"):
        em_metrics([note("a", "99213", "99214")], [pred("a", None)])
