"""A residual n-gram layer between the encoder and the heads: each token state also carries its neighbours.

Why: per-label attention pools a code's evidence span into one vector, and a mean over "BMI 33.3
kg/m2" averages away the one token that decides the code (Z68.33, not Z68.32), although that
token's own state says it plainly. Measured on frozen all-MiniLM-L6-v2 states of the embedded
corpus: a linear probe reads the BMI code from the number token's state with 0.95 val accuracy and
from the mean over the evidence span with 0.34 (scripts/probe_span_pooling.py,
experiments/2026-11-27-span-pooling-probe.md). A learned window over neighbouring states (CAML puts a
convolution before label attention, LAAT a BiLSTM) writes such a token into the states
around it, so the pooled span keeps it. With 10 head warm-up epochs on the same cache, the BMI
accuracy (the right Z68 code ranked first among the Z68 codes) went from 0.16 to 0.60, and val
macro-F1 from 0.746 to 0.777 (a cached-state run not kept in the repo; the full training runs with
and without the layer are compared in experiments/*-embedded-lora-vs-tfidf.md and the issue notes).

On in the embedded recipe, off in the CodiEsp recipe (configs/experiment/codiesp.yaml): on CodiEsp's
500 real notes its full-width convolution fits the notes instead of the codes
(experiments/2026-12-05-codiesp-cached-heads-probe.md, written by scripts/probe_cached_heads.py).

The convolution starts at zero, so the layer starts as the identity: a freshly built coder
predicts exactly as one without it, and LP-FT's warm-up begins from the encoder's states. Positions
that are not note tokens (special tokens, padding, the seams between chunks) are zeroed before the
window, so they never leak into a note token.
"""

from __future__ import annotations

import torch
from torch import nn

from medcoder.models.tagger import centred_window


class NgramMixer(nn.Module):
    """hidden + conv_k(hidden): a convolution over `kernel_size` neighbouring token states, added back.

    Full width (D -> D): a low-rank bottleneck (D -> 128 -> D) trained far worse on the same cache
    (val mAP 0.84 against 0.96) and was no faster on CPU.
    """

    def __init__(self, hidden_size: int, kernel_size: int = 3):
        super().__init__()
        self.window = centred_window(hidden_size, hidden_size, kernel_size, "ngram_kernel")
        nn.init.zeros_(self.window.weight)
        nn.init.zeros_(self.window.bias)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, D), mask (B, T) bool (note tokens) -> (B, T, D)."""
        keep = mask.unsqueeze(-1).to(hidden.dtype)
        mixed = self.window((hidden * keep).transpose(1, 2)).transpose(1, 2)
        return hidden + mixed * keep.to(mixed.dtype)
