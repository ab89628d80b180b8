"""`medcoder register --fast-path onnx-int8|onnx-fp32`: the run's packaged model again, with the ONNX encoder.

Registration with a fast path logs a NEW packaged model under the same run (artifact name "model"; MLflow 3
keeps both, and `find_packaged_model` takes the newest) and registers that one: the float model the run
logged stays as it was, and the version's files, seal and manifest hash are those of the model that serves.
Why at registration and not in training: which serving path a version gets is a packaging decision that can
be taken (and measured) again for any finished run, without retraining.

The agreement is measured on a fixed sample every registration uses alike: the embedded validation split's
notes (synthetic, no patient text), the float packaged coder against the same coder on the ONNX encoder
(medcoder.export.fast_packaging.add_fast_path). It goes onto the version as tags (`fast_path`,
`fast_path_agreement`, `fast_path_notes`, `fast_path_sample`), read back from the sealed folder of whatever
packaged model is registered, so a later plain `medcoder register` of the same run records them too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from medcoder.data.synth import generate_corpus
from medcoder.defaults import EMBEDDED_NOTES, EMBEDDED_SEED
from medcoder.evaluation.contract import contract_input
from medcoder.export.fast_packaging import add_fast_path, read_fast_path
from medcoder.export.mlflow_model import log_packaged_model


def agreement_sample(limit: int | None = None) -> tuple[list[dict], str]:
    """(contract inputs, what they are) of the fixed agreement sample: the embedded validation split's notes,
    the first `limit` of them (all without a limit)."""
    val = generate_corpus(EMBEDDED_NOTES, EMBEDDED_SEED)["val"][:limit]
    return [contract_input(r) for r in val], f"embedded val split (corpus of {EMBEDDED_NOTES}, seed {EMBEDDED_SEED})"


@contextlib.contextmanager
def _tracking(uri: str) -> Iterator[None]:
    """MLflow's fluent API (log_model) on `uri` inside the block: the client the caller passed may name
    another store than the global one."""
    from mlflow.tracking._tracking_service import utils

    previous = utils._tracking_uri
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def log_fast_path_model(
    client: MlflowClient, run_id: str, coder_dir: Path, fast_path: str, artifact_path: str, notes: int | None = None
) -> tuple[str, str | None]:
    """Add `fast_path` to `coder_dir` (the sealed folder of a downloaded, verified copy of the run's packaged
    model) and log it as the run's newest packaged model `artifact_path`; returns (artifact location, model id)."""
    inputs, sample = agreement_sample(notes)
    add_fast_path(coder_dir, fast_path, inputs, sample)
    with _tracking(client.tracking_uri), mlflow.start_run(run_id=run_id):
        info = log_packaged_model(coder_dir, name=artifact_path)
    return client.get_logged_model(info.model_id).artifact_location, info.model_id


def fast_path_tags(coder_dir: Path) -> dict[str, str]:
    """The fast-path tags of a packaged coder folder (none when it has no fast path)."""
    info = read_fast_path(coder_dir)
    return {} if info is None else info.tags()
