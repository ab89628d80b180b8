"""`medcoder-train init_from=<model>`: start a fit from a packaged model's weights instead of the pretrained
encoder and random heads. The adapters (or the whole encoder) train on top of its merged encoder, with its
tokenizer, and its trained heads; the head warm-up is skipped. The denial-feedback retraining fine-tunes the
champion this way (configs/experiment/denial_feedback.yaml).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

if TYPE_CHECKING:  # torch and MLflow are imported when a job runs, not when the module is
    from torch import nn

    from medcoder.registry.fetch import SealedExport

log = logging.getLogger(__name__)

# The net config fields that decide the heads' weight shapes, besides the label count (checked as the label space)
# and the encoder's hidden size (the exported encoder's own): a net built with other values cannot take the heads.
HEAD_SHAPE_FIELDS: tuple[str, ...] = ("attention_size", "tagger_kernel", "tagger_hidden", "ngram_kernel")


@dataclass(frozen=True)
class InitFrom:
    """The packaged model a run starts from: its verified sealed export and the label list its heads score."""

    export: SealedExport
    labels: list[list[str]]

    @property
    def source(self) -> str:
        """What the weights came from, for logs: the spec, the registry version if any, the manifest hash."""
        version = f" (version {self.export.version})" if self.export.version else ""
        return f"{self.export.spec}{version}, manifest sha256 {self.export.manifest_sha256}"


def prepare_init_from(cfg: DictConfig) -> InitFrom:
    """Fetch the model `init_from` names and point this run at it; called BEFORE the datamodule and model exist.

    The export is fetched (seal or manifest verified) into `<run output>/init_from`; its net config must give heads
    of the shapes this run's `model.net` builds; `model.net.encoder` becomes its `encoder/` folder (LoRA merged,
    tokenizer beside it), so the datamodule tokenises with the model's tokenizer (`data.encoder` follows
    `model.net.encoder`) and the adapters train on top of its weights; the head warm-up is turned off, because the
    heads it would train from scratch are already trained (the heads are loaded by `load_export_heads`).
    """
    from medcoder.export.artifact import CONFIG_NAME, ENCODER_DIR, read_config
    from medcoder.registry.fetch import fetch_export

    tracking_uri = OmegaConf.select(cfg, "logger.mlflow.tracking_uri", default=None)
    export = fetch_export(str(cfg.init_from), Path(cfg.paths.output_dir) / "init_from", tracking_uri)
    exported = read_config(export.folder)
    check_head_shapes(cfg.model.net, exported["net"], export.folder / CONFIG_NAME)
    encoder = str(export.folder / ENCODER_DIR)
    with open_dict(cfg):
        cfg.model.net.encoder = encoder
        warmup = (cfg.get("callbacks") or {}).get("head_warmup")
        if isinstance(warmup, DictConfig) and int(warmup.get("epochs") or 0):
            epochs = int(warmup.epochs)
            log.info(
                "init_from: head warm-up off (callbacks.head_warmup.epochs %d -> 0): the heads start trained", epochs
            )
            warmup.epochs = 0
    keep_threshold(cfg, float(exported["threshold"]))
    blend_mode(cfg)  # an unknown mode is refused now, not after the fit
    data_encoder = OmegaConf.select(cfg, "data.encoder", default=encoder)
    if data_encoder != encoder:
        raise ValueError(
            f"init_from: data.encoder is {data_encoder!r} but the model trains on {encoder}, the encoder of "
            f"{export.spec}: leave data.encoder at its default, ${{model.net.encoder}}, so notes are tokenised "
            "with that model's tokenizer"
        )
    init = InitFrom(export, [list(label) for label in exported["labels"]])
    log.info("init_from: the weights come from %s (%s)", init.source, export.folder)
    return init


THRESHOLD_MODES: tuple[str, ...] = ("tune", "keep")


def keep_threshold(cfg: DictConfig, exported_threshold: float) -> None:
    """With `init_from_threshold: keep`, the run's decision threshold is the model's own: the val search grid
    becomes that one point. A short fine-tune moves the scores a little, and on a val set where micro-F1 is flat
    over a wide band of thresholds the search's best point can jump (0.40 to 0.49 in a denial-feedback run, which
    then dropped right preventive-visit codes): keeping the operating point the model was promoted at makes
    recall and codes per encounter comparable with it. `tune` (the default) searches the grid as any fit does."""
    mode = cfg.get("init_from_threshold", "tune")
    if mode not in THRESHOLD_MODES:
        raise ValueError(f"init_from_threshold: {mode!r} is not one of {list(THRESHOLD_MODES)}")
    if mode == "keep":
        with open_dict(cfg):
            cfg.threshold_grid = {"start": exported_threshold, "stop": exported_threshold, "step": 0.01}
        log.info("init_from: the decision threshold stays the model's own, %.3f (init_from_threshold=keep)",
                 exported_threshold)  # fmt: skip


BLEND_MODES: tuple[str, ...] = ("refit", "keep")


def blend_mode(cfg: DictConfig) -> str:
    """`init_from_blend`: `refit` fits the TF-IDF part and its weight on the run's data as any fit does; `keep`
    keeps the model's own (`kept_blend_fitter`)."""
    mode = cfg.get("init_from_blend", "refit")
    if mode not in BLEND_MODES:
        raise ValueError(f"init_from_blend: {mode!r} is not one of {list(BLEND_MODES)}")
    return str(mode)


def kept_blend_fitter(init: InitFrom) -> Callable[[Any], tuple[Any, dict[str, Any]]] | None:
    """The function `evaluate_trained_coder` calls for the blend, returning the model's own TF-IDF part and weight
    instead of refitting them (None for a neural-only model: no blend). A refit learns from the run's training
    notes: in the denial loop those are 600 replayed notes and the feedback, far fewer than the champion's TF-IDF
    part learnt from, so it forgets what the rest taught it and drops right codes the champion emits; the
    fine-tune is meant to correct the champion, not to refit it."""
    from medcoder.export.artifact import read_export_blend

    blend = read_export_blend(init.export.folder)
    log.info(
        "init_from: the blend stays the model's own (init_from_blend=keep): %s",
        "neural only" if blend is None else f"TF-IDF weight {blend.weight:.2f}",
    )
    return None if blend is None else (lambda neural_val: (blend, {}))


def check_head_shapes(net_cfg: DictConfig, exported_net: Mapping[str, Any], where: Path) -> None:
    """The net this run builds must give heads of the exported shapes (HEAD_SHAPE_FIELDS); say which field differs."""
    from medcoder.models.coder import MedicalCoder

    defaults = {k: p.default for k, p in inspect.signature(MedicalCoder).parameters.items()}
    differ = [
        f"model.net.{field}={net_cfg.get(field, defaults[field])!r} but the export's is {exported_net.get(field)!r}"
        for field in HEAD_SHAPE_FIELDS
        if net_cfg.get(field, defaults[field]) != exported_net.get(field)
    ]
    if differ:
        raise ValueError(
            f"init_from: the heads in {where.parent} do not fit the net this run builds: {'; '.join(differ)}. "
            f"Set those model.net fields to the values in {where} (`net`)"
        )


def _label_names(labels: Sequence[tuple[str, str]], first: int = 5) -> str:
    return ", ".join(f"{system}:{code}" for system, code in labels[:first]) or "none"


def adopt_export_labels(datamodule: Any, init: InitFrom) -> None:
    """The datamodule must score the model's labels: the same set, else an error naming the difference.

    The heads hold one row per label, in the exported order. A training corpus that holds the same labels ranks
    them by its own code frequencies (`coding_label_space`), so the order may differ: the datamodule then takes
    the model's order (called after `setup`, before any note is encoded against the label space).
    """
    from medcoder.data.labels import LabelSpace

    exported, here = LabelSpace.from_list(init.labels), datamodule.label_space
    if here.labels == exported.labels:
        return
    only_data = [label for label in here.labels if label not in exported]
    only_model = [label for label in exported.labels if label not in here]
    if only_data or only_model:
        raise ValueError(
            f"init_from {init.export.spec}: the training data's label space ({len(here)} labels) is not the "
            f"model's ({len(exported)} labels): {len(only_data)} only in the data (first: {_label_names(only_data)}), "
            f"{len(only_model)} only in the model (first: {_label_names(only_model)}). The fit keeps the model's "
            "heads, one per label: build the training data so its label space (the train split's codes of "
            "data.label_systems, cut to data.top_k) is exactly the model's labels (coder.json `labels`)"
        )
    log.info(
        "init_from: the training data ranks the model's %d labels in another order; the model's order is kept",
        len(exported),
    )
    datamodule.label_space = exported


def load_export_heads(net: nn.Module, heads_path: Path) -> None:
    """Load an export's head weights (every net weight outside the encoder) into `net`: each must fit, by name
    and shape, and each of the net's head weights must be in the file."""
    from safetensors.torch import load_file

    heads = load_file(str(heads_path))
    own = {k: v for k, v in net.state_dict().items() if not k.startswith("encoder.")}
    missing, unexpected = sorted(set(own) - set(heads)), sorted(set(heads) - set(own))
    reshaped = [
        f"{k} {tuple(heads[k].shape)} vs the net's {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(heads))
        if heads[k].shape != own[k].shape
    ]
    if missing or unexpected or reshaped:
        raise ValueError(
            f"{heads_path}: the head weights do not fit the net this run builds (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, other shapes {reshaped[:3]}): build model.net as coder.json's `net`"
        )
    net.load_state_dict(heads, strict=False)  # strict=False: the encoder's weights are not in the file


def init_from_tags(init: InitFrom) -> dict[str, str]:
    """The run tags naming the model the weights came from (no note text: a URI or path, a version, a hash)."""
    tags = {"init_from": init.export.spec, "init_from.manifest_sha256": init.export.manifest_sha256}
    if init.export.version:
        tags["init_from.version"] = init.export.version
    return tags
