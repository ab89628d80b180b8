"""MedicalCoder: encoder over note chunks -> code logits, evidence tags and an E/M level.

    chunks (B, C, S) --encoder, chunk by chunk--> token states, concatenated (B, C*S, D)
        -> n-gram layer (optional, residual): each state also carries its neighbours
        -> per-label attention  -> code logits (B, L) and attention (B, L, C*S)
        -> tagger               -> O/B/I evidence logits per token (B, C*S, 3), linear or over a window
        -> attention pool       -> E/M logits (B, 10): none or one office level, and the pool's
                                   attention (B, C*S): where the E/M level's evidence is

The evidence tagger is code-agnostic (is this token evidence for some gold code?); grounding pairs
its spans with each code's attention (see medcoder.inference.grounding). Every constructor argument is a
plain value so Hydra can build the net, and `config` records them so a checkpoint can rebuild it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medcoder.codes.em import EM_CLASSES
from medcoder.data.spans import BIO_NAMES
from medcoder.models.encoder import FINETUNE_MODES, FinetuneMode, adapt_encoder, load_encoder
from medcoder.models.encoder_layers import upper_states
from medcoder.models.label_attention import AttentionPool, LabelAttention
from medcoder.models.ngram import NgramMixer
from medcoder.models.tagger import build_tagger

INFERENCE_CHUNKS_PER_PASS = 64  # encoder chunks per forward pass without gradients (see MedicalCoder.encode)
MAX_LENGTH_GROUPS = 3  # encoder passes per batch at most, each over chunks of similar length (`length_groups`)
LORA_DEFAULTS: dict[str, Any] = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "lora_target_modules": ["query", "value"],
    "lora_layers": None,
}


@dataclass
class CoderOutput:
    code_logits: torch.Tensor  # (B, L) float32
    label_attention: torch.Tensor  # (B, L, T) float32, T = C * S
    bio_logits: torch.Tensor  # (B, T, 3)
    em_logits: torch.Tensor  # (B, len(EM_CLASSES))
    token_mask: torch.Tensor  # (B, T) bool: real note tokens (not special, not pad)
    em_attention: torch.Tensor  # (B, T) float32: the E/M pool's weights, a probability row over token_mask


def length_groups(sorted_lengths: Sequence[int], max_groups: int) -> list[list[int]]:
    """Cut ascending `sorted_lengths` into at most `max_groups` runs of consecutive indices that minimise the
    padded size, sum over runs of (run length x its longest): one encoder pass per run. A run costs one
    longest chunk's worth besides, so a run is only split off where it saves more than that."""
    if not sorted_lengths:
        return []
    # runs only break where the length changes: search over the distinct lengths (at most the chunk size)
    ends = [
        i + 1
        for i in range(len(sorted_lengths))
        if i + 1 == len(sorted_lengths) or sorted_lengths[i + 1] != sorted_lengths[i]
    ]
    bounds = [0, *ends]
    overhead = sorted_lengths[-1]
    m = len(ends)
    # best[k][i]: least cost of the first bounds[i] lengths in k runs; cut[k][i]: the bound the last run starts at
    inf = float("inf")
    best = [[inf] * (m + 1) for _ in range(max_groups + 1)]
    cut = [[0] * (m + 1) for _ in range(max_groups + 1)]
    best[0][0] = 0.0
    for k in range(1, max_groups + 1):
        for i in range(1, m + 1):
            for j in range(i):
                cost = best[k - 1][j] + (bounds[i] - bounds[j]) * sorted_lengths[bounds[i] - 1] + overhead
                if cost < best[k][i]:
                    best[k][i], cut[k][i] = cost, j
    k = min(range(1, max_groups + 1), key=lambda g: best[g][m])
    runs, i = [], m
    while k > 0:
        runs.append(list(range(bounds[cut[k][i]], bounds[i])))
        i, k = cut[k][i], k - 1
    return runs[::-1]


# the net's parts, each a module `MedicalCoder.freeze` can hold fixed in a fit
FREEZABLE_PARTS = ("encoder", "ngram", "label_attention", "evidence_tagger", "em_pool", "em_classifier")
# every part the E/M level is computed from: frozen together, a fit leaves each note's E/M level as it was
EM_LEVEL_PARTS = ("encoder", "ngram", "em_pool", "em_classifier")


class MedicalCoder(nn.Module):
    """Chunked transformer encoder with label-attention, evidence-tagging and E/M heads.

    `encoder=None` is the packaged all-MiniLM-L6-v2, `"tiny-random-bert"` a random 2-layer BERT for
    tests. LoRA arguments left None take LORA_DEFAULTS when finetune="lora" and must stay None otherwise.
    """

    def __init__(
        self,
        num_labels: int,
        encoder: str | None = None,
        finetune: FinetuneMode = "lora",
        lora_r: int | None = None,
        lora_alpha: int | None = None,
        lora_dropout: float | None = None,
        lora_target_modules: Sequence[str] | None = None,
        lora_layers: Sequence[int] | None = None,
        attention_dropout: float = 0.0,
        hidden_dropout: float | None = None,
        attention_size: int = 256,
        head_dropout: float = 0.1,
        tagger_kernel: int = 1,
        tagger_hidden: int | None = None,
        ngram_kernel: int | None = None,
    ):
        super().__init__()
        if num_labels < 1:
            raise ValueError(
                f"num_labels must be >= 1, got {num_labels}: the training split has no codes in the label space"
            )
        if finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {', '.join(FINETUNE_MODES)}, got {finetune!r}")
        lora = {
            "lora_r": lora_r,
            "lora_alpha": lora_alpha,
            "lora_dropout": lora_dropout,
            "lora_target_modules": None if lora_target_modules is None else [str(m) for m in lora_target_modules],
            "lora_layers": None if lora_layers is None else [int(i) for i in lora_layers],
        }
        if finetune != "lora" and any(v is not None for v in lora.values()):
            given = ", ".join(k for k, v in lora.items() if v is not None)
            raise ValueError(
                f"{given} only apply to finetune='lora', but finetune={finetune!r}: "
                "set them to null or use finetune='lora'"
            )
        if finetune == "lora":
            lora = {k: LORA_DEFAULTS[k] if v is None else v for k, v in lora.items()}

        self.config: dict[str, Any] = {
            "num_labels": num_labels, "encoder": encoder, "finetune": finetune, **lora,
            "attention_dropout": attention_dropout, "hidden_dropout": hidden_dropout,
            "attention_size": attention_size, "head_dropout": head_dropout,
            "tagger_kernel": tagger_kernel, "tagger_hidden": tagger_hidden,
            "ngram_kernel": ngram_kernel,
        }  # fmt: skip
        self.finetune = finetune
        base, self.tokenizer = load_encoder(encoder, attention_dropout=attention_dropout, hidden_dropout=hidden_dropout)
        self.max_positions = int(getattr(base.config, "max_position_embeddings", 512))
        hidden_size = int(base.config.hidden_size)
        self.encoder = adapt_encoder(base, finetune, **lora) if finetune == "lora" else adapt_encoder(base, finetune)
        # chunks of similar length go through the encoder together, each group cut to its longest (`_encode_chunks`);
        # off only to measure what that saves
        self.group_lengths = True

        self.dropout = nn.Dropout(head_dropout)
        # None: the heads read the encoder's states as they are (checkpoints from before the layer)
        self.ngram = None if ngram_kernel is None else NgramMixer(hidden_size, ngram_kernel)
        self.label_attention = LabelAttention(hidden_size, num_labels, attention_size)
        self.evidence_tagger = build_tagger(hidden_size, len(BIO_NAMES), tagger_kernel, tagger_hidden)
        self.em_pool = AttentionPool(hidden_size, attention_size)
        self.em_classifier = nn.Linear(hidden_size, len(EM_CLASSES))

    def freeze(self, parts: Sequence[str]) -> None:
        """Stop the named parts (FREEZABLE_PARTS) from training: their weights keep the values they hold.
        Why: a fine-tune from a trained model (the denial-feedback retraining) that should change what its
        labels teach and nothing else. The E/M level reads the encoder and n-gram states too, so freezing the
        E/M head alone does not hold the level: freeze every part it reads (`EM_LEVEL_PARTS`)."""
        unknown = sorted(set(parts) - set(FREEZABLE_PARTS))
        if unknown:
            raise ValueError(f"cannot freeze {unknown}: the net's parts are {', '.join(FREEZABLE_PARTS)}")
        for name in parts:
            part = getattr(self, name)
            if part is not None:  # ngram is None where the net has no n-gram layer: nothing to freeze
                part.requires_grad_(False)
        if not any(p.requires_grad for p in self.parameters()):
            raise ValueError(f"freezing {list(parts)} leaves no weight to train: freeze fewer parts")

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.encoder.parameters() if p.requires_grad]

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("encoder.") and p.requires_grad]

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, C, S) chunks -> (B, C*S, D) token states; all-pad chunks are skipped, their states are zero.

        Without gradients (inference) the chunks go through the encoder `INFERENCE_CHUNKS_PER_PASS`
        at a time: serving reads whole notes (hundreds of chunks for 100k characters), and one pass
        over all of them would hold every chunk's attention maps at once. Same numbers (up to float rounding).
        """
        batch, n_chunks, seq_len = input_ids.shape
        if seq_len > self.max_positions:
            raise ValueError(
                f"chunks of {seq_len} tokens exceed the encoder's {self.max_positions} positions: lower chunk_size"
            )
        flat_ids, flat_mask = input_ids.reshape(-1, seq_len), attention_mask.reshape(-1, seq_len)
        real = flat_mask.any(dim=1)
        ids, mask = flat_ids[real], flat_mask[real]
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune != "frozen"):
            states = self._encode_chunks(ids, mask)
        return self._scatter(states, real, batch, n_chunks, seq_len, mask)

    def _encode_chunks(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, S) right-padded chunks -> (N, S, D) states, the encoder run once per group of chunks of similar
        length (`length_groups`), each group cut to its longest chunk; states past a chunk's end are zero.

        A note's last chunk is as long as what is left of the note, and padded to the batch's longest chunk
        about a fifth of the tokens the encoder ran on the embedded corpus were padding; attention never crosses chunks,
        so the real tokens' states are those of one padded pass (up to float rounding; timed and compared by
        scripts/bench_length_groups.py). Without gradients at most `INFERENCE_CHUNKS_PER_PASS` chunks go
        through at once: serving reads whole notes (hundreds of chunks for 100k characters)."""
        lengths = mask.shape[1] - mask.flip(1).to(torch.int64).argmax(dim=1)  # last real token + 1
        if not self.group_lengths:
            groups = [torch.arange(len(ids))]
        else:
            order = torch.argsort(lengths, stable=True)
            groups = [order[g] for g in length_groups(lengths[order].tolist(), MAX_LENGTH_GROUPS)]
        limit = len(ids) if torch.is_grad_enabled() else INFERENCE_CHUNKS_PER_PASS
        states: torch.Tensor | None = None
        for group in groups:
            for part in torch.split(group, limit):
                width = int(lengths[part].max())
                out = self.encoder(input_ids=ids[part, :width], attention_mask=mask[part, :width]).last_hidden_state
                if states is None:
                    states = out.new_zeros((len(ids), ids.shape[1], out.shape[-1]))
                states = states.index_put((part,), nn.functional.pad(out, (0, 0, 0, ids.shape[1] - width)))
        if states is None:
            raise ValueError("no chunk to encode: every chunk of the batch is padding")
        return states

    def encode_above(self, frozen: torch.Tensor, attention_mask: torch.Tensor, layers: int) -> torch.Tensor:
        """`encode` from `frozen`, the (real chunks, S, D) states after the encoder's lowest `layers` layers,
        which do not train (medcoder.models.frozen_layers): only the layers above run."""
        batch, n_chunks, seq_len = attention_mask.shape
        flat_mask = attention_mask.reshape(-1, seq_len)
        real = flat_mask.any(dim=1)
        states = upper_states(self.encoder, frozen, flat_mask[real], layers)
        return self._scatter(states, real, batch, n_chunks, seq_len, flat_mask[real])

    @staticmethod
    def _scatter(
        states: torch.Tensor, real: torch.Tensor, batch: int, n_chunks: int, seq_len: int, mask: torch.Tensor
    ) -> torch.Tensor:
        """The real chunks' states back in their (B, C*S, D) places, zero at padding: the tagger's window reads
        the positions next to a chunk's last tokens, which must not depend on how far a batch pads."""
        full = states.new_zeros((batch * n_chunks, seq_len, states.shape[-1]))
        full[real] = states * mask.unsqueeze(-1).to(states.dtype)
        return full.reshape(batch, n_chunks * seq_len, -1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_mask: torch.Tensor) -> CoderOutput:
        """input_ids, attention_mask (B, C, S); token_mask (B, C, S) bool, True on note tokens only."""
        return self.heads(self.encode(input_ids, attention_mask), token_mask)

    def heads(self, hidden: torch.Tensor, token_mask: torch.Tensor) -> CoderOutput:
        """Everything after the encoder: (B, C*S, D) token states -> CoderOutput. Separate so the heads
        can train on cached encoder states (medcoder.models.head_warmup)."""
        hidden = self.dropout(hidden)
        mask = token_mask.reshape(hidden.shape[0], -1).bool()
        if self.ngram is not None:
            hidden = self.ngram(hidden, mask)
        code_logits, attention = self.label_attention(hidden, mask)
        bio_logits = self.evidence_tagger(hidden)
        em_pooled, em_attention = self.em_pool.attend(hidden, mask)
        em_logits = self.em_classifier(em_pooled)
        return CoderOutput(code_logits, attention, bio_logits, em_logits, mask, em_attention)
