"""`medcoder register`: make a training run's packaged model a new registry version and the challenger.

A version must say, on its own, what it is: so the registration tags it with the code that built it
(`git_commit`, `git_dirty`), the data it saw (`dataset`, `dataset.<split>.sha256`), the code-set
versions it codes against (`code_sets`, JSON of `medcoder.codes.code_set_versions()`), its key test
metrics as the run logged them (`test/micro_f1`, ...), the SHA-256 manifest hash of the sealed
model artifact (`manifest_sha256`), which `verify_manifest` checks here before anything is
registered (a tampered or unsealed artifact is refused), and the seal over the WHOLE model folder
(`model_seal.sha256`, `model_seal.files`; `medcoder.registry.seal`), which every later download
of the version is checked against before any of its code is imported.

`--fast-path onnx-fp32|onnx-int8` first packages the ONNX Runtime encoder with the run's model (a new
packaged model of the same run, `medcoder.registry.fast_path`) and registers that; any version whose folder
packages a fast path carries its measured agreement as tags (`fast_path`, `fast_path_agreement`, ...).

Registering never touches `@champion`: the new version gets `@challenger`, and only `medcoder
promote` (with its gates) can make it champion. Every alias move is appended to the registered
model's alias history (`medcoder.registry.alias_history`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
from pathlib import Path

import mlflow
from mlflow.entities import LoggedModelStatus, Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient

from medcoder.codes import code_set_versions
from medcoder.inference.manifest import MANIFEST_NAME, verify_manifest
from medcoder.registry.alias_history import record_alias_change
from medcoder.registry.client import CHALLENGER, MODEL_NAME, RegistryError, get_client, is_not_found
from medcoder.registry.fast_path import fast_path_tags, log_fast_path_model
from medcoder.registry.seal import seal_tags

log = logging.getLogger(__name__)

MODEL_ARTIFACT_PATH = "model"
METADATA_MANIFEST_KEY = "medcoder_manifest_sha256"  # written by medcoder.export.mlflow_model
KEY_METRICS: tuple[str, ...] = (
    "test/micro_f1",
    "test/macro_f1",
    "test/map",
    "test/ungrounded_code_rate",
    "test/distractor_false_positive_rate",
    "test/invalid_code_rate",
)
# Run tags copied onto the version as they are (besides dataset.<split>.sha256).
COPIED_RUN_TAGS: tuple[str, ...] = ("dataset", "model_family")


# ---------------------------------------------------------------- the run and its packaged model
def get_run(client: MlflowClient, run_id: str) -> Run:
    """The run, or RegistryError when it does not exist (or was deleted) in the client's store."""
    try:
        run = client.get_run(run_id)
    except MlflowException as err:
        if is_not_found(err) or "not found" in str(err).lower():
            raise RegistryError(f"run {run_id!r} does not exist in {client.tracking_uri}") from None
        raise
    if run.info.lifecycle_stage == "deleted":
        raise RegistryError(f"run {run_id} is deleted; restore it (`mlflow runs restore`) before registering it")
    return run


def find_packaged_model(
    client: MlflowClient, run: Run, artifact_path: str = MODEL_ARTIFACT_PATH
) -> tuple[str, str | None]:
    """(artifact location, logged-model id or None) of the model the run logged under `artifact_path`.

    MLflow 3 stores `log_model(name=...)` as a LoggedModel linked to the run; a model saved the
    MLflow 2 way sits in the run's artifacts with an `MLmodel` file. If the run logged several
    models under the name, the newest READY one wins (the one a re-export replaced).
    The location is the model's artifact URI rather than `models:/<model_id>`: MLflow 3.17 resolves
    `models:/` URIs (in `create_model_version` and downloads) through the GLOBAL tracking URI, which
    would ignore the client the caller passed; the version still records the logged-model id.
    """
    run_id = run.info.run_id
    found, token = [], None
    while True:
        page = client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"name = '{artifact_path}'", page_token=token
        )
        found += [m for m in page if m.source_run_id == run_id and m.status == LoggedModelStatus.READY]
        token = page.token
        if not token:
            break
    if found:
        newest = max(found, key=lambda m: m.creation_timestamp)
        return newest.artifact_location, newest.model_id
    if any(a.path == f"{artifact_path}/MLmodel" for a in client.list_artifacts(run_id, artifact_path)):
        return f"{run.info.artifact_uri}/{artifact_path}", None
    raise RegistryError(
        f"run {run_id} has no packaged model named {artifact_path!r} (no MLflow model logged under that name, "
        "or its logging did not finish): package it with medcoder.export before registering"
    )


def sealed_folder(model_dir: str | Path) -> Path:
    """The one sealed export folder (the one holding MANIFEST.sha256.json) inside a downloaded pyfunc."""
    model_dir = Path(model_dir)
    manifests = sorted(model_dir.rglob(MANIFEST_NAME))
    if not manifests:
        raise RegistryError(f"the packaged model has no {MANIFEST_NAME}: it is not a sealed medcoder export")
    if len(manifests) > 1:
        where = ", ".join(str(m.parent.relative_to(model_dir)) for m in manifests)
        raise RegistryError(f"the packaged model holds {len(manifests)} sealed folders ({where}); expected one")
    return manifests[0].parent


def sealed_manifest_hash(model_dir: str | Path) -> str:
    """Verify the sealed export folder inside a downloaded pyfunc and return its manifest hash.

    The hash the export wrote into the MLmodel metadata (`medcoder_manifest_sha256`), when present,
    must match the folder: a mismatch means the files were swapped after logging.
    """
    model_dir = Path(model_dir)
    manifest_sha256 = verify_manifest(sealed_folder(model_dir))
    metadata = (Model.load(str(model_dir)).metadata or {}) if (model_dir / "MLmodel").is_file() else {}
    logged = metadata.get(METADATA_MANIFEST_KEY)
    if logged is not None and logged != manifest_sha256:
        raise RegistryError(
            f"the packaged model's MLmodel metadata names manifest {logged} but its sealed folder "
            f"has {manifest_sha256}: the artifact changed after it was logged"
        )
    return manifest_sha256


# ---------------------------------------------------------------- version tags
def version_tags(run: Run, manifest_sha256: str) -> dict[str, str]:
    """The tags a new version carries (see module docstring); metrics as `repr` of the float."""
    run_tags, run_metrics = run.data.tags, run.data.metrics
    tags = {
        "git_commit": run_tags.get("git.commit", "unknown"),
        "git_dirty": run_tags.get("git.dirty", "unknown"),
        "code_sets": json.dumps(code_set_versions(), sort_keys=True),
        "manifest_sha256": manifest_sha256,
    }
    tags.update({key: run_tags[key] for key in COPIED_RUN_TAGS if key in run_tags})
    tags.update(
        {key: value for key, value in run_tags.items() if key.startswith("dataset.") and key.endswith(".sha256")}
    )
    missing = []
    for key in KEY_METRICS:
        value = run_metrics.get(key)
        if value is None:
            missing.append(key)
        else:
            tags[key] = repr(float(value)) if math.isfinite(value) else "NaN"
    if missing:
        tags["metrics_missing"] = ",".join(missing)
        log.warning("run %s did not log %s; the version records them as missing", run.info.run_id, ", ".join(missing))
    return tags


# ---------------------------------------------------------------- register
def ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(
            name, description="medcoder: ICD-10-CM/CPT coding of clinical notes with evidence."
        )
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise


def register_run(
    run_id: str,
    *,
    name: str = MODEL_NAME,
    client: MlflowClient | None = None,
    fast_path: str | None = None,
    fast_path_notes: int | None = None,
) -> ModelVersion:
    """Register `runs:/<run_id>/model` as a new version of `name`, tag it, and point `@challenger` at it.

    `fast_path` (onnx-fp32 | onnx-int8): first package the ONNX encoder with the model, measured on the
    first `fast_path_notes` embedded validation notes (all by default), and register that (registry.fast_path).
    """
    client = get_client(client)
    run = get_run(client, run_id)
    source, model_id = find_packaged_model(client, run)
    with tempfile.TemporaryDirectory(prefix="medcoder-register-") as tmp:
        # Verified on a downloaded copy: the bytes hashed are the bytes the store serves.
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=client.tracking_uri)
        manifest_sha256 = sealed_manifest_hash(local)
        if fast_path is not None:  # built on the verified float copy, logged, then downloaded and verified again
            source, model_id = log_fast_path_model(
                client, run_id, sealed_folder(local), fast_path, MODEL_ARTIFACT_PATH, fast_path_notes
            )
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=f"{tmp}/fast", tracking_uri=client.tracking_uri
            )
            manifest_sha256 = sealed_manifest_hash(local)
        tags = {**version_tags(run, manifest_sha256), **seal_tags(local), **fast_path_tags(sealed_folder(local))}

    ensure_registered_model(client, name)
    created = client.create_model_version(name, source, run_id=run_id, tags=tags, model_id=model_id)
    client.set_registered_model_alias(name, CHALLENGER, created.version)
    record_alias_change(
        client, CHALLENGER, created.version, f"registered run {run_id} (manifest {manifest_sha256[:12]})", name=name
    )
    log.info("registered run %s as %s v%s (@%s)", run_id, name, created.version, CHALLENGER)
    return client.get_model_version(name, created.version)


# ---------------------------------------------------------------- CLI
def latest_training_run(client: MlflowClient, experiment_name: str = "medcoder") -> str:
    """The newest finished `medcoder-train` run (tag model_family=neural_coder) of the experiment.

    What `make train` registers: the run it has just finished, found without passing ids around.
    `medcoder-eval` runs carry the same family tag but no packaged model (tag task=eval), so they
    are skipped: evaluating a checkpoint after training must not change what "latest" registers.
    """
    experiment = client.get_experiment_by_name(experiment_name)
    runs = (
        []
        if experiment is None
        else client.search_runs(
            [experiment.experiment_id],
            "tags.model_family = 'neural_coder' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=100,
        )
    )
    runs = [run for run in runs if run.data.tags.get("task") != "eval"]
    if not runs:
        raise RegistryError(
            f"no finished medcoder-train run in experiment {experiment_name!r}: train one first (make train)"
        )
    return runs[0].info.run_id


def cmd_register(args: argparse.Namespace) -> int:
    """`medcoder register --run-id ID|latest`: prints the new version and its tags."""
    client = get_client()
    run_id = latest_training_run(client, args.experiment) if args.run_id == "latest" else args.run_id
    version = register_run(run_id, name=args.name, client=client, fast_path=args.fast_path)
    print(f"registered run {run_id} as {version.name} version {version.version} (@{CHALLENGER})")
    for key in sorted(version.tags):
        print(f"  {key} = {version.tags[key]}")
    return 0
