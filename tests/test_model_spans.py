"""Character spans <-> BIO tags on real tokenizer output, across chunk boundaries and overlaps."""

from __future__ import annotations

import pytest

from medcoder.data.chunking import Chunking, chunk_note
from medcoder.data.spans import IGNORE, B, I, O, bio_tags_for_spans, merge_spans, spans_from_bio, token_runs, word_span
from medcoder.data.tokenizer import load_tokenizer

TEXT = (
    "HPI: 67F with type 2 diabetes, A1c 9.8%, uncontrolled hyperglycemia. Denies chest pain. "
    "Mother with breast cancer. BP 150/95 on lisinopril; essential hypertension (HTN). "
    "Plan: increase metformin, recheck in 3 months."
)


def span_of(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return start, start + len(phrase)


GOLD = [
    span_of("uncontrolled hyperglycemia"),
    span_of("A1c 9.8%"),
    span_of("essential hypertension (HTN)"),
    span_of("type 2 diabetes"),
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(None)


def flat(chunks):
    return [o for offs in chunks.offsets for o in offs]


@pytest.mark.parametrize(("size", "overlap"), [(512, 0), (12, 0), (12, 3), (9, 5), (5, 2)])
def test_round_trip_through_chunks(tokenizer, size: int, overlap: int) -> None:
    """Gold spans -> tags per chunk -> decoded spans gives the gold spans back, however the chunks cut."""
    chunks = chunk_note(TEXT, tokenizer, Chunking(size, overlap, max_chunks=200))
    offsets = flat(chunks)
    tags = bio_tags_for_spans(offsets, GOLD)
    assert spans_from_bio(tags, offsets, TEXT) == sorted(GOLD)


def test_tags_follow_tokens(tokenizer) -> None:
    chunks = chunk_note(TEXT, tokenizer, Chunking(512, 0, 1))
    offsets = flat(chunks)
    tags = bio_tags_for_spans(offsets, [span_of("uncontrolled hyperglycemia")])
    assert tags[0] == IGNORE and tags[-1] == IGNORE
    tagged = [(TEXT[s:e], t) for (s, e), t in zip(offsets, tags) if t in (B, I)]
    assert tagged[0][1] == B and all(t == I for _, t in tagged[1:])
    # the word pieces of the span, in order, are exactly the span's words
    assert "".join(piece for piece, _ in tagged) == "uncontrolledhyperglycemia"
    assert len(tagged) > 2  # "uncontrolled" and "hyperglycemia" are both split into word pieces
    assert tags.count(O) == len(offsets) - 2 - len(tagged)


def test_a_span_cut_by_a_chunk_boundary_restarts_with_b(tokenizer) -> None:
    offsets = flat(chunk_note(TEXT, tokenizer, Chunking(5, 0, 200)))  # 3 note tokens a chunk
    tags = bio_tags_for_spans(offsets, [span_of("uncontrolled hyperglycemia")])
    starts = [i for i, t in enumerate(tags) if t == B]
    assert len(starts) >= 2  # the span runs over more than one chunk
    for i in starts[1:]:
        assert offsets[i - 1] == (-1, -1)  # every extra B opens a chunk


def test_partial_token_overlap_tags_the_whole_token(tokenizer) -> None:
    chunks = chunk_note(TEXT, tokenizer, Chunking(512, 0, 1))
    start, end = span_of("hyperglycemia")
    offsets = flat(chunks)
    tags = bio_tags_for_spans(offsets, [(start + 2, end - 2)])  # "perglycem"
    spans = spans_from_bio(tags, offsets, TEXT)
    assert len(spans) == 1 and spans[0][0] <= start + 2 and spans[0][1] >= end - 2


def test_touching_spans_stay_apart_within_a_chunk() -> None:
    text = "chest pain dyspnea"
    offsets = [(-1, -1), (0, 5), (6, 10), (11, 18), (-1, -1)]
    tags = bio_tags_for_spans(offsets, [(0, 10), (11, 18)])
    assert tags == [IGNORE, B, I, B, IGNORE]
    # decoding merges only pieces a chunk boundary cut, not two spans the tagger separated
    assert spans_from_bio(tags, offsets, text) == [(0, 10), (11, 18)]


def test_a_run_carried_over_a_line_break_is_two_spans() -> None:
    """ "Diabetes follow-up\nType 2 diabetes": the header's tail and the next line are two statements."""
    text = "follow-up\nType 2 diabetes"
    offsets = [(-1, -1), (0, 6), (6, 7), (7, 9), (10, 14), (15, 16), (17, 25), (-1, -1)]
    tags = [IGNORE, O, O, B, I, I, I, IGNORE]
    # the tagged "up" is widened to its hyphenated word
    assert [text[s:e] for s, e in spans_from_bio(tags, offsets, text)] == ["follow-up", "Type 2 diabetes"]


def test_decoder_tolerates_i_without_b_and_trims_edges() -> None:
    text = "Assessment: pneumonia. Plan: rest."
    offsets = [(-1, -1), (0, 10), (10, 11), (12, 21), (21, 22), (23, 27), (27, 28), (29, 33), (33, 34), (-1, -1)]
    tags = [IGNORE, O, I, I, I, O, O, B, I, IGNORE]  # ": pneumonia." tagged, starting with I
    assert spans_from_bio(tags, offsets, text) == [(12, 21), (29, 33)]
    assert token_runs(tags, offsets) == [(2, 4), (7, 8)]


def test_trim_keeps_percent_and_balanced_brackets() -> None:
    text = "A1c 9.8%, (HTN) and (fever"
    offsets = [
        (-1, -1),
        (0, 3),
        (4, 7),
        (7, 8),
        (8, 9),
        (10, 11),
        (11, 14),
        (14, 15),
        (16, 19),
        (20, 21),
        (21, 26),
        (-1, -1),
    ]
    tags = [IGNORE, B, I, I, I, B, I, I, O, B, I, IGNORE]
    assert [text[s:e] for s, e in spans_from_bio(tags, offsets, text)] == ["A1c 9.8%", "(HTN)", "fever"]


def test_special_and_pad_tokens_break_runs() -> None:
    text = "chest pain"
    offsets = [(-1, -1), (0, 5), (-1, -1), (-1, -1), (6, 10), (-1, -1)]
    assert spans_from_bio([IGNORE, B, IGNORE, IGNORE, I, IGNORE], offsets, text) == [(0, 10)]  # rejoined across
    assert spans_from_bio([IGNORE, O, O, O, O, IGNORE], offsets, text) == []


def test_merge_spans_only_joins_chunk_pieces_across_white_space() -> None:
    text = "chest pain dyspnea"
    assert merge_spans([(11, 18), (0, 5), (3, 10)], text) == [(0, 10), (11, 18)]
    assert merge_spans([(0, 10), (11, 18)], text, joinable=[(False, True), (True, False)]) == [(0, 18)]


@pytest.mark.parametrize("text, start, end, expected", [
    ("A: sinusitis - amoxicillin-clavulanate.", 26, 38, "amoxicillin-clavulanate"),  # a fragment from its hyphen
    ("A: sinusitis - amoxicillin-clavulanate.", 15, 26, "amoxicillin-clavulanate"),  # the first half
    ("Positive for COVID-19 today.", 13, 18, "COVID-19"),
    ("Cough - no fever.", 0, 5, "Cough"),  # a spaced dash separates
])  # fmt: skip
def test_an_evidence_span_is_widened_to_whole_words_hyphenated_ones_included(text, start, end, expected):
    span = word_span(text, start, end)
    assert span is not None and text[span[0] : span[1]] == expected


def test_a_span_at_the_end_of_the_text_is_read_without_looking_past_it():
    text = "Problems: tobacco use (occasional cigar, not daily)"  # a clause that ends the note (stress note s-070)
    assert word_span(text, len(text), len(text)) is None
    assert text[slice(*word_span(text, 10, len(text)))] == "tobacco use (occasional cigar, not daily)"
