"""Promotion gates: relative gates compare with the champion, absolute gates always apply, the first
promotion needs only the absolute gates, undefined numbers never pass, and the YAML is checked."""

from __future__ import annotations

import dataclasses
import math

import pytest

from medcoder.paths import project_root
from medcoder.registry.gates import Gates, check_gates, load_gates

DEFAULT_YAML = project_root() / "configs" / "registry" / "default.yaml"


def metrics(**overrides: float) -> dict[str, float]:
    base = {
        "micro_f1": 0.80,
        "ungrounded_code_rate": 0.05,
        "distractor_false_positive_rate": 0.10,
        "invalid_code_rate": 0.0,
        "contract_violation_rate": 0.0,
    }
    return {**base, **overrides}


def row(decision, gate: str) -> dict:
    return decision.table.set_index("gate").loc[gate].to_dict()


def test_first_promotion_passes_on_absolute_gates_and_marks_relative_ones_not_applicable():
    decision = check_gates(metrics(), None, Gates())
    assert decision.passed
    assert "first promotion" in decision.reasons[0]
    assert row(decision, "max_micro_f1_drop")["passed"] is None
    assert math.isnan(row(decision, "max_micro_f1_drop")["champion"])
    assert row(decision, "max_invalid_code_rate")["passed"] is True


def test_first_promotion_still_refuses_invalid_codes_and_contract_violations():
    decision = check_gates(metrics(invalid_code_rate=0.02, contract_violation_rate=0.1), None, Gates())
    assert not decision.passed
    assert len(decision.reasons) == 2
    assert "invalid_code_rate is 0.0200, above the maximum 0" in decision.reasons[0]
    assert "contract_violation_rate" in decision.reasons[1]


def test_micro_f1_may_drop_by_at_most_the_allowance():
    gates = Gates(max_micro_f1_drop=0.01)
    assert check_gates(metrics(micro_f1=0.795), metrics(micro_f1=0.80), gates).passed
    assert check_gates(metrics(micro_f1=0.95), metrics(micro_f1=0.80), gates).passed  # gains always pass
    refused = check_gates(metrics(micro_f1=0.78), metrics(micro_f1=0.80), gates)
    assert not refused.passed
    assert refused.reasons == ["micro_f1 dropped by 0.0200 (0.8000 -> 0.7800); max_micro_f1_drop is 0.01"]
    assert row(refused, "max_micro_f1_drop")["change"] == pytest.approx(-0.02)


def test_a_higher_ungrounded_rate_is_refused_whatever_the_f1_gain():
    decision = check_gates(metrics(micro_f1=0.99, ungrounded_code_rate=0.051), metrics(), Gates())
    assert not decision.passed
    assert decision.reasons[0].startswith("ungrounded_code_rate rose by 0.0010")
    assert row(decision, "max_micro_f1_drop")["passed"] is True


def test_a_higher_distractor_false_positive_rate_is_refused():
    decision = check_gates(metrics(distractor_false_positive_rate=0.2), metrics(), Gates())
    assert not decision.passed and "distractor_false_positive_rate rose" in decision.reasons[0]
    looser = Gates(max_distractor_fp_rate_increase=0.15)
    assert check_gates(metrics(distractor_false_positive_rate=0.2), metrics(), looser).passed


def test_equal_rates_pass_despite_float_noise():
    noisy = metrics(ungrounded_code_rate=0.1 + 0.2)
    assert check_gates(noisy, metrics(ungrounded_code_rate=0.3), Gates()).passed


def test_undefined_or_missing_metrics_never_pass():
    nan_f1 = check_gates(metrics(micro_f1=float("nan")), metrics(), Gates())
    assert not nan_f1.passed and "micro_f1 is undefined" in nan_f1.reasons[0]
    missing = {k: v for k, v in metrics().items() if k != "invalid_code_rate"}
    refused = check_gates(missing, None, Gates())
    assert not refused.passed and "invalid_code_rate is undefined" in refused.reasons[0]


def test_optional_micro_f1_floor_applies_to_first_promotions():
    assert check_gates(metrics(micro_f1=0.3), None, Gates()).passed
    refused = check_gates(metrics(micro_f1=0.3), None, Gates(min_micro_f1=0.5))
    assert not refused.passed and "micro_f1 is 0.3000, below the minimum 0.5" in refused.reasons[0]


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.01", True])
def test_gate_limits_must_be_fractions(bad):
    with pytest.raises(ValueError, match="gates.max_micro_f1_drop must be a number from 0 to 1"):
        Gates(max_micro_f1_drop=bad)


def test_default_config_names_every_gate_and_loads():
    text = DEFAULT_YAML.read_text(encoding="utf-8")
    for field in dataclasses.fields(Gates):
        assert f"\n{field.name}:" in text, f"{field.name} is not documented in {DEFAULT_YAML}"
    gates = load_gates(DEFAULT_YAML)
    assert isinstance(gates, Gates)
    assert gates.max_invalid_code_rate == 0.0 and gates.max_ungrounded_rate_increase == 0.0


def test_load_gates_refuses_unknown_keys_and_bad_values(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("max_micro_f1_dorp: 0.05\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"typo.yaml: unknown gate\(s\) max_micro_f1_dorp"):
        load_gates(typo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("max_invalid_code_rate: 2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.yaml: gates.max_invalid_code_rate must be a number from 0 to 1"):
        load_gates(bad)
    with pytest.raises(FileNotFoundError, match="gates file not found"):
        load_gates(tmp_path / "missing.yaml")


def test_the_distractor_gate_can_be_switched_off_and_eval_set_counts_are_checked():
    off = check_gates(
        metrics(distractor_false_positive_rate=math.nan), metrics(), Gates(max_distractor_fp_rate_increase=None)
    )
    assert off.passed and "max_distractor_fp_rate_increase" not in set(off.table["gate"])
    on = check_gates(
        metrics(distractor_false_positive_rate=math.nan), metrics(distractor_false_positive_rate=math.nan), Gates()
    )
    assert not on.passed and any("distractor_false_positive_rate is undefined" in r for r in on.reasons)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="min_labelled_notes must be a whole number"):
            Gates(min_labelled_notes=bad)
    with pytest.raises(ValueError, match="max_micro_f1_drop must be a number"):
        Gates(max_micro_f1_drop=None)
    loaded = load_gates(DEFAULT_YAML)
    assert (loaded.min_labelled_notes, loaded.min_gold_codes) == (10, 20)
