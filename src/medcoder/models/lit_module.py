"""CoderLitModule: training, validation and prediction of the MedicalCoder under Lightning.

Losses (weights are config; 0 switches a term off):
    code       BCE-with-logits over the label space (optional scalar pos_weight, off by default)
    evidence   cross-entropy of the O/B/I tagger on tokens with a gold tag (-100 ignored)
    em         cross-entropy over EM_CLASSES (none or one office level)
    attention  -log(label attention mass on the gold evidence tokens) per evidenced gold code:
               supervises each code's attention to point at its evidence (needs evidence spans)
    em_attention  -log(E/M pool attention mass on the gold E/M code's evidence tokens) per note
               with such evidence: the E/M level then reads, and shows as its evidence, the
               status/problem/data/risk statements. 0 on a batch without E/M evidence (e.g. CodiEsp)

Hydra builds it as in lightning-hydra-template: `net` is a `_partial_: true` MedicalCoder (given
`num_labels` here from `labels`) or a built one; `optimizer` is a `_partial_: true` optimizer and
`scheduler` an optional partial called with (optimizer, num_training_steps). Full fine-tuning puts
the encoder in its own parameter group with `encoder_lr` (e.g. 5e-5 against 1e-3 for the heads).
`frozen_parts` names net parts that keep their weights through the fit (`MedicalCoder.freeze`; the denial-feedback
fine-tune holds the E/M level's parts, configs/experiment/denial_feedback.yaml).
Metrics are computed by medcoder.metrics, the same code that scores every model.

Exact resume: Lightning restores weights, optimizer, scheduler, loop counters and callback state from a
checkpoint, but not the global random streams, so after `ckpt_path=last` the dropout masks would differ
from an uninterrupted run's. Every checkpoint therefore carries them (`capture_rng_state`) and resuming
a fit restores them (tests/test_resume.py). Under DDP only rank 0's streams are saved, so there a
resumed run is statistically, not bitwise, the same.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim import Optimizer

from medcoder.codes.em import is_visit_em
from medcoder.data.chunking import Chunking
from medcoder.data.labels import LabelSpace
from medcoder.data.spans import BIO_NAMES, IGNORE
from medcoder.data.tokenizer import resolve_encoder_path
from medcoder.metrics.classification import classification_metrics
from medcoder.metrics.evidence import seqeval_span_f1
from medcoder.models.coder import CoderOutput, MedicalCoder
from medcoder.models.frozen_layers import FrozenStates
from medcoder.models.label_semantics import LABEL_INIT_MODES, init_from_label_texts

log = logging.getLogger(__name__)
NET_CONFIG_KEY = "medcoder_net_config"
RNG_STATE_KEY = "medcoder_rng_state"


def linear_warmup(optimizer: Optimizer, num_training_steps: int, warmup_fraction: float = 0.1):
    """Linear warm-up over the first `warmup_fraction` of steps, then linear decay to 0 (per step)."""
    from transformers import get_linear_schedule_with_warmup

    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    return get_linear_schedule_with_warmup(optimizer, int(warmup_fraction * num_training_steps), num_training_steps)


def attention_supervision_loss(attention: torch.Tensor, evidence_index: torch.Tensor) -> torch.Tensor:
    """Mean over (note, gold code) pairs with evidence of -log(attention mass on their evidence tokens).

    attention (B, L, T); evidence_index (N, 3) rows of (note, label, token). Zero when N = 0.
    """
    if evidence_index.numel() == 0:
        return attention.new_zeros(())
    note, label, token = evidence_index.unbind(1)
    mass = attention.new_zeros(attention.shape[:2]).index_put(
        (note, label), attention[note, label, token], accumulate=True
    )
    has = torch.zeros(attention.shape[:2], dtype=torch.bool, device=attention.device)
    has[note, label] = True
    return -torch.log(mass[has].clamp_min(1e-6)).mean()


def em_attention_supervision_loss(em_attention: torch.Tensor, em_evidence_index: torch.Tensor) -> torch.Tensor:
    """Mean over notes with gold E/M evidence of -log(E/M pool attention mass on those tokens).

    em_attention (B, T); em_evidence_index (M, 2) rows of (note, token). Zero when M = 0. The E/M
    pool is one query, so this is `attention_supervision_loss` with a single label.
    """
    notes, tokens = em_evidence_index.unbind(1)
    index = torch.stack([notes, torch.zeros_like(notes), tokens], dim=1)
    return attention_supervision_loss(em_attention.unsqueeze(1), index)


def capture_rng_state() -> dict[str, Any]:
    """The global random streams training draws from: torch (dropout), CUDA, numpy and `random`.

    Stored as tensors, lists and numbers so that the checkpoint still loads with
    torch.load(weights_only=True); Lightning's own (private) collector keeps numpy's state as an
    ndarray, which weights_only refuses. CUDA's streams only when this process used CUDA (a CPU run
    on a GPU machine must not start CUDA to save streams it never drew from).
    """
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },  # fmt: skip
        "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next},
    }


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what `capture_rng_state` saved: the next random number drawn is the one that
    would have been drawn right after the capture."""
    torch.set_rng_state(state["torch"].cpu())
    cuda = list(state["cuda"])
    n_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cuda and len(cuda) == n_devices:
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])
    elif cuda:
        log.warning("CUDA random state saved for %d device(s), %d here: not restored, so GPU dropout after the "
                    "resume differs from an uninterrupted run", len(cuda), n_devices)  # fmt: skip
    np_state = state["numpy"]
    keys = np_state["keys"].numpy().astype(np.uint32)
    np.random.set_state((np_state["kind"], keys, np_state["pos"], np_state["has_gauss"], np_state["cached_gaussian"]))
    py_state = state["python"]
    random.setstate((py_state["version"], tuple(py_state["internal"]), py_state["gauss_next"]))


class CoderLitModule(L.LightningModule):
    """Lightning wrapper of MedicalCoder; see the module docstring for losses and optimisation."""

    def __init__(
        self,
        net: MedicalCoder | Callable[..., MedicalCoder],
        labels: Sequence[Sequence[str]],
        optimizer: Callable[..., Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        encoder_lr: float | None = None,
        code_loss_weight: float = 1.0,
        evidence_loss_weight: float = 1.0,
        em_loss_weight: float = 1.0,
        attention_loss_weight: float = 0.0,
        em_attention_loss_weight: float = 0.0,
        code_pos_weight: float | None = None,
        chunk_size: int = 256,
        chunk_overlap: int = 32,
        max_chunks: int = 8,
        threshold: float = 0.5,
        label_init: str | None = None,
        frozen_parts: Sequence[str] = (),
    ):
        super().__init__()
        labels = [[str(system), str(code)] for system, code in labels]  # plain lists, also from Hydra ListConfig
        frozen_parts = [str(part) for part in frozen_parts]
        # The optimizer and scheduler partials stay out of the checkpoint, so it loads with
        # torch.load(weights_only=True): nothing in it can run code. A reloaded module predicts.
        self.save_hyperparameters(ignore=["net", "optimizer", "scheduler"], logger=False)
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.label_space = LabelSpace.from_list(labels)
        self.net = net if isinstance(net, MedicalCoder) else net(num_labels=len(self.label_space))
        self.chunking = Chunking(chunk_size, chunk_overlap, max_chunks)
        if self.net.config["num_labels"] != len(self.label_space):
            raise ValueError(
                f"the net predicts {self.net.config['num_labels']} labels but {len(self.label_space)} labels "
                "were given: build the net with num_labels=len(labels) (or pass it as a partial)"
            )
        if label_init is not None and label_init not in LABEL_INIT_MODES:
            raise ValueError(f"label_init must be null or one of {', '.join(LABEL_INIT_MODES)}, got {label_init!r}")
        if label_init == "descriptions" and not isinstance(net, MedicalCoder):
            # a net built here is new (a prebuilt one, e.g. from a checkpoint, keeps its weights)
            init_from_label_texts(self.net, self.label_space.labels)
        self.net.freeze(frozen_parts)  # after label_init: a frozen part keeps the weights it starts the fit with
        finetune = self.net.finetune
        if finetune == "full" and encoder_lr is None:
            raise ValueError(
                "finetune='full' needs encoder_lr (e.g. 5e-5): the heads' lr would wreck a pretrained encoder"
            )
        if finetune == "frozen" and encoder_lr is not None:
            raise ValueError("encoder_lr is set but finetune='frozen' trains no encoder weight: set encoder_lr to null")
        if chunk_size > self.net.max_positions:
            raise ValueError(
                f"chunk_size {chunk_size} exceeds the encoder's {self.net.max_positions} positions: lower it"
            )
        for name in (
            "code_loss_weight",
            "evidence_loss_weight",
            "em_loss_weight",
            "attention_loss_weight",
            "em_attention_loss_weight",
        ):
            if getattr(self.hparams, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self.hparams, name)}")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.val_scores: np.ndarray | None = None  # (n_val_notes, L) probabilities of the last validation
        self.val_targets: np.ndarray | None = None
        self.test_scores: np.ndarray | None = None
        self._epoch_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (index, probs, targets)
        self._epoch_tags: dict[int, tuple[list[str], list[str]]] = {}  # note index -> (gold, predicted) tags
        # split -> states below the lowest trained encoder layer, during a fit (medcoder.models.frozen_layers)
        self.frozen_states: dict[str, FrozenStates] = {}

    # ------------------------------------------------------------ checks against the data
    def setup(self, stage: str) -> None:
        """Fail before the first step when the datamodule and this model do not fit together."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or getattr(dm, "label_space", None) is None:
            return
        if dm.label_space.labels != self.label_space.labels:
            raise ValueError(
                f"the model's {len(self.label_space)} labels differ from the datamodule's label space "
                f"({len(dm.label_space)} labels): build the model with labels=datamodule.label_space.to_list()"
            )
        if dm.chunking != self.chunking:
            raise ValueError(
                f"model chunking {self.chunking} differs from the datamodule's {dm.chunking}: use the same values"
            )
        if resolve_encoder_path(dm.encoder_name) != resolve_encoder_path(self.net.config["encoder"]):
            raise ValueError(
                f"the datamodule tokenises for encoder {dm.encoder_name!r} "
                f"but the net uses {self.net.config['encoder']!r}: set both to the same encoder"
            )
        if stage == "fit" and dm.evidence_coverage("train") == 0.0:
            if self.hparams.attention_loss_weight > 0:
                raise ValueError(
                    f"attention_loss_weight={self.hparams.attention_loss_weight} but dataset "
                    f"{dm.dataset_name!r} has no evidence spans to supervise attention with: "
                    "set attention_loss_weight to 0"
                )
            if self.hparams.evidence_loss_weight > 0:
                log.warning(
                    "dataset %s has no evidence spans: the evidence tagger learns nothing, every code "
                    "will be ungrounded",
                    dm.dataset_name,
                )
        if (
            stage == "fit"
            and self.hparams.em_attention_loss_weight > 0
            and not any(c.evidence for r in dm.records["train"] for c in r.codes if is_visit_em(c.system, c.code))
        ):  # not an error: one model config serves datasets with and without E/M evidence
            log.info(
                "dataset %s has no E/M evidence spans: the em_attention loss is 0, and E/M evidence "
                "shows where the unsupervised E/M pool looks",
                dm.dataset_name,
            )

    # ------------------------------------------------------------ forward and losses
    def forward(self, batch: dict[str, torch.Tensor], split: str | None = None) -> CoderOutput:
        """The net over a batch of `split` (train, val), from its cached frozen-layer states when there are some."""
        return self.net.heads(self.encode(batch, split), batch["token_mask"])

    def encode(self, batch: dict[str, torch.Tensor], split: str | None = None) -> torch.Tensor:
        """The encoder's token states of a batch; with `frozen_states` of its split (FrozenLayerCache, during a
        fit) only the layers that train run."""
        frozen = self.frozen_states.get(split) if split is not None else None
        if frozen is not None and frozen.covers(batch["index"]):
            states = frozen.batch(batch["index"], batch["attention_mask"]).to(self.device)
            # the frozen layers dropped out their hidden states in training; the cache is their eval-mode output.
            # The net's mode decides, not this module's: the head warm-up reads the cache with the net in eval mode
            states = F.dropout(states, p=frozen.dropout, training=self.net.training)
            return self.net.encode_above(states, batch["attention_mask"], frozen.layers)
        return self.net.encode(batch["input_ids"], batch["attention_mask"])

    def losses(self, out: CoderOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        hp = self.hparams
        pos_weight = None
        if hp.code_pos_weight is not None:
            pos_weight = torch.full_like(out.code_logits[0], float(hp.code_pos_weight))
        code = F.binary_cross_entropy_with_logits(
            out.code_logits.float(), batch["labels"].float(), pos_weight=pos_weight
        )
        tags = batch["bio_tags"].reshape(out.bio_logits.shape[:2])
        valid = tags != IGNORE
        if valid.any():
            evidence = F.cross_entropy(out.bio_logits[valid].float(), tags[valid])
        else:
            evidence = out.bio_logits.sum() * 0.0  # no tag supervision in this batch
        em = F.cross_entropy(out.em_logits.float(), batch["em_labels"])
        attention = attention_supervision_loss(out.label_attention, batch["evidence_index"])
        em_attention = em_attention_supervision_loss(out.em_attention, batch["em_evidence_index"])
        total = (hp.code_loss_weight * code + hp.evidence_loss_weight * evidence + hp.em_loss_weight * em
                 + hp.attention_loss_weight * attention + hp.em_attention_loss_weight * em_attention)  # fmt: skip
        return {"loss": total, "code_loss": code, "evidence_loss": evidence, "em_loss": em, "attention_loss": attention,
                "em_attention_loss": em_attention}  # fmt: skip

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(self(batch, "train"), batch)
        size = batch["labels"].shape[0]
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        for name in ("code_loss", "evidence_loss", "em_loss", "attention_loss", "em_attention_loss"):
            self.log(f"train/{name}", losses[name], batch_size=size)
        return losses["loss"]

    # ------------------------------------------------------------ evaluation
    def _eval_step(self, batch: dict[str, torch.Tensor], prefix: str) -> None:
        out = self(batch, prefix)
        losses = self.losses(out, batch)
        self.log(f"{prefix}/loss", losses["loss"], prog_bar=True, batch_size=batch["labels"].shape[0], sync_dist=True)
        probs = torch.sigmoid(out.code_logits.float()).detach()
        self._epoch_outputs.append((batch["index"], probs, batch["labels"].float()))
        tags = batch["bio_tags"].reshape(out.bio_logits.shape[:2]).cpu()
        predicted = out.bio_logits.argmax(-1).cpu()
        for index, gold_row, pred_row in zip(batch["index"].tolist(), tags, predicted):
            keep = gold_row != IGNORE
            if keep.any():
                gold = [BIO_NAMES[i] for i in gold_row[keep].tolist()]
                self._epoch_tags[index] = (gold, [BIO_NAMES[i] for i in pred_row[keep].tolist()])

    def _gather_epoch(self) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[list[str], list[str]]]]:
        """Scores, targets (in split order) and tag sequences of the whole split, from every rank.

        Under DDP each rank saw a shard (padded with repeats); gathering and de-duplicating by note
        index makes val/map the same number a single-device run gives.
        """
        index = torch.cat([i for i, _, _ in self._epoch_outputs])
        scores = torch.cat([s for _, s, _ in self._epoch_outputs])
        targets = torch.cat([t for _, _, t in self._epoch_outputs])
        tags = self._epoch_tags
        if self.trainer.world_size > 1:
            index, scores, targets = (self.all_gather(x).flatten(0, 1) for x in (index, scores, targets))
            gathered: list[Any] = [None] * self.trainer.world_size
            torch.distributed.all_gather_object(gathered, tags)
            tags = {k: v for part in gathered for k, v in part.items()}
        index = index.cpu().numpy()
        _, first = np.unique(index, return_index=True)  # sorted by note index, repeats dropped
        return scores.cpu().numpy()[first], targets.cpu().numpy()[first], tags

    def _eval_epoch_end(self, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
        if not self._epoch_outputs:
            return None
        scores, targets, tags = self._gather_epoch()
        self._epoch_outputs, self._epoch_tags = [], {}
        metrics = classification_metrics(targets, scores, self.hparams.threshold)
        for key in ("micro_f1", "macro_f1", "map"):
            self.log(f"{prefix}/{key}", float(np.nan_to_num(metrics[key])), prog_bar=key == "micro_f1", sync_dist=True)
        if tags:
            ordered = [tags[k] for k in sorted(tags)]
            self.log(
                f"{prefix}/evidence_f1",
                seqeval_span_f1([g for g, _ in ordered], [p for _, p in ordered]),
                sync_dist=True,
            )
        return scores, targets

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        result = self._eval_epoch_end("val")
        if result is not None and not self.trainer.sanity_checking:
            self.val_scores, self.val_targets = result

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        result = self._eval_epoch_end("test")
        if result is not None:
            self.test_scores = result[0]

    # ------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        groups: list[dict[str, Any]] = [{"params": self.net.head_parameters()}]
        encoder_params = self.net.encoder_parameters()
        if encoder_params:
            lr = {} if self.hparams.encoder_lr is None else {"lr": self.hparams.encoder_lr}
            groups.append({"params": encoder_params, **lr})
        if self.optimizer_factory is None:
            raise ValueError(
                "CoderLitModule has no optimizer: pass optimizer=functools.partial(torch.optim.AdamW, lr=...) to train"
            )
        optimizer = self.optimizer_factory(params=groups)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        steps = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer=optimizer, num_training_steps=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[NET_CONFIG_KEY] = dict(self.net.config)
        checkpoint[RNG_STATE_KEY] = capture_rng_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming a fit continues the saved random streams (see the module docstring); loading
        weights to predict, validate or test leaves the caller's streams alone."""
        if self._trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return
        if RNG_STATE_KEY not in checkpoint:
            log.warning("the checkpoint holds no random state (saved by an older medcoder): training resumes with "
                        "other dropout masks than an uninterrupted run would have drawn")  # fmt: skip
            return
        restore_rng_state(checkpoint[RNG_STATE_KEY])

    @classmethod
    def load_trained(cls, checkpoint_path: str, map_location: str | torch.device = "cpu") -> CoderLitModule:
        """Rebuild the net from the config stored in the checkpoint, then load all weights (safely:
        weights_only=True). For prediction; to resume training use `Trainer.fit(ckpt_path=...)`."""
        checkpoint = torch.load(checkpoint_path, map_location=map_location, weights_only=True)
        if NET_CONFIG_KEY not in checkpoint:
            raise ValueError(f"{checkpoint_path} was not saved by CoderLitModule (no {NET_CONFIG_KEY!r} entry)")
        net = MedicalCoder(**checkpoint[NET_CONFIG_KEY])
        return cls.load_from_checkpoint(checkpoint_path, map_location=map_location, weights_only=True, net=net)
