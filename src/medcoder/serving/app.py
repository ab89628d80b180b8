"""The ASGI app `medcoder serve` runs: the checked model folder, loaded as a pyfunc, behind the guard.

uvicorn builds it in every worker with `create_app` (`--factory`), from what `medcoder serve` put in
the environment: the folder (`MEDCODER_SERVE_MODEL_DIR`), the registration seal it was checked
against (`MEDCODER_SERVE_SEAL`, a JSON file OUTSIDE that folder), the registry name and version
for the contract's `model` object (MLflow's `SERVING_MODEL_CONFIG`), the request limits and the audit
log each answered code is recorded in (`MEDCODER_SERVE_AUDIT`, optional; `serving.audited`). Each
worker checks the folder against the seal again right before it imports the model's code, so a
file changed after `medcoder serve` checked it is still refused.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from medcoder.inference.inputs import DEFAULT_MAX_REQUEST_CHARS, DEFAULT_MAX_REQUEST_NOTES
from medcoder.inference.manifest import verify_listing
from medcoder.serving.guard import RequestGuard

MODEL_DIR_ENV = "MEDCODER_SERVE_MODEL_DIR"
SEAL_ENV = "MEDCODER_SERVE_SEAL"
MAX_NOTES_ENV = "MEDCODER_MAX_REQUEST_NOTES"
MAX_CHARS_ENV = "MEDCODER_MAX_REQUEST_CHARS"
AUDIT_ENV = "MEDCODER_SERVE_AUDIT"


def build_app(
    model_dir: str | Path,
    model_config: dict[str, Any] | None = None,
    max_notes: int = DEFAULT_MAX_REQUEST_NOTES,
    max_chars: int = DEFAULT_MAX_REQUEST_CHARS,
    audit_url: str | None = None,
) -> RequestGuard:
    """MLflow's scoring app for the pyfunc at `model_dir`, behind `RequestGuard` (the caller has checked the
    folder); with `audit_url`, each answer's codes are written there as `suggest` entries before it is sent."""
    import mlflow
    from mlflow.pyfunc import scoring_server

    config = {**(model_config or {}), "max_request_notes": max_notes, "max_request_chars": max_chars}
    model = mlflow.pyfunc.load_model(str(model_dir), model_config=config)
    app = scoring_server.init(model)
    if audit_url:
        from medcoder.audit.store import AuditLog
        from medcoder.serving.audited import AuditedInvocations

        coder = model.unwrap_python_model().coder
        app = AuditedInvocations(app, AuditLog(audit_url), threshold=coder.threshold,
                                 manifest_sha256=coder.manifest_sha256)  # fmt: skip
    return RequestGuard(app, max_notes=max_notes, max_chars=max_chars)


def create_app() -> RequestGuard:
    """uvicorn's factory: check the folder against the seal, then build the app (module docstring)."""
    from mlflow.pyfunc.scoring_server import SERVING_MODEL_CONFIG

    # Importing the model's code must not write bytecode caches into the checked folder: the next
    # worker would find a file the seal does not list (and nothing unchecked may be imported later).
    sys.dont_write_bytecode = True
    model_dir = Path(os.environ[MODEL_DIR_ENV])
    seal = json.loads(Path(os.environ[SEAL_ENV]).read_text(encoding="utf-8"))
    verify_listing(model_dir, seal["files"], seal["sha256"])  # before the model's code is imported
    config = json.loads(os.environ.get(SERVING_MODEL_CONFIG) or "{}")
    return build_app(
        model_dir,
        config,
        int(os.environ.get(MAX_NOTES_ENV, DEFAULT_MAX_REQUEST_NOTES)),
        int(os.environ.get(MAX_CHARS_ENV, DEFAULT_MAX_REQUEST_CHARS)),
        os.environ.get(AUDIT_ENV) or None,
    )
