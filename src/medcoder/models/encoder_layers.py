"""The encoder's layer stack run in two parts: the frozen layers below the adapters, then the rest.

Pure torch (the packaged model's serving path imports it through `MedicalCoder.encode_above`, and
serving must not import the training stack); the cache that uses it in training is
`medcoder.models.frozen_layers`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def bert_like(encoder: nn.Module) -> nn.Module | None:
    """The transformer under a peft wrapper, if it has BERT's layout (`embeddings`, `encoder.layer`)."""
    base = encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder
    has_layers = isinstance(getattr(getattr(base, "encoder", None), "layer", None), nn.ModuleList)
    return base if has_layers and isinstance(getattr(base, "embeddings", None), nn.Module) else None


def frozen_layer_count(encoder: nn.Module) -> int:
    """How many of the encoder's lowest layers (the embeddings frozen too) train no weight; 0 if not BERT-like."""
    base = bert_like(encoder)
    if base is None or any(p.requires_grad for p in base.embeddings.parameters()):
        return 0
    count = 0
    for layer in base.encoder.layer:
        if any(p.requires_grad for p in layer.parameters()):
            break
        count += 1
    return count


def _mask(base: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor | None:
    """The attention mask in the form the model's layers take (its attention implementation's)."""
    from transformers.masking_utils import create_bidirectional_mask

    return create_bidirectional_mask(config=base.config, inputs_embeds=hidden, attention_mask=attention_mask)


@torch.no_grad()
def lower_states(
    encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, layers: int
) -> torch.Tensor:
    """(chunks, S) ids -> (chunks, S, D) states after the embeddings and the lowest `layers` layers."""
    base = bert_like(encoder)
    hidden = base.embeddings(input_ids=input_ids)
    mask = _mask(base, hidden, attention_mask)
    for layer in base.encoder.layer[:layers]:
        hidden = _output(layer(hidden, mask))
    return hidden


def upper_states(encoder: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor, layers: int) -> torch.Tensor:
    """(chunks, S, D) states after the lowest `layers` layers -> the encoder's last hidden states."""
    base = bert_like(encoder)
    mask = _mask(base, hidden, attention_mask)
    for layer in base.encoder.layer[layers:]:
        hidden = _output(layer(hidden, mask))
    return hidden


def _output(out: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
    """A layer's hidden states (transformers before 5 returned them first in a tuple)."""
    return out[0] if isinstance(out, tuple) else out


def hidden_dropout(encoder: nn.Module) -> float:
    """The encoder's hidden-state dropout rate (BERT's `hidden_dropout_prob`), 0.0 when it has none."""
    base = bert_like(encoder)
    return float(getattr(base.config, "hidden_dropout_prob", 0.0) or 0.0) if base is not None else 0.0


@contextlib.contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """`net` in eval mode (no dropout) for a pass, every module's own mode back afterwards: Lightning keeps
    each submodule's mode, and a blanket `net.train()` would wake modules meant to stay in eval
    (docs/STACK.md, eval-mode)."""
    modes = [(module, module.training) for module in net.modules()]
    net.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.train(training)
