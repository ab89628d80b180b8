"""`medcoder serve` round trip: the registered model, checked against its registration seal, answers
/invocations on loopback with one contract line per record, an error entry for an empty note, a clean
error for a request it refuses (without the request's text), every answered code is a `suggest` entry in
the audit log (`--audit`), and the server is always stopped."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from export_support import REGISTERED_NAME, LoggedCoder, TinyCoder

from medcoder.audit.entry import text_sha256
from medcoder.audit.store import AuditLog
from medcoder.codes import is_valid_code
from medcoder.inference.contract import validate_contract_line

STARTUP_TIMEOUT_S = 180  # model load in a fresh process on a busy 2-core machine
REQUEST_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group (uvicorn runs workers), then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _wait_until_up(proc: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{base}/ping", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    pytest.fail(f"server not up after {STARTUP_TIMEOUT_S} s:\n{log.read_text()[-3000:]}")


def _post(base: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base}/invocations", data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def test_served_model_answers_with_contract_lines(logged: LoggedCoder, tiny: TinyCoder, tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # mlflow execs `uvicorn`
        "MLFLOW_TRACKING_URI": logged.tracking_uri, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }  # fmt: skip
    command = [sys.executable, "-m", "medcoder.cli", "serve", "--model", f"models:/{REGISTERED_NAME}@champion",
               "--host", "127.0.0.1", "--port", str(port), "--audit", str(tmp_path / "audit.db")]  # fmt: skip
    with log.open("w") as log_file:
        proc = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(proc, base, log)
        notes = tiny.records[:2]
        records = [
            {"id": notes[0].id, "text": notes[0].text, "setting": notes[0].setting},
            {"id": "empty-note", "text": ""},
            {"id": notes[1].id, "text": notes[1].text, "age": notes[1].age},
        ]
        status, body = _post(base, {"inputs": records})
        assert status == 200, body
        lines = body["predictions"]
        assert [line["id"] for line in lines] == [r["id"] for r in records]
        texts = {r.id: r.text for r in notes}
        for line in lines:
            validate_contract_line(line, note_text=texts.get(line["id"]), is_valid=is_valid_code)
        assert lines[1]["error"]["kind"] == "empty_text"
        # the registered version that answered, not the content hash of the artifact
        assert {line["model"]["version"] for line in (lines[0], lines[2])} == {logged.version}
        assert "codes" in lines[0] and "codes" in lines[2]

        # The pyfunc takes {"inputs": [...]}; anything else is a clean 422 that does not quote the request.
        status, body = _post(base, {"dataframe_records": records})
        assert status == 422 and '{"inputs"' in body["message"] and notes[0].text[:40] not in json.dumps(body)
        assert lines[0]["model"]["version"] == logged.version  # the registry version, resolved once

        # each answered code (and E/M level) was recorded before the answer left: hashes, never the text
        audit = AuditLog(str(tmp_path / "audit.db"))
        rows = audit.rows(actions=["suggest"])
        answered = [(line["id"], c["code"]) for line in (lines[0], lines[2])
                    for c in [*line["codes"], *([line["em"]] if line.get("em") else [])]]  # fmt: skip
        assert sorted((r["note_id"], r["code"]) for r in rows) == sorted(answered) and answered
        assert {r["note_id"]: r["note_sha256"] for r in rows} == {
            n.id: text_sha256(n.text) for n in notes if any(n.id == a for a, _ in answered)
        }
        assert {r["model_version"] for r in rows} == {logged.version} and audit.verify().intact
        assert not any(n.text[:30] in json.dumps(rows, default=str) for n in notes)
    finally:
        _stop(proc)
    assert proc.poll() is not None


def test_an_answer_whose_codes_cannot_be_recorded_is_withheld(logged: LoggedCoder, tiny: TinyCoder, tmp_path: Path):
    """The audit log locked by another writer past its timeout: the answer is a 500 without predictions."""
    import mlflow
    from starlette.testclient import TestClient

    from medcoder.serving.app import build_app

    mlflow.set_tracking_uri(logged.tracking_uri)
    model_dir = mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(tmp_path / "model"))
    audit_db = tmp_path / "audit.db"
    client = TestClient(build_app(model_dir, audit_url=str(audit_db)))
    note = tiny.records[0]
    request = {"inputs": [{"id": note.id, "text": note.text}]}
    answered = client.post("/invocations", json=request)
    assert answered.status_code == 200 and answered.json()["predictions"][0]["codes"]
    recorded = len(AuditLog(str(audit_db)).rows())
    assert recorded >= 1
    locked = sqlite3.connect(audit_db, timeout=0)
    locked.execute("BEGIN EXCLUSIVE")  # another process holding the log: the append gives up after its timeout
    try:
        withheld = client.post("/invocations", json=request)
    finally:
        locked.rollback()
        locked.close()
    assert withheld.status_code == 500 and "predictions" not in withheld.json()
    assert note.text[:30] not in withheld.text and len(AuditLog(str(audit_db)).rows()) == recorded
