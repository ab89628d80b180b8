"""The review tests' shared setup: the tiny model's real predictions on a few notes, an audit log with a coder
(alice) and an auditor (bob), and the review app over them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medcoder.audit.store import AuditLog
from medcoder.review.accounts import add_user
from medcoder.review.app import create_review_app
from medcoder.review.work import Encounter, load_encounters

PASSWORD = "correct horse battery"


def review_app(tiny: Any, tmp_path: Path, secret: str) -> tuple[Any, AuditLog, dict[str, Encounter]]:
    """(app, log, encounters) for 8 of the tiny coder's held-out notes coded by `medcoder predict --audit`."""
    from medcoder.cli import main

    notes = [r for r in tiny.records if r.text][:8]
    source, predictions = tmp_path / "notes.jsonl", tmp_path / "predictions.jsonl"
    rows = [{"id": r.id, "text": r.text, "setting": r.setting, "payer": r.payer or "commercial_a",
             "encounter_date": r.encounter_date or "2026-01-15"} for r in notes]  # fmt: skip
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    log = AuditLog(str(tmp_path / "audit.db"))
    assert main(["predict", "--input", str(source), "--output", str(predictions), "--model", str(tiny.export_dir),
                 "--audit", log.url]) == 0  # fmt: skip
    add_user(log, "alice", "coder", PASSWORD)
    add_user(log, "bob", "auditor", PASSWORD)
    encounters = load_encounters(source, predictions)
    return create_review_app(encounters, log, tmp_path / "corrections.jsonl", secret=secret), log, encounters
