"""THE one place where character spans and sub-word tokens are aligned (as in HF `run_ner.py`).

Gold evidence is character spans; the tagger works on tokens. `bio_tags_for_spans` turns spans into
per-token BIO tags for training and `spans_from_bio` turns predicted tags back into character spans.
Both work on the flattened token sequence of a note's chunks, where special tokens ((-1, -1)
offsets) separate chunks: a span restarts with B at the start of every chunk, because the encoder
sees each chunk on its own and cannot know a span began in the previous one. Decoding merges the
pieces again (overlapping copies of the same tokens, or a span cut at a chunk boundary).
"""

from __future__ import annotations

from collections.abc import Sequence

from medcoder.data.schema import Span

O, B, I = 0, 1, 2  # noqa: E741 (the standard BIO tag names; tests and callers import them)
BIO_NAMES: tuple[str, ...] = ("O", "B-EVIDENCE", "I-EVIDENCE")
IGNORE = -100  # what torch's cross-entropy skips: special and pad tokens

# Characters trimmed from decoded span edges: a tagged sentence-final "." is not evidence.
# Closing brackets, % and the like are kept: "9.8%" and "(HbA1c)" must stay whole.
_EDGE_CHARS = " \t\r\n\f\v.,;:!?\"'`"


def _is_special(offset: Sequence[int]) -> bool:
    return offset[0] < 0 or offset[1] <= offset[0]


def bio_tags_for_spans(token_offsets: Sequence[Sequence[int]], spans: Sequence[Span]) -> list[int]:
    """Per-token BIO tag ids for gold character spans.

    A token is inside a span when its character range overlaps it; it is B when the previous token
    of the same chunk is not inside that same span (so two touching spans stay two), else I.
    Special and pad tokens get -100 and end the chunk.
    """
    tags: list[int] = []
    previous: set[int] = set()  # indices of spans the previous token of this chunk was in
    for offset in token_offsets:
        if _is_special(offset):
            tags.append(IGNORE)
            previous = set()
            continue
        start, end = int(offset[0]), int(offset[1])
        inside = {i for i, (s, e) in enumerate(spans) if start < e and s < end}
        tags.append(O if not inside else (I if inside & previous else B))
        previous = inside
    return tags


def _trim(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start] in _EDGE_CHARS:
        start += 1
    while end > start and text[end - 1] in _EDGE_CHARS:
        end -= 1
    # An opening bracket without its closing one (or the reverse) at an edge is not part of the evidence.
    for open_, close in ("()", "[]"):
        if start < end and text[start] == open_ and close not in text[start:end]:
            start += 1
        if end > start and text[end - 1] == close and open_ not in text[start:end]:
            end -= 1
    return (start, end) if start < end else None


def merge_spans(spans: Sequence[Span], text: str, joinable: Sequence[tuple[bool, bool]] | None = None) -> list[Span]:
    """Sort spans and merge those that overlap or touch.

    `joinable[i] = (starts_a_chunk, ends_a_chunk)` additionally lets a span that ends a chunk join
    one that starts the next chunk across white space: the pieces of one span cut by a chunk
    boundary between two words. Within a chunk, B after a run means the tagger saw two spans.
    """
    flags = list(joinable) if joinable is not None else [(False, False)] * len(spans)
    merged: list[list] = []  # [start, end, ends_a_chunk]
    for (start, end), (starts_chunk, ends_chunk) in sorted(zip(spans, flags)):
        if merged:
            prev = merged[-1]
            across_boundary = prev[2] and starts_chunk and not text[prev[1] : start].strip()
            if start <= prev[1] or across_boundary:
                if end >= prev[1]:
                    prev[1], prev[2] = end, ends_chunk
                continue
        merged.append([start, end, ends_chunk])
    return [(s, e) for s, e, _ in merged]


def token_runs(tag_ids: Sequence[int], token_offsets: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Token index ranges [first, last] of tagged runs: B starts a run, I continues one (or starts one
    when it follows O, a special token or nothing: taggers do emit I without B)."""
    runs: list[list[int]] = []
    open_run = False
    for t, (tag, offset) in enumerate(zip(tag_ids, token_offsets)):
        if tag == IGNORE or _is_special(offset) or tag == O:
            open_run = False
        elif tag == B or not open_run:
            runs.append([t, t])
            open_run = True
        else:
            runs[-1][1] = t
    return [(a, b) for a, b in runs]


def spans_from_bio(tag_ids: Sequence[int], token_offsets: Sequence[Sequence[int]], text: str) -> list[Span]:
    """Character spans [start, end) of the tagged runs: pieces merged, widened to whole words,
    edges trimmed, sorted."""
    pieces: list[Span] = []
    joinable: list[tuple[bool, bool]] = []
    n = len(token_offsets)
    for first, last in token_runs(tag_ids, token_offsets):
        pieces.append((int(token_offsets[first][0]), int(token_offsets[last][1])))
        starts_chunk = first == 0 or _is_special(token_offsets[first - 1])
        ends_chunk = last == n - 1 or _is_special(token_offsets[last + 1])
        joinable.append((starts_chunk, ends_chunk))
    lines = (line for start, end in merge_spans(pieces, text, joinable) for line in _line_parts(text, start, end))
    trimmed = (word_span(text, start, end) for start, end in lines)
    return [span for span in trimmed if span is not None]


def _line_parts(text: str, start: int, end: int) -> list[Span]:
    """[start, end) cut at its line breaks: a run the tagger carried over a line end ("follow-up\nType 2
    diabetes") is two statements, a header's tail and the next line, and evidence never joins them."""
    parts, cursor = [], start
    while (newline := text.find("\n", cursor, end)) >= 0:
        parts.append((cursor, newline))
        cursor = newline + 1
    return [*parts, (cursor, end)]


def word_span(text: str, start: int, end: int) -> Span | None:
    """[start, end) widened to whole words with punctuation and spaces trimmed off its edges; None if
    nothing is left. What every evidence span shown to a person goes through."""
    return _trim(text, *_whole_words(text, start, end))


def _whole_words(text: str, start: int, end: int) -> Span:
    """Widen a span that starts or ends inside a word to the whole word: a tagger that marks only
    "##glycemia" still points at "hyperglycemia", and half a word is never useful evidence. A hyphen
    between letters or digits is inside the word: "-clavulanate" of "amoxicillin-clavulanate" read alone
    sat nearer "clopidogrel" (an antiplatelet, Z79.02) than anything else, and grounded it."""
    while start > 0 and _inside_word(text, start):
        start -= 1
    while end < len(text) and _inside_word(text, end):
        end += 1
    return start, end


def _inside_word(text: str, i: int) -> bool:
    """Whether text[i - 1] and text[i] belong to one word: both letters or digits, or one of them a hyphen
    joining letters or digits ("COVID-19", "amoxicillin-clavulanate"); False at either end of the text."""
    if not 0 < i < len(text):
        return False
    before, after = text[i - 1], text[i]
    if before.isalnum() and after.isalnum():
        return True
    if after == "-":
        return before.isalnum() and i + 1 < len(text) and text[i + 1].isalnum()
    return before == "-" and after.isalnum() and i >= 2 and text[i - 2].isalnum()
