"""Where grounding's sentences and clauses end, and what a clause stating a past condition names."""

from __future__ import annotations

import pytest

from medcoder.inference.grounding.sentences import clauses, past_condition_words, sentences


@pytest.mark.parametrize("text, expected", [
    ("Follow-up for CKD stage 3. No chest pain.", ["Follow-up for CKD stage 3", "No chest pain"]),  # a value ends it
    ("A1c 7. Plan metformin.", ["A1c 7", "Plan metformin"]),
    ("Discharge diagnoses: 1. CHF. 2. HTN.", ["Discharge diagnoses: 1. CHF", "2. HTN"]),  # list numbers do not
    ("1. CHF exacerbation\n2. HTN", ["1. CHF exacerbation", "2. HTN"]),
    ("Problems (1. CHF. 2. COPD)", ["Problems (1. CHF", "2. COPD"]),
])  # fmt: skip
def test_a_full_stop_after_a_value_ends_the_sentence_but_one_after_a_list_number_does_not(text, expected):
    assert [text[a:b] for a, b in sentences(text, min_words=1)] == expected


def test_a_second_verb_of_the_same_subject_starts_a_clause_of_its_own():
    """The past of "had a heart attack in 2015" is not the diabetes's: each predicate is its own clause."""
    text = "He had a heart attack in 2015 and has type 2 diabetes. Cough and fever since Monday."
    assert [text[a:b] for a, b in clauses(text)] == [
        "He had a heart attack in 2015", "has type 2 diabetes", "Cough and fever since Monday",
    ]  # fmt: skip


@pytest.mark.parametrize("clause, words", [
    ("He had a heart attack in 2015", "heart attack"),
    ("Hx MI 2015", "MI"),
    ("s/p stroke", "stroke"),
    ("She had a stroke in 2019 with full recovery", "stroke"),
    ("Remote history of DVT 3 years ago", "DVT"),
    ("prior MI in March 2019", "MI"),
    ("history of breast cancer", "breast cancer"),
])  # fmt: skip
def test_a_clause_stating_a_past_condition_is_read_for_the_conditions_name(clause, words):
    span = past_condition_words(clause, (0, len(clause)))
    assert span is not None and clause[span[0] : span[1]] == words


@pytest.mark.parametrize("clause", ["He had a colonoscopy in 2015", "s/p cardiac cath 2019", "Mammogram 2023"])
def test_a_past_procedure_or_test_names_no_past_condition(clause):
    assert past_condition_words(clause, (0, len(clause))) is None
