"""What grounding and each guideline rule dropped or added is counted against the gold: which layer helped."""

from __future__ import annotations

import pytest

from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import CodeAssignment, NoteRecord
from medcoder.inference.guidelines import Patient, apply_guidelines
from medcoder.metrics.layers import grounding_effects, rule_effects

ICD = "ICD-10-CM"
PATIENT = Patient(60, "M", "outpatient")


def predicted(*codes: str) -> NotePrediction:
    return NotePrediction("n1", tuple(PredictedCode(ICD, c, 0.9, ((i * 10, i * 10 + 5),), True, 0.8)
                                      for i, c in enumerate(codes)))  # fmt: skip


def record(*gold: str) -> NoteRecord:
    return NoteRecord(id="n1", text="x" * 60, codes=tuple(CodeAssignment(ICD, c) for c in gold))


def test_a_rule_that_removes_a_gold_symptom_is_counted_as_costing_a_true_positive():
    shipped = apply_guidelines(predicted("J18.9", "R50.9"), PATIENT, rules=["integral_symptoms"])
    effects = rule_effects([record("J18.9", "R50.9")], [shipped])
    assert effects["rules/integral_symptoms/removed"] == 1.0
    assert effects["rules/integral_symptoms/removed_gold"] == 1.0
    assert effects["rules/integral_symptoms/net_gold"] == -1.0
    # by the Official Guidelines' gold (no fever code beside pneumonia) the same removal costs nothing
    assert rule_effects([record("J18.9")], [shipped])["rules/integral_symptoms/net_gold"] == 0.0


def test_a_combination_rule_counts_what_it_added_and_removed():
    shipped = apply_guidelines(predicted("I10", "N18.30"), PATIENT, rules=["hypertension_combinations"])
    effects = rule_effects([record("I12.9", "N18.30")], [shipped])
    assert effects["rules/hypertension_combinations/added_gold"] == 1.0
    assert effects["rules/hypertension_combinations/removed"] == 1.0  # I10
    assert effects["rules/hypertension_combinations/removed_gold"] == 0.0
    assert effects["rules/hypertension_combinations/net_gold"] == 1.0


def test_rules_that_did_not_fire_have_no_keys_and_notes_must_match():
    shipped = apply_guidelines(predicted("E78.5"), PATIENT)
    assert rule_effects([record("E78.5")], [shipped]) == {}
    with pytest.raises(ValueError, match="no prediction"):
        rule_effects([record("E78.5"), NoteRecord(id="n2", text="y")], [shipped])


def test_codes_the_grounding_dropped_are_counted_with_the_gold_among_them():
    prediction = NotePrediction("n1", (), context_blocked=((ICD, "I10"), (ICD, "J18.9"), (ICD, "R50.9")),
                                context_blocked_status=(
                                    (ICD, "I10", "negated"), (ICD, "J18.9", "negated"), (ICD, "R50.9", "historical")),
                                verifier_rejected=((ICD, "E11.9"),))  # fmt: skip
    effects = grounding_effects([record("J18.9", "E11.9", "R50.9")], [prediction])
    assert effects == {
        "grounding/context_blocked": 3.0,
        "grounding/context_blocked_gold": 2.0,
        "grounding/verifier_rejected": 1.0,
        "grounding/verifier_rejected_gold": 1.0,
        # the gold codes the context check blocked, by the status that blocked them: I10 is not gold
        "grounding/context_blocked_gold/historical": 1.0,
        "grounding/context_blocked_gold/negated": 1.0,
    }
