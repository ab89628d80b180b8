"""Run a trained MedicalCoder over contract records and return contract-ready NotePredictions.

Used by evaluation and packaging alike, so both see exactly the same tokenisation, chunking,
decision rule and grounding as training did. Notes are batched by length to keep padding small;
the output keeps the input order. With a `ScoreBlend`, the codes are decided on the blended scores
(neural and TF-IDF) while their evidence still comes from the neural label attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks
from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.inference.grounding.evidence import ground_note
from medcoder.inference.grounding.sentences import note_sentences
from medcoder.inference.grounding.verifier import SupportVerifier
from medcoder.inference.guidelines import Patient, apply_guidelines
from medcoder.models.blend import ScoreBlend
from medcoder.models.coder import MedicalCoder

if TYPE_CHECKING:  # the packaged model predicts without Lightning: the training module is only a type here
    from medcoder.models.lit_module import CoderLitModule


@torch.no_grad()
def predict_notes(
    net: MedicalCoder,
    records: Sequence[NoteRecord],
    labels: Sequence[Label],
    chunking: Chunking,
    threshold: float,
    batch_size: int = 8,
    verifier: SupportVerifier | None = None,
    guidelines: bool = True,
    blend: ScoreBlend | None = None,
) -> tuple[list[NotePrediction], np.ndarray]:
    """(predictions in record order, code probabilities (n_records, L)) for `records`.

    `verifier` decides which codes are grounded (medcoder.inference.grounding.verifier); `guidelines` runs the
    ICD-10-CM rule layer (medcoder.inference.guidelines) on each grounded prediction; with `blend`,
    the probabilities are the blended ones."""
    if len(labels) != net.label_attention.label_bias.shape[0]:
        raise ValueError(f"{len(labels)} labels given but the model predicts {net.label_attention.label_bias.shape[0]}")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    chunks = chunk_notes([r.text for r in records], net.tokenizer, chunking)
    order = sorted(range(len(records)), key=lambda i: chunks[i].n_tokens)
    predictions: list[NotePrediction | None] = [None] * len(records)
    scores = np.zeros((len(records), len(labels)), dtype=np.float32)
    lexical = None if blend is None else blend.lexical_scores([r.text for r in records])
    if lexical is not None and lexical.shape != scores.shape:
        raise ValueError(f"the blend's TF-IDF model scores {lexical.shape[1]} labels but the coder {len(labels)}")
    try:
        for first in range(0, len(order), batch_size):
            idx = order[first : first + batch_size]
            batch = pad_chunks([chunks[i] for i in idx], net.tokenizer.pad_token_id)
            token_mask = batch["token_offsets"][..., 0] >= 0
            out = net(batch["input_ids"].to(device), batch["attention_mask"].to(device), token_mask.to(device))
            probs = torch.sigmoid(out.code_logits.float()).cpu().numpy()
            if blend is not None:
                probs = blend.mix(probs, lexical[idx])
            attention = out.label_attention.float().cpu().numpy()
            tags = out.bio_logits.argmax(-1).cpu().numpy()
            em = torch.softmax(out.em_logits.float(), -1).cpu().numpy()
            em_attention = out.em_attention.float().cpu().numpy()
            offsets = batch["token_offsets"].reshape(len(idx), -1, 2).numpy()
            if verifier is not None:
                verifier.prefetch([text for i in idx for text in note_sentences(records[i].text)])
            for b, i in enumerate(idx):
                record = records[i]
                scores[i] = probs[b]
                prediction = ground_note(
                    record.id,
                    record.text,
                    record.setting,
                    labels,
                    probs[b],
                    attention[b],
                    tags[b],
                    offsets[b],
                    threshold,
                    em_probs=em[b],
                    em_attention=em_attention[b],
                    verifier=verifier,
                )
                if chunks[i].truncated:  # never silent: the prediction says how much was read
                    prediction = replace(prediction, read_chars=chunks[i].chars_read)
                if guidelines:
                    prediction = apply_guidelines(prediction, Patient.of(record))
                predictions[i] = prediction
    finally:
        net.train(was_training)
    return [p for p in predictions if p is not None], scores


def predict_with_scores(
    module: CoderLitModule,
    records: Sequence[NoteRecord],
    threshold: float | None = None,
    batch_size: int = 8,
    *,
    verifier: SupportVerifier | None = None,
    guidelines: bool = True,
    blend: ScoreBlend | None = None,
) -> tuple[list[NotePrediction], np.ndarray]:
    """`predict_notes` with a trained module's own net, labels and chunking; `threshold` defaults to
    the module's configured one (tune it on val)."""
    threshold = module.hparams.threshold if threshold is None else threshold
    return predict_notes(module.net, records, module.label_space.labels, module.chunking, threshold, batch_size,
                         verifier=verifier, guidelines=guidelines, blend=blend)  # fmt: skip
