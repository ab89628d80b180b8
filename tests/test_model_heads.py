"""Label attention and the MedicalCoder forward pass: masking, padding invariance, no NaN, fp32 under bf16."""

from __future__ import annotations

import pytest
import torch

from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks
from medcoder.models.coder import MedicalCoder
from medcoder.models.label_attention import AttentionPool, LabelAttention, masked_softmax

torch.set_num_threads(1)


def test_masked_positions_get_no_weight_and_empty_rows_no_nan() -> None:
    scores = torch.tensor([[3.0, 1.0, 50.0, -2.0], [1.0, 2.0, 3.0, 4.0]])
    mask = torch.tensor([[True, True, False, True], [False, False, False, False]])
    weights = masked_softmax(scores, mask)
    assert weights[0, 2] == 0 and torch.isclose(weights[0].sum(), torch.tensor(1.0))
    assert torch.equal(weights[1], torch.zeros(4))


def test_label_attention_ignores_padding() -> None:
    torch.manual_seed(0)
    head = LabelAttention(hidden_size=16, num_labels=5, attention_size=8)
    hidden = torch.randn(1, 7, 16)
    mask = torch.ones(1, 7, dtype=torch.bool)
    logits, attention = head(hidden, mask)
    # the same note padded with 5 garbage positions
    padded = torch.cat([hidden, 1e4 * torch.randn(1, 5, 16)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(1, 5, dtype=torch.bool)], dim=1)
    logits_p, attention_p = head(padded, padded_mask)
    torch.testing.assert_close(logits_p, logits)
    torch.testing.assert_close(attention_p[..., :7], attention)
    assert torch.all(attention_p[..., 7:] == 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(1, 5))


def test_fully_masked_note_gives_finite_outputs_and_gradients() -> None:
    head = LabelAttention(hidden_size=16, num_labels=3, attention_size=8)
    pool = AttentionPool(hidden_size=16, attention_size=8)
    hidden = torch.randn(2, 6, 16, requires_grad=True)
    mask = torch.tensor([[True] * 6, [False] * 6])
    logits, attention = head(hidden, mask)
    pooled = pool(hidden, mask)
    assert torch.isfinite(logits).all() and torch.isfinite(pooled).all()
    assert torch.equal(attention[1], torch.zeros(3, 6))
    (logits.sum() + pooled.sum()).backward()
    assert torch.isfinite(hidden.grad).all()


def test_bf16_autocast_keeps_label_attention_in_float32() -> None:
    head = LabelAttention(hidden_size=16, num_labels=3, attention_size=8)
    hidden = torch.randn(2, 6, 16)
    mask = torch.ones(2, 6, dtype=torch.bool)
    reference, _ = head(hidden, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, attention = head(hidden.bfloat16(), mask)
    assert logits.dtype == torch.float32 and attention.dtype == torch.float32
    torch.testing.assert_close(logits, reference, atol=0.05, rtol=0.05)  # only the bf16 input rounding differs


@pytest.fixture(scope="module")
def coder() -> MedicalCoder:
    torch.manual_seed(0)
    return MedicalCoder(num_labels=4, encoder="tiny-random-bert", finetune="full", attention_size=16).eval()


def test_batching_with_a_longer_note_does_not_change_a_notes_outputs(coder: MedicalCoder) -> None:
    """Dynamic padding (more chunks, longer chunks) must be invisible to a note's logits."""
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=8)
    short_text = "Denies chest pain. Uncontrolled hyperglycemia."
    long_text = " ".join(["Essential hypertension, on lisinopril, stable today."] * 6)
    short, long = chunk_notes([short_text, long_text], coder.tokenizer, chunking)
    with torch.no_grad():
        alone = pad_chunks([short], coder.tokenizer.pad_token_id)
        out_alone = coder(alone["input_ids"], alone["attention_mask"], alone["token_offsets"][..., 0] >= 0)
        both = pad_chunks([short, long], coder.tokenizer.pad_token_id)
        out_both = coder(both["input_ids"], both["attention_mask"], both["token_offsets"][..., 0] >= 0)
    assert both["input_ids"].shape[1] > alone["input_ids"].shape[1]
    torch.testing.assert_close(out_both.code_logits[0], out_alone.code_logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_both.em_logits[0], out_alone.em_logits[0], atol=1e-5, rtol=1e-5)
    _, c1, s1 = alone["input_ids"].shape
    _, c2, s2 = both["input_ids"].shape
    em_both = out_both.em_attention[0].reshape(c2, s2)
    torch.testing.assert_close(em_both[:c1, :s1], out_alone.em_attention[0].reshape(c1, s1), atol=1e-5, rtol=1e-5)
    att_both = out_both.label_attention[0].reshape(4, c2, s2)
    torch.testing.assert_close(
        att_both[:, :c1, :s1], out_alone.label_attention[0].reshape(4, c1, s1), atol=1e-5, rtol=1e-5
    )
    assert att_both[:, c1:].abs().sum() == 0 and att_both[:, :, s1:].abs().sum() == 0
    assert out_both.label_attention[0].sum(-1).allclose(torch.ones(4))


def test_output_shapes_and_special_tokens_get_no_attention(coder: MedicalCoder) -> None:
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=8)
    notes = chunk_notes(["Denies chest pain.", "Mother with breast cancer. " * 4], coder.tokenizer, chunking)
    batch = pad_chunks(notes, coder.tokenizer.pad_token_id)
    token_mask = batch["token_offsets"][..., 0] >= 0
    with torch.no_grad():
        out = coder(batch["input_ids"], batch["attention_mask"], token_mask)
    b, c, s = batch["input_ids"].shape
    assert out.code_logits.shape == (b, 4) and out.label_attention.shape == (b, 4, c * s)
    assert out.bio_logits.shape == (b, c * s, 3) and out.em_logits.shape == (b, 10)
    assert torch.all(out.label_attention[~token_mask.reshape(b, 1, -1).expand(-1, 4, -1)] == 0)


def test_em_attention_is_a_probability_row_over_the_note_tokens(coder: MedicalCoder) -> None:
    """The E/M pool's weights are what E/M grounding reads: all their mass on real note tokens."""
    chunking = Chunking(chunk_size=16, chunk_overlap=4, max_chunks=8)
    notes = chunk_notes(["Est. patient, 1 acute uncomplicated illness.", "Essential hypertension, stable. " * 5],
                        coder.tokenizer, chunking)  # fmt: skip
    batch = pad_chunks(notes, coder.tokenizer.pad_token_id)
    token_mask = batch["token_offsets"][..., 0] >= 0
    with torch.no_grad():
        out = coder(batch["input_ids"], batch["attention_mask"], token_mask)
    b, c, s = batch["input_ids"].shape
    mask = token_mask.reshape(b, -1)
    assert out.em_attention.shape == (b, c * s) and out.em_attention.dtype == torch.float32
    assert (~mask[0]).any()  # the short note is padded, so the zero check below means something
    assert torch.all(out.em_attention[~mask] == 0) and torch.all(out.em_attention[mask] > 0)
    torch.testing.assert_close(out.em_attention.sum(-1), torch.ones(b))
    # the weights are the ones that pool the note vector the E/M logits come from
    hidden = coder.encode(batch["input_ids"], batch["attention_mask"])
    pooled, weights = coder.em_pool.attend(hidden, mask)
    torch.testing.assert_close(weights, out.em_attention)
    torch.testing.assert_close(coder.em_classifier(pooled), out.em_logits)
    torch.testing.assert_close(coder.em_pool(hidden, mask), pooled)


def test_chunks_longer_than_the_encoder_are_refused(coder: MedicalCoder) -> None:
    ids = torch.zeros(1, 1, 600, dtype=torch.long)
    with pytest.raises(ValueError, match="lower chunk_size"):
        coder(ids, torch.ones_like(ids), torch.ones_like(ids, dtype=torch.bool))


def test_attention_supervision_loss_is_minus_log_mass_on_evidence() -> None:
    from medcoder.models.lit_module import attention_supervision_loss

    attention = torch.tensor([[[0.5, 0.3, 0.2, 0.0], [0.25, 0.25, 0.25, 0.25]]])  # 1 note, 2 labels, 4 tokens
    index = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 1, 3]])  # label 0: tokens 0, 1; label 1: token 3
    expected = -(torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.25))) / 2
    torch.testing.assert_close(attention_supervision_loss(attention, index), expected)
    assert attention_supervision_loss(attention, torch.zeros(0, 3, dtype=torch.long)) == 0
    # minimising it moves attention onto the evidence
    scores = torch.zeros(1, 2, 4, requires_grad=True)
    loss = attention_supervision_loss(torch.softmax(scores, -1), index)
    loss.backward()
    assert scores.grad[0, 0, 0] < 0 and scores.grad[0, 0, 2] > 0 and scores.grad[0, 1, 3] < 0


def test_em_attention_loss_is_minus_log_mass_on_em_evidence_per_note() -> None:
    from medcoder.models.lit_module import em_attention_supervision_loss

    attention = torch.tensor([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4], [0.25, 0.25, 0.25, 0.25]])  # 3 notes
    index = torch.tensor([[0, 0], [0, 1], [1, 3]])  # note 0: tokens 0, 1; note 1: token 3; note 2: no E/M evidence
    expected = -(torch.log(torch.tensor(0.8)) + torch.log(torch.tensor(0.4))) / 2
    torch.testing.assert_close(em_attention_supervision_loss(attention, index), expected)
    assert em_attention_supervision_loss(attention, torch.zeros(0, 2, dtype=torch.long)) == 0
    scores = torch.zeros(3, 4, requires_grad=True)
    em_attention_supervision_loss(torch.softmax(scores, -1), index).backward()
    assert scores.grad[0, 0] < 0 and scores.grad[0, 2] > 0 and scores.grad[1, 3] < 0
    assert torch.all(scores.grad[2] == 0)  # a note without E/M evidence is not pushed anywhere
