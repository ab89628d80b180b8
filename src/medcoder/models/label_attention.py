"""Per-label attention over all tokens of a note (LAAT / PLM-ICD), and a one-query attention pool.

Each code gets its own attention distribution over the note's tokens, so a code is scored from the
few sentences that mention it rather than from one pooled vector, and the attention doubles as a
pointer to the evidence. With H the token states (B, T, D):

    Z = tanh(W H)        (B, T, A)
    A = softmax_t(U Z)   (B, L, T)   padding and special tokens masked out
    V = A H              (B, L, D)
    logit_l = <V_l, w_l> + b_l

Computed in float32 even under bf16 autocast: a softmax over thousands of positions in bf16 loses
the small weights that grounding reads. Masked positions get `finfo.min` (not -inf, which gives NaN
when a whole row is masked), and a row with no visible token gets all-zero attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of float32 `scores`, with positions where `mask` is False given zero weight.

    `mask` broadcasts against `scores`. Rows with no True position come back all zeros, not NaN.
    """
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1) * mask


class LabelAttention(nn.Module):
    """Code logits from per-label attention over token states."""

    def __init__(self, hidden_size: int, num_labels: int, attention_size: int = 256):
        super().__init__()
        self.project = nn.Linear(hidden_size, attention_size, bias=False)  # W
        self.label_queries = nn.Linear(attention_size, num_labels, bias=False)  # U
        self.label_weights = nn.Parameter(torch.empty(num_labels, hidden_size))  # w_l
        self.label_bias = nn.Parameter(torch.zeros(num_labels))  # b_l
        for weight in (self.project.weight, self.label_queries.weight, self.label_weights):
            nn.init.normal_(weight, mean=0.0, std=0.03)  # PLM-ICD's initialisation

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden (B, T, D), mask (B, T) bool -> logits (B, L) float32, attention (B, L, T) float32."""
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h = hidden.float()
            z = torch.tanh(F.linear(h, self.project.weight.float()))
            scores = F.linear(z, self.label_queries.weight.float()).transpose(1, 2)  # (B, L, T)
            attention = masked_softmax(scores, mask[:, None, :])
            v = attention @ h  # (B, L, D)
            logits = (v * self.label_weights.float()).sum(-1) + self.label_bias.float()
        return logits, attention


class AttentionPool(nn.Module):
    """One learned query attending over tokens: a note vector for note-level decisions (E/M level).

    `attend` also returns the attention weights: they show which sentences the note-level decision
    read (the E/M level's evidence) and can be supervised with gold evidence like label attention.
    """

    def __init__(self, hidden_size: int, attention_size: int = 256):
        super().__init__()
        self.project = nn.Linear(hidden_size, attention_size)
        self.query = nn.Linear(attention_size, 1, bias=False)

    def attend(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """hidden (B, T, D), mask (B, T) bool -> pooled (B, D) float32, weights (B, T) float32
        (a probability row over the unmasked tokens, zero elsewhere; all zero if none is unmasked)."""
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h = hidden.float()
            z = torch.tanh(F.linear(h, self.project.weight.float(), self.project.bias.float()))
            scores = F.linear(z, self.query.weight.float()).squeeze(-1)  # (B, T)
            weights = masked_softmax(scores, mask)
            return (weights.unsqueeze(-1) * h).sum(1), weights

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, D), mask (B, T) bool -> pooled (B, D) float32."""
        return self.attend(hidden, mask)[0]
