"""Each ICD-10-CM guideline rule on its own: what it changes, what it leaves, and that it says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import NoteRecord
from medcoder.inference.guidelines import RULE_IDS, Patient, apply_guidelines

ICD, CPT = "ICD-10-CM", "CPT"


def code(
    c: str,
    score: float = 0.9,
    span: tuple[int, int] = (0, 5),
    system: str = ICD,
    grounded: bool = True,
    support: float | None = 0.8,
):
    return PredictedCode(system, c, score, (span,), grounded, support)


DEFAULT_PATIENT = Patient(50, "F", "outpatient")


def run(*codes: PredictedCode, patient: Patient = DEFAULT_PATIENT, rule: str, **extra) -> NotePrediction:
    return apply_guidelines(NotePrediction("n1", tuple(codes), **extra), patient, rules=[rule])


def codes_of(pred: NotePrediction) -> set[str]:
    return {c.code for c in pred.codes}


@pytest.mark.parametrize("given, expected", [
    (["I10", "I50.22"], {"I11.0", "I50.22"}),
    (["I10", "N18.30"], {"I12.9", "N18.30"}),
    (["I10", "N18.6"], {"I12.0", "N18.6"}),
    (["I10", "I50.22", "N18.4"], {"I13.0", "I50.22", "N18.4"}),
    (["I11.0", "N18.30", "I50.9"], {"I13.0", "N18.30", "I50.9"}),
    (["I10", "E78.5"], {"I10", "E78.5"}),
])  # fmt: skip
def test_hypertension_with_heart_failure_or_ckd_is_one_combination_code(given, expected):
    pred = run(*[code(c, span=(i * 10, i * 10 + 5)) for i, c in enumerate(given)], rule="hypertension_combinations")
    assert codes_of(pred) == expected
    if expected != set(given):
        (event,) = pred.rules
        assert event.rule == "hypertension_combinations" and event.section.startswith("I.C.9.a")
        combined = next(c for c in pred.codes if c.code.startswith(("I11", "I12", "I13")))
        assert combined.rules_applied == ("hypertension_combinations",)
        assert len(combined.evidence) >= 2  # the hypertension mention and the heart/kidney one
    else:
        assert pred.rules == ()


def test_a_combination_the_model_coded_itself_takes_the_place_of_i10_and_gets_its_additional_code():
    pred = run(code("I11.0"), code("I10", span=(10, 15)), rule="hypertension_combinations")
    assert codes_of(pred) == {"I11.0", "I50.9"}
    assert codes_of(run(code("I12.9"), rule="hypertension_combinations")) == {"I12.9", "N18.9"}
    assert codes_of(run(code("I11.0"), code("I50.22"), rule="hypertension_combinations")) == {"I11.0", "I50.22"}


def test_the_ckd_a_combination_names_is_coded_at_the_stage_the_note_documents():
    """ "1. CKD stage 3b - eGFR 36. 2. Hypertension": the additional code is N18.32, not N18.9."""
    stage_3b = Patient(70, "M", "outpatient", ckd_stage="3b")
    assert codes_of(run(code("I12.9"), patient=stage_3b, rule="hypertension_combinations")) == {"I12.9", "N18.32"}
    note = NoteRecord(id="n1", text="1. CKD stage 3b - eGFR 36\n2. Hypertension", age=70, sex="M", setting="outpatient")
    assert Patient.of(note).ckd_stage == "3b"


def test_a_combination_is_grounded_only_when_every_part_is():
    pred = run(code("I10"), code("N18.30", grounded=False, span=(10, 15)), rule="hypertension_combinations")
    assert not next(c for c in pred.codes if c.code == "I12.9").grounded


def test_diabetes_with_ckd_is_e11_22_and_e11_9_goes():
    pred = run(code("E11.9"), code("N18.30", span=(20, 30)), rule="diabetes_ckd")
    assert codes_of(pred) == {"E11.22", "N18.30"}
    pred = run(code("E11.65"), code("N18.4", span=(20, 30)), rule="diabetes_ckd")
    assert codes_of(pred) == {"E11.65", "E11.22", "N18.4"}  # hyperglycemia is a second complication


@pytest.mark.parametrize("given, expected", [
    (["J44.9", "J18.9"], {"J44.0", "J18.9"}),
    (["J44.1", "J20.9"], {"J44.0", "J44.1", "J20.9"}),  # exacerbation and infection: both documented
    (["J44.9", "J45.909"], {"J44.9", "J45.909"}),  # asthma is no infection
    (["J18.9"], {"J18.9"}),
])  # fmt: skip
def test_copd_with_a_lower_respiratory_infection_is_j44_0_with_the_infection_coded_too(given, expected):
    pred = run(*[code(c, span=(i * 10, i * 10 + 5)) for i, c in enumerate(given)], rule="copd_with_infection")
    assert codes_of(pred) == expected
    if "J44.0" in expected:
        combined = next(c for c in pred.codes if c.code == "J44.0")
        assert combined.rules_applied == ("copd_with_infection",) and len(combined.evidence) == 2
        assert [e.rule for e in pred.rules] == ["copd_with_infection"]
    else:
        assert pred.rules == ()


@pytest.mark.parametrize("given, expected", [
    (["E11.9", "E11.65"], {"E11.65"}),
    (["I50.9", "I50.22"], {"I50.22"}),
    (["J44.9", "J44.1"], {"J44.1"}),
    (["J02.9", "J02.0"], {"J02.0"}),
    (["E11.9", "I50.9"], {"E11.9", "I50.9"}),
    (["M54.50", "M54.51"], {"M54.51"}),
    (["M54.50", "M54.2"], {"M54.50", "M54.2"}),  # low back pain and neck pain: two conditions of M54
    (["R10.9", "R10.13"], {"R10.13"}),
    (["R52", "M54.2"], {"R52", "M54.2"}),  # R52 is a category and a code: nothing under it
])  # fmt: skip
def test_an_unspecified_code_does_not_stand_beside_a_specific_one_of_the_same_condition(given, expected):
    assert codes_of(run(*[code(c) for c in given], rule="unspecified_beside_specific")) == expected


def test_an_ungrounded_specific_code_does_not_displace_the_unspecified_one():
    """ "COPD - stable" with J44.1 ungrounded (no exacerbation documented): J44.9 stays."""
    pred = run(code("J44.9"), code("J44.1", grounded=False), rule="unspecified_beside_specific")
    assert codes_of(pred) == {"J44.9", "J44.1"} and pred.rules == ()


def test_documented_specificity_codes_the_fallback_or_merges_into_the_coded_one():
    fallback = (("ICD-10-CM", "E11.65", "E11.9", 0.95, True),)
    pred = run(code("E11.65", grounded=False), rule="documented_specificity", specificity_fallbacks=fallback)
    (swapped,) = pred.codes
    assert (swapped.code, swapped.grounded, swapped.support) == ("E11.9", True, 0.95)
    assert swapped.rules_applied == ("documented_specificity",) and pred.rules[0].section == "I.B.2, I.B.18"
    merged = run(code("E11.65", grounded=False), code("E11.9", score=0.7), rule="documented_specificity",
                 specificity_fallbacks=fallback)  # fmt: skip
    assert [(c.code, c.score) for c in merged.codes] == [("E11.9", 0.7)]
    assert [(e.removed, e.added) for e in merged.rules] == [((("ICD-10-CM", "E11.65"),), ())]
    untouched = run(code("E11.65"), rule="documented_specificity")
    assert codes_of(untouched) == {"E11.65"} and untouched.rules == ()


def test_symptoms_integral_to_an_established_diagnosis_are_removed_but_not_alone():
    assert codes_of(run(code("J18.9"), code("R05.9"), code("R50.9"), rule="integral_symptoms")) == {"J18.9"}
    assert codes_of(run(code("R05.9"), code("R50.9"), rule="integral_symptoms")) == {"R05.9", "R50.9"}
    assert codes_of(run(code("G43.909"), code("R11.2"), rule="integral_symptoms")) == {"G43.909"}  # migraine
    assert codes_of(run(code("B34.9"), code("R50.9"), rule="integral_symptoms")) == {"B34.9"}  # viral syndrome


def test_low_back_pain_and_headache_are_the_strain_and_the_tension_headache_a_note_states_outside_the_labels():
    """ "Assessment: acute lumbar strain" states S39.012A, which no label codes: the note goes to a coder, and
    the low back pain the model coded (M54.50, a symptom code outside chapter 18) is the strain's; "tension
    headache" (G44) is the headache (R51.9). Low back pain with an unrelated diagnosis stays."""
    strain = ((("S39"), (0, 12)),)
    assert codes_of(run(code("M54.50"), code("I10"), rule="integral_symptoms", outside_diagnoses=strain)) == {"I10"}
    tension = ((("G44"), (0, 16)),)
    assert codes_of(run(code("R51.9"), rule="integral_symptoms", outside_diagnoses=tension)) == set()
    assert codes_of(run(code("M54.50"), code("I10"), rule="integral_symptoms")) == {"M54.50", "I10"}


def test_a_routine_exam_that_found_something_is_the_exam_with_abnormal_findings():
    def record(text: str):
        from types import SimpleNamespace

        return SimpleNamespace(age=50, sex="F", setting="outpatient", text=text)

    found = Patient.of(record("Annual exam. Assessment: new diagnosis of essential hypertension."))
    pred = run(code("Z00.00"), code("I10"), patient=found, rule="exam_findings")
    assert codes_of(pred) == {"Z00.01", "I10"} and pred.rules[0].section == "I.C.21.c.13"
    child = run(code("Z00.129"), patient=replace(found, age=8), rule="exam_findings")
    assert codes_of(child) == {"Z00.121"}
    for text in ("Annual physical. No abnormal findings.", "Annual physical, all normal."):
        assert codes_of(run(code("Z00.00"), patient=Patient.of(record(text)), rule="exam_findings")) == {"Z00.00"}
    assert codes_of(run(code("I10"), code("R07.9"), rule="integral_symptoms")) == {"I10", "R07.9"}
    # dyspnea and cough are routinely part of COPD and heart failure, whatever their type
    assert codes_of(run(code("J44.9"), code("R06.02"), code("R05.9"), rule="integral_symptoms")) == {"J44.9"}
    assert codes_of(run(code("I50.9"), code("R06.02"), rule="integral_symptoms")) == {"I50.9"}


def test_bmi_only_with_a_weight_diagnosis_in_the_right_age_band():
    assert codes_of(run(code("Z68.31"), code("E03.9"), rule="bmi_needs_weight_diagnosis")) == {"E03.9"}
    assert codes_of(run(code("Z68.31"), code("E66.9"), rule="bmi_needs_weight_diagnosis")) == {"Z68.31", "E66.9"}
    teen = Patient(15, "M", "outpatient")
    assert codes_of(run(code("Z68.31"), code("E66.9"), patient=teen, rule="bmi_needs_weight_diagnosis")) == {"E66.9"}
    assert codes_of(run(code("Z68.54"), code("E66.9"), patient=teen, rule="bmi_needs_weight_diagnosis")) == {
        "Z68.54",
        "E66.9",
    }


def test_a_past_condition_blocked_as_historical_becomes_its_history_code():
    pred = run(
        code("I10"),
        rule="history_codes",
        historical_mentions=(("ICD-10-CM", "I21.4", 0.93, (12, 18)), ("ICD-10-CM", "C18.9", 0.8, (30, 45))),
    )
    assert codes_of(pred) == {"I10", "I25.2", "Z85.038"}
    old_mi = next(c for c in pred.codes if c.code == "I25.2")
    assert old_mi.evidence == ((12, 18),) and old_mi.score == 0.93 and old_mi.rules_applied == ("history_codes",)


def test_age_and_sex_fixes_the_preventive_band_and_leaves_diagnoses_for_routing_to_name():
    """A diagnosis the patient's age or sex rules out is never removed here: routing sends it to a coder with the
    edit named (tests/test_age_sex_edits.py)."""
    adult = Patient(45, "M", "outpatient")
    pred = run(
        code("99395", system=CPT), code("Z00.129"), code("C50.919"), code("N40.0"), patient=adult, rule="age_and_sex"
    )
    assert codes_of(pred) == {"99396", "Z00.129", "C50.919", "N40.0"}
    assert next(c for c in pred.codes if c.code == "99396").rules_applied == ("age_and_sex",)
    assert [e.to_dict() for e in pred.rules] == [
        {"rule": "age_and_sex", "section": "I.B.12", "removed": ["99395"], "added": ["99396"]}
    ]
    unknown = Patient(None, None, None)
    assert codes_of(run(code("99395", system=CPT), patient=unknown, rule="age_and_sex")) == {"99395"}


def test_codes_an_excludes1_note_keeps_apart_are_never_reported_together():
    # "He still smokes a pack a day": current dependence, not its history
    pred = run(code("F17.210", score=1.0), code("Z87.891", score=0.97, support=0.85), rule="excludes1_pairs")
    assert codes_of(pred) == {"F17.210"} and pred.rules[0].removed == ((ICD, "Z87.891"),)
    # a grounded prediabetes outranks an ungrounded diabetes code of higher score
    pred = run(code("R73.03", score=0.9), code("E11.9", score=0.99, grounded=False), rule="excludes1_pairs")
    assert codes_of(pred) == {"R73.03"}
    # codes without an Excludes1 between them stay (an unspecified code beside a specific one is another rule's)
    unrelated = run(code("E11.65"), code("E11.9"), code("I10"), rule="excludes1_pairs")
    assert codes_of(unrelated) == {"E11.65", "E11.9", "I10"}


def test_the_embedded_corpus_gold_never_holds_an_excludes1_pair():
    from medcoder.codes.excludes import excludes1
    from medcoder.data.synth import generate_notes

    pairs = [(n.id, a, b) for n in generate_notes(400, seed=3)
             for a in {c.code for c in n.codes if c.system == ICD} for b in {c.code for c in n.codes if c.system == ICD}
             if a < b and excludes1(a, b)]  # fmt: skip
    assert pairs == []


def test_all_rules_run_in_order_and_unknown_rules_are_refused():
    pred = apply_guidelines(NotePrediction("n1", (code("I10"), code("E11.9", span=(6, 9)),
                                                  code("N18.30", span=(20, 30)), code("Z68.31", span=(40, 48)))),
                            Patient(60, "F", "outpatient"))  # fmt: skip
    assert codes_of(pred) == {"I12.9", "E11.22", "N18.30"}
    assert [e.rule for e in pred.rules] == ["hypertension_combinations", "diabetes_ckd", "bmi_needs_weight_diagnosis"]
    assert set(RULE_IDS) >= {e.rule for e in pred.rules}
    with pytest.raises(ValueError, match="unknown guideline rule"):
        apply_guidelines(NotePrediction("n1"), Patient(), rules=["no_such_rule"])


def test_two_codes_corrected_to_the_same_code_give_it_once_with_the_higher_score():
    adult = Patient(70, "F", "outpatient")
    pred = run(
        code("99395", 0.4, system=CPT), code("99396", 0.7, system=CPT, span=(9, 12)), patient=adult, rule="age_and_sex"
    )
    assert [(c.code, c.score) for c in pred.codes] == [("99397", 0.7)]


def test_outpatient_uncertainty_codes_the_documented_signs_and_says_so():
    signs = (("ICD-10-CM", "R50.9", 0.95, (10, 40)), ("ICD-10-CM", "R05.9", 0.92, (10, 40)))
    pred = run(code("I10"), rule="outpatient_uncertainty", documented_signs=signs)
    assert codes_of(pred) == {"I10", "R50.9", "R05.9"}
    fever = next(c for c in pred.codes if c.code == "R50.9")
    assert fever.grounded and fever.score == fever.support == 0.95 and fever.evidence == ((10, 40),)
    assert fever.rules_applied == ("outpatient_uncertainty",)
    assert [e.to_dict() for e in pred.rules] == [
        {"rule": "outpatient_uncertainty", "section": "IV.H, I.B.4-5", "removed": [], "added": ["R50.9", "R05.9"]}
    ]
    inpatient = Patient(50, "F", "inpatient")  # there the uncertain diagnosis itself is coded (II.H)
    assert codes_of(run(code("I10"), patient=inpatient, rule="outpatient_uncertainty", documented_signs=signs)) == {
        "I10"
    }
    # ... except a code for confirmed cases only: "possible COVID-19" at discharge is its signs (I.C.1.g.1.a)
    doubted_covid = run(code("I10"), patient=inpatient, rule="outpatient_uncertainty", documented_signs=signs,
                        context_blocked=(("ICD-10-CM", "U07.1"),))  # fmt: skip
    assert codes_of(doubted_covid) == {"I10", "R50.9", "R05.9"}


def test_one_visit_is_one_preventive_service_new_or_established():
    """The model's in-band 99396 and its out-of-band 99387 (corrected to 99386) would bill a new AND an
    established preventive visit: the model's own in-band code stays, the correction goes."""
    pred = run(code("99396", system=CPT), code("99387", system=CPT, span=(10, 15)),
               patient=Patient(55, "M", "outpatient"), rule="age_and_sex")  # fmt: skip
    assert codes_of(pred) == {"99396"}
    alone = run(code("99387", system=CPT), patient=Patient(55, "M", "outpatient"), rule="age_and_sex")
    assert codes_of(alone) == {"99386"} and alone.codes[0].rules_applied == ("age_and_sex",)


@pytest.mark.parametrize("text, deficit", [
    ("Ischemic stroke 2021 with residual right-sided hemiparesis; walks with a cane.", True),
    ("Old CVA, left with expressive aphasia.", True),
    ("History of stroke in 2019 with full recovery, no residual deficits.", False),
    ("TIA last year; no facial droop, no aphasia on exam today.", False),
    ("Father had a stroke with hemiplegia.", False),
    ("CVA in 2018. No fever today but persistent left hemiparesis.", True),
])  # fmt: skip
def test_history_of_stroke_without_deficits_is_not_coded_beside_a_deficit_the_stroke_left(text, deficit):
    """Z86.73 says "without residual deficits": a documented deficit is a sequela (I69.3-), not that history."""
    record = NoteRecord(id="n1", text=text, codes=[], setting="outpatient")
    out = run(code("Z86.73"), code("I10"), patient=Patient.of(record), rule="stroke_with_deficits")
    assert codes_of(out) == ({"I10"} if deficit else {"Z86.73", "I10"})
    assert [e.removed for e in out.rules] == ([(("ICD-10-CM", "Z86.73"),)] if deficit else [])


def test_symptoms_of_an_acute_upper_respiratory_infection_are_part_of_it():
    assert codes_of(run(code("J06.9"), code("J02.9"), code("R05.9"), rule="integral_symptoms")) == {"J06.9"}
    assert codes_of(run(code("J02.9"), code("R50.9"), rule="integral_symptoms")) == {"J02.9"}


@pytest.mark.parametrize("text, kept", [
    ("Sore throat and fever for two days. Probably viral. Salt water gargles.", {"J02.9", "R50.9"}),
    ("Sore throat, fever. Rapid strep positive: strep pharyngitis.", {"J02.9"}),  # the diagnosis explains the fever
    ("A: acute pharyngitis with fever.", {"J02.9"}),
])  # fmt: skip
def test_a_code_named_only_by_its_symptom_inclusion_term_explains_no_other_symptom(text, kept):
    """J02.9 holds "Sore throat (acute) NOS": coded for a sore throat it is a symptom beside the fever, not a
    pharyngitis the fever is part of (I.B.4-5)."""
    patient = Patient.of(NoteRecord(id="n1", text=text, codes=[], setting="outpatient"))
    assert codes_of(run(code("J02.9"), code("R50.9"), patient=patient, rule="integral_symptoms")) == kept


def test_the_vaccine_administration_code_is_the_payers():
    """CMS MCPM ch. 18 section 10.2: Medicare's flu, pneumococcal and hepatitis B administrations are G0008-G0010;
    other payers take 90471. Without a payer, or without one vaccine family to decide by, nothing changes."""
    flu, admin = code("90686", system="CPT", span=(10, 30)), code("90471", system="CPT", span=(31, 50), score=0.7)
    rule = "vaccine_administration_by_payer"

    def billed(*codes: PredictedCode, payer: str | None) -> NotePrediction:
        return run(*codes, patient=Patient(70, "F", "outpatient", payer=payer), rule=rule)

    medicare = billed(flu, admin, payer="Medicare Part B")
    g0008 = next(c for c in medicare.codes if c.code == "G0008")
    assert codes_of(medicare) == {"90686", "G0008"} and (g0008.system, g0008.evidence, g0008.score) == (
        "HCPCS", ((31, 50),), 0.7) and g0008.rules_applied == (rule,)  # fmt: skip
    assert medicare.rules[0].removed == (("CPT", "90471"),) and medicare.rules[0].added == (("HCPCS", "G0008"),)
    pneumococcal = billed(code("90732", system="CPT"), admin, payer="medicare")
    assert codes_of(pneumococcal) == {"90732", "G0009"}
    commercial = billed(flu, code("G0008", system="HCPCS"), payer="commercial_a")
    assert codes_of(commercial) == {"90686", "90471"}
    assert codes_of(billed(flu, code("G0008", system="HCPCS"), admin, payer="medicaid")) == {"90686", "90471"}
    assert codes_of(billed(flu, admin, code("G0008", system="HCPCS"), payer="medicare")) == {"90686", "G0008"}
    assert codes_of(billed(flu, admin, payer=None)) == {"90686", "90471"}  # who pays is not known
    assert codes_of(billed(admin, payer="medicare")) == {"90471"}  # which vaccine is not known
    # every code the rule can write is a valid code of the configured code sets
    from medcoder.codes import is_valid_code

    assert all(is_valid_code("HCPCS", g) for g in ("G0008", "G0009", "G0010")) and is_valid_code("CPT", "90471")


def test_a_vaccine_given_is_an_encounter_for_immunization():
    """I.C.21.c.2: Z23 with a grounded vaccine product or administration code, on its evidence."""
    flu = code("90686", system="CPT", span=(10, 30))
    pred = run(flu, code("E11.9"), rule="immunization_encounter")
    z23 = next(c for c in pred.codes if c.code == "Z23")
    assert (z23.grounded, z23.evidence, z23.rules_applied) == (True, ((10, 30),), ("immunization_encounter",))
    assert [e.added for e in pred.rules] == [(("ICD-10-CM", "Z23"),)] and pred.rules[0].section == "I.C.21.c.2"
    medicare = run(code("G0008", system="HCPCS"), rule="immunization_encounter")
    assert codes_of(medicare) == {"G0008", "Z23"}
    # a vaccine the grounding could not confirm as given proves no encounter for immunization
    assert codes_of(run(code("90686", system="CPT", grounded=False), rule="immunization_encounter")) == {"90686"}
    assert codes_of(run(code("99213", system="CPT"), rule="immunization_encounter")) == {"99213"}  # no vaccine
    # a Z23 the model coded without grounding takes the vaccine's evidence
    ungrounded = run(flu, code("Z23", grounded=False, score=0.8), rule="immunization_encounter")
    z23 = next(c for c in ungrounded.codes if c.code == "Z23")
    assert (z23.grounded, z23.score, z23.evidence) == (True, 0.8, ((10, 30),)) and len(ungrounded.codes) == 2


def test_the_payer_of_a_served_note_reaches_the_guideline_layer():
    """`medcoder predict`, the pyfunc and the server all code checked input notes through `note_record`."""
    from medcoder.export.artifact import note_record
    from medcoder.inference.inputs import validate_input

    given = {"id": "v1", "text": "Flu vaccine given today, left deltoid.", "payer": "medicare", "age": 70}
    note = validate_input(given, 10_000, line=1)
    patient = Patient.of(note_record(note))
    assert (patient.payer, patient.age) == ("medicare", 70)


def test_a_grounded_routine_exam_keeps_the_preventive_visit_the_verifier_turned_down():
    """The visit code's words are an age band and a status ("Check-up visit, established patient, age 18 to 39"), which
    a note writes as "23-year-old man, return patient": the exam's own grounded words carry the visit."""
    young_man = Patient(23, "M", "outpatient", patient_status="established")
    pred = run(code("Z00.00", 0.97, span=(40, 55)), code("36415", system=CPT, span=(70, 80)), patient=young_man,
               rule="preventive_visit", verifier_rejected=((CPT, "99396"), (CPT, "99395")))  # fmt: skip
    visit = next(c for c in pred.codes if c.system == CPT and c.code.startswith("993"))
    assert (visit.code, visit.score, visit.evidence, visit.grounded) == ("99395", 0.97, ((40, 55),), True)
    assert visit.rules_applied == ("preventive_visit",)
    assert [e.to_dict() for e in pred.rules] == [
        {"rule": "preventive_visit", "section": "I.C.21.c.13", "removed": [], "added": ["99395"]}
    ]
    # a new patient (stated), a child's exam: the new-patient code of the child's band
    girl = Patient(13, "F", "outpatient", patient_status="new")
    child = run(code("Z00.129"), patient=girl, rule="preventive_visit", verifier_rejected=((CPT, "99394"),))
    assert codes_of(child) == {"Z00.129", "99384"}
    # no stated status: the family the model scored
    unstated = run(code("Z00.00"), patient=Patient(70, "F", "outpatient"), rule="preventive_visit",
                   verifier_rejected=((CPT, "99387"),))  # fmt: skip
    assert codes_of(unstated) == {"Z00.00", "99387"}


@pytest.mark.parametrize(
    "codes, rejected, patient",
    [
        ([code("Z00.00")], (), Patient(40, "M", "outpatient")),  # the model billed no preventive visit
        ([code("Z00.00", grounded=False)], ((CPT, "99396"),), Patient(40, "M", "outpatient")),  # exam not grounded
        ([code("I10")], ((CPT, "99396"),), Patient(40, "M", "outpatient")),  # no routine exam
        ([code("Z00.00")], ((CPT, "99396"),), Patient(None, "M", "outpatient")),  # no age: no band
        ([code("Z00.00")], ((CPT, "99396"),), Patient(40, "M", "inpatient")),
        ([code("Z00.00"), code("99386", system=CPT, span=(9, 12))], ((CPT, "99396"),), Patient(40, "M", "outpatient")),
    ],
)
def test_no_preventive_visit_is_added_without_an_exam_a_scored_visit_and_an_age(codes, rejected, patient):
    pred = run(*codes, patient=patient, rule="preventive_visit", verifier_rejected=rejected)
    assert codes_of(pred) == {c.code for c in codes} and pred.rules == ()


def test_the_patients_stated_status_is_read_from_the_note():
    note = NoteRecord(id="n1", text="Patient: Jose, 23-year-old man, return patient.\nAnnual physical.", age=23)
    assert Patient.of(note).patient_status == "established"
    assert Patient.of(replace(note, text="Annual physical.")).patient_status is None


def test_a_documented_weight_diagnosis_takes_the_bmi_code_of_the_measured_bmi():
    """ "Obesity, BMI 32.1": E66.9 and Z68.32 (I.B.14); the number decides the band, not the model."""
    note = NoteRecord(id="n1", text="Vitals: BP 120/80, BMI 32.1 kg/m2\nA: Obesity - diet counselling", age=50)
    patient = Patient.of(note)
    assert patient.bmi is not None and note.text[slice(*patient.bmi[1])].startswith("BMI 32.1")
    pred = run(code("E66.9", 0.95, span=(38, 45)), patient=patient, rule="bmi_from_value")
    bmi = next(c for c in pred.codes if c.code.startswith("Z68"))
    assert (bmi.code, bmi.evidence, bmi.grounded, bmi.rules_applied) == (
        "Z68.32",
        (patient.bmi[1],),
        True,
        ("bmi_from_value",),
    )
    # no weight diagnosis (a care gap, not a code), a child, a pregnancy, or a BMI code the model coded: nothing added
    assert codes_of(run(code("I10"), patient=patient, rule="bmi_from_value")) == {"I10"}
    child = replace(patient, age=12)
    assert codes_of(run(code("E66.9"), patient=child, rule="bmi_from_value")) == {"E66.9"}
    pregnant = run(code("E66.9"), code("O99.214", span=(9, 12)), patient=patient, rule="bmi_from_value")
    assert codes_of(pregnant) == {"E66.9", "O99.214"}
    own = run(code("E66.9"), code("Z68.33", span=(9, 12)), patient=patient, rule="bmi_from_value")
    assert codes_of(own) == {"E66.9", "Z68.33"}
    goal = Patient.of(replace(note, text="A: Obesity. Goal BMI under 30."))
    assert goal.bmi is None
