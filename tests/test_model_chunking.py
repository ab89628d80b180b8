"""Chunking: every token covered, overlap exact, offsets point at the right characters, cuts reported."""

from __future__ import annotations

import pytest
import torch

from medcoder.data.chunking import Chunking, chunk_note, chunk_notes, pad_chunks
from medcoder.data.tokenizer import load_tokenizer

torch.set_num_threads(1)

TEXT = (
    "HPI: 67F with type 2 diabetes, A1c 9.8%, uncontrolled hyperglycemia. Denies chest pain. "
    "Mother with breast cancer. BP 150/95 on lisinopril 20mg; essential hypertension. "
    "Plan: increase metformin, recheck in 3 months. Return if fever develops."
)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(None)


def _note_tokens(chunks):
    """The note tokens of each chunk, without [CLS]/[SEP]: (id, offset) pairs."""
    return [[(i, o) for i, o in zip(ids, offs) if o[0] >= 0] for ids, offs in zip(chunks.input_ids, chunks.offsets)]


def test_chunks_cover_every_token_with_exact_overlap(tokenizer) -> None:
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=50)
    chunks = chunk_note(TEXT, tokenizer, chunking)
    full = tokenizer(TEXT, add_special_tokens=False, return_offsets_mapping=True, max_length=10_000, truncation=True)
    expected = list(zip(full["input_ids"], [tuple(o) for o in full["offset_mapping"]]))

    pieces = _note_tokens(chunks)
    assert chunks.n_chunks > 3 and not chunks.truncated and chunks.n_tokens == len(expected)
    for ids, piece in zip(chunks.input_ids, pieces):
        assert len(ids) <= 16 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert len(ids) == len(piece) + 2
    # consecutive chunks share exactly `chunk_overlap` tokens, and stitching them gives the note back
    for prev, nxt in zip(pieces, pieces[1:]):
        assert prev[-4:] == nxt[:4]
    stitched = pieces[0] + [tok for piece in pieces[1:] for tok in piece[4:]]
    assert stitched == expected


def test_offsets_map_to_the_right_characters(tokenizer) -> None:
    chunks = chunk_note(TEXT, tokenizer, Chunking(chunk_size=12, chunk_overlap=3, max_chunks=50))
    for ids, offs in zip(chunks.input_ids, chunks.offsets):
        assert offs[0] == (-1, -1) and offs[-1] == (-1, -1)
        for token_id, (start, end) in zip(ids[1:-1], offs[1:-1]):
            piece = tokenizer.convert_ids_to_tokens(token_id).removeprefix("##")
            assert TEXT[start:end].lower() == piece  # MiniLM is uncased


def test_long_note_is_cut_and_says_so(tokenizer) -> None:
    chunking = Chunking(chunk_size=10, chunk_overlap=2, max_chunks=3)
    chunks = chunk_note(TEXT, tokenizer, chunking)
    assert chunks.truncated and chunks.n_chunks == 3
    assert chunks.n_tokens == chunking.capacity == 8 + 2 * 6
    short = chunk_note("Denies chest pain.", tokenizer, chunking)
    assert not short.truncated and short.n_chunks == 1


def test_empty_text_gives_one_chunk_of_special_tokens(tokenizer) -> None:
    chunks = chunk_note("", tokenizer, Chunking(chunk_size=8, chunk_overlap=2, max_chunks=2))
    assert chunks.input_ids == ((tokenizer.cls_token_id, tokenizer.sep_token_id),)
    assert chunks.n_tokens == 0 and not chunks.truncated


def test_batch_and_single_tokenisation_agree(tokenizer) -> None:
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=4)
    texts = [TEXT, "Denies chest pain.", "", TEXT[:90]]
    assert chunk_notes(texts, tokenizer, chunking, batch_size=3) == [chunk_note(t, tokenizer, chunking) for t in texts]


def test_pad_chunks_pads_to_the_batch_maxima(tokenizer) -> None:
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=8)
    long, short = chunk_notes([TEXT, "Denies chest pain."], tokenizer, chunking)
    batch = pad_chunks([long, short], tokenizer.pad_token_id)
    assert batch["input_ids"].shape == (2, long.n_chunks, 16)
    assert batch["token_offsets"].shape == (2, long.n_chunks, 16, 2)
    n_short = len(short.input_ids[0])
    assert batch["attention_mask"][1, 0].sum() == n_short and batch["attention_mask"][1, 1:].sum() == 0
    assert (batch["input_ids"][1, 0, n_short:] == tokenizer.pad_token_id).all()
    assert (batch["token_offsets"][1, 1:] == -1).all()
    assert batch["input_ids"][0, 0].tolist() == list(long.input_ids[0])


@pytest.mark.parametrize(
    ("size", "overlap", "chunks", "message"),
    [(2, 0, 1, "chunk_size"), (16, 14, 1, "chunk_overlap"), (16, -1, 1, "chunk_overlap"), (16, 2, 0, "max_chunks")],
)
def test_bad_chunking_is_refused(size: int, overlap: int, chunks: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Chunking(size, overlap, chunks)


def test_length_groups_cover_every_chunk_once_and_split_only_where_padding_costs_more_than_a_pass():
    from medcoder.models.coder import length_groups

    lengths = [10, 12, 100, 120, 256, 256, 256, 256]
    groups = length_groups(lengths, 3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert groups == [[0, 1, 2, 3], [4, 5, 6, 7]]  # short chunks apart from the full ones
    assert length_groups([256] * 8, 3) == [list(range(8))]  # nothing to save
    assert len(length_groups(list(range(1, 300)), 3)) <= 3 and length_groups([], 3) == []


def test_chunks_encoded_in_length_groups_have_the_states_of_one_padded_pass():
    import torch

    from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks
    from medcoder.models.coder import MedicalCoder

    torch.manual_seed(0)
    net = MedicalCoder(num_labels=3, encoder="tiny-random-bert", finetune="lora").eval()
    notes = ["Assessment: hypertension. " * n for n in (1, 3, 9, 30)]  # last chunks of very different lengths
    batch = pad_chunks(chunk_notes(notes, net.tokenizer, Chunking(32, 4, 4)), 0)
    with torch.no_grad():
        grouped = net.encode(batch["input_ids"], batch["attention_mask"])
        net.group_lengths = False
        padded = net.encode(batch["input_ids"], batch["attention_mask"])
    assert torch.allclose(grouped, padded, atol=1e-5)
    assert (grouped.reshape(-1, grouped.shape[-1])[~batch["attention_mask"].reshape(-1).bool()] == 0).all()
