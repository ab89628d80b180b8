"""One audit event and the hash that chains it to the one before.

The entry hash covers every field, its position in the chain (`seq`) and the previous entry's hash, as
canonical JSON (sorted keys, no spaces): changing one byte of any field, removing an entry, inserting one or
swapping two changes a hash the next entry (or the entry itself) no longer matches. With a key
(`MEDCODER_AUDIT_KEY`) the hash is an HMAC, so that someone who can write to the database cannot forge a
valid continuation either; which kind was used is part of the hashed entry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

ACTIONS: tuple[str, ...] = (
    "suggest", "accept", "reject", "modify", "add", "attest", "export", "promote", "query", "answer",
)  # fmt: skip
ROLES: tuple[str, ...] = ("model", "coder", "auditor", "admin", "provider")  # provider: answers physician queries
GENESIS = "0" * 64  # the previous hash of the first entry
SHA256, HMAC_SHA256 = "sha256", "hmac-sha256"


def text_sha256(text: str) -> str:
    """The SHA-256 of a note version or a quoted span: what the log keeps instead of the text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EvidenceRef:
    """Where the evidence is and what it said, without saying it: offsets and the SHA-256 of the quote."""

    start: int
    end: int
    sha256: str


@dataclass(frozen=True)
class AuditEntry:
    """One event, as the caller describes it; `AuditLog.append` adds its place in the chain."""

    actor: str
    role: str
    action: str
    encounter_id: str | None = None
    note_id: str | None = None
    note_sha256: str | None = None
    setting: str | None = None
    code_system: str | None = None
    code_set_version: str | None = None
    code: str | None = None
    replaces: str | None = None  # a `modify` decision: the model's code that `code` replaces
    modifiers: tuple[str, ...] = ()  # a `modify` decision that sets the line modifiers of `code` (replaces == code)
    query: str | None = None  # a `query` or `answer` entry: canonical JSON, no note text (migration 0004)
    model_name: str | None = None
    model_version: str | None = None
    manifest_sha256: str | None = None
    score: float | None = None
    threshold: float | None = None
    evidence: tuple[EvidenceRef, ...] = ()
    rules: tuple[str, ...] = ()
    context_flags: tuple[str, ...] = ()
    decision: str | None = None
    reason: str | None = None
    attestation: str | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"audit entry field 'action': {self.action!r} is not one of {', '.join(ACTIONS)}")
        if self.role not in ROLES:
            raise ValueError(f"audit entry field 'role': {self.role!r} is not one of {', '.join(ROLES)}")
        if not self.actor:
            raise ValueError("audit entry field 'actor' is empty: every event names who did it")

    def row(self) -> dict[str, Any]:
        """The entry as database columns (JSON text for the lists)."""
        out = asdict(self)
        out["evidence"] = json.dumps([asdict(e) for e in self.evidence], separators=(",", ":"))
        out["rules"] = json.dumps(list(self.rules), separators=(",", ":"))
        out["context_flags"] = json.dumps(list(self.context_flags), separators=(",", ":"))
        out["modifiers"] = json.dumps(list(self.modifiers), separators=(",", ":")) if self.modifiers else None
        return out


def sets_line_modifiers(row: dict[str, Any]) -> bool:
    """Whether a stored entry is a reviewer's modifier decision: a `modify` of a code into itself, which sets the
    line's `modifiers` and passes no verdict on the code."""
    return row["action"] == "modify" and row["replaces"] == row["code"]


# the columns the hash covers, in the table: everything but the hash itself
HASHED_COLUMNS: tuple[str, ...] = (
    "seq", "prev_hash", "hash_kind", *(name for name in AuditEntry.__dataclass_fields__),
)  # fmt: skip
# columns a later migration added: hashed only when set, so that entries written before them still verify
# (their hash was made without the column); setting one on such an entry changes its hash all the same
ADDED_COLUMNS: frozenset[str] = frozenset({"modifiers", "query"})


def entry_hash(columns: dict[str, Any], key: bytes | None) -> str:
    """The hash of a stored row's HASHED_COLUMNS: SHA-256, or HMAC-SHA256 with `key`."""
    hashed = {
        name: columns[name] for name in HASHED_COLUMNS if not (name in ADDED_COLUMNS and columns.get(name) is None)
    }
    payload = json.dumps(hashed, sort_keys=True, separators=(",", ":"))
    if columns["hash_kind"] == HMAC_SHA256:
        if key is None:
            raise ValueError("the audit log's entries are HMACs: set MEDCODER_AUDIT_KEY to the key they were made with")
        return hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
