"""Phase 2 without re-running the encoder layers that do not train.

Why: the recipe adapts only MiniLM's top 2 layers with LoRA (configs/model/lora.yaml), so the
embeddings and the 4 layers below them never change during a fit, yet every training step and every
validation pass ran them again: about two thirds of each forward pass, on a 2-core machine most of
what `make train` spends outside the head warm-up. Their output for a note is a function of the note
alone, so it is computed once at the start of the fit, kept per note (float32, CPU), and each step
runs only the adapted layers on it. The frozen layers run in eval mode for the cache, as the packaged
model runs them at inference; a training step drops out the cached states at the encoder's hidden
dropout rate, standing in for the dropout the frozen layers applied when they ran in every step.
Off in the recipe (configs/callbacks/default.yaml): fine-tuning took 357-400 s instead of 518 s, but
the champions ranked codes worse (test mAP 0.961 without that dropout, 0.962 with it, 0.967 without
the cache; experiments/2026-12-05-embedded-train-phases.md): the noise of dropout in every frozen layer
is part of what the recipe learns from, and one dropout on their output does not replace it.

Only BERT-like encoders (an `embeddings` module and an `encoder.layer` stack: BERT, RoBERTa,
MiniLM, ELECTRA) are cut this way; for any other encoder, for full fine-tuning and for LoRA on every
layer `frozen_layer_count` is 0 and phase 2 runs the whole encoder as before.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from medcoder.models.encoder_layers import eval_mode, frozen_layer_count, hidden_dropout, lower_states

log = logging.getLogger(__name__)


@dataclass
class FrozenStates:
    """Per note (the datamodule's note index in one split), the states of its real chunks after the
    frozen layers, each chunk cut to its real tokens: a batch pads them again to its own length."""

    layers: int
    chunks: dict[int, list[torch.Tensor]]  # note index -> [(tokens of chunk c, D) for its real chunks]
    dropout: float = 0.0  # applied to the cached states in training steps: the frozen layers' own hidden dropout

    def covers(self, index: torch.Tensor) -> bool:
        return all(int(i) in self.chunks for i in index)

    def batch(self, index: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(real chunks of the batch, S, D), real chunks in the order `MedicalCoder.encode` flattens them."""
        seq_len = attention_mask.shape[-1]
        rows = [chunk for i in index.tolist() for chunk in self.chunks[int(i)]]
        out = rows[0].new_zeros((len(rows), seq_len, rows[0].shape[-1]))
        for j, chunk in enumerate(rows):
            out[j, : len(chunk)] = chunk
        return out


@torch.no_grad()
def cache_split(net: nn.Module, loader, layers: int, device: torch.device) -> FrozenStates:
    """One pass of the frozen layers over a split's loader (eval mode), kept per note on the CPU."""
    chunks: dict[int, list[torch.Tensor]] = {}
    for batch in loader:
        mask = batch["attention_mask"]
        flat_ids, flat_mask = batch["input_ids"].flatten(0, 1), mask.flatten(0, 1)
        real = flat_mask.any(dim=1)
        states = lower_states(net.encoder, flat_ids[real].to(device), flat_mask[real].to(device), layers).cpu()
        lengths = flat_mask[real].sum(dim=1).tolist()
        owners = torch.arange(mask.shape[0]).repeat_interleave(mask.shape[1])[real].tolist()
        for state, length, owner in zip(states, lengths, owners):
            chunks.setdefault(int(batch["index"][owner]), []).append(state[:length].clone())
    return FrozenStates(layers=layers, chunks=chunks, dropout=hidden_dropout(net.encoder))


class FrozenLayerCache(Callback):
    """At the start of every fit (a resumed one too: the frozen layers are the same), cache the train
    and val splits' states below the lowest trained layer on the module (`CoderLitModule.frozen_states`),
    so training and validation steps run only the layers that train. `enabled: false` turns it off."""

    def __init__(self, enabled: bool = True):
        self.enabled = bool(enabled)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from medcoder.models.lit_module import CoderLitModule

        if not self.enabled:
            return
        if not isinstance(pl_module, CoderLitModule):
            raise TypeError(f"FrozenLayerCache caches CoderLitModule states, not {type(pl_module).__name__}")
        layers = frozen_layer_count(pl_module.net.encoder)
        if layers == 0 or trainer.datamodule is None or trainer.max_epochs == 0:
            log.info("frozen-layer cache: off (no frozen layer under a trained one, no training step or no datamodule)")
            return
        started = time.perf_counter()
        net = pl_module.net
        with eval_mode(net):
            pl_module.frozen_states = {
                "train": cache_split(net, trainer.datamodule.train_dataloader(), layers, pl_module.device),
                "val": cache_split(net, trainer.datamodule.val_dataloader(), layers, pl_module.device),
            }
        log.info(
            "frozen-layer cache: states after the %d frozen layers of %d train and %d val notes in %.0f s",
            layers,
            len(pl_module.frozen_states["train"].chunks),
            len(pl_module.frozen_states["val"].chunks),
            time.perf_counter() - started,
        )

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if hasattr(pl_module, "frozen_states"):
            pl_module.frozen_states = {}  # the memory goes back once the fit is over
