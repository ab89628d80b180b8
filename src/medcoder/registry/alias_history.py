"""Who moved which alias to which model version, when and why: the registry's audit trail.

MLflow keeps only where an alias points NOW; once `champion` moves from v3 to v4 nothing in the
registry says it was ever on v3. Compliance needs the history (which model coded the claims of
last March?), so every alias move is also appended, as `{"alias", "version", "at", "by", "reason"}`,
to a JSON list in the registered-model tag `alias_history`. The registry code calls
`record_alias_change` each time it sets or deletes an alias; the model card renders the list.

Registry tag values are `String(5000)` columns in MLflow's SQL schema (SQLite does not enforce it,
PostgreSQL and MySQL do). So that no entry is ever dropped, a full page is frozen into
`alias_history.1`, `alias_history.2`, ... and `alias_history` holds the newest page; readers
concatenate pages in order. Writes are read-modify-write: two processes moving aliases at the same
instant can lose one entry, so the registry code should move aliases from one place (a CI job).
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from typing import Any

from mlflow.tracking import MlflowClient

TAG = "alias_history"
ENTRY_KEYS: tuple[str, ...] = ("alias", "version", "at", "by", "reason")
MAX_TAG_CHARS = 5000  # MLflow's column size for registry tag values
MAX_REASON_CHARS = 2000


def _page_key(index: int) -> str:
    return f"{TAG}.{index}"


def _parse_page(text: str, tag: str, model_name: str) -> list[dict[str, Any]]:
    """One tag's JSON list, checked entry by entry (a broken audit trail must not pass silently)."""
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(
            f"registered model {model_name!r}: tag {tag!r} is not valid JSON ({err.msg} at character {err.pos})"
        ) from None
    if not isinstance(entries, list):
        raise ValueError(
            f"registered model {model_name!r}: tag {tag!r} must hold a JSON list, got {type(entries).__name__}"
        )
    for i, entry in enumerate(entries):
        missing = [k for k in ENTRY_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(
                f"registered model {model_name!r}: tag {tag!r}, entry {i}: missing field(s) {', '.join(missing)}"
            )
    return entries


def _pages(tags: dict[str, str]) -> list[str]:
    """Tag keys of the history pages in order: alias_history.1, .2, ..., then alias_history."""
    frozen = sorted(
        (int(key[len(TAG) + 1 :]), key) for key in tags if key.startswith(f"{TAG}.") and key[len(TAG) + 1 :].isdigit()
    )
    return [key for _, key in frozen] + ([TAG] if TAG in tags else [])


def read_alias_history(client: MlflowClient, name: str = "medcoder") -> list[dict[str, Any]]:
    """Every recorded alias change of registered model `name`, oldest first ([] if none yet)."""
    tags = dict(client.get_registered_model(name).tags)
    return [entry for key in _pages(tags) for entry in _parse_page(tags[key], key, name)]


def record_alias_change(
    client: MlflowClient,
    alias: str,
    version: str | int | None,
    reason: str,
    *,
    name: str = "medcoder",
    by: str | None = None,
    at: datetime | None = None,
    max_tag_chars: int = MAX_TAG_CHARS,
) -> dict[str, Any]:
    """Append one alias move to the registered model's `alias_history`; returns the entry.

    version: the version the alias now points to, or None when the alias was deleted.
    reason: why (the promotion decision, a rollback ticket): required, an audit trail without
        reasons cannot be reviewed.
    by: who moved it; defaults to `MEDCODER_USER`, else the operating-system user.
    at: when; defaults to now (UTC, ISO 8601).
    This records the move; it does not move the alias (`client.set_registered_model_alias` does).
    """
    if not alias or not alias.strip():
        raise ValueError("record_alias_change: alias must be a non-empty string")
    if not reason or not reason.strip():
        raise ValueError(f"record_alias_change: a reason is required for moving alias {alias!r}")
    if len(reason) > MAX_REASON_CHARS:
        raise ValueError(
            f"record_alias_change: reason is {len(reason)} characters; keep it under {MAX_REASON_CHARS} "
            "and link to the full decision record instead"
        )
    if version is not None and not str(version).isdigit():
        raise ValueError(f"record_alias_change: version must be a registry version number or None, got {version!r}")
    entry = {
        "alias": alias,
        "version": None if version is None else str(version),
        "at": (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "by": by or os.environ.get("MEDCODER_USER") or _os_user(),
        "reason": reason.strip(),
    }
    tags = dict(client.get_registered_model(name).tags)
    current = _parse_page(tags[TAG], TAG, name) if TAG in tags else []
    page = json.dumps(current + [entry], ensure_ascii=False)
    if current and len(page) > max_tag_chars:
        # Freeze the full page under the next number, start a new one with this entry.
        frozen_numbers = [int(k[len(TAG) + 1 :]) for k in _pages(tags) if k != TAG]
        client.set_registered_model_tag(name, _page_key(max(frozen_numbers, default=0) + 1), tags[TAG])
        page = json.dumps([entry], ensure_ascii=False)
    client.set_registered_model_tag(name, TAG, page)
    return entry


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
