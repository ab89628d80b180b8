"""Care-gap detection: values, diagnoses, the rules across a patient's notes, the planted set and the CLI."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest

from medcoder.cli import main
from medcoder.data.schema import canonical_json
from medcoder.data.synth.gaps import CASE_PROPORTIONS, GAP_RULES, generate_gap_set
from medcoder.evaluation.care_gaps import evaluate, hand_set, planted_set
from medcoder.gaps.measurements import A1C, FEV1_FVC, measurements
from medcoder.gaps.notes import CareNote, with_codes
from medcoder.gaps.rules import RULES, detect_gaps


def note(text: str, note_id: str = "n1", codes: tuple[str, ...] = (), age: int = 50, **fields) -> CareNote:
    return CareNote(note_id, text, fields.get("patient_id"), fields.get("date"), "outpatient", age, codes)


def rules_found(*notes: CareNote) -> list[tuple[str, str]]:
    return [(g.note_id, g.rule.id) for g in detect_gaps(list(notes))]


@pytest.fixture(scope="module")
def planted():
    return planted_set(160, seed=3)


def test_the_generator_plants_exactly_the_rules_the_detector_has() -> None:
    assert GAP_RULES == tuple(rule.id for rule in RULES)


def test_the_planted_set_is_the_same_for_a_seed_and_in_its_proportions() -> None:
    first, again = generate_gap_set(60, 11), generate_gap_set(60, 11)
    assert [canonical_json(n) for c in first for n in c.notes] == [canonical_json(n) for c in again for n in c.notes]
    kinds = Counter(c.kind for c in generate_gap_set(200, 5))
    for kind, share in CASE_PROPORTIONS.items():
        assert abs(kinds[kind] / 200 - share) < 0.1, kind
    assert all(c.gold for c in first if c.kind == "gap") and not any(c.gold for c in first if c.kind != "gap")


def test_planted_gaps_are_found_and_near_misses_are_not(planted) -> None:
    found = {(g.note_id, g.rule.id): g for g in detect_gaps(planted.notes)}
    assert set(found) == set(planted.gold)
    for key, spans in planted.gold.items():  # the evidence is the planted values, in the right notes
        evidence = [(m.note_id, m.start, m.end) for m in found[key].evidence]
        for gold_note, start, end in spans:
            assert any(n == gold_note and s < end and start < e for n, s, e in evidence), key


def test_the_hand_written_cases_score_as_their_gold_says() -> None:
    cases = hand_set()
    assert {(g.note_id, g.rule.id) for g in detect_gaps(cases.notes)} == set(cases.gold)
    scores, checks = evaluate([cases])
    text_only = scores[(scores["codes"] == "text only") & (scores["rule"] == "all")].iloc[0]
    assert text_only["predicted"] >= text_only["true_pos"] == len(cases.gold)  # codes only add documentation
    assert (checks["pass_rate"] == 1.0).all()


def test_a_diagnosis_negated_in_a_relative_or_only_prediabetes_documents_nothing() -> None:
    assert rules_found(note("A1c 7.4%. Denies diabetes.")) == [("n1", "diabetes_a1c")]
    assert rules_found(note("A1c 7.4%.\nFamily history: father with type 2 diabetes.")) == [("n1", "diabetes_a1c")]
    assert rules_found(note("Prediabetes, A1c 6.8%.", codes=("R73.03",))) == [("n1", "diabetes_a1c")]
    assert rules_found(note("T2DM, A1c 7.4%.")) == []
    assert rules_found(note("A1c 7.4%.", codes=("E11.9",))) == []
    assert rules_found(note("History of diabetes, A1c 7.4%.")) == []  # a chronic condition's history is current


def test_values_that_are_goals_intervals_hypotheses_or_before_bronchodilator_do_not_count() -> None:
    assert list(measurements(A1C, "Target A1c < 7%. Recheck A1c in 12 months.", "n1", None)) == []
    assert list(measurements(A1C, "If A1c is 7.5% or higher we will start metformin.", "n1", None)) == []
    assert [m.value for m in measurements(A1C, "A1c 7.5%.", "n1", None)] == [7.5]
    ratios = measurements(FEV1_FVC, "Pre-bronchodilator FEV1/FVC 0.66; post-bronchodilator FEV1/FVC 72%.", "n", None)
    assert [m.value for m in ratios] == [0.72]
    assert rules_found(note("Spirometry: FEV1/FVC 0.61 post-bronchodilator.")) == [("n1", "copd_spirometry")]
    assert rules_found(note("Spirometry: FEV1/FVC 0.61. Asthma, moderate.")) == []


def test_bmi_counts_for_adults_outside_pregnancy_only() -> None:
    assert rules_found(note("Vitals: BMI 34.1.")) == [("n1", "obesity_bmi")]
    assert rules_found(note("Vitals: BMI 34.1.", age=15)) == []
    assert rules_found(note("Vitals: BMI 34.1.", codes=("Z3A.20",))) == []
    assert rules_found(note("Vitals: BMI 29.9.")) == []
    assert rules_found(note("Vitals: BMI 34.1. Obese, diet reviewed.")) == []


def test_ckd_needs_two_low_egfr_90_days_apart_with_no_normal_value_between() -> None:
    def patient(*values: tuple[str, int]) -> list[CareNote]:
        return [note(f"BMP: eGFR {v}.", f"n{i}", patient_id="p", date=d) for i, (d, v) in enumerate(values)]

    gaps = detect_gaps(patient(("2026-01-01", 52), ("2026-04-15", 48)))
    assert [(g.note_id, g.rule.id) for g in gaps] == [("n1", "ckd_egfr")]
    assert [(m.note_id, m.value) for m in gaps[0].evidence] == [("n0", 52), ("n1", 48)]
    assert detect_gaps(patient(("2026-01-01", 52), ("2026-03-01", 48))) == []  # 59 days
    assert detect_gaps(patient(("2026-01-01", 52), ("2026-02-01", 75), ("2026-05-01", 48))) == []
    assert detect_gaps(patient(("2026-01-01", 52), ("2026-05-01", 61))) == []
    documented = patient(("2026-01-01", 52), ("2026-04-15", 48))
    documented[1] = replace(documented[1], text="BMP: eGFR 48. CKD stage 3a, stable.")
    assert detect_gaps(documented) == []


def test_the_coder_s_codes_replace_the_record_s_and_a_condition_documented_elsewhere_is_found() -> None:
    a1c = note("A1c 8.0%.", "n2", patient_id="p", date="2026-05-01")
    assert rules_found(*with_codes([a1c], {"n2": ("E11.9",)})) == []
    earlier = note("Type 2 diabetes, on metformin.", "n1", patient_id="p", date="2026-01-01")
    (gap,) = detect_gaps([earlier, a1c])
    assert gap.documented_elsewhere is not None and gap.documented_elsewhere.note_id == "n1"


def test_care_gaps_command_writes_gaps_and_queries_and_names_a_bad_line(tmp_path, capsys) -> None:
    notes = tmp_path / "notes.jsonl"
    lines = [{"id": "a", "patient_id": "p", "encounter_date": "2026-03-01", "text": "Vitals: BMI 41.2. Knee pain."},
             {"id": "b", "text": "Assessment: COPD. FEV1/FVC 0.60."}]  # fmt: skip
    notes.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "gaps.jsonl"
    assert main(["care-gaps", "--input", str(notes), "--out", str(out), "--queries"]) == 0
    (gap,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert gap["rule"] == "obesity_bmi" and gap["evidence"][0]["text"] == "BMI 41.2"
    assert gap["diagnosis"] == "obesity (E66)" and "Obesity, class 3" in gap["query"]["text"]
    assert "Knee pain" not in capsys.readouterr().out
    notes.write_text(json.dumps({"id": "a", "text": "Vitals: BMI 41.2.", "encounter_date": 5}) + "\n", encoding="utf-8")
    assert main(["care-gaps", "--input", str(notes), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{notes}:1" in err and "encounter_date" in err and "BMI" not in err
