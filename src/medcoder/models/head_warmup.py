"""Train the heads on cached encoder states before the encoder itself adapts (LP-FT).

Why: the label-attention, tagger and E/M heads start random, while the LoRA adapters start as the
identity (peft initialises B = 0), so at the start of fine-tuning the encoder's output is exactly the
frozen pretrained one. Running the heads alone over those states for many epochs costs a small
fraction of an encoder step on CPU: the encoder runs once per note, the states are cached, and
each warm-up epoch only runs the heads. Fine-tuning then starts from heads that already score codes,
rather than pushing random-head gradients into the encoder ("linear probing then fine-tuning",
Kumar et al., ICLR 2022). On the embedded corpus this is what lets a 2-core machine give rare codes
enough passes within the time budget (experiments/).

The warm-up is part of `fit`: it runs in `on_fit_start`, after Lightning has moved the model to its
device and before the first training step, and is skipped when a fit resumes from a checkpoint
(the heads come from the checkpoint). The encoder runs in eval mode without gradients for the cache
and every module gets its own train/eval mode back afterwards (docs/STACK.md, eval-mode). Under DDP every
rank warms up on the whole train split with the same seed, then takes rank 0's heads, so the ranks
start fine-tuning identical.
"""

from __future__ import annotations

import logging
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from medcoder.models.encoder_layers import eval_mode
from medcoder.models.lit_module import CoderLitModule, linear_warmup

log = logging.getLogger(__name__)

CachedBatch = tuple[dict[str, torch.Tensor], torch.Tensor]  # (batch without input ids, token states)


class HeadWarmup(Callback):
    """`epochs` passes of the heads over cached encoder states at the start of a fresh fit (0 = off).

    AdamW with `lr` and `weight_decay`, linear warm-up over `warmup_fraction` of the steps then linear
    decay to 0, gradients clipped to `clip_norm`; batches in a random order drawn from `seed`.
    """

    def __init__(
        self,
        epochs: int = 0,
        lr: float = 3e-3,
        weight_decay: float = 0.01,
        warmup_fraction: float = 0.05,
        clip_norm: float = 1.0,
        seed: int = 0,
    ):
        if epochs < 0:
            raise ValueError(f"head warm-up epochs must be >= 0, got {epochs}")
        if lr <= 0:
            raise ValueError(f"head warm-up lr must be > 0, got {lr}")
        self.epochs, self.lr, self.weight_decay = int(epochs), float(lr), float(weight_decay)
        self.warmup_fraction, self.clip_norm, self.seed = float(warmup_fraction), float(clip_norm), int(seed)
        self.epoch_losses: list[float] = []  # mean training loss of each warm-up epoch (of the last fit)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epochs == 0:
            return
        if not isinstance(pl_module, CoderLitModule):
            raise TypeError(f"HeadWarmup trains CoderLitModule heads, not {type(pl_module).__name__}")
        if trainer.ckpt_path is not None:
            log.info("head warm-up skipped: the fit resumes from %s, which holds trained heads", trainer.ckpt_path)
            return
        if trainer.datamodule is None:
            raise ValueError(
                "HeadWarmup caches the train split of the datamodule: pass one to trainer.fit(datamodule=...)"
            )
        started = time.perf_counter()
        cached = self._cache_states(trainer, pl_module)
        log.info(
            "head warm-up: encoder states of %d train batches cached in %.0f s",
            len(cached),
            time.perf_counter() - started,
        )
        self._train_heads(trainer, pl_module, cached)
        if trainer.world_size > 1:
            for parameter in pl_module.net.head_parameters():
                torch.distributed.broadcast(parameter.data, src=0)

    @torch.no_grad()
    def _cache_states(self, trainer: L.Trainer, pl_module: CoderLitModule) -> list[CachedBatch]:
        """One encoder pass (eval mode, no dropout) over the train split; states kept as bfloat16 on CPU."""
        cached: list[CachedBatch] = []
        with eval_mode(pl_module.net):
            for batch in trainer.datamodule.train_dataloader():
                on_device = {k: v.to(pl_module.device) for k, v in batch.items()}
                with trainer.precision_plugin.forward_context():
                    states = pl_module.encode(on_device, "train")  # from the frozen-layer cache when there is one
                rest = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask", "token_offsets")}
                cached.append((rest, states.to(device="cpu", dtype=torch.bfloat16)))
        return cached

    def _train_heads(self, trainer: L.Trainer, pl_module: CoderLitModule, cached: list[CachedBatch]) -> None:
        net, device = pl_module.net, pl_module.device
        params = net.head_parameters()
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        schedule = linear_warmup(optimizer, self.epochs * len(cached), self.warmup_fraction)
        order = torch.Generator().manual_seed(self.seed)
        self.epoch_losses = []
        for epoch in range(self.epochs):
            started, total = time.perf_counter(), 0.0
            for i in torch.randperm(len(cached), generator=order).tolist():
                rest, states = cached[i]
                batch = {k: v.to(device) for k, v in rest.items()}
                with trainer.precision_plugin.forward_context():
                    out = net.heads(states.to(device=device, dtype=torch.float32), batch["token_mask"])
                loss = pl_module.losses(out, batch)["loss"]
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, self.clip_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                total += float(loss.detach())
            self.epoch_losses.append(total / max(len(cached), 1))
            for logger in trainer.loggers:
                logger.log_metrics({"warmup/loss": self.epoch_losses[-1]}, step=epoch)
            log.info("head warm-up epoch %d/%d: loss %.4f (%.0f s)", epoch + 1, self.epochs, self.epoch_losses[-1],
                     time.perf_counter() - started)  # fmt: skip
