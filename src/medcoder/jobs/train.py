"""medcoder-train: fit a coder, evaluate its best checkpoint, log everything to MLflow.

A flat, logged sequence in the lightning-hydra-template manner:
    data (generate the embedded corpus if missing) -> datamodule -> model -> callbacks, loggers,
    trainer -> run context in MLflow -> fit (resumable with ckpt_path=last) -> test with the best
    checkpoint -> threshold on val, full evaluation of val and test -> package the model into the run
    (MLflow pyfunc at artifact path "model", ready for `medcoder register`) -> metrics for a sweep.
The fit has two phases, both inside `trainer.fit` (see `fit_phases`):
    phase 1, head warm-up (a linear probe): the heads alone, trained on encoder states cached in one
        pass (callbacks.head_warmup: medcoder.models.head_warmup.HeadWarmup, in on_fit_start);
    phase 2, fine-tuning: the encoder's adapters (LoRA; the whole encoder with model=full) and the
        heads together, the Lightning epochs (model.optimizer, trainer.max_epochs).
With `init_from=<model>` (a models:/ or runs:/ URI, or a sealed export folder) the fit starts from a packaged
model's weights instead of the pretrained encoder and random heads (`prepare_init_from`): the adapters (or the
whole encoder) train on top of its merged encoder, with its tokenizer, and its trained heads; phase 1 is skipped.
The denial-feedback retraining fine-tunes the champion this way (configs/experiment/denial_feedback.yaml).
Run `medcoder-train --help` for the config groups. With no overrides it runs the recommended recipe
(configs/train.yaml); configs/experiment/ holds what differs from it by dataset or hardware.
"""

from __future__ import annotations

import logging
import shlex
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from medcoder.jobs.config import CONFIG_DIR, ensure_embedded_corpus
from medcoder.jobs.init_from import (
    adopt_export_labels,
    blend_mode,
    init_from_tags,
    kept_blend_fitter,
    load_export_heads,
    prepare_init_from,
)

log = logging.getLogger(__name__)


def resolve_ckpt_path(ckpt_path: str | None, task_name: str, root: str) -> str | None:
    """`last` means the newest `last.ckpt` of an earlier run of this task; a path is used as given."""
    if ckpt_path != "last":
        return ckpt_path
    candidates = sorted(
        Path(root, "outputs", "runs", task_name).glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime
    )
    if not candidates:
        raise FileNotFoundError(
            f"ckpt_path=last: no earlier run of task {task_name!r} left a last.ckpt under {root}/outputs/runs"
        )
    log.info("resuming from %s", candidates[-1])
    return str(candidates[-1])


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a config group (callbacks, loggers); empty when unset."""
    if not group:
        return []
    return [
        hydra.utils.instantiate(item) for item in group.values() if isinstance(item, DictConfig) and "_target_" in item
    ]


def instantiate_model(model_cfg: DictConfig, datamodule: Any) -> Any:
    """The LightningModule over the datamodule's labels, cutting notes the way the datamodule does:
    chunking is set once, in the data config, and the module keeps it for prediction."""
    chunking = datamodule.chunking
    return hydra.utils.instantiate(
        model_cfg,
        labels=datamodule.label_space.to_list(),
        chunk_size=chunking.chunk_size,
        chunk_overlap=chunking.chunk_overlap,
        max_chunks=chunking.max_chunks,
    )


def fit_phases(cfg: DictConfig, ckpt_path: str | None) -> list[str]:
    """What each phase of the fit will do, as log lines (logging only: the callbacks and trainer do it).

    Phase 1, the head warm-up, runs when callbacks.head_warmup is instantiated with epochs > 0 and the
    fit does not resume (a checkpoint holds trained heads); phase 2, fine-tuning, always runs.
    """
    warmup = (cfg.get("callbacks") or {}).get("head_warmup")
    epochs = int(warmup.epochs) if isinstance(warmup, DictConfig) and "_target_" in warmup else 0
    init_from = cfg.get("init_from")
    if init_from:
        phase1 = f"phase 1, head warm-up: skipped, the heads start trained, from {init_from} (init_from)"
    elif ckpt_path and epochs:
        phase1 = f"phase 1, head warm-up: skipped, the fit resumes from {ckpt_path}, which holds trained heads"
    elif epochs:
        phase1 = (
            f"phase 1, head warm-up (linear probe): {epochs} epochs of the heads alone on encoder states "
            f"cached in one pass, lr {float(warmup.lr):g}"
        )
    else:
        phase1 = "phase 1, head warm-up: off (callbacks.head_warmup)"
    model = cfg.get("model") or {}
    finetune = (model.get("net") or {}).get("finetune", "?")
    lr = (model.get("optimizer") or {}).get("lr", "?")
    encoder_lr = f" (encoder {model.get('encoder_lr')})" if model.get("encoder_lr") is not None else ""
    start = f", from the weights of {init_from}" if init_from else ""
    frozen = [str(part) for part in model.get("frozen_parts") or ()]
    trained = f"encoder ({finetune}) and heads together" if "encoder" not in frozen else "heads only"
    held = f", frozen: {', '.join(frozen)}" if frozen else ""
    phase2 = (
        f"phase 2, fine-tuning: {trained}{start}, up to "
        f"{(cfg.get('trainer') or {}).get('max_epochs', '?')} epochs, lr {lr}{encoder_lr}{held}"
    )
    return [phase1, phase2]


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job; returns the final metrics (the sweep reads cfg.optimized_metric)."""
    import lightning as L
    import mlflow
    import torch
    from lightning.pytorch.loggers import MLFlowLogger

    from medcoder import tracking
    from medcoder.evaluation.split import evaluate_trained_coder, log_blend, log_evaluation, threshold_grid
    from medcoder.export.mlflow_model import export_and_log
    from medcoder.inference.contract import check_servable
    from medcoder.models.blend import blend_fitter
    from medcoder.models.lit_module import CoderLitModule

    # ---- seed and threads
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    if cfg.get("flush_denormal"):
        torch.set_flush_denormal(True)  # no-op (False) where the CPU cannot; see configs/train.yaml

    # ---- init_from: the packaged model to start from, fetched and checked before any compute is spent
    init = prepare_init_from(cfg) if cfg.get("init_from") else None

    # ---- data
    ensure_embedded_corpus(cfg.data, cfg.corpus)
    log.info("instantiating datamodule <%s> for dataset %s", cfg.data._target_, cfg.data.dataset)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    if init is not None:
        adopt_export_labels(datamodule, init)
    label_space = datamodule.label_space
    check_servable(system for system, _ in label_space.labels)  # before any compute is spent

    # ---- model
    log.info("instantiating model <%s> with %d labels", cfg.model._target_, len(label_space))
    model = instantiate_model(cfg.model, datamodule)
    if init is not None:
        from medcoder.export.artifact import HEADS_NAME

        load_export_heads(model.net, init.export.folder / HEADS_NAME)
        log.info("init_from: heads loaded from %s", init.source)

    # ---- callbacks, loggers, trainer
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), cfg.task_name, cfg.paths.root_dir) if cfg.get("train") else None
    if ckpt_path and cfg.get("callbacks") and "model_checkpoint" in cfg.callbacks:
        # Lightning restores ModelCheckpoint's best score and top-k only when dirpath is unchanged: keep
        # writing where the interrupted run did, so "best" spans the epochs before and after the resume
        with open_dict(cfg):
            cfg.callbacks.model_checkpoint.dirpath = str(Path(ckpt_path).parent)
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    mlflow_logger = next((lg for lg in loggers if isinstance(lg, MLFlowLogger)), None)

    # ---- run context: resolved config, flattened params, dataset digests, git commit, versions
    if mlflow_logger is not None:
        # the fluent API writes into the logger's run: same store, same experiment (an experiment left
        # active by earlier code in this process would make start_run refuse the run id)
        mlflow.set_tracking_uri(mlflow_logger._tracking_uri)
        mlflow.set_experiment(experiment_id=mlflow_logger.experiment_id)
        with mlflow.start_run(run_id=mlflow_logger.run_id):
            # the command line (config overrides only) so an experiment record can say how a run was made
            mlflow.set_tags(
                {
                    "model_family": "neural_coder",
                    "dataset": cfg.get("dataset_tag") or cfg.data.dataset,
                    "task": cfg.task_name,
                    "command": shlex.join(["medcoder-train", *sys.argv[1:]]),
                }
            )
            if init is not None:
                mlflow.set_tags(init_from_tags(init))
                mlflow.log_param("init_from.manifest_sha256", init.export.manifest_sha256)
            tracking.log_run_context()
            job_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
            resolved = OmegaConf.to_container(job_cfg, resolve=True)
            tracking.log_params({k: v for k, v in resolved.items() if k != "paths"})
            # what the label space is, as the model card reads it (labels.systems, labels.top_k, labels.n_labels)
            mlflow.log_params(tracking.label_space_params(label_space, cfg.data.get("top_k")))
            mlflow.log_text(OmegaConf.to_yaml(job_cfg, resolve=True), "config/config.yaml")
            tracking.log_dataset_digests(datamodule.records, cfg.data.dataset, source=cfg.data.get("data_dir"))
        tracking.mark_running(mlflow_logger._tracking_uri, mlflow_logger.run_id)

    # ---- fit: phase 1, head warm-up (HeadWarmup.on_fit_start), then phase 2, fine-tuning
    if cfg.get("train"):
        log.info("starting training")
        for line in fit_phases(cfg, ckpt_path):
            log.info(line)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        if mlflow_logger is not None:
            tracking.mark_running(mlflow_logger._tracking_uri, mlflow_logger.run_id)
    best_path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    coder = CoderLitModule.load_trained(best_path) if best_path else model
    log.info("best checkpoint: %s", best_path or "none (using the model as trained)")

    metrics: dict[str, float] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if not cfg.get("test"):
        if mlflow_logger is not None:  # nothing more to log: the run is done
            mlflow.MlflowClient(mlflow_logger._tracking_uri).set_terminated(mlflow_logger.run_id, "FINISHED")
        return metrics

    # ---- the full evaluation of the best checkpoint, test scored once: the evidence verifier is fitted on val's
    # gold evidence, and what ships (model + guideline rules) is scored. (Lightning's test loop is not run: it
    # scored test a second time for its loss and the tagger's seqeval F1, which val reports every epoch.)
    # With a blend (cfg.blend), the TF-IDF model and its weight are fitted on val's neural scores of the
    # same forward pass (or kept from init_from's model: init_from_blend=keep), and the blend is THE model
    # (scored, packaged); the neural coder alone is logged
    # as neural_only/<split>/<metric>, its scores at its own val-tuned threshold.
    blend_kept = init is not None and blend_mode(cfg) == "keep"
    trained = evaluate_trained_coder(
        coder, datamodule.records, verifier=OmegaConf.to_container(cfg.verifier) if cfg.get("verifier") else None,
        grid=threshold_grid(**cfg.threshold_grid), batch_size=int(cfg.data.batch_size),
        fit_blend=kept_blend_fitter(init) if blend_kept else blend_fitter(
            cfg.get("blend"), datamodule.records["train"], datamodule.records["val"], label_space,
            threshold_grid(**cfg.threshold_grid)),
    )  # fmt: skip
    evaluation, verifier, blend = trained.evaluation, trained.verifier, trained.blend
    metrics.update(trained.report)
    if blend is not None:
        log.info("blend: TF-IDF weight %.2f %s", blend.weight, "kept from init_from" if blend_kept else "chosen on val")
        metrics.update({f"neural_only/{k}": v for k, v in trained.neural_only.items()})
    for split, result in evaluation.results.items():
        metrics.update({f"{split}/{k}": float(v) for k, v in result.metrics.items()})
    if mlflow_logger is not None:
        with mlflow.start_run(run_id=mlflow_logger.run_id):
            # logged at the last training step so these, not an epoch's, are each metric's latest value
            for split, result in evaluation.results.items():
                tracking.log_metrics(result.metrics, split, step=int(trainer.global_step))
            log_evaluation(evaluation, label_space, log_metrics=False)
            mlflow.log_params({"best_checkpoint": best_path or "none", "threshold": evaluation.threshold})
            mlflow.log_metrics({k: v for k, v in metrics.items() if k.startswith("verifier/")})
            log_blend(trained, step=int(trainer.global_step))
            # ---- package: merged safetensors, tokenizer, heads, threshold, routing, manifest -> pyfunc "model"
            export_and_log(
                coder,
                threshold=evaluation.threshold,
                routing=hydra.utils.instantiate(cfg.routing),
                verifier=verifier,
                blend=blend,
            )
        log.info("MLflow run %s", mlflow_logger.run_id)
    for key in ("val/map", "val/micro_f1", "test/micro_f1", "test/macro_f1", "test/map"):
        if key in metrics:
            log.info("%s = %.4f", key, metrics[key])
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point (console script `medcoder-train`); returns the metric a sweep optimises."""
    metrics = train(cfg)
    value = metrics.get(cfg.get("optimized_metric") or "")
    return None if value is None else float(value)


if __name__ == "__main__":
    main()
