"""Score a registered version on a pinned evaluation set, through the prediction contract.

The version is fetched and checked against the seal recorded at registration BEFORE its code is
imported (`medcoder.registry.seal`), loaded as the pyfunc a serving team would load, and its contract
lines are scored by `medcoder.evaluation.contract`. Promotion (`medcoder.registry.promote`) scores the
champion and the challenger this way on the same set.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from medcoder.data.labels import LabelSpace
from medcoder.evaluation.contract import (
    DEFAULT_BATCH_SIZE,
    EvalSet,
    load_eval_set,
    predict_contract,
    score_contract_lines,
)
from medcoder.registry.client import MODEL_NAME, RegistryError, get_client, resolve_version
from medcoder.registry.register import sealed_folder, sealed_manifest_hash
from medcoder.registry.seal import fetch_verified

log = logging.getLogger(__name__)


@dataclass
class RegistryEvaluation:
    """One registry version scored on one pinned set; `metrics` keys are `score_contract_lines`'."""

    name: str
    version: str
    run_id: str | None
    eval_set_path: str
    eval_set_sha256: str
    label_scope: str  # "gold+output" or "label_space:<n labels>"
    threshold: float | None  # the decision threshold the package serves with (coder.json), if it says
    manifest_sha256: str  # content hash of the evaluated package, checked against the version's tag
    metrics: dict[str, float]
    per_code: pd.DataFrame
    violations: dict[str, str]
    error_entries: dict[str, str]
    seconds: float


def checked_package(local: Path, version: ModelVersion) -> tuple[str, float | None]:
    """(manifest hash, served threshold) of a downloaded version, refusing content that differs from
    what was registered (the version's `manifest_sha256` tag). The threshold is the export's own
    (`coder.json`), not the run's, since a model may be re-exported with another one."""
    from medcoder.export.artifact import CONFIG_NAME  # torch comes with it: imported only when a model is

    manifest_sha256 = sealed_manifest_hash(local)
    registered = version.tags.get("manifest_sha256")
    if registered is not None and registered != manifest_sha256:
        raise RegistryError(
            f"{version.name} v{version.version}: the stored model has manifest {manifest_sha256}, "
            f"not the {registered} it was registered with; the artifact changed after registration"
        )
    config = sealed_folder(local) / CONFIG_NAME
    threshold = json.loads(config.read_text(encoding="utf-8")).get("threshold") if config.is_file() else None
    return manifest_sha256, None if threshold is None else float(threshold)


def evaluate_registered(
    ref: str | int,
    eval_set: EvalSet | str | Path,
    *,
    name: str = MODEL_NAME,
    client: MlflowClient | None = None,
    label_space: LabelSpace | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RegistryEvaluation:
    """Score `name@ref` (an alias such as `champion`, or a version number) on a pinned set."""
    client = get_client(client)
    eval_set = eval_set if isinstance(eval_set, EvalSet) else load_eval_set(eval_set)
    version = resolve_version(client, name, ref)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medcoder-eval-") as tmp:
        local = fetch_verified(client, version, tmp)  # FIRST: nothing is imported from an unverified folder
        manifest_sha256, threshold = checked_package(local, version)
        # model_config: the contract's `model` object names this registry version (medcoder.export)
        model = mlflow.pyfunc.load_model(
            str(local), model_config={"model_name": name, "model_version": str(version.version)}
        )
        lines = predict_contract(model, eval_set.records, batch_size)
    score = score_contract_lines(eval_set.records, lines, label_space)
    seconds = time.perf_counter() - started
    log.info(
        "scored %s v%s on %d notes (sha256 %s) in %.1f s: micro_f1 %.4f",
        name,
        version.version,
        len(eval_set.records),
        eval_set.sha256[:12],
        seconds,
        score.metrics["micro_f1"],
    )
    return RegistryEvaluation(
        name=name,
        version=str(version.version),
        run_id=version.run_id,
        eval_set_path=str(eval_set.path),
        eval_set_sha256=eval_set.sha256,
        label_scope="gold+output" if label_space is None else f"label_space:{len(label_space)}",
        threshold=threshold,
        manifest_sha256=manifest_sha256,
        metrics=score.metrics,
        per_code=score.per_code,
        violations=score.violations,
        error_entries=score.error_entries,
        seconds=seconds,
    )
