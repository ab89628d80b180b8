"""Pre-submission age and sex edits (medcoder.codes.age_sex): every planted violation is caught with its rule
named, its clean counterpart is not, a missing fact fires nothing; routing, the guideline layer, the claim check
and the simulated payer all apply the same rules; `medcoder predict` routes what the patient's facts rule out."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from medcoder.claims.edit_check import edit_hits
from medcoder.claims.payer import PayerConfigError, adjudicate, fee, load_payers
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.codes.age_sex import EDIT_RULES, PatientFacts, line_edits, prediction_edits
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.inference.guidelines import Patient, apply_guidelines
from medcoder.inference.inputs import validate_input
from medcoder.inference.routing import REASON_ORDER, RoutingPolicy, apply_routing

ICD, CPT, HCPCS = "ICD-10-CM", "CPT", "HCPCS"
DAY = "2026-03-14"

# (label, the patient it is planted on, the edit that must catch it, a patient for whom the same code is clean)
PLANTED = [
    ((ICD, "P07.30"), PatientFacts(age=40, sex="F"), "newborn_age", PatientFacts(age=0, sex="F")),
    ((ICD, "O80"), PatientFacts(age=70, sex="F"), "maternity_age", PatientFacts(age=30, sex="F")),
    ((ICD, "O80"), PatientFacts(age=30, sex="M"), "sex_conflict", PatientFacts(age=30, sex="F")),
    ((ICD, "C61"), PatientFacts(age=60, sex="F"), "sex_conflict", PatientFacts(age=60, sex="M")),
    ((ICD, "C50.911"), PatientFacts(age=60, sex="M"), "sex_conflict", PatientFacts(age=60, sex="F")),  # by its title
    ((ICD, "Z00.129"), PatientFacts(age=40, sex="M"), "pediatric_age", PatientFacts(age=8, sex="M")),
    ((ICD, "Z00.00"), PatientFacts(age=10, sex="M"), "adult_age", PatientFacts(age=16, sex="M")),
    ((CPT, "99393"), PatientFacts(age=40, sex="F"), "preventive_age", PatientFacts(age=8, sex="F")),
    ((CPT, "90460"), PatientFacts(age=30, sex="F"), "vaccine_admin_age", PatientFacts(age=18, sex="F")),
    ((CPT, "99203"), PatientFacts(encounter_date=DAY, prior_visit_date="2025-03-14"), "em_patient_status",
     PatientFacts(encounter_date=DAY, prior_visit_date="2022-03-14")),
    ((CPT, "99213"), PatientFacts(encounter_date=DAY, prior_visit_date="2022-03-14"), "em_patient_status",
     PatientFacts(encounter_date=DAY, prior_visit_date="2025-03-14")),
]  # fmt: skip


@pytest.mark.parametrize("label, patient, rule, clean", PLANTED)
def test_each_planted_violation_is_caught_with_its_rule_and_its_clean_counterpart_is_not(label, patient, rule, clean):
    assert [(e.rule, e.system, e.code) for e in prediction_edits([label], patient)] == [(rule, *label)]
    assert prediction_edits([label], clean) == []


def test_a_fact_the_input_does_not_give_fires_no_edit():
    labels = [label for label, *_ in PLANTED]
    assert prediction_edits(labels, PatientFacts()) == []
    assert prediction_edits(labels, PatientFacts(sex="U")) == []  # unknown sex: no sex edit, no age to check
    # a prior visit without the date of service it is measured from decides nothing
    assert prediction_edits([(CPT, "99203")], PatientFacts(prior_visit_date="2025-03-14")) == []


def _code(system: str, code: str, span: tuple[int, int] = (0, 5)) -> PredictedCode:
    return PredictedCode(system, code, 0.9, (span,), True, 0.8, (), True)


def test_routing_keeps_a_diagnosis_the_patient_rules_out_and_names_the_edit_in_reason_order():
    """A 70-year-old man coded a delivery, BPH and a new-patient visit a year after his last one: every code stays,
    each violation is routed once with its rule, after the other reasons and in REASON_ORDER."""
    pred = NotePrediction("n1", (_code(ICD, "O80"), _code(ICD, "N40.0"), _code(ICD, "I10")), em_code="99203",
                          em_score=0.9)  # fmt: skip
    man = PatientFacts(70, "M", DAY, "2025-03-14")
    kept, review = apply_routing(pred, RoutingPolicy(), "outpatient", man)
    assert [c.code for c in kept] == ["O80", "N40.0", "I10"]
    assert review == {"required": True,
                      "reasons": ["maternity_age:O80", "sex_conflict:O80", "em_patient_status:99203"]}  # fmt: skip
    assert set(EDIT_RULES) <= set(REASON_ORDER)
    assert apply_routing(pred, RoutingPolicy(), "outpatient", None)[1] == {"required": False, "reasons": []}
    woman = PatientFacts(30, "F", DAY, "2020-01-02")
    assert apply_routing(pred, RoutingPolicy(), "outpatient", woman)[1]["reasons"] == ["sex_conflict:N40.0"]


def test_the_guideline_layer_replaces_90460_for_an_adult_only_when_90471_is_the_one_answer():
    flu = _code(CPT, "90686", (10, 20))

    def run(age: int, *codes: PredictedCode, payer: str | None = None) -> set[str]:
        pred = apply_guidelines(NotePrediction("n1", (_code(CPT, "90460"), *codes)), Patient(age, "F", payer=payer))
        return {c.code for c in pred.codes}

    assert run(30, flu) == {"90471", "90686", "Z23"}
    assert run(10, flu) == {"90460", "90686", "Z23"}  # through 18: counseling code stands
    assert run(70, flu, payer="Medicare") == {"G0008", "90686", "Z23"}  # then the payer's own code
    two = run(30, flu, _code(CPT, "90461", (30, 35)))  # how many vaccines (90472) is not known: routed instead
    assert "90460" in two
    kept, review = apply_routing(NotePrediction("n1", tuple(_code(CPT, c) for c in sorted(two))), RoutingPolicy(),
                                 "outpatient", PatientFacts(age=30, sex="F"))  # fmt: skip
    assert {"vaccine_admin_age:90460", "vaccine_admin_age:90461"} <= set(review["reasons"])


PAYERS = """
seed: 5
payers:
  plan:
    age_sex_edits: true
    code_pairs: []
    covered_diagnoses: {}
    age_ranges: {}
    sex_codes: {}
    unit_limits: {}
    prior_authorization: []
    review_rate: 0.0
    eligibility_rate: 0.0
    duplicate_rate: 0.0
    timely_filing_rate: 0.0
    coinsurance: 0.0
"""


def test_the_simulated_payer_denies_exactly_what_the_edits_flag_with_carc_6_for_age_and_7_for_sex(tmp_path):
    path = tmp_path / "payers.yaml"
    path.write_text(PAYERS, encoding="utf-8")
    seed, payers = load_payers(path)
    cases = [  # (age, sex, procedure, diagnoses)
        (40, "F", "99213", ("P07.30",)), (0, "F", "99213", ("P07.30",)), (70, "F", "99213", ("O80",)),
        (30, "M", "99213", ("O80",)), (30, "F", "99213", ("O80",)), (60, "F", "99213", ("C61", "I10")),
        (60, "M", "99213", ("C61",)), (40, "M", "99393", ("Z00.00",)), (8, "M", "99393", ("Z00.129",)),
        (30, "F", "90460", ("Z23",)), (12, "F", "90460", ("Z23",)), (None, None, "99393", ("O80", "C61")),
    ]  # fmt: skip
    claims = [Claim(f"c{k}", "plan", "outpatient", age, sex, "20260314", dx,
                    (ClaimLine(f"c{k}-1", code, (), Decimal(1), fee(code), "20260314", dx),))
              for k, (age, sex, code, dx) in enumerate(cases)]  # fmt: skip
    denied = {}
    for claim in claims:
        (line,) = adjudicate(claim, payers["plan"], frozenset(), seed).lines
        denied[line.line_control] = [a.carc for a in line.adjustments if a.is_denial]
    flagged = {}
    for claim in claims:
        edits = line_edits(claim.lines[0].procedure, claim.lines[0].diagnoses, claim.age, claim.sex)
        flagged[claim.lines[0].line_control] = ["7" if edits[0].rule == "sex_conflict" else "6"] if edits else []
    assert denied == flagged
    assert sum(bool(v) for v in denied.values()) == 6 and {c for v in denied.values() for c in v} == {"6", "7"}
    # the claim check before submission names the same rule for the same lines
    hits = {h.line_control: h.rule for claim in claims for h in edit_hits(claim)}
    assert set(hits) == {k for k, v in flagged.items() if v}
    assert hits["c0-1"] == "newborn_age" and hits["c5-1"] == "sex_conflict" and hits["c9-1"] == "vaccine_admin_age"
    path.write_text(PAYERS.replace("age_sex_edits: true", 'age_sex_edits: "yes"'), encoding="utf-8")
    with pytest.raises(PayerConfigError, match="payers.plan.age_sex_edits"):
        load_payers(path)


@pytest.mark.parametrize("fields, message", [
    ({"prior_visit_date": "2025-03-14"}, "field 'prior_visit_date': needs 'encounter_date'"),
    ({"prior_visit_date": "2026-04-01", "encounter_date": DAY}, "field 'prior_visit_date': is after 'encounter_date'"),
    ({"prior_visit_date": "2025-02-30", "encounter_date": DAY}, "field 'prior_visit_date': 2025-02-30 is not"),
    ({"prior_visit_date": "03/14/2025", "encounter_date": DAY}, "field 'prior_visit_date': String should match"),
])  # fmt: skip
def test_a_bad_prior_visit_date_is_an_error_naming_the_field_and_line(fields, message):
    error = validate_input({"id": "n1", "text": "Follow-up visit for hypertension.", **fields}, 1000, line=7)
    assert error.kind == "invalid_field" and error.line == 7 and error.message.startswith(message)
    ok = validate_input({"id": "n1", "text": "Follow-up visit for hypertension.", "encounter_date": DAY,
                         "prior_visit_date": "2025-03-14"}, 1000, line=7)  # fmt: skip
    assert ok.prior_visit_date == "2025-03-14" and ok.encounter_date == DAY


def test_medcoder_predict_routes_an_emitted_code_the_patients_sex_rules_out(tiny, tmp_path):
    """The tiny model with its first label (I10, which it emits for every note) renamed N40.0, weights unchanged:
    the real model, run end to end by `medcoder predict`, emits a male-only code. Each note three times, for a
    woman, a man and a patient of unknown age and sex: every line's age/sex reasons are exactly the edits of its
    own codes and facts, and the woman's lines carry `sex_conflict:N40.0` with the code kept."""
    import shutil

    from medcoder.cli import build_parser
    from medcoder.codes import is_valid_code
    from medcoder.inference.contract import validate_contract_line
    from medcoder.inference.manifest import write_manifest
    from medcoder.serving.predict import cmd_predict

    model = shutil.copytree(tiny.export_dir, tmp_path / "model")
    config = json.loads((model / "coder.json").read_text(encoding="utf-8"))
    assert config["labels"][0] == [ICD, "I10"]
    config["labels"][0] = [ICD, "N40.0"]
    (model / "coder.json").write_text(json.dumps(config), encoding="utf-8")
    write_manifest(model)
    notes = tiny.records[:3]
    facts = {"woman": PatientFacts(45, "F"), "man": PatientFacts(45, "M"), "unknown": PatientFacts()}
    lines = [{"id": f"{r.id}-{kind}", "text": r.text, **{k: v for k, v in vars(f).items() if v is not None}}
             for r in notes for kind, f in facts.items()]  # fmt: skip
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    args = build_parser().parse_args(["predict", "--input", str(source), "--output", str(out), "--model", str(model)])
    assert cmd_predict(args) == 0
    routed = {}
    for given, line in zip(lines, (json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()), strict=True):
        validate_contract_line(line, note_text=given["text"], is_valid=is_valid_code)
        labels = [(c["system"], c["code"]) for c in line["codes"]] + ([(CPT, line["em"]["code"])] if line["em"] else [])
        expected = {f"{e.rule}:{e.code}" for e in prediction_edits(labels, facts[given["id"].rsplit("-", 1)[1]])}
        assert {r for r in line["review"]["reasons"] if r.split(":")[0] in EDIT_RULES} == expected
        routed[given["id"]] = ("N40.0" in {c for _, c in labels}, sorted(expected))
    assert routed[f"{notes[0].id}-woman"] == (True, ["sex_conflict:N40.0"])
    assert routed[f"{notes[0].id}-man"] == routed[f"{notes[0].id}-unknown"] == (True, [])
