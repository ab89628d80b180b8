"""Review routing: each rule fires on what it should and only there; ungrounded codes are never
silently accepted; reasons are deterministic; the Hydra config builds the policy."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.inference.routing import RoutingPolicy, apply_routing

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "routing" / "default.yaml"
POLICY = RoutingPolicy(min_confidence=0.7, min_em_confidence=0.5, ungrounded="review")


def code(c: str, score: float = 0.9, grounded: bool = True, system: str = "ICD-10-CM") -> PredictedCode:
    return PredictedCode(system=system, code=c, score=score, evidence=((0, 4),) if grounded else (), grounded=grounded)


def route(*codes: PredictedCode, policy: RoutingPolicy = POLICY, em: str | None = None, em_score: float | None = 0.9):
    return apply_routing(NotePrediction(id="n1", codes=codes, em_code=em, em_score=em_score), policy)


def test_a_confident_grounded_routine_code_needs_no_review():
    kept, review = route(code("E11.65"), code("93000", system="CPT"), em="99213")
    assert [c.code for c in kept] == ["E11.65", "93000"]
    assert review == {"required": False, "reasons": []}


def test_a_diabetes_drug_code_without_a_diabetes_code_goes_to_a_coder():
    # "raise the metformin dose" coded Z79.84 while "his diabetes" gave nothing: a diagnosis is missing
    _, review = route(code("Z79.84"), code("I10"))
    assert review == {"required": True, "reasons": ["condition_not_coded:Z79.84"]}
    for condition in ("E11.65", "E10.9", "R73.03", "O24.410"):  # the condition coded: nothing to ask
        assert route(code("Z79.84"), code(condition))[1]["reasons"] == []
    assert route(code("Z79.4"))[1]["reasons"] == ["condition_not_coded:Z79.4"]
    assert route(code("Z79.01"), code("I10"))[1]["reasons"] == []  # an anticoagulant treats many conditions


def test_low_confidence_uses_the_threshold_strictly():
    kept, review = route(code("E11.65", score=0.69), code("I10", score=0.7))
    assert len(kept) == 2 and review["reasons"] == ["low_confidence:E11.65"]


def test_a_low_score_code_the_note_states_in_its_own_words_is_not_routed_for_low_confidence():
    stated = replace(code("J18.9", score=0.2), stated=True)
    _, review = route(stated, code("K21.9", score=0.2))
    assert review["reasons"] == ["low_confidence:K21.9"]
    # stated is about the quoted words: without grounded evidence it accepts nothing
    _, review = route(replace(stated, grounded=False))
    assert review["reasons"] == ["low_confidence:J18.9", "ungrounded:J18.9"]


@pytest.mark.parametrize(
    "ungrounded",
    [
        code("R07.9", grounded=False),
        PredictedCode("ICD-10-CM", "R07.9", 0.9, evidence=(), grounded=True),  # says grounded, has no span
        PredictedCode("ICD-10-CM", "R07.9", 0.9, evidence=((0, 4),), grounded=False),  # span on a negated mention
    ],
)
def test_ungrounded_codes_are_routed_or_dropped_never_accepted(ungrounded):
    kept, review = route(code("E11.65"), ungrounded)
    assert [c.code for c in kept] == ["E11.65", "R07.9"] and review == {
        "required": True,
        "reasons": ["ungrounded:R07.9"],
    }
    kept, review = route(code("E11.65"), ungrounded, policy=RoutingPolicy(ungrounded="drop"))
    assert [c.code for c in kept] == ["E11.65"] and review == {"required": False, "reasons": []}


@pytest.mark.parametrize(
    ("c", "high_risk"),
    [
        ("I21.4", True),
        ("I63.9", True),
        ("I61.9", True),
        ("A41.9", True),
        ("A40.0", True),
        ("R65.20", True),
        ("C50.919", True),
        ("C18.9", True),
        ("I25.2", False),  # old MI: history, not an acute event
        ("D05.10", False),  # carcinoma in situ is not an active malignant neoplasm
        ("Z85.3", False),  # personal history of breast cancer
        ("R65.10", False),  # SIRS without infection: not the sepsis prefix R65.2
        ("I10", False),
    ],
)
def test_high_risk_prefixes(c, high_risk):
    _, review = route(code(c))
    assert review["reasons"] == ([f"high_risk:{c}"] if high_risk else [])


@pytest.mark.parametrize(
    ("c", "setting", "high_risk"),
    [
        ("I21.4", "outpatient", True),  # an acute MI on an office claim: usually a history of MI (OIG)
        ("I21.4", None, True),  # an unknown setting is routed as outpatient
        ("I21.4", "inpatient", False),  # the discharge summary of the admission that treated it
        ("I63.9", "inpatient", False),
        ("C50.919", "inpatient", False),
        ("A41.9", "inpatient", True),  # sepsis is re-audited for clinical validation in every setting
        ("R65.20", "outpatient", True),
    ],
)
def test_acute_events_and_cancer_are_high_risk_outside_a_hospital_stay_only(c, setting, high_risk):
    _, review = apply_routing(NotePrediction(id="n1", codes=(code(c),)), POLICY, setting)
    assert review["reasons"] == ([f"high_risk:{c}"] if high_risk else [])


def test_high_risk_is_icd10cm_only():
    # A HCPCS code starting with C (hospital outpatient C-codes) is not a cancer diagnosis.
    assert not POLICY.is_high_risk("HCPCS", "C9399")
    assert POLICY.is_high_risk("ICD-10-CM", "C61")


@pytest.mark.parametrize(
    ("em", "em_score", "reasons"),
    [
        ("99215", 0.9, ["em_level:99215"]),
        ("99205", 0.9, ["em_level:99205"]),
        ("99214", 0.9, []),
        ("99214", 0.3, ["low_confidence:99214"]),
        ("99214", None, ["low_confidence:99214"]),
        ("99215", 0.3, ["low_confidence:99215", "em_level:99215"]),
    ],
)
def test_em_level_rules(em, em_score, reasons):
    assert route(em=em, em_score=em_score)[1]["reasons"] == reasons


def test_top_em_level_among_the_codes_is_routed_once():
    _, review = route(code("99215", system="CPT"), em="99215")
    assert review["reasons"] == ["em_level:99215"]


def test_reasons_are_ordered_by_rule_then_code_whatever_the_input_order():
    codes = [
        code("I50.22", score=0.4),
        code("R07.9", grounded=False),
        code("I21.4", score=0.5),
        code("A41.9", grounded=False),
    ]
    expected = [
        "low_confidence:I21.4",
        "low_confidence:I50.22",
        "low_confidence:99215",
        "ungrounded:A41.9",
        "ungrounded:R07.9",
        "high_risk:A41.9",
        "high_risk:I21.4",
        "em_level:99215",
    ]
    for perm in itertools.permutations(codes):
        assert route(*perm, em="99215", em_score=0.2)[1]["reasons"] == expected


def test_the_hydra_config_builds_the_policy_and_overrides_apply():
    cfg = OmegaConf.load(CONFIG)
    policy = instantiate(cfg)
    assert isinstance(policy, RoutingPolicy)
    assert policy.high_risk_prefixes == ("A40", "A41", "R65.2")
    assert policy.outpatient_high_risk_prefixes == ("I21", "I22", "I60", "I61", "I62", "I63", "C")
    assert policy.review_em_codes == ("99205", "99215") and policy.ungrounded == "review"
    overrides = ["ungrounded=drop", "high_risk_prefixes=[I21]", "outpatient_high_risk_prefixes=[]"]
    dropped = instantiate(OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides)))
    kept, review = route(code("A41.9"), code("I21.4"), code("R07.9", grounded=False), policy=dropped)
    assert [c.code for c in kept] == ["A41.9", "I21.4"] and review["reasons"] == ["high_risk:I21.4"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"review_em_codes": [99215]}, "quote it in YAML"),
        ({"review_em_codes": ["9921"]}, "canonical CPT"),
        ({"ungrounded": "ignore"}, "ungrounded must be one of review, drop"),
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"high_risk_prefixes": ["i21"]}, "high_risk_prefixes\\[0\\]"),
        ({"high_risk_prefixes": "I21"}, "must be a list"),
        ({"outpatient_high_risk_prefixes": ["c50"]}, "outpatient_high_risk_prefixes\\[0\\]"),
    ],
)
def test_bad_policy_fails_early_with_a_sentence(overrides, message):
    with pytest.raises(ValueError, match=message):
        RoutingPolicy(**overrides)
