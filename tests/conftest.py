"""Test-wide settings: offline hub access, few threads (2-core machines), and a private MLflow store."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# label embeddings the verifier caches go to a folder of this session, not the user's ~/.cache
os.environ["MEDCODER_CACHE_DIR"] = tempfile.mkdtemp(prefix="medcoder-test-cache-")


import sys

import pytest

_PROCESS_EXPERIMENT_ENV = os.environ.get("MLFLOW_EXPERIMENT_ID")


def _restore_experiment_env() -> None:
    """mlflow.set_experiment exports MLFLOW_EXPERIMENT_ID, an id that means nothing in another store."""
    if _PROCESS_EXPERIMENT_ENV is None:
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    else:
        os.environ["MLFLOW_EXPERIMENT_ID"] = _PROCESS_EXPERIMENT_ENV


@pytest.fixture(autouse=True)
def _reset_mlflow_fluent_state():
    """Each test starts without an active MLflow run, experiment or tracking URI left by another test.

    MLflow's fluent API keeps these in module globals and the environment; a test (or a session
    fixture, which pytest sets up before this one) that points MLflow at its own temporary store must
    not leak that choice into the next test. So the experiment variable is reset before the test body
    too, to the value the process started with.
    """
    _restore_experiment_env()
    yield
    _restore_experiment_env()
    if "mlflow" in sys.modules:
        import mlflow
        import mlflow.tracking._tracking_service.utils as tracking_utils
        import mlflow.tracking.fluent as fluent

        while mlflow.active_run() is not None:
            mlflow.end_run()
        fluent._active_experiment_id = None
        tracking_utils._tracking_uri = None


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """A tiny LoRA coder trained a few steps and exported (built once per session; see export_support)."""
    from export_support import tiny_coder

    return tiny_coder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def logged(tmp_path_factory: pytest.TempPathFactory):
    """The tiny coder logged as an MLflow pyfunc in a private sqlite store."""
    from export_support import logged_coder

    return logged_coder(tmp_path_factory.getbasetemp())
