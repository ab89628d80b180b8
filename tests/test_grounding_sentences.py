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


NOTES_FOR_BOUNDS = [
    "Dx: CHF. 2. HTN.\n\nPt. seen vs Dr. Smith; fever. ",
    "1. CHF.\n2. HTN\nNo fever.Cough; denies chest pain!  Hx of MI? yes",
    "",
    ".",
    "a.\nb",
]


def test_sentence_lookups_from_the_precomputed_ends_equal_a_scan_of_the_note():
    """`sentence_at` and the context check's sentence bounds read each note's sentence ends once (a long note's
    grounding was quadratic); at every position they say what scanning the note from its start says."""
    from medcoder.inference.grounding import context
    from medcoder.inference.grounding.sentences import SENTENCE_END, sentence_at

    def scanned_sentence(text: str, position: int) -> tuple[int, int]:
        start = max((m.end() for m in SENTENCE_END.finditer(text, 0, position)), default=0)
        following = SENTENCE_END.search(text, position)
        return start, following.start() + 1 if following else len(text)

    def scanned_bounds(text: str, start: int, end: int) -> tuple[int, int]:
        lo, hi = 0, len(text)
        for m in context._SENTENCE_END.finditer(text):
            if m.group() == "." and context._word_before(text, m.start()).lower() in context._ABBREVIATIONS:
                continue
            if m.end() <= start:
                lo = m.end()
            elif m.start() >= end:
                return lo, m.end()
        return lo, hi

    for text in NOTES_FOR_BOUNDS:
        for a in range(len(text) + 1):
            assert sentence_at(text, a) == scanned_sentence(text, a), (text, a)
            for b in range(a, len(text) + 1):
                assert context._sentence_bounds(text, a, b) == scanned_bounds(text, a, b), (text, a, b)


def test_a_note_s_sentences_and_clauses_found_once_are_what_finding_them_again_finds():
    """Grounding reads a note's sentences and clauses from a per-note cache; the lists it hands out are the
    caller's own (changing one changes no other reader's), and they equal a fresh reading of the note."""
    from medcoder.data.synth import generate_notes
    from medcoder.inference.grounding import sentences as module

    texts = [*NOTES_FOR_BOUNDS, *(n.text for n in generate_notes(3, seed=5))]
    for text in texts:  # read once, and spoil what was handed out
        for found in (sentences(text), sentences(text, min_words=1), clauses(text), module.diagnostic_clauses(text)):
            found.append((0, 0))
    for text in texts:
        assert sentences(text) == list(module._sentences.__wrapped__(text, 2))
        assert sentences(text, min_words=1) == list(module._sentences.__wrapped__(text, 1))
        assert clauses(text) == list(module._clauses.__wrapped__(text))
        assert module.diagnostic_clauses(text) == list(module._diagnostic_clauses.__wrapped__(text))
    assert any(clauses(text) for text in texts)


@pytest.mark.parametrize("text, statements", [
    # a note in one paragraph: from the sentence its label opens to the next label
    ("Feet normal. Assessment: type 2 diabetes, well controlled on metformin. Plan: continue current dose.",
     ["type 2 diabetes", "well controlled on metformin"]),
    ("Wheeze. A/P: COPD, stable. Chronic atrial fibrillation, rate controlled. Plan: refills.",
     ["COPD", "stable", "Chronic atrial fibrillation", "rate controlled"]),
    ("Admitted with chest pain. Diagnosis: acute inferior STEMI, stented. Quit smoking 5 years ago.",
     ["acute inferior STEMI", "stented", "Quit smoking 5 years ago"]),
    # a label that is not a diagnostic one opens nothing; a history line is not an assessment
    ("Plan: metformin 500 mg. HPI: cough for 3 days.", []),
    # labelled lines, as before
    ("HPI: cough.\nA: HTN\nDM2\n\nPlan: meds", ["HTN", "DM2"]),
])  # fmt: skip
def test_diagnostic_statements_are_labelled_lines_and_sentences_a_label_opens(text, statements):
    from medcoder.inference.grounding.sentences import diagnostic_clauses

    assert [text[a:b] for a, b in diagnostic_clauses(text)] == statements


def test_an_initial_before_a_lower_case_word_ends_no_sentence():
    text = "Urine culture grew E. coli. Stool H. pylori antigen positive. Vitamin D. Repeat in 3 months."
    assert [text[a:b] for a, b in sentences(text, min_words=1)] == [
        "Urine culture grew E. coli", "Stool H. pylori antigen positive", "Vitamin D", "Repeat in 3 months",
    ]  # fmt: skip
