"""`medcoder serve --model models:/medcoder@champion`: serve a registered version, checked first.

    medcoder serve [--model models:/<name>@<alias>|models:/<name>/<version>] [--host 127.0.0.1]
                   [--port 5000] [--workers 1] [--timeout 60] [--max-request-notes N] [--max-request-chars N]
                   [--audit DB]

1. resolve the alias ONCE to a version (a later alias move does not change what this server runs);
2. download that version into a private temporary folder and check every file against the seal
   recorded at registration (`registry.seal.fetch_verified`); a changed, added or missing file is
   refused with its name, before any of the model's code is imported;
3. run uvicorn with `--workers` processes on the checked copy (`serving.app.create_app`, which
   checks it again in each worker), the request guard in front (`serving.guard`) and MLflow's
   request timeout set to `--timeout` seconds. The timeout answers 504 but cannot stop a request
   already running on the CPU: the per-request limits (`--max-request-notes`, `--max-request-chars`,
   413 beyond them) are what bound the work. Size workers x limits to the machine: each worker
   holds one copy of the model and works one request at a time per CPU thread pool.
4. with `--audit`, every answer's codes are written to that audit log as `suggest` entries before the answer
   is sent (`serving.audited`); the log is opened (and migrated) here first, so a bad URL fails before start.

Only registered versions are served: a folder or a run has no registered seal to check it against.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from medcoder.paths import default_tracking_uri


def prepare(spec: str, work_dir: Path, tracking_uri: str | None = None) -> dict[str, str]:
    """Resolve, download and check `spec` into `work_dir`; returns the environment the server needs."""
    from mlflow.pyfunc.scoring_server import SERVING_MODEL_CONFIG
    from mlflow.tracking import MlflowClient

    from medcoder.registry.client import resolve_version
    from medcoder.registry.seal import SEAL_FILES_TAG, SEAL_SHA256_TAG, fetch_verified
    from medcoder.serving.app import MODEL_DIR_ENV, SEAL_ENV
    from medcoder.serving.predict import REGISTRY_URI, check_store

    match = REGISTRY_URI.match(spec)
    if match is None:
        raise ValueError(
            f"--model {spec}: medcoder serve serves registered versions only (models:/<name>@<alias> or "
            "models:/<name>/<version>), whose registration seal it checks"
        )
    tracking_uri = tracking_uri or default_tracking_uri()
    check_store(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    version = resolve_version(client, match["name"], match["alias"] or match["version"])
    local = fetch_verified(client, version, work_dir / "model")
    seal_file = work_dir / "seal.json"  # outside the served folder: the folder cannot vouch for itself
    seal_file.write_text(
        json.dumps({"sha256": version.tags[SEAL_SHA256_TAG], "files": json.loads(version.tags[SEAL_FILES_TAG])}),
        encoding="utf-8",
    )
    return {
        MODEL_DIR_ENV: str(local),
        SEAL_ENV: str(seal_file),
        SERVING_MODEL_CONFIG: json.dumps({"model_name": version.name, "model_version": str(version.version)}),
    }


def cmd_serve(args: argparse.Namespace) -> int:
    from medcoder.serving.app import AUDIT_ENV, MAX_CHARS_ENV, MAX_NOTES_ENV

    for flag, value in (
        ("--workers", args.workers),
        ("--timeout", args.timeout),
        ("--max-request-notes", args.max_request_notes),
        ("--max-request-chars", args.max_request_chars),
    ):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    audit_url = None
    if args.audit is not None:
        from medcoder.audit.store import AuditLog

        audit_url = AuditLog(args.audit).url
    work_dir = Path(tempfile.mkdtemp(prefix="medcoder-serve-"))
    try:
        env = {
            **os.environ,
            **prepare(args.model, work_dir, args.tracking_uri),
            "MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT": str(args.timeout),
            "PYTHONDONTWRITEBYTECODE": "1",
            MAX_NOTES_ENV: str(args.max_request_notes),
            MAX_CHARS_ENV: str(args.max_request_chars),
            **({AUDIT_ENV: audit_url} if audit_url else {}),
        }
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "medcoder.serving.app:create_app",
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
        ]
        print(
            f"serving {args.model} (checked against its registration seal) on http://{args.host}:{args.port}",
            file=sys.stderr,
        )
        return subprocess.run(command, env=env, check=False).returncode
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
