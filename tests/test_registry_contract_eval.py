"""Scoring contract output lines (pure data, no model): predictions are exactly the returned codes,
hallucination metrics come through, metrics that need a score matrix are left out, broken lines and
error entries count as predicting nothing, and nothing the model sees includes the gold codes."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import pytest

from medcoder.codes import code_set_versions, describe, is_valid_code
from medcoder.codes.icd11 import Icd11Translator
from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import CodeAssignment, Mention, NoteRecord, RecordError, records_digest, write_notes
from medcoder.evaluation.contract import (
    SCORE_MATRIX_METRICS,
    contract_input,
    load_eval_set,
    prediction_from_line,
    score_contract_lines,
)
from medcoder.inference.contract import ContractError, render_prediction
from medcoder.inference.routing import RoutingPolicy
from medcoder.metrics import evaluate_split

T1 = "Assessment: type 2 diabetes with hyperglycemia. Essential hypertension. Chest pain."
T2 = "Community acquired pneumonia. No heart failure. Family history of colon cancer."
MODEL = {"name": "medcoder", "version": "1", "run_id": "r1", "code_sets": code_set_versions()}


def span(text: str, phrase: str) -> tuple[int, int]:
    start = text.index(phrase)
    return (start, start + len(phrase))


def records() -> list[NoteRecord]:
    return [
        NoteRecord(
            id="n1",
            text=T1,
            setting="outpatient",
            age=61,
            sex="F",
            codes=(
                CodeAssignment("ICD-10-CM", "E11.65", (span(T1, "type 2 diabetes with hyperglycemia"),)),
                CodeAssignment("ICD-10-CM", "I10", (span(T1, "Essential hypertension"),)),
            ),
        ),
        NoteRecord(
            id="n2",
            text=T2,
            codes=(CodeAssignment("ICD-10-CM", "J18.9", (span(T2, "Community acquired pneumonia"),)),),
            mentions=(Mention(*span(T2, "heart failure"), code="I50.9", status="negated"),),
        ),
    ]


def predictions() -> list[NotePrediction]:
    """n1: E11.65 right (evidence exact), I10 missed, R07.9 wrong and ungrounded; n2: J18.9 right,
    and the negated heart failure coded (a distractor false positive)."""
    return [
        NotePrediction(
            id="n1",
            codes=(
                PredictedCode("ICD-10-CM", "E11.65", 0.93, (span(T1, "type 2 diabetes with hyperglycemia"),), True),
                PredictedCode("ICD-10-CM", "R07.9", 0.81, (), False),
            ),
        ),
        NotePrediction(
            id="n2",
            codes=(
                PredictedCode("ICD-10-CM", "J18.9", 0.88, (span(T2, "Community acquired pneumonia"),), True),
                PredictedCode("ICD-10-CM", "I50.9", 0.75, (span(T2, "heart failure"),), False),
            ),
        ),
    ]


def render(record: NoteRecord, pred: NotePrediction) -> dict:
    return render_prediction(
        record.id,
        record.text,
        pred,
        model_info=MODEL,
        policy=RoutingPolicy(),
        translator=Icd11Translator.packaged(),
        is_valid=is_valid_code,
        describe=describe,
    )


def lines() -> list[dict]:
    return [render(r, p) for r, p in zip(records(), predictions())]


def test_contract_metrics_equal_the_metrics_of_the_returned_codes():
    score = score_contract_lines(records(), lines())
    m = score.metrics
    # gold {E11.65, I10, J18.9}; returned {E11.65, R07.9, J18.9, I50.9}: tp 2, fp 2, fn 1
    assert m["micro_precision"] == pytest.approx(2 / 4)
    assert m["micro_recall"] == pytest.approx(2 / 3)
    assert m["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    assert m["ungrounded_code_rate"] == pytest.approx(2 / 4)
    assert m["distractor_false_positive_rate"] == 1.0 and m["distractor_pairs"] == 1.0
    assert m["invalid_code_rate"] == 0.0
    assert m["evidence_exact_span_recall"] == pytest.approx(2 / 3)
    assert m["contract_violation_rate"] == 0.0 and m["contract_error_rate"] == 0.0
    assert m["review_required_rate"] == 1.0  # both notes carry an ungrounded code
    assert m["notes"] == 2.0
    assert score.per_code.set_index("code").loc["I10", "fn"] == 1
    assert "average_precision" not in score.per_code.columns


def test_contract_metrics_match_evaluate_split_on_the_same_predictions():
    """The round trip through the contract loses nothing the decision-based metrics use."""
    recs = records()
    space = LabelSpace(
        tuple(sorted({*LabelSpace.from_records(recs).labels, ("ICD-10-CM", "I50.9"), ("ICD-10-CM", "R07.9")}))
    )
    direct = predictions()
    y = np.zeros((len(recs), len(space)))
    for i, p in enumerate(direct):
        for c in p.codes:
            if (c.system, c.code) in space:
                y[i, space.index((c.system, c.code))] = c.score
    expected = evaluate_split(recs, space, y, 0.5, predictions=direct, is_valid=is_valid_code).metrics
    got = score_contract_lines(recs, lines(), label_space=space).metrics
    for key in (
        "micro_f1",
        "macro_f1",
        "exact_match",
        "ungrounded_code_rate",
        "evidence_exact_token_f1",
        "distractor_false_positive_rate",
        "over_generation_ratio",
    ):
        assert got[key] == pytest.approx(expected[key]), key


def test_score_matrix_metrics_are_left_out_and_are_real_metric_keys():
    recs = records()
    space = LabelSpace.from_records(recs)
    full = evaluate_split(recs, space, np.full((2, len(space)), 0.6), 0.5).metrics
    assert set(SCORE_MATRIX_METRICS) <= set(full)  # a renamed metric would otherwise slip through
    got = score_contract_lines(recs, lines()).metrics
    assert not set(SCORE_MATRIX_METRICS) & set(got)


def test_label_space_scope_ignores_gold_codes_outside_it():
    space = LabelSpace(
        (("ICD-10-CM", "E11.65"), ("ICD-10-CM", "J18.9"), ("ICD-10-CM", "R07.9"), ("ICD-10-CM", "I50.9"))
    )
    m = score_contract_lines(records(), lines(), label_space=space).metrics
    assert m["micro_recall"] == 1.0  # the missed I10 is outside the scope
    assert m["labels"] == 4.0


def test_invalid_codes_in_a_line_are_measured_not_hidden():
    broken = lines()
    code = broken[1]["codes"][0]
    assert code["code"] == "J18.9"
    code["code"] = "J18"  # canonical form, but a category: not billable
    m = score_contract_lines(records(), broken).metrics
    assert m["invalid_code_rate"] == pytest.approx(1 / 4)
    assert m["contract_violation_rate"] == 0.0


def test_a_line_that_breaks_the_contract_counts_as_a_violation_and_predicts_nothing():
    broken = lines()
    broken[0]["codes"][0]["evidence"][0]["start"] += 1  # evidence text no longer the note's own
    score = score_contract_lines(records(), broken)
    assert score.metrics["contract_violation_rate"] == 0.5
    assert set(score.violations) == {"n1"}
    assert T1[:20] not in score.violations["n1"]  # the message names fields, never note text
    assert score.metrics["micro_recall"] == pytest.approx(1 / 3)  # only n2's J18.9 found

    swapped = list(reversed(lines()))
    assert set(score_contract_lines(records(), swapped).violations) == {"n1", "n2"}


def test_error_entries_count_as_predicting_nothing():
    out = lines()
    out[1] = {"id": "n2", "error": {"kind": "too_long", "message": "field 'text' has 81 characters, the limit is 50"}}
    score = score_contract_lines(records(), out)
    assert score.error_entries == {"n2": "too_long"}
    assert score.metrics["contract_error_rate"] == 0.5
    assert score.metrics["micro_recall"] == pytest.approx(1 / 3)


def test_json_string_lines_are_accepted():
    as_text = [json.dumps(line) for line in lines()]
    expected = score_contract_lines(records(), lines()).metrics
    assert score_contract_lines(records(), as_text).metrics == pytest.approx(expected, nan_ok=True)


def test_output_of_the_wrong_length_is_not_scorable():
    with pytest.raises(ContractError, match="returned 1 output lines for 2 input notes"):
        score_contract_lines(records(), lines()[:1])


def test_prediction_from_line_keeps_codes_evidence_grounding_and_em():
    line = copy.deepcopy(lines()[0])
    em_start, em_end = span(T1, "type 2 diabetes with hyperglycemia")
    line["em"] = {
        "code": "99214",
        "score": 0.66,
        "evidence": [{"start": em_start, "end": em_end, "text": T1[em_start:em_end]}],
    }
    p = prediction_from_line(line)
    assert p.code_set() == {("ICD-10-CM", "E11.65"), ("ICD-10-CM", "R07.9")}
    e11 = next(c for c in p.codes if c.code == "E11.65")
    assert e11.grounded and e11.evidence == (span(T1, "type 2 diabetes with hyperglycemia"),)
    assert (p.em_code, p.em_score, p.em_evidence) == ("99214", 0.66, ((em_start, em_end),))


def test_model_input_carries_no_gold_codes_or_mentions():
    sent = contract_input(records()[0])
    assert sent == {"id": "n1", "text": T1, "setting": "outpatient", "age": 61, "sex": "F"}
    assert contract_input(records()[1]) == {"id": "n2", "text": T2}


def test_eval_set_is_pinned_by_its_digest_and_validated(tmp_path):
    path = tmp_path / "eval.jsonl"
    write_notes(records(), path)
    eval_set = load_eval_set(path)
    assert eval_set.sha256 == records_digest(records()) and len(eval_set.records) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(path.read_text(encoding="utf-8") + '{"id": "n3", "text": 5}\n', encoding="utf-8")
    with pytest.raises(RecordError, match=r"bad.jsonl:3 \(record n3\): field 'text'"):
        load_eval_set(bad)
    with pytest.raises(FileNotFoundError, match="evaluation set not found"):
        load_eval_set(tmp_path / "missing.jsonl")


def test_em_levels_are_scored_by_the_em_metrics_not_as_note_level_labels():
    """The contract returns the visit level in `em`; in the default scope a gold E/M code is neither a
    missed label nor a hit, and em_accuracy scores the level."""
    recs = records()
    with_em = [replace(recs[0], codes=recs[0].codes + (CodeAssignment("CPT", "99214"),)), recs[1]]
    out = lines()
    out[0]["em"] = {"code": "99214", "score": 0.7, "evidence": []}
    plain = score_contract_lines(records(), lines()).metrics
    m = score_contract_lines(with_em, out).metrics
    assert m["micro_f1"] == plain["micro_f1"] and m["labels"] == plain["labels"]
    assert m["em_accuracy"] == 1.0 and m["em_notes"] == 1.0


def test_without_gold_codes_or_distractor_mentions_the_gated_rates_are_undefined():
    """0 vs 0 must never pass a gate: micro-F1 with no gold code, and the distractor rate with no
    distractor mention in scope, are NaN (and NaN fails every gate, see test_registry_gates)."""
    stripped = [replace(r, codes=(), mentions=()) for r in records()]
    m = score_contract_lines(stripped, lines()).metrics
    assert np.isnan(m["micro_f1"]) and np.isnan(m["micro_recall"]) and m["micro_precision"] == 0.0
    assert m["distractor_pairs"] == 0.0 and np.isnan(m["distractor_false_positive_rate"])
