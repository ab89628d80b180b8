"""Split a note into encoder-sized chunks, keeping every token's character offsets.

Clinical notes run to thousands of tokens; the encoder sees at most 512. As in PLM-ICD, a note is
tokenised ONCE (fast tokenizer, offsets), cut into windows of `chunk_size` tokens (counting [CLS] and
[SEP]) that overlap by `chunk_overlap` tokens, and the model attends over all chunks together.
Offsets ride along so that evidence tags and attention can be mapped back to characters of the note;
special and pad tokens get offset (-1, -1). A note that needs more than `max_chunks` windows is cut,
and `truncated` says so, so callers can count and report it by note id instead of losing text silently.

Training keeps `max_chunks` small (a batch costs its longest note). Serving must read every note it
accepts, so it chunks with `covering(chunking, max_chars)`: enough windows for `max_chars`
characters, since a word-piece token covers at least one character. (Unicode normalisation can
expand one character into several tokens, e.g. a ligature, so a cut stays possible in theory: it is
then reported, never silent.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

NO_OFFSET = (-1, -1)


@dataclass(frozen=True)
class Chunking:
    """How notes are cut: window length (with special tokens), overlap, and the most windows per note."""

    chunk_size: int = 256
    chunk_overlap: int = 32
    max_chunks: int = 8

    def __post_init__(self) -> None:
        if self.chunk_size < 3:
            raise ValueError(f"chunk_size must be at least 3 ([CLS], one token, [SEP]), got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.body:
            raise ValueError(
                f"chunk_overlap must be in [0, chunk_size - 2 = {self.body}), got {self.chunk_overlap}: "
                "each chunk has to move forward by at least one token"
            )
        if self.max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {self.max_chunks}")

    @property
    def body(self) -> int:
        """Note tokens per chunk (chunk_size minus [CLS] and [SEP])."""
        return self.chunk_size - 2

    @property
    def stride(self) -> int:
        return self.body - self.chunk_overlap

    @property
    def capacity(self) -> int:
        """The most note tokens `max_chunks` windows can cover."""
        return self.body + (self.max_chunks - 1) * self.stride


@dataclass(frozen=True)
class NoteChunks:
    """One tokenised note: per chunk, token ids and (start, end) character offsets ((-1, -1) = special)."""

    input_ids: tuple[tuple[int, ...], ...]
    offsets: tuple[tuple[tuple[int, int], ...], ...]
    n_tokens: int  # note tokens kept (without special tokens)
    truncated: bool  # True when the note had more tokens than max_chunks windows hold

    @property
    def n_chunks(self) -> int:
        return len(self.input_ids)

    @property
    def chars_read(self) -> int:
        """Characters of the note up to the end of its last kept token (the whole note unless truncated)."""
        return max((end for chunk in self.offsets for start, end in chunk if start >= 0), default=0)


def covering(chunking: Chunking, max_chars: int) -> Chunking:
    """`chunking` with enough windows to read a note of `max_chars` characters (never fewer than before)."""
    needed = 1 + max(0, math.ceil((max_chars - chunking.body) / chunking.stride))
    return dataclasses.replace(chunking, max_chunks=max(chunking.max_chunks, needed))


def chunk_notes(
    texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, chunking: Chunking, batch_size: int = 256
) -> list[NoteChunks]:
    """Tokenise each text once and cut it into overlapping windows of at most `chunk_size` tokens.

    Tokenises at most `capacity + 1` tokens per note (the +1 tells us the note was longer), so a huge
    input costs no more than a long one; `max_length` is always explicit (docs/STACK.md, offline). Texts go
    to the fast tokenizer in batches, which it encodes in parallel.
    """
    out: list[NoteChunks] = []
    for first in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[first : first + batch_size]),
            add_special_tokens=False,
            return_offsets_mapping=True,
            truncation=True,
            max_length=chunking.capacity + 1,
        )
        for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"]):
            out.append(_windows(ids, [tuple(o) for o in offsets], tokenizer, chunking))
    return out


def chunk_note(text: str, tokenizer: PreTrainedTokenizerBase, chunking: Chunking) -> NoteChunks:
    """One note: see `chunk_notes`."""
    return chunk_notes([text], tokenizer, chunking)[0]


def _windows(
    ids: list[int], offsets: list[tuple[int, int]], tokenizer: PreTrainedTokenizerBase, chunking: Chunking
) -> NoteChunks:
    truncated = len(ids) > chunking.capacity
    if truncated:
        ids, offsets = ids[: chunking.capacity], offsets[: chunking.capacity]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    chunk_ids: list[tuple[int, ...]] = []
    chunk_offsets: list[tuple[tuple[int, int], ...]] = []
    start = 0
    while True:
        end = min(start + chunking.body, len(ids))
        chunk_ids.append((cls_id, *ids[start:end], sep_id))
        chunk_offsets.append((NO_OFFSET, *offsets[start:end], NO_OFFSET))
        if end >= len(ids):
            break
        start += chunking.stride
    return NoteChunks(tuple(chunk_ids), tuple(chunk_offsets), n_tokens=len(ids), truncated=truncated)


def pad_chunks(notes: list[NoteChunks], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Stack notes into (B, C, S) tensors, C and S being the batch's largest chunk count and length.

    Dynamic padding: a batch of short notes costs short-note compute. `token_offsets` is (B, C, S, 2)
    with -1 for special and pad tokens; `attention_mask` is 1 on real tokens, special ones included.
    """
    n_chunks = max(n.n_chunks for n in notes)
    seq_len = max(len(c) for n in notes for c in n.input_ids)
    input_ids = torch.full((len(notes), n_chunks, seq_len), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(notes), n_chunks, seq_len), dtype=torch.long)
    token_offsets = torch.full((len(notes), n_chunks, seq_len, 2), -1, dtype=torch.long)
    for b, note in enumerate(notes):
        for c, (ids, offs) in enumerate(zip(note.input_ids, note.offsets)):
            input_ids[b, c, : len(ids)] = torch.tensor(ids)
            attention_mask[b, c, : len(ids)] = 1
            token_offsets[b, c, : len(offs)] = torch.tensor(offs)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "token_offsets": token_offsets}
