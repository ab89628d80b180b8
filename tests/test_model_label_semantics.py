"""Label-semantic initialisation: before any training, a code's own words already reach its label."""

from __future__ import annotations

import functools

import pytest
import torch

from medcoder.data.tokenizer import load_tokenizer
from medcoder.models.coder import MedicalCoder
from medcoder.models.label_semantics import init_from_label_texts
from medcoder.models.lit_module import CoderLitModule

LABELS = [("ICD-10-CM", c) for c in ("I10", "E11.9", "J18.9", "K21.9", "E03.9", "I25.2", "N39.0", "F41.1")]
# plain sentences in other words than the codes' descriptions
NOTES = {
    "I10": "Blood pressure remains high; hypertension, on lisinopril.",
    "E11.9": "Type 2 diabetes mellitus, diet controlled.",
    "J18.9": "Chest x-ray shows a right lower lobe pneumonia.",
    "K21.9": "Gastroesophageal reflux disease with heartburn.",
    "E03.9": "Hypothyroidism, continues levothyroxine.",
    "I25.2": "History of myocardial infarction years ago, healed.",
    "N39.0": "Urinary tract infection, started nitrofurantoin.",
    "F41.1": "Generalized anxiety disorder, worse this month.",
}


def code_logits(net: MedicalCoder, texts: list[str]) -> torch.Tensor:
    tokenizer = load_tokenizer(None)
    batch = tokenizer(texts, padding=True, return_tensors="pt", return_special_tokens_mask=True)
    special = batch.pop("special_tokens_mask").bool()
    token_mask = batch["attention_mask"].bool() & ~special
    net.eval()
    with torch.no_grad():
        out = net(batch["input_ids"][:, None], batch["attention_mask"][:, None], token_mask[:, None])
    return out.code_logits


def build(seed: int) -> MedicalCoder:
    torch.manual_seed(seed)
    return MedicalCoder(num_labels=len(LABELS), encoder=None, finetune="frozen", head_dropout=0.0)


def test_untrained_codes_are_found_from_their_words_with_the_init_and_not_without() -> None:
    codes = [code for _, code in LABELS]
    texts = [NOTES[c] for c in codes]
    random_net, described_net = build(0), build(0)
    init_from_label_texts(described_net, LABELS)
    hits_random = (code_logits(random_net, texts).argmax(1) == torch.arange(len(codes))).sum().item()
    hits_described = (code_logits(described_net, texts).argmax(1) == torch.arange(len(codes))).sum().item()
    assert hits_described >= 6, f"only {hits_described} of {len(codes)} notes reach their code from the code's words"
    assert hits_random <= 3  # chance level: the prior comes from the init, not from the encoder alone


def test_the_module_applies_it_only_to_a_net_it_builds() -> None:
    partial = functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="frozen")
    torch.manual_seed(0)
    plain = CoderLitModule(partial, [list(label) for label in LABELS[:3]])
    torch.manual_seed(0)
    described = CoderLitModule(partial, [list(label) for label in LABELS[:3]], label_init="descriptions")
    assert not torch.equal(plain.net.label_attention.label_weights, described.net.label_attention.label_weights)
    prebuilt = CoderLitModule(plain.net, [list(label) for label in LABELS[:3]], label_init="descriptions")
    assert prebuilt.net is plain.net  # a prebuilt net (a checkpoint's) keeps its weights
    with pytest.raises(ValueError, match="label_init must be null or one of descriptions"):
        CoderLitModule(partial, [list(label) for label in LABELS[:3]], label_init="codes")
