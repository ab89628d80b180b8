"""Encoder loading and adaptation: offline load, train mode, dropout really on, LoRA trains only what it should."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medcoder.data.tokenizer import TINY_ENCODER
from medcoder.models.coder import MedicalCoder
from medcoder.models.encoder import adapt_encoder, build_tiny_encoder, load_encoder

torch.set_num_threads(1)


def _all_train(model: nn.Module) -> bool:
    return all(m.training for m in model.modules())


def test_packaged_minilm_loads_offline_in_train_mode_with_chosen_dropout() -> None:
    model, tokenizer = load_encoder(None, attention_dropout=0.0, hidden_dropout=0.2)
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert model.config.attention_probs_dropout_prob == 0.0 and model.config.hidden_dropout_prob == 0.2
    assert _all_train(model)  # from_pretrained alone would return eval mode (docs/STACK.md, eval-mode)
    assert tokenizer.is_fast and tokenizer("Denies chest pain.")["input_ids"][0] == tokenizer.cls_token_id


@pytest.mark.parametrize("finetune", ["lora", "full", "frozen"])
def test_adapted_encoder_is_in_train_mode_and_dropout_is_active(finetune: str) -> None:
    model, _ = build_tiny_encoder(hidden_dropout=0.3)
    model.eval()  # what from_pretrained hands over
    adapted = adapt_encoder(model, finetune)
    assert _all_train(adapted)
    ids = torch.randint(1000, 2000, (2, 12))
    mask = torch.ones_like(ids)
    first = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
    second = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(first, second)  # dropout on: two training passes differ
    adapted.eval()
    with torch.no_grad():
        a = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
        b = adapted(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(a, b)


def test_lora_trains_only_adapters_and_heads() -> None:
    coder = MedicalCoder(num_labels=3, encoder=TINY_ENCODER, finetune="lora", lora_r=4,
                         lora_target_modules=["query", "value"])  # fmt: skip
    trainable = [name for name, p in coder.named_parameters() if p.requires_grad]
    encoder_trainable = [n for n in trainable if n.startswith("encoder.")]
    assert encoder_trainable and all("lora_" in n for n in encoder_trainable)
    assert {n.split(".")[0] for n in trainable if not n.startswith("encoder.")} == {
        "label_attention",
        "evidence_tagger",
        "em_pool",
        "em_classifier",
    }
    assert all(("query" in n or "value" in n) for n in encoder_trainable)
    assert _all_train(coder)
    frozen_before = {n: p.detach().clone() for n, p in coder.named_parameters() if not p.requires_grad}
    # one optimiser step moves adapters and heads and nothing else
    optimizer = torch.optim.SGD([p for p in coder.parameters() if p.requires_grad], lr=1.0)
    ids = torch.randint(1000, 2000, (1, 2, 8))
    out = coder(ids, torch.ones_like(ids), torch.ones_like(ids, dtype=torch.bool))
    (out.code_logits.sum() + out.bio_logits.sum() + out.em_logits.sum()).backward()
    optimizer.step()
    for name, p in coder.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen_before[name]), name


def test_frozen_encoder_gets_no_gradient() -> None:
    coder = MedicalCoder(num_labels=2, encoder=TINY_ENCODER, finetune="frozen")
    assert not coder.encoder_parameters()
    ids = torch.randint(1000, 2000, (1, 1, 8))
    out = coder(ids, torch.ones_like(ids), torch.ones_like(ids, dtype=torch.bool))
    out.code_logits.sum().backward()
    assert coder.label_attention.label_weights.grad is not None
    assert all(p.grad is None for p in coder.encoder.parameters())


def test_unknown_lora_targets_name_the_modules_that_exist() -> None:
    model, _ = build_tiny_encoder()
    with pytest.raises(ValueError, match=r"\['q_proj'\].*query.*value"):
        adapt_encoder(model, "lora", lora_target_modules=["q_proj", "query"])


def test_lora_settings_with_full_finetuning_are_refused() -> None:
    with pytest.raises(ValueError, match="lora_r.*only apply to finetune='lora'"):
        MedicalCoder(num_labels=2, encoder=TINY_ENCODER, finetune="full", lora_r=8)
    with pytest.raises(ValueError, match="finetune must be one of"):
        MedicalCoder(num_labels=2, encoder=TINY_ENCODER, finetune="partial")  # type: ignore[arg-type]


def test_tiny_encoder_is_reproducible() -> None:
    a, _ = build_tiny_encoder(seed=3)
    b, _ = build_tiny_encoder(seed=3)
    c, _ = build_tiny_encoder(seed=4)
    wa, wb, wc = (m.embeddings.word_embeddings.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
