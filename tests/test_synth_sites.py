"""Site dialects (medcoder.data.synth.sites): a practice's notes are the corpus's encounters in other words."""

from __future__ import annotations

import re

import pytest

from medcoder.data.synth import generate_notes
from medcoder.data.synth.catalog import CHRONIC
from medcoder.data.synth.sites import NEW_PRACTICE, SITES, site_dialect


@pytest.fixture(scope="module")
def notes_both_ways():
    return generate_notes(150, seed=11), generate_notes(150, seed=11, site=NEW_PRACTICE)


def _labels(note):
    return sorted((c.system, c.code) for c in note.codes)


def test_a_site_changes_words_and_never_the_encounters_or_their_codes(notes_both_ways):
    corpus, site = notes_both_ways
    assert [n.id for n in corpus] == [n.id for n in site]
    assert [_labels(n) for n in corpus] == [_labels(n) for n in site]
    assert [(n.age, n.sex, n.setting, n.encounter_date) for n in corpus] == [
        (n.age, n.sex, n.setting, n.encounter_date) for n in site
    ]
    changed = sum(a.text != b.text for a, b in zip(corpus, site))
    assert changed > len(corpus) // 4  # common chronic conditions: a good share of notes name one


def test_the_corpus_never_uses_a_site_word_and_the_site_does(notes_both_ways):
    corpus, site = notes_both_ways
    words = {w for _, ws in NEW_PRACTICE.terms for w in ws}
    assert not any(w in n.text for n in corpus for w in words), "a site word is in the corpus: no longer a dialect"
    assert sum(any(w in n.text for w in words) for n in site) > len(site) // 4


def _as_conditions(text: str, words_of: dict[str, set[str]]) -> str:
    """`text` with each of the given words (longest first, any case) replaced by its condition's placeholder."""
    pairs = sorted(((w, first) for first, ws in words_of.items() for w in ws), key=lambda p: -len(p[0]))
    for word, first in pairs:  # the placeholder holds no letter, so no later word matches inside it
        mark = f"#{sorted(words_of).index(first)}#"
        text = re.sub(rf"(?<![\w.]){re.escape(word)}(?![\w])", mark, text, flags=re.IGNORECASE)
    return text


def test_a_site_word_quotes_the_code_the_corpus_word_quoted(notes_both_ways):
    """The gold stays right: each code's evidence in a site note is the corpus note's evidence for the same
    code with only some of its condition names written in the site's words for that same condition."""
    corpus, site = notes_both_ways
    site_words = {first: set(ws) for first, ws in NEW_PRACTICE.terms}
    corpus_words = {
        cond.names[0]: {*cond.names, *cond.misspellings} for cond in CHRONIC.values() if cond.names[0] in site_words
    }
    corpus_words["urinary tract infection"] = {"urinary tract infection", "UTI"}
    assert corpus_words.keys() == site_words.keys()
    renamed = 0
    for plain, local in zip(corpus, site):
        quotes = {(c.system, c.code): [plain.text[a:b] for a, b in c.evidence] for c in plain.codes}
        for c in local.codes:
            for k, (a, b) in enumerate(c.evidence):
                before, after = quotes[(c.system, c.code)][k], local.text[a:b]
                if before == after:
                    continue
                as_written = _as_conditions(_as_conditions(after, site_words), corpus_words)
                assert as_written == _as_conditions(before, corpus_words), (local.id, c.code, before, after)
                renamed += 1
    assert renamed > 20


def test_every_site_term_renames_a_condition_the_generator_writes():
    firsts = {cond.names[0] for cond in CHRONIC.values()} | {"urinary tract infection"}
    for site in SITES.values():
        assert {first for first, _ in site.terms} <= firsts, site.name


def test_an_unknown_site_is_an_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="new_practice"):
        site_dialect("old_practice")
