"""Which registered version a model folder is: MLflow's `registered_model_meta` next to its MLmodel.

A served model (`mlflow models serve` / `mlflow models build-docker` of `models:/name@alias`) is
handed a folder, not the URI it was resolved from. When MLflow downloads a registered version it
writes `registered_model_meta` (`model_name`, `model_version`) into that folder; the pyfunc reads it
back here, so its predictions say which registered version answered. A model loaded from a run or a
plain folder has no such file and is identified by its content hash instead.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from mlflow.store.artifact.models_artifact_repo import REGISTERED_MODEL_META_FILE_NAME


def registered_version(model_dir: Path) -> str | None:
    """The registry version MLflow recorded in a downloaded model folder, or None when it has none."""
    path = Path(model_dir) / REGISTERED_MODEL_META_FILE_NAME
    if not (Path(model_dir) / "MLmodel").is_file() or not path.is_file():
        return None
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    version = meta.get("model_version") if isinstance(meta, dict) else None
    return None if version is None else str(version)
