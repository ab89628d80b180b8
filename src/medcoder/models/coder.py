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

        self.dropout = nn.Dropout(head_dropout)
        # None: the heads read the encoder's states as they are (checkpoints from before the layer)
        self.ngram = None if ngram_kernel is None else NgramMixer(hidden_size, ngram_kernel)
        self.label_attention = LabelAttention(hidden_size, num_labels, attention_size)
        self.evidence_tagger = build_tagger(hidden_size, len(BIO_NAMES), tagger_kernel, tagger_hidden)
        self.em_pool = AttentionPool(hidden_size, attention_size)
        self.em_classifier = nn.Linear(hidden_size, len(EM_CLASSES))

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
        if not torch.is_grad_enabled() and len(ids) > INFERENCE_CHUNKS_PER_PASS:
            states = torch.cat(
                [
                    self.encoder(
                        input_ids=ids[i : i + INFERENCE_CHUNKS_PER_PASS],
                        attention_mask=mask[i : i + INFERENCE_CHUNKS_PER_PASS],
                    ).last_hidden_state
                    for i in range(0, len(ids), INFERENCE_CHUNKS_PER_PASS)
                ]
            )
            return self._scatter(states, real, batch, n_chunks, seq_len, mask)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.finetune != "frozen"):
            states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return self._scatter(states, real, batch, n_chunks, seq_len, mask)

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
