"""Evidence metrics (the four MDACE variants) and seqeval span F1 over IOB2 tags."""

from __future__ import annotations

import pytest

from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import parse_record
from medcoder.metrics.evidence import evidence_counts, evidence_metrics, evidence_tokens, seqeval_span_f1, trim_span

DM, HTN = ("ICD-10-CM", "E11.9"), ("ICD-10-CM", "I10")
TEXT = "HPI: type 2 diabetes. Also hypertension. Assessment: Type 2 Diabetes, stable."


def span_of(phrase: str, text: str = TEXT, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(phrase, start + 1)
    return (start, start + len(phrase))


def record(note_id: str = "n1", text: str = TEXT, codes=None):
    codes = codes if codes is not None else [(DM, [span_of("type 2 diabetes")]), (HTN, [span_of("hypertension")])]
    return parse_record(
        {
            "id": note_id,
            "text": text,
            "codes": [{"system": s, "code": c, "evidence": [list(x) for x in spans]} for (s, c), spans in codes],
        }
    )


def prediction(note_id: str = "n1", codes=()):
    return NotePrediction(
        id=note_id,
        codes=tuple(
            PredictedCode(system=s, code=c, score=0.9, evidence=tuple(spans), grounded=True) for (s, c), spans in codes
        ),
    )


def counts(records, predictions, **kw):
    return {k: (v.tp, v.fp, v.fn) for k, v in evidence_counts(records, predictions, **kw).items()}


def test_perfect_evidence_scores_one_everywhere():
    pred = prediction(codes=[(DM, [span_of("type 2 diabetes")]), (HTN, [span_of("hypertension")])])
    m = evidence_metrics([record()], [pred])
    assert set(m) == {
        f"evidence_{v}_{s}"
        for v in ("exact_span", "position_independent_span", "exact_token", "position_independent_token")
        for s in ("precision", "recall", "f1")
    }
    assert all(v == 1.0 and type(v) is float for v in m.values())


def test_same_words_elsewhere_match_only_position_independently():
    # predicted DM evidence is the assessment's "Type 2 Diabetes" (other place, other case); HTN missed
    pred = prediction(codes=[(DM, [span_of("Type 2 Diabetes")])])
    c = counts([record()], [pred])
    # exact span: gold {DM@hpi, HTN}, predicted {DM@assessment} -> tp 0, fp 1, fn 2
    assert c["exact_span"] == (0, 1, 2)
    # position independent: ("type 2 diabetes", DM) matches after lower-casing -> tp 1, fp 0, fn 1 (HTN)
    assert c["position_independent_span"] == (1, 0, 1)
    # exact tokens: gold {type, 2, diabetes}@hpi + {hypertension}; predicted 3 tokens elsewhere
    assert c["exact_token"] == (0, 3, 4)
    # position-independent tokens: type, 2, diabetes match; hypertension missed
    assert c["position_independent_token"] == (3, 0, 1)
    m = evidence_metrics([record()], [pred])
    assert m["evidence_position_independent_span_f1"] == pytest.approx(2 * 1 / (2 * 1 + 0 + 1))


def test_partial_overlap_gets_token_credit_but_no_span_credit():
    pred = prediction(codes=[(DM, [span_of("2 diabetes")]), (HTN, [span_of("hypertension")])])
    c = counts([record()], [pred])
    assert c["exact_span"] == (1, 1, 1)  # HTN right; DM span wrong = one fp and one fn
    # tokens: gold type,2,diabetes,hypertension; predicted 2,diabetes,hypertension -> tp 3, fp 0, fn 1
    assert c["exact_token"] == (3, 0, 1)
    m = evidence_metrics([record()], [pred])
    assert m["evidence_exact_token_precision"] == 1.0
    assert m["evidence_exact_token_recall"] == pytest.approx(3 / 4)


def test_right_span_wrong_code_is_a_false_positive_and_a_false_negative():
    pred = prediction(codes=[(("ICD-10-CM", "E11.65"), [span_of("type 2 diabetes")]), (HTN, [span_of("hypertension")])])
    assert counts([record()], [pred])["exact_span"] == (1, 1, 1)


def test_trimming_ignores_punctuation_and_white_space_at_span_ends():
    rec = record(codes=[(DM, [span_of(" type 2 diabetes.")])])
    pred = prediction(codes=[(DM, [span_of("type 2 diabetes")])])
    assert counts([rec], [pred])["exact_span"] == (1, 0, 0)
    assert counts([rec], [pred], trim=False)["exact_span"] == (0, 1, 1)
    assert trim_span("(a)", (0, 3)) == (0, 3)  # ')' is trimmed only at the start, '(' only at the end
    assert trim_span(")a(", (0, 3)) == (1, 2)


def test_duplicate_predicted_spans_count_once():
    pred = prediction(
        codes=[(DM, [span_of("type 2 diabetes"), span_of("type 2 diabetes")]), (HTN, [span_of("hypertension")])]
    )
    assert counts([record()], [pred])["exact_span"] == (2, 0, 0)


def test_evidence_on_a_note_without_gold_evidence_is_false_positive():
    no_evidence = record("n2", codes=[])
    pred = prediction("n2", codes=[(HTN, [span_of("hypertension")])])
    assert counts([no_evidence], [pred])["exact_span"] == (0, 1, 0)


def test_no_predictions_at_all():
    m = evidence_metrics([record()], [prediction()])
    assert m["evidence_exact_span_precision"] == 0.0 and m["evidence_exact_span_recall"] == 0.0


def test_label_filter_drops_codes_outside_the_label_space():
    pred = prediction(codes=[(DM, [span_of("type 2 diabetes")])])
    assert counts([record()], [pred])["exact_span"] == (1, 0, 1)
    assert counts([record()], [pred], labels={DM})["exact_span"] == (1, 0, 0)


def test_counts_sum_over_notes():
    recs = [record("a"), record("b")]
    preds = [prediction("a", codes=[(DM, [span_of("type 2 diabetes")])]), prediction("b")]
    # note a: tp 1, fn 1 (HTN); note b: fn 2
    assert counts(recs, preds)["exact_span"] == (1, 0, 3)


def test_token_definition():
    text = "A1c 9.8 on 12/03, BP 150/90; Type-2 DM"
    tokens = evidence_tokens(text, (0, len(text)))
    # numbers above 10 (12, 150, 90) are dropped, "03" (= 3) is kept; words are lower-cased
    assert [w for _, _, w in tokens] == ["a1c", "9", "8", "on", "03", "bp", "type", "2", "dm"]
    assert all(text[s:e].lower() == w for s, e, w in tokens)
    # only the part of the text inside the span
    s, e = span_of("Type-2", text)
    assert [w for _, _, w in evidence_tokens(text, (s, e))] == ["type", "2"]


def test_token_offsets_survive_lower_casing_that_changes_length():
    text = "İzmir fever"  # "İ".lower() is two characters
    tokens = evidence_tokens(text, (0, len(text)))
    assert tokens[1] == (6, 11, "fever") and text[6:11] == "fever"


def test_mismatched_predictions_are_an_error_naming_ids():
    with pytest.raises(ValueError, match="no prediction.*n1"):
        evidence_metrics([record("n1")], [prediction("other")])
    with pytest.raises(ValueError, match="duplicate"):
        evidence_metrics([record("n1")], [prediction("n1"), prediction("n1")])


def test_predicted_span_outside_the_text_is_an_error():
    pred = prediction(codes=[(DM, [(5, 10_000)])])
    with pytest.raises(ValueError, match="note n1.*outside the text"):
        evidence_metrics([record()], [pred])


# ---------------------------------------------------------------- seqeval
def test_seqeval_span_f1_by_hand():
    gold = [["B-DX", "I-DX", "O", "B-DX"], ["O", "B-PROC"]]
    pred = [["B-DX", "I-DX", "O", "O"], ["O", "B-PROC"]]
    # gold spans 3, predicted 2, both correct -> P 1, R 2/3, F1 = 2*1*(2/3) / (1 + 2/3) = 0.8
    f1 = seqeval_span_f1(gold, pred)
    assert f1 == pytest.approx(0.8) and type(f1) is float


def test_seqeval_strict_mode_rejects_spans_that_start_with_i():
    gold = [["B-DX", "I-DX"]]
    # in strict IOB2 "I-DX I-DX" starts no span (lenient conlleval mode would call it a match)
    assert seqeval_span_f1(gold, [["I-DX", "I-DX"]]) == 0.0
    # a span with the right boundaries but the wrong type does not count
    assert seqeval_span_f1(gold, [["B-PROC", "I-PROC"]]) == 0.0
    assert seqeval_span_f1(gold, [["B-DX", "I-DX"]]) == 1.0


def test_seqeval_no_spans_anywhere_is_zero():
    assert seqeval_span_f1([["O", "O"]], [["O", "O"]]) == 0.0


@pytest.mark.parametrize(
    ("gold", "pred", "message"),
    [
        ([["O"]], [["O"], ["O"]], "1 gold tag sequences but 2"),
        ([["O", "O"]], [["O"]], "sequence 0: 2 gold tags but 1"),
        ([["O", "DX"]], [["O", "O"]], "sequence 0, position 1: gold tag 'DX'"),
        ([["O"]], [["E-DX"]], "predicted tag 'E-DX'"),
    ],
)
def test_seqeval_bad_tags_are_clear_errors(gold, pred, message):
    with pytest.raises(ValueError, match=message):
        seqeval_span_f1(gold, pred)
