"""Invalid, ungrounded and distractor codes, over-generation, and calibration error."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve

from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import parse_record
from medcoder.metrics.hallucination import (
    calibration_bins,
    distractor_metrics,
    expected_calibration_error,
    invalid_code_rate,
    over_generation_ratio,
    ungrounded_code_rate,
)

TEXT = "No pneumonia. Mother had breast cancer. History of stroke. Possible influenza. Rule out sepsis. Cough."


def at(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return start, start + len(phrase)


def mention(phrase: str, code: str, status: str) -> dict:
    start, end = at(phrase)
    return {"start": start, "end": end, "code": code, "status": status}


def note(note_id: str, setting: str | None, gold: list[str], mentions: list[dict]):
    obj = {
        "id": note_id,
        "text": TEXT,
        "codes": [{"system": "ICD-10-CM", "code": c} for c in gold],
        "mentions": mentions,
    }
    if setting:
        obj["setting"] = setting
    return parse_record(obj)


def predicted(note_id: str, *codes: str, grounded: bool = True, system: str = "ICD-10-CM") -> NotePrediction:
    return NotePrediction(
        id=note_id, codes=tuple(PredictedCode(system=system, code=c, score=0.9, grounded=grounded) for c in codes)
    )


MENTIONS = [
    mention("pneumonia", "J18.9", "negated"),
    mention("breast cancer", "C50.919", "family"),
    mention("stroke", "I63.9", "historical"),
    mention("influenza", "J11.1", "uncertain"),
    mention("sepsis", "A41.9", "hypothetical"),
]


def test_invalid_code_rate_uses_the_given_validator():
    valid = {("ICD-10-CM", "R05.9"), ("ICD-10-CM", "J18.9")}
    preds = [predicted("a", "R05.9", "R05"), predicted("b", "J18.9", "Z99.99")]
    # 2 of 4 predicted codes are not in the valid set
    assert invalid_code_rate(preds, lambda system, code: (system, code) in valid) == pytest.approx(2 / 4)


def test_ungrounded_code_rate():
    preds = [predicted("a", "R05.9", "J18.9"), predicted("b", "I10", grounded=False)]
    assert ungrounded_code_rate(preds) == pytest.approx(1 / 3)


def test_rates_with_no_predicted_codes_are_zero():
    preds = [predicted("a"), predicted("b")]
    assert invalid_code_rate(preds, lambda s, c: False) == 0.0
    assert ungrounded_code_rate(preds) == 0.0


def test_distractor_rate_outpatient_counts_uncertain():
    records = [note("a", "outpatient", ["R05.9"], MENTIONS)]
    # the coder wrongly codes the negated pneumonia and the uncertain influenza
    preds = [predicted("a", "R05.9", "J18.9", "J11.1")]
    m = distractor_metrics(records, preds)
    # 5 distractor pairs (negated, family, historical, uncertain [outpatient], hypothetical), 2 predicted
    assert m["distractor_pairs"] == 5.0 and m["distractor_false_positives"] == 2.0
    assert m["distractor_false_positive_rate"] == pytest.approx(2 / 5)
    assert m["distractor_false_positive_rate_negated"] == 1.0
    assert m["distractor_false_positive_rate_uncertain"] == 1.0
    assert m["distractor_false_positive_rate_family"] == 0.0 and m["distractor_pairs_family"] == 1.0
    assert all(type(v) is float for v in m.values())


def test_inpatient_uncertain_diagnosis_is_not_a_distractor():
    # inpatient: uncertain diagnoses at discharge are coded as if established
    records = [note("a", "inpatient", [], MENTIONS)]
    m = distractor_metrics(records, [predicted("a", "J11.1")])
    assert m["distractor_pairs"] == 4.0 and m["distractor_false_positives"] == 0.0
    assert m["distractor_pairs_uncertain"] == 0.0
    # unknown setting: not a distractor either
    assert distractor_metrics([note("b", None, [], MENTIONS)], [predicted("b")])["distractor_pairs_uncertain"] == 0.0


def test_a_mentioned_code_that_is_also_gold_is_not_a_distractor():
    # stroke mentioned as history AND coded (e.g. sequela documented elsewhere): predicting it is right
    records = [note("a", "outpatient", ["I63.9"], [mention("stroke", "I63.9", "historical")])]
    m = distractor_metrics(records, [predicted("a", "I63.9")])
    assert m["distractor_pairs"] == 0.0 and m["distractor_false_positive_rate"] == 0.0


def test_code_mentioned_with_two_statuses_counts_once_overall():
    mentions = [mention("pneumonia", "J18.9", "negated"), mention("stroke", "J18.9", "historical")]
    m = distractor_metrics([note("a", "outpatient", [], mentions)], [predicted("a", "J18.9")])
    assert m["distractor_pairs"] == 1.0 and m["distractor_false_positives"] == 1.0
    assert m["distractor_false_positives_negated"] == 1.0 and m["distractor_false_positives_historical"] == 1.0


def test_codes_in_scope_drop_distractors_the_coder_cannot_predict():
    records = [note("a", "outpatient", [], MENTIONS)]
    m = distractor_metrics(records, [predicted("a", "J18.9")], codes_in_scope={"J18.9", "I63.9"})
    assert m["distractor_pairs"] == 2.0 and m["distractor_false_positive_rate"] == pytest.approx(1 / 2)


def test_over_generation_ratio():
    records = [note("a", None, ["R05.9"], []), note("b", None, ["R05.9", "I10"], [])]
    preds = [predicted("a", "R05.9", "J18.9"), predicted("b", "R05.9", "I10", "E11.9", "J11.1")]
    assert over_generation_ratio(records, preds) == pytest.approx(6 / 3)
    labels = {("ICD-10-CM", c) for c in ("R05.9", "I10", "J18.9")}
    # within the label space: gold 3, predicted 4 (E11.9 and J11.1 are outside)
    assert over_generation_ratio(records, preds, labels=labels) == pytest.approx(4 / 3)
    assert over_generation_ratio(records, [predicted("a"), predicted("b")]) == 0.0
    no_gold = [note("a", None, [], []), note("b", None, [], [])]
    assert over_generation_ratio(no_gold, [predicted("a"), predicted("b")]) == 0.0
    assert math.isnan(over_generation_ratio(no_gold, preds))


def test_ece_by_hand():
    # 4 pairs. Bins of width 0.1: 0.05 and 0.05 in bin 0 (one gold), 0.95 and 0.85 in bins 9 and 8.
    y = np.array([[0, 1], [1, 1]])
    s = np.array([[0.05, 0.05], [0.95, 0.85]])
    # bin0: mean score .05, positive rate .5, weight 2/4 -> .5 * .45
    # bin8: .85 vs 1 -> 1/4 * .15;  bin9: .95 vs 1 -> 1/4 * .05
    expected = 0.5 * 0.45 + 0.25 * 0.15 + 0.25 * 0.05
    assert expected_calibration_error(y, s) == pytest.approx(expected)


def test_ece_is_zero_for_perfect_calibration_and_matches_sklearn_bins():
    # each bin holds scores equal to its positive rate: perfectly calibrated
    y = np.array([[0, 0, 0, 0, 1], [1, 1, 1, 1, 0]]).T  # bin 0.2: 1/5 gold; bin 0.8: 4/5 gold
    s = np.array([[0.2] * 5, [0.8] * 5]).T
    assert expected_calibration_error(y, s) == pytest.approx(0.0)

    rng = np.random.default_rng(0)
    y = (rng.random((50, 6)) < 0.3).astype(int)
    s = np.clip(0.6 * y + 0.5 * rng.random((50, 6)), 0, 1)
    table = calibration_bins(y, s, n_bins=10).query("count > 0")
    prob_true, prob_pred = calibration_curve(y.ravel(), s.ravel(), n_bins=10, strategy="uniform")
    np.testing.assert_allclose(table["positive_rate"], prob_true)
    np.testing.assert_allclose(table["mean_score"], prob_pred)
    weights = table["count"] / table["count"].sum()
    assert expected_calibration_error(y, s) == pytest.approx(float((weights * np.abs(prob_true - prob_pred)).sum()))


def test_calibration_bins_are_right_closed():
    table = calibration_bins(np.array([[0, 1, 0]]), np.array([[0.0, 0.1, 0.1000001]]), n_bins=10)
    assert table["count"].tolist()[:2] == [2, 1]  # 0.0 and exactly 0.1 in the first bin


def test_ece_all_zero_scores():
    y = np.array([[1, 0, 0, 0]])
    # one bin: mean score 0, positive rate 1/4
    assert expected_calibration_error(y, np.zeros((1, 4))) == pytest.approx(0.25)
    assert type(expected_calibration_error(y, np.zeros((1, 4)))) is float
