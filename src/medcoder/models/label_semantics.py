"""Label-semantic initialisation: each code's attention query and output weights start from its own words.

Randomly initialised label queries learn a code only from the phrasings the training notes use, so a
note that says "healed myocardial infarction" where the corpus always wrote "old MI" reaches nothing.
Starting each code's query from what the code is known by (`medcoder.codes.terms.code_texts`:
description, inclusion terms, parent category, clinical synonyms) gives every code a prior that
training then sharpens. The texts go through the coder's own encoder (and n-gram mixer), so the prior
lives in the space the heads read:

    e_l = mean over code l's texts of the masked mean of their token states, centred over labels
          (the direction all clinical text shares says nothing about which code) and L2-normalised
    w_l = e_l * |w|               output weights: an attended vector that resembles the code's words scores high
    U_l = c(tanh(W e_l)) * |U|    attention query, in the attention space (W is the head's projection),
                                  centred over labels and normalised (c)

|w| and |U| keep the random initialisation's row norm, so the optimisation starts at the same scale;
only the directions carry the prior. Off by default until measured (model.label_init).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from medcoder.codes.terms import code_texts
from medcoder.data.labels import Label
from medcoder.models.coder import MedicalCoder

LABEL_INIT_MODES: tuple[str, ...] = ("descriptions",)
MAX_TEXTS_PER_LABEL = 8  # description first, then inclusion terms, parent, synonyms
MAX_TEXT_TOKENS = 64


@torch.no_grad()
def label_text_embeddings(net: MedicalCoder, labels: Sequence[Label], batch_size: int = 64) -> torch.Tensor:
    """(L, D) mean token state of each label's texts, as the heads would read them (n-gram mixer applied)."""
    texts, owner = [], []
    for i, (system, code) in enumerate(labels):
        for text in code_texts(system, code)[:MAX_TEXTS_PER_LABEL]:
            texts.append(text)
            owner.append(i)
    was_training = net.training
    net.eval()
    pooled = []
    try:
        for first in range(0, len(texts), batch_size):
            batch = net.tokenizer(
                texts[first : first + batch_size],
                padding=True,
                truncation=True,
                max_length=MAX_TEXT_TOKENS,
                return_tensors="pt",
                return_special_tokens_mask=True,
            )
            special = batch.pop("special_tokens_mask").bool()
            device = next(net.parameters()).device
            states = net.encoder(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).last_hidden_state.float()
            words = (batch["attention_mask"].bool() & ~special).to(device)
            if net.ngram is not None:
                states = net.ngram(states, words)
            keep = words.unsqueeze(-1).float()
            pooled.append((states * keep).sum(1) / keep.sum(1).clamp(min=1.0))
    finally:
        net.train(was_training)
    per_text = torch.cat(pooled)
    index = torch.tensor(owner, device=per_text.device)
    sums = torch.zeros(len(labels), per_text.shape[1], device=per_text.device).index_add_(0, index, per_text)
    counts = torch.bincount(index, minlength=len(labels)).clamp(min=1).unsqueeze(1).float()
    return sums / counts


@torch.no_grad()
def init_from_label_texts(net: MedicalCoder, labels: Sequence[Label]) -> None:
    """Point each label's attention query and output weights at its own words (see the module docstring)."""
    attention = net.label_attention
    if attention.label_weights.shape[0] != len(labels):
        raise ValueError(f"{len(labels)} labels given but the net predicts {attention.label_weights.shape[0]}")
    embeddings = label_text_embeddings(net, labels)
    centred = F.normalize(embeddings - embeddings.mean(0, keepdim=True), dim=-1)
    weight_norm = attention.label_weights.norm(dim=1, keepdim=True).mean()
    attention.label_weights.copy_(centred * weight_norm)
    queries = torch.tanh(F.linear(centred, attention.project.weight.float()))
    queries = F.normalize(queries - queries.mean(0, keepdim=True), dim=-1)
    query_norm = attention.label_queries.weight.norm(dim=1, keepdim=True).mean()
    attention.label_queries.weight.copy_(queries * query_norm)
