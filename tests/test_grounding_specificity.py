"""The documentation-specificity table (resources/code_specificity.tsv) and its reader: every row
loads, a malformed table is an error naming its line and field, and the rows say what the ICD-10-CM
descriptions say (E11.65 needs hyperglycemia; an unspecified code gives way to documented detail)."""

from __future__ import annotations

import pytest
import simple_icd_10_cm as cm

from medcoder.inference.grounding import specificity
from medcoder.inference.grounding.specificity import (
    check_documentation,
    fallback_for,
    load_specificity_rules,
    specific_siblings,
)

NOWHERE = lambda pattern: None  # noqa: E731  (no other sentence of the note says anything)
CURRENT = lambda start, end: True  # noqa: E731  (every mention affirmed)


def check(code: str, quoted: str, find_in_note=NOWHERE, is_current=CURRENT):
    return check_documentation(code, quoted, [(0, len(quoted))], is_current, find_in_note)


def test_every_row_names_a_billable_code_or_a_category_and_a_billable_fallback():
    rules = specificity.specificity_rules()
    assert len(rules) >= 30
    for rule in rules:
        code = rule.code.rstrip("*")
        assert cm.is_valid_item(code), rule.code
        assert rule.code.endswith("*") or cm.is_leaf(code), rule.code
        if rule.fallback:
            assert cm.is_leaf(rule.fallback) and rule.fallback[:3] in (code[:3], "I10"), (rule.code, rule.fallback)


@pytest.mark.parametrize(
    ("code", "quoted", "unmet"),
    [
        ("E11.65", "A: type 2 diabetes, controlled", "requires:E11.65"),
        ("E11.65", "Type 2 diabetes, poorly controlled, A1c 9.8%", None),
        ("J44.1", "COPD exacerbation after a cold", None),
        ("J44.1", "# COPD - stable on tiotropium", "requires:J44.1"),
        ("I48.91", "Atrial fibrillation, permanent - on warfarin", "excluded_by:I48.91"),
        ("I48.91", "afib on eliquis, rate ok", None),
        ("N18.30", "CKD stage 3b - eGFR 36", "excluded_by:N18.30"),
        ("C50.919", "Breast cancer, left, dx 2022", "excluded_by:C50.919"),
        ("M17.11", "primary osteoarthritis of the right knee", None),
        ("M17.11", "primary osteoarthritis of both knees", "requires:M17.11"),
        ("Z88.5", "levothyroxine 88 mcg daily", "requires:Z88*"),
        ("Z88.5", "Allergies: codeine - nausea", None),
        # I.C.9.e: an MI within four weeks of onset is still I21; only an older one is I25.2
        ("I25.2", "NSTEMI 3 weeks ago, s/p PCI to LAD", "excluded_by:I25.2"),
        ("I25.2", "Old MI (2017), stable, no angina", None),
        ("N18.30", "Kidney function normal (eGFR 95, UACR 12)", "requires:N18*"),
        ("E66.9", "pre-diabetic, a1c 6.1, diet/exercise", "requires:E66*"),
        ("E66.9", "Obesity, BMI 33 - diet and exercise", None),
        # hypertensive heart disease needs the hypertension documented, not only the heart failure
        ("I11.0", "acute on chronic systolic heart failure, EF 30%", "requires:I11*"),
        ("I10", "essential hypertension", None),  # no row: nothing to check
        # "ckd4" as notes write it: the stage right after the abbreviation
        ("I12.9", "htn + ckd4 (egfr 24), on amlodipine", None),
        ("N18.4", "htn + ckd4 (egfr 24), on amlodipine", None),
        ("I12.9", "htn, on amlodipine; ckdx panel ordered", "requires:I12.9"),
        # a family history says whose: the patient's own breast cancer history is Z85.3, not Z80.3
        ("Z80.3", "History of breast cancer, finished chemo in 2018", "requires:Z80*"),
        ("Z80.3", "Mother with breast cancer at 45", None),
        ("Z82.49", "FHx: premature CAD", None),
        # Episode, depressive: mild F32.0, moderate F32.1, severe F32.2; "Depression" alone is F32.A, "major
        # depression" with no severity F32.9
        ("F32.A", "Depression, moderate, single episode. Started sertraline", "excluded_by:F32.A"),
        ("F32.A", "Depression - stable on sertraline", None),
        ("F32.A", "Major depressive disorder, on escitalopram", "excluded_by:F32.A"),
        ("F32.9", "severe major depression, no psychotic features", "excluded_by:F32.9"),
        ("F32.9", "MDD, on venlafaxine", None),
        ("F32.9", "depression, on bupropion", "requires:F32.9"),
        # Index: hypercholesterolemia and high cholesterol E78.00, hypertriglyceridemia E78.1; hyperlipidemia E78.5
        ("E78.5", "High cholesterol, on atorvastatin", "excluded_by:E78.5"),
        ("E78.5", "HLD - LDL 142, continue atorvastatin", None),
        # an artery named is not its disease: CAD must be written (a STEMI's culprit vessel, "stent to the RCA")
        ("I25.10", "treated with a stent to the right coronary artery", "requires:I25.10"),
        ("I25.10", "CAD s/p stent to the right coronary artery 2019", None),
        ("I25.10", "Coronary atherosclerosis, stable on aspirin", None),
        # an ear named is not its wax: impacted cerumen must be written ("BPPV, right ear" was H61.21 at 0.93)
        ("H61.21", "BPPV, right ear - Epley maneuver done in clinic", "requires:H61.21"),
        ("H61.21", "Impacted cerumen, right ear - irrigated", None),
        # a side documented: not the "unspecified ear" code (I.B.13), read from the description, no table row
        ("H66.90", "Dx: acute otitis media, right ear", "excluded_by:H66.90"),
        ("H66.90", "Right TM red and bulging. Dx: acute otitis media", "excluded_by:H66.90"),
        ("H66.90", "Dx: acute otitis media", None),
        # Index: Infection, bladder -> see Cystitis (N30.-); urinary (tract) N39.0
        ("N39.0", "Impression: uncomplicated bladder infection", "excluded_by:N39.0"),
        ("N39.0", "Impression: uncomplicated urinary tract infection", None),
        # the severity written after the condition: J45.30 (mild persistent), not "unspecified"
        ("J45.909", "Asthma, mild persistent, stable on inhaled fluticasone", "excluded_by:J45.909"),
        ("J45.909", "Asthma - stable, albuterol as needed", None),
        # an allergy status code names its drug class: "Drug allergies" alone fits every Z88 code
        ("Z88.2", "Drug Allergies: penicillin (hives)", "requires:Z88.2"),
        ("Z88.0", "Drug Allergies: penicillin (hives)", None),
        ("Z88.2", "Allergies: Bactrim (rash)", None),
        ("Z88.5", "Allergies: sulfa drugs (rash)", "requires:Z88.5"),
        ("Z88.5", "ALL: codeine (nausea)", None),
        # cellulitis is not an abscess of the same site
        ("L02.415", "Cellulitis of the right lower leg. Cephalexin 500 mg", "requires:L02*"),
        ("L02.415", "Abscess of the right thigh, I&D performed", None),
        ("L03.115", "Abscess of the right thigh, I&D performed", "requires:L03*"),
    ],
)
def test_what_the_documentation_must_and_must_not_say(code, quoted, unmet):
    found, _ = check(code, quoted)
    assert (found.reason if found else None) == unmet


def test_a_note_scope_requirement_is_met_by_a_mention_elsewhere_and_joins_the_evidence():
    unmet, joined = check("E11.65", "Type 2 diabetes on metformin.", lambda pattern: (40, 53))
    assert unmet is None and joined == ((40, 53),)
    # a side must be said of the same mention: another sentence's "right" does not count
    unmet, _ = check("M17.11", "osteoarthritis of the knee", lambda pattern: (0, 5))
    assert unmet is not None and unmet.reason == "requires:M17.11"


def test_a_note_scope_exclusion_reads_the_whole_note_and_an_acute_stroke_code_needs_a_current_stroke():
    organism_elsewhere = lambda pattern: (40, 46)  # noqa: E731  ("cultures grew E. coli" in another sentence)
    assert check("A41.9", "Admitted with sepsis from a UTI", organism_elsewhere)[0].reason == "excluded_by:A41.9"
    assert check("A41.9", "Admitted with sepsis from a UTI")[0] is None
    # "ischemic stroke three years ago ... residual hemiparesis": no current stroke anywhere (sequela, I69)
    assert check("I63.9", "residual right-sided hemiparesis")[0].reason == "requires:I63*"


def test_only_a_current_mention_counts_in_the_quoted_sentence():
    """ "Stable, no recent COPD exacerbations": the negated exacerbation neither excludes J44.9 nor documents J44.1."""
    text = "COPD: stable, no recent COPD exacerbations."
    negated = text.index("exacerbations")
    not_negated = lambda start, end: start != negated  # noqa: E731  (what the context check says here)
    assert check("J44.9", text, is_current=not_negated)[0] is None
    assert check("J44.1", text, is_current=not_negated)[0].reason == "requires:J44.1"


def test_an_excluded_unspecified_code_names_the_siblings_a_detail_can_specify():
    labels = ["J44.0", "J44.1", "J44.9", "J45.909", "E11.9"]
    assert specific_siblings("J44.9", labels) == ["J44.0", "J44.1"]  # rows decide which one the note meets
    assert specific_siblings("I48.91", labels) == []


def test_fallbacks_are_the_category_codes_the_documentation_supports():
    assert fallback_for("E11.65") == "E11.9" and fallback_for("J44.1") == "J44.9"
    assert fallback_for("I48.91") is None and fallback_for("I10") is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("E11.65\trequires\tnote\thyperglyc\\w*", "expected 5 tab-separated fields"),
        ("E11.65\tneeds\tnote\thyperglyc\\w*\tE11.9", "field kind"),
        ("E11.65\trequires\tchart\thyperglyc\\w*\tE11.9", "field scope"),
        ("E11.65\trequires\tnote\thyperglyc(\tE11.9", "field pattern"),
        ("I48.91\texcluded_by\tsentence\tpermanent\tI48.21", "excluded_by rows have no fallback"),
    ],
)
def test_a_malformed_table_names_its_line_and_field(tmp_path, row, message):
    path = tmp_path / "spec.tsv"
    path.write_text("# comment\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message) as err:
        load_specificity_rules(path)
    assert f"{path}:2:" in str(err.value)


def test_the_table_never_contradicts_the_embedded_corpus_gold():
    """The corpus's gold labels are right by the guidelines and its gold evidence justifies them, so
    no row may reject a gold code on its gold evidence (in the note's setting); on the 2,000-note
    corpus of `make train` none does either (checked when the table was written)."""
    from medcoder.data.synth import generate_corpus
    from medcoder.inference.grounding.evidence import _documentation

    corpus = generate_corpus(300, seed=11)
    checked, contradicted = 0, []
    for record in (r for split in corpus.values() for r in split):
        for c in record.codes:
            if c.system == "ICD-10-CM" and c.evidence and specificity.rules_for(c.code):
                checked += 1
                unmet, _ = _documentation(record.text, c.system, c.code, tuple(c.evidence), record.setting)
                if unmet is not None:
                    contradicted.append((record.id, c.code, unmet.reason))
    assert checked >= 100 and contradicted == []


@pytest.mark.parametrize(
    "note, unmet",
    [
        ("Type 2 diabetes. She has diabetic peripheral neuropathy, numb feet.", "excluded_by:E11.9"),
        ("Type 2 diabetes. Peripheral neuropathy, stable on gabapentin.", "excluded_by:E11.9"),  # "with" presumes it
        ("Type 2 diabetes, well controlled. Foot exam normal, no neuropathy.", None),
        ("Type 2 diabetes. Family history: mother had diabetic retinopathy.", None),
        ("Type 2 diabetes. Numb feet, possible diabetic neuropathy.", None),  # uncertain outside the hospital
    ],
)
def test_a_diabetic_complication_anywhere_in_the_note_rules_out_diabetes_without_complications(note, unmet):
    """ICD-10-CM I.A.15: the Index lists neuropathy, retinopathy, gastroparesis ... under Diabetes, with, so a current
    mention in another sentence than the diabetes' makes E11.9 the wrong code (E11.42 ...), read through the note's
    context check (evidence._documentation)."""
    from medcoder.inference.grounding.evidence import _documentation

    start = note.index("Type 2 diabetes")
    found, _ = _documentation(note, "ICD-10-CM", "E11.9", [(start, start + len("Type 2 diabetes"))], "outpatient")
    assert (found.reason if found else None) == unmet
