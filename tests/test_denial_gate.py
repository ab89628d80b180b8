"""The denial-feedback promotion gate: lower coding denials with an interval that excludes 0, and no
avoiding denials by coding less."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcoder.registry.denial_gate import DenialGate, check_denial_gate, load_denial_gate, paired_bootstrap

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "registry" / "denial_feedback.yaml"
CHAMPION = {"claims/coding_denial_rate": 0.10, "micro_f1": 0.90, "recall": 0.88, "codes_per_encounter": 5.0,
            "edit_violations": 0.0}  # fmt: skip


def test_a_clear_fall_in_coding_denials_has_an_interval_below_zero_and_no_change_one_around_it():
    champion = [1.0] * 30 + [0.0] * 170 + [None] * 20
    better = [0.0] * 200 + [None] * 20
    diff, low, high = paired_bootstrap(champion, better, samples=1000, confidence=0.95)
    assert diff == pytest.approx(-0.15) and low < high < 0
    diff, low, high = paired_bootstrap(champion, champion, samples=1000, confidence=0.95)
    assert diff == 0 and low <= 0 <= high


def test_the_gate_passes_only_fewer_coding_denials_without_coding_less():
    gate = load_denial_gate(CONFIG)
    assert gate == DenialGate()  # the shipped file holds the documented defaults
    better = {**CHAMPION, "claims/coding_denial_rate": 0.06, "micro_f1": 0.899}
    assert check_denial_gate(CHAMPION, better, (-0.04, -0.07, -0.01), gate).passed
    undercoding = {**better, "recall": 0.85, "codes_per_encounter": 4.6}
    decision = check_denial_gate(CHAMPION, undercoding, (-0.04, -0.07, -0.01), gate)
    assert not decision.passed and any("recall" in r for r in decision.reasons)
    assert any("codes per encounter" in r for r in decision.reasons)
    unsure = check_denial_gate(CHAMPION, better, (-0.04, -0.08, 0.005), gate)
    assert not unsure.passed and "interval" in unsure.reasons[0]
    worse_f1 = check_denial_gate(CHAMPION, {**better, "micro_f1": 0.89}, (-0.04, -0.07, -0.01), gate)
    assert not worse_f1.passed


def test_a_missing_number_fails_its_gate_and_an_unknown_key_is_refused(tmp_path):
    gate = DenialGate()
    missing = {k: v for k, v in CHAMPION.items() if k != "recall"}
    assert not check_denial_gate(CHAMPION, missing, (-0.04, -0.07, -0.01), gate).passed
    bad = tmp_path / "gate.yaml"
    bad.write_text("confidence: 0.95\nmax_recal_drop: 0.0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}: unknown denial-gate key"):
        load_denial_gate(bad)


def test_routing_cannot_carry_retrained_weights_that_are_worse_than_routing_alone():
    """With the history the loop learnt, the challenger's claims are routed before submission; the champion's
    codes routed by the same history show what routing alone does, and the retrained weights must not add
    coding-denied claims to it. Counted in claims: one claim fewer billed with the same denials is no worse."""
    gate = load_denial_gate(CONFIG)
    challenger = {**CHAMPION, "claims/coding_denial_rate": 0.06, "claims/coding_denied": 12.0}
    routing_alone = {**CHAMPION, "claims/coding_denial_rate": 0.05, "claims/coding_denied": 10.0}
    decision = check_denial_gate(CHAMPION, challenger, (-0.04, -0.07, -0.01), gate, routing_alone)
    assert not decision.passed and decision.reasons[0].startswith("retraining adds no coding-denied claims")
    assert decision.table.iloc[-1]["champion"] == 10 and decision.table.iloc[-1]["change"] == 2
    # the same 11 denials over 707 claims (a procedure dropped) and over 708: a higher rate, not more denials
    same = {**CHAMPION, "claims/coding_denial_rate": 11 / 707, "claims/coding_denied": 11.0}
    routed = {**CHAMPION, "claims/coding_denial_rate": 11 / 708, "claims/coding_denied": 11.0}
    assert check_denial_gate(CHAMPION, same, (-0.01, -0.02, -0.001), gate, routed).passed
    missing = {k: v for k, v in same.items() if k != "claims/coding_denied"}
    assert not check_denial_gate(CHAMPION, missing, (-0.01, -0.02, -0.001), gate, routed).passed
