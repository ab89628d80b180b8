"""The audit log in its database: migrate, append, read, verify.

`AuditLog(url)` brings the schema to the newest Alembic revision (migrations/, run on open), then appends
entries in chain order: each gets the next `seq`, the previous entry's hash and its own. Two writers racing
for the same `seq` collide on the primary key; the loser reads the new head and tries again, so the chain
never forks. `verify` walks the chain from the first entry and names the first broken link.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from medcoder.audit.entry import GENESIS, HMAC_SHA256, SHA256, AuditEntry, entry_hash

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
KEY_ENV = "MEDCODER_AUDIT_KEY"
DEFAULT_FILE = "audit.db"
_RETRIES = 20


def migrate(engine: sa.Engine) -> None:
    """Bring the database to the newest revision of the audit schema (creates it in an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def audit_url(value: str | None) -> str:
    """A SQLAlchemy URL for `--audit`/`--db`: a URL as given, a file path as SQLite, None as the project's
    audit.db (beside mlflow.db)."""
    if value is None:
        from medcoder.paths import project_root

        return f"sqlite:///{project_root() / DEFAULT_FILE}"
    return value if "://" in value else f"sqlite:///{Path(value).resolve()}"


def key_from_env() -> bytes | None:
    """The HMAC key of the log, from MEDCODER_AUDIT_KEY (None: plain SHA-256 entries)."""
    value = os.environ.get(KEY_ENV)
    return value.encode("utf-8") if value else None


@dataclass(frozen=True)
class ChainReport:
    """What `verify` found: entries read, the head (last seq and hash) and the first broken link, if any."""

    entries: int
    head_seq: int
    head_hash: str
    broken_at: int | None = None
    reason: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None


class AuditLog:
    """An append-only audit log at a SQLAlchemy URL (`sqlite:///audit.db`, `postgresql://...`)."""

    def __init__(self, url: str | None = None, key: bytes | None = None) -> None:
        self.url = audit_url(url)
        self.engine = sa.create_engine(self.url)
        self.key = key if key is not None else key_from_env()
        migrate(self.engine)
        self.table = sa.Table("audit_entries", sa.MetaData(), autoload_with=self.engine)

    def append(self, entries: AuditEntry | Iterable[AuditEntry]) -> list[dict[str, Any]]:
        """Append `entries` in order, in one transaction; returns the stored rows (with seq and hashes)."""
        batch = [entries] if isinstance(entries, AuditEntry) else list(entries)
        for _ in range(_RETRIES):
            try:
                with self.engine.begin() as connection:
                    head = connection.execute(
                        sa.select(self.table.c.seq, self.table.c.entry_hash).order_by(self.table.c.seq.desc()).limit(1)
                    ).first()
                    seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS)
                    if head is not None:
                        self._check_kind(connection)
                    rows = []
                    for entry in batch:
                        seq += 1
                        row = {**entry.row(), "seq": seq, "prev_hash": prev,
                               "hash_kind": HMAC_SHA256 if self.key else SHA256}  # fmt: skip
                        row["entry_hash"] = prev = entry_hash(row, self.key)
                        rows.append(row)
                    if rows:
                        connection.execute(sa.insert(self.table), rows)
                    return rows
            except IntegrityError:  # another writer took the seq: read the new head and chain after it
                continue
        raise RuntimeError(f"audit log {self._where()}: could not append after {_RETRIES} tries (busy writers)")

    def _check_kind(self, connection: sa.Connection) -> None:
        """A chain keeps the kind of hash its first entry has: an HMAC log is not continued with plain hashes
        (which anyone could forge), nor a plain one with HMACs nobody could check without the key."""
        first = connection.execute(sa.select(self.table.c.hash_kind).where(self.table.c.seq == 1)).scalar()
        kind = HMAC_SHA256 if self.key else SHA256
        if first is not None and first != kind:
            raise ValueError(
                f"audit log {self._where()} holds {first} entries: "
                + (
                    "set MEDCODER_AUDIT_KEY to its key"
                    if first == HMAC_SHA256
                    else "it is unkeyed: unset MEDCODER_AUDIT_KEY"
                )
            )

    def rows(self, note_id: str | None = None, actions: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every entry in chain order, or those of one note and of some actions."""
        query = sa.select(self.table).order_by(self.table.c.seq)
        if note_id is not None:
            query = query.where(self.table.c.note_id == note_id)
        if actions is not None:
            query = query.where(self.table.c.action.in_(list(actions)))
        with self.engine.connect() as connection:
            return [dict(r._mapping) for r in connection.execute(query)]

    def verify(self, expect_head: tuple[int, str] | None = None) -> ChainReport:
        """Walk the chain; `expect_head` (seq, hash), a head recorded earlier, also catches entries removed from
        the end, which nothing left in the table can show."""
        return verify_rows(self.rows(), self.key, expect_head)

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)


def verify_rows(
    rows: Sequence[dict[str, Any]], key: bytes | None, expect_head: tuple[int, str] | None = None
) -> ChainReport:
    """The first broken link of a chain read in `seq` order: a missing or repeated position, a previous-entry
    hash that is not the entry before's, or an entry whose content no longer gives its hash."""
    prev, expected = GENESIS, 1
    hashes: dict[int, str] = {}

    def broken(seq: int, reason: str) -> ChainReport:
        return ChainReport(len(rows), expected - 1, prev, seq, reason)

    kind = rows[0]["hash_kind"] if rows else None
    for row in rows:
        if row["hash_kind"] != kind:
            return broken(expected, f"entry {expected} is hashed {row['hash_kind']}, not {kind} as the chain began")
        if row["seq"] != expected:
            return broken(expected, f"entry {expected} is missing: the next entry is {row['seq']}")
        if row["prev_hash"] != prev:
            return broken(expected, f"entry {expected} does not chain to entry {expected - 1} (previous-entry hash)")
        if entry_hash(row, key) != row["entry_hash"]:
            return broken(expected, f"entry {expected} was changed: its content does not give its hash")
        prev = hashes[expected] = row["entry_hash"]
        expected += 1
    if expect_head is not None:
        seq, head = expect_head
        if hashes.get(seq) != head:
            found = "is missing" if seq not in hashes else "has another hash"
            return broken(seq, f"the recorded head, entry {seq}, {found}: entries were removed or rewritten")
    return ChainReport(len(rows), expected - 1, prev)
