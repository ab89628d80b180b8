"""The shipped hand-written evaluation assets (behaviour cases v1 and v2, stress notes) are what a
certified coder would check: every code billable, every evidence phrase in its note, no code
written into a note except where an injected instruction asks for it, and the v2 must-codes and the
stress label-space annotation agreeing with what the default embedded corpus teaches."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from omegaconf import OmegaConf

from medcoder.codes import icd10cm
from medcoder.evaluation.behaviour import CASES_V2, CATEGORIES, DEFAULT_CASES, load_cases
from medcoder.evaluation.stress import DEFAULT_STRESS, STRESS_SETTINGS, STYLES, load_stress
from medcoder.paths import project_root

CODE_IN_TEXT = re.compile(r"\b[A-Z][0-9][0-9A-Z]\.[0-9A-Z]{1,4}\b|\b[A-Z][0-9]{2}\b")


def written_codes(text: str) -> set[str]:
    return {c for c in CODE_IN_TEXT.findall(text) if icd10cm.is_valid(c)}


@pytest.fixture(scope="module")
def taught_codes() -> frozenset[str]:
    """The ICD-10-CM codes of the label space `make train` builds from the default embedded corpus."""
    from medcoder.data.labels import coding_label_space
    from medcoder.data.synth import generate_corpus

    corpus = OmegaConf.load(project_root() / "configs" / "train.yaml").corpus
    train = generate_corpus(int(corpus.notes), int(corpus.seed))["train"]
    return frozenset(code for system, code in coding_label_space(train).labels if system == "ICD-10-CM")


@pytest.fixture(scope="module")
def v2():
    return load_cases(CASES_V2)


@pytest.fixture(scope="module")
def stress():
    return load_stress(DEFAULT_STRESS)


# ---------------------------------------------------------------- both case files
@pytest.mark.parametrize("path", [DEFAULT_CASES, CASES_V2], ids=["v1", "v2"])
def test_every_case_code_is_billable_and_every_evidence_phrase_is_in_its_text(path):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows
    for row in rows:
        expect = row["expect"]
        for code in expect["must_code"] + expect["must_not_code"] + expect.get("injected", []):
            assert icd10cm.is_billable(code), (row["id"], code)
        for ev in expect.get("evidence", []):
            assert row["text"].count(ev["phrase"]) == 1, (row["id"], ev["code"])


@pytest.mark.parametrize("path", [DEFAULT_CASES, CASES_V2], ids=["v1", "v2"])
def test_codes_are_written_into_a_case_only_by_an_injected_instruction(path):
    for case in load_cases(path):
        written = written_codes(case.text)
        if case.category == "injection":
            assert written == set(case.injected), case.id
        else:
            assert not written, (case.id, written)


# ---------------------------------------------------------------- v2 cases
def test_v2_cases_cover_every_category_in_both_settings(v2):
    assert len(v2) >= 70
    assert all(case.id.startswith("v2-") for case in v2)
    counts = Counter(case.category for case in v2)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 5, counts
    assert {c.setting for c in v2 if c.category == "inpatient_uncertain"} == {"inpatient"}
    assert {c.setting for c in v2 if c.category == "outpatient_uncertain"} == {"outpatient"}
    assert not {c.id for c in v2} & {c.id for c in load_cases(DEFAULT_CASES)}


def test_v2_must_codes_are_codes_the_default_corpus_teaches(v2, taught_codes):
    """A must-code no model of the default recipe can emit would make a case that can never pass."""
    outside = {(case.id, code) for case in v2 for code in case.must_code if code not in taught_codes}
    assert not outside


def test_v2_name_pairs_are_the_same_note_with_another_patient(v2):
    pairs: dict[str, list] = {}
    for case in v2:
        if case.pair:
            pairs.setdefault(case.pair, []).append(case)
    assert len(pairs) >= 3
    for members in pairs.values():
        a, b = members
        assert (a.setting, a.age, a.must_code, a.must_not_code) == (b.setting, b.age, b.must_code, b.must_not_code)
        assert a.text != b.text and len(a.text.split()) == len(b.text.split())


# ---------------------------------------------------------------- stress notes
def test_stress_notes_are_short_varied_and_include_clean_notes(stress):
    assert len(stress) >= 110
    assert Counter(n.style for n in stress).keys() == set(STYLES)
    assert min(Counter(n.style for n in stress).values()) >= 10
    assert {n.setting for n in stress} == set(STRESS_SETTINGS)
    assert all(1 <= len(n.text.splitlines()) <= 6 and len(n.supported) <= 5 for n in stress)
    clean = sum(not n.supported for n in stress) / len(stress)
    assert 0.10 <= clean <= 0.25, clean
    assert sum(bool(n.out_of_label_space) for n in stress) >= 20  # where over-coding shows


def test_every_stress_code_is_billable_and_none_is_written_in_a_note(stress):
    for note in stress:
        for code in note.supported + note.may_code:
            assert icd10cm.is_billable(code), (note.id, code)
        assert not written_codes(note.text), note.id


@pytest.mark.parametrize(
    "text,code",
    [
        ("Assessment: essential hypertension, stable. Continue lisinopril.", "I10"),
        ("Assessment: hypothyroidism on levothyroxine.", "E03.9"),
        ("Assessment: GERD, stable on omeprazole.", "K21.9"),
        ("Assessment: community-acquired pneumonia confirmed on chest x-ray.", "J18.9"),
        ("Old MI, stable.", "I25.2"),
        ("Type 2 diabetes with hyperglycemia, A1c 9.8%.", "E11.65"),
    ],
)
def test_the_notes_from_the_issue_are_in_the_stress_set(stress, text, code):
    matches = [n for n in stress if n.text == text]
    assert len(matches) == 1 and matches[0].supported == (code,)


def test_stress_label_space_annotation_matches_the_default_corpus(stress, taught_codes):
    """out_of_label_space must name exactly the supported codes the default corpus does not teach;
    when the generator changes its codes, this says which notes to re-annotate."""
    wrong = {
        note.id: (sorted(set(note.out_of_label_space)), sorted(c for c in note.supported if c not in taught_codes))
        for note in stress
        if set(note.out_of_label_space) != {c for c in note.supported if c not in taught_codes}
    }
    assert not wrong
