"""medcoder-eval: evaluate a trained checkpoint, and compare finished runs side by side.

Evaluation is the same code path as the end of medcoder-train (threshold tuned on val, applied to
test, every metric of `medcoder.metrics`), logged as its own MLflow run tagged task=eval. The
comparison table reads finished runs of an experiment (the TF-IDF baseline and neural runs log the
same metric names) so "LoRA vs baseline", "LoRA vs full" or "rank 8 vs 16" is one command.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from medcoder.jobs.config import CONFIG_DIR, ensure_embedded_corpus
from medcoder.paths import default_tracking_uri

log = logging.getLogger(__name__)


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, float]:
    """Evaluate `cfg.ckpt_path` on `cfg.data` and log an eval run; returns the test metrics."""
    import mlflow
    import torch

    from medcoder import tracking
    from medcoder.evaluation.split import evaluate_trained_coder, log_blend, log_evaluation, threshold_grid
    from medcoder.models.blend import blend_fitter
    from medcoder.models.lit_module import CoderLitModule

    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    coder = CoderLitModule.load_trained(str(cfg.ckpt_path))
    ensure_embedded_corpus(cfg.data, cfg.corpus)
    datamodule = hydra.utils.instantiate(cfg.data, encoder=coder.net.config["encoder"])
    datamodule.setup("test")
    label_space = coder.label_space
    trained = evaluate_trained_coder(
        coder, datamodule.records, verifier=OmegaConf.to_container(cfg.verifier) if cfg.get("verifier") else None,
        grid=threshold_grid(**cfg.threshold_grid), batch_size=int(cfg.data.batch_size),
        fit_blend=blend_fitter(cfg.get("blend"), datamodule.records["train"], datamodule.records["val"], label_space,
                               threshold_grid(**cfg.threshold_grid)),
    )  # fmt: skip
    evaluation = trained.evaluation
    tracking.configure_mlflow(cfg.experiment_name, cfg.logger.mlflow.tracking_uri)
    with mlflow.start_run(run_name=cfg.run_name):
        mlflow.set_tags({"model_family": "neural_coder", "task": "eval", "dataset": cfg.data.dataset})
        tracking.log_run_context()
        mlflow.log_params(
            {"ckpt_path": str(cfg.ckpt_path), **tracking.flatten_params({"model": {"net": coder.net.config}})}
        )
        tracking.log_dataset_digests(datamodule.records, cfg.data.dataset, source=cfg.data.get("data_dir"))
        log_evaluation(evaluation, label_space)
        log_blend(trained)
    return {f"test/{k}": float(v) for k, v in evaluation.results["test"].metrics.items()}


def comparison_table(
    experiment: str,
    runs: Sequence[str] | None,
    metrics: Sequence[str],
    params: Sequence[str],
    tracking_uri: str | None = None,
    max_runs: int = 20,
) -> pd.DataFrame:
    """One row per finished run (newest first): name, family, chosen params and metrics."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri or default_tracking_uri())
    if runs:
        found = [client.get_run(run_id) for run_id in runs]
    else:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            raise ValueError(f"no MLflow experiment named {experiment!r} in {tracking_uri or default_tracking_uri()}")
        found = client.search_runs(
            [exp.experiment_id],
            "attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=max_runs,
        )
    rows = []
    for run in found:
        row = {"run": run.info.run_name, "run_id": run.info.run_id[:8], "family": run.data.tags.get("model_family", "")}
        row.update({p: run.data.params.get(p, "") for p in params})
        row.update({m: run.data.metrics.get(m, float("nan")) for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows)


def print_table(df: pd.DataFrame) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_lines=False)
    for column in df.columns:
        table.add_column(column, justify="right" if df[column].dtype.kind == "f" else "left")
    for _, row in df.iterrows():
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    Console().print(table)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    """Hydra entry point (console script `medcoder-eval`)."""
    from medcoder.evaluation.records import markdown_table

    if cfg.ckpt_path:
        metrics = evaluate_checkpoint(cfg)
        log.info("test metrics: %s", OmegaConf.to_yaml({k: round(v, 4) for k, v in metrics.items()}))
    c = cfg.compare
    df = comparison_table(
        c.experiment, c.runs, list(c.metrics), list(c.params), cfg.logger.mlflow.tracking_uri, int(c.max_runs)
    )
    print_table(df)
    if c.out:
        Path(c.out).write_text(markdown_table(df, digits=4) + "\n", encoding="utf-8")
        log.info("comparison table written to %s", c.out)


if __name__ == "__main__":
    main()
