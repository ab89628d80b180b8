"""Run a trained MedicalCoder over contract records and return contract-ready NotePredictions.

Used by evaluation and packaging alike, so both see exactly the same tokenisation, chunking,
decision rule and grounding as training did. Notes are batched by length to keep padding small;
the output keeps the input order. With a `ScoreBlend`, the codes are decided on the blended scores
(neural and TF-IDF) while their evidence still comes from the neural label attention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks
from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.inference.grounding.evidence import ground_note, tagged_readings
from medcoder.inference.grounding.sentences import note_sentences
from medcoder.inference.grounding.verifier import SupportVerifier
from medcoder.inference.guidelines import Patient, apply_guidelines
from medcoder.models.blend import ScoreBlend
from medcoder.models.coder import MedicalCoder

if TYPE_CHECKING:  # the packaged model predicts without Lightning: the training module is only a type here
    from medcoder.models.lit_module import CoderLitModule


@dataclass(frozen=True)
class NoteForward:
    """What the coder's forward pass said about one note: everything grounding reads, so a split can be
    scored once (threshold tuning) and grounded at the tuned threshold without a second pass."""

    probs: np.ndarray  # (L,) code probabilities (blended ones with a ScoreBlend)
    attention: np.ndarray  # (L, T) label attention over the note's chunk tokens
    tags: np.ndarray  # (T,) evidence tagger's O/B/I
    offsets: np.ndarray  # (T, 2) character offsets of the tokens (-1 for special and padding tokens)
    em_probs: np.ndarray  # (E/M classes,)
    em_attention: np.ndarray  # (T,)
    chars_read: int | None  # characters read when the note was cut to the chunk budget, else None


@torch.no_grad()
def forward_notes(
    net: MedicalCoder,
    records: Sequence[NoteRecord],
    n_labels: int,
    chunking: Chunking,
    batch_size: int = 8,
    blend: ScoreBlend | None = None,
) -> list[NoteForward]:
    """The coder over `records` (batched by length to keep padding small), one NoteForward per record
    in record order; with `blend`, the probabilities are the blended ones."""
    if n_labels != net.label_attention.label_bias.shape[0]:
        raise ValueError(f"{n_labels} labels given but the model predicts {net.label_attention.label_bias.shape[0]}")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    chunks = chunk_notes([r.text for r in records], net.tokenizer, chunking)
    order = sorted(range(len(records)), key=lambda i: chunks[i].n_tokens)
    forwards: list[NoteForward | None] = [None] * len(records)
    lexical = None if blend is None else blend.lexical_scores([r.text for r in records])
    if lexical is not None and lexical.shape != (len(records), n_labels):
        raise ValueError(f"the blend's TF-IDF model scores {lexical.shape[1]} labels but the coder {n_labels}")
    try:
        for first in range(0, len(order), batch_size):
            idx = order[first : first + batch_size]
            batch = pad_chunks([chunks[i] for i in idx], net.tokenizer.pad_token_id)
            token_mask = batch["token_offsets"][..., 0] >= 0
            out = net(batch["input_ids"].to(device), batch["attention_mask"].to(device), token_mask.to(device))
            probs = torch.sigmoid(out.code_logits.float()).cpu().numpy()
            if lexical is not None:
                probs = blend.mix(probs, lexical[idx])
            attention = out.label_attention.float().cpu().numpy()
            tags = out.bio_logits.argmax(-1).cpu().numpy()
            em = torch.softmax(out.em_logits.float(), -1).cpu().numpy()
            em_attention = out.em_attention.float().cpu().numpy()
            offsets = batch["token_offsets"].reshape(len(idx), -1, 2).numpy()
            for b, i in enumerate(idx):
                forwards[i] = NoteForward(
                    probs[b], attention[b], tags[b], offsets[b], em[b], em_attention[b],
                    chunks[i].chars_read if chunks[i].truncated else None,
                )  # fmt: skip
    finally:
        net.train(was_training)
    return [f for f in forwards if f is not None]


def ground_forwards(
    records: Sequence[NoteRecord],
    forwards: Sequence[NoteForward],
    labels: Sequence[Label],
    threshold: float,
    verifier: SupportVerifier | None = None,
    guidelines: bool = True,
    batch_size: int = 8,
) -> tuple[list[NotePrediction], np.ndarray]:
    """(predictions in record order, code probabilities (n_records, L)): each note's codes at
    `threshold`, grounded (`verifier` decides which are, medcoder.inference.grounding.verifier) and,
    with `guidelines`, through the ICD-10-CM rule layer (medcoder.inference.guidelines)."""
    predictions: list[NotePrediction] = []
    for first in range(0, len(records), batch_size):
        if verifier is not None:  # the sentences and tagged spans of a few notes embedded in one call, not one per span
            group = zip(records[first : first + batch_size], forwards[first : first + batch_size])
            verifier.prefetch([text for record, forward in group
                               for text in (*note_sentences(record.text),
                                            *tagged_readings(record.text, forward.tags, forward.offsets))])  # fmt: skip
        for record, forward in zip(records[first : first + batch_size], forwards[first : first + batch_size]):
            prediction = ground_note(
                record.id,
                record.text,
                record.setting,
                labels,
                forward.probs,
                forward.attention,
                forward.tags,
                forward.offsets,
                threshold,
                em_probs=forward.em_probs,
                em_attention=forward.em_attention,
                verifier=verifier,
            )
            if forward.chars_read is not None:  # never silent: the prediction says how much was read
                prediction = replace(prediction, read_chars=forward.chars_read)
            if guidelines:
                prediction = apply_guidelines(prediction, Patient.of(record))
            predictions.append(prediction)
    scores = np.stack([f.probs for f in forwards]) if forwards else np.zeros((0, len(labels)), dtype=np.float32)
    return predictions, scores.astype(np.float32, copy=False)


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
    """`forward_notes` then `ground_forwards`: (predictions in record order, code probabilities (n, L))."""
    forwards = forward_notes(net, records, len(labels), chunking, batch_size, blend)
    return ground_forwards(records, forwards, labels, threshold, verifier, guidelines, batch_size)


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
