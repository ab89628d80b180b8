"""Local review accounts: a name, a role (coder, auditor, admin) and a salted scrypt hash of the password.

Coders and admins may decide and attest; auditors read. Passwords are never stored or logged: scrypt (the
standard library's, N=2**14, r=8, p=1) with a 16-byte random salt, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

import sqlalchemy as sa

from medcoder.audit.store import AuditLog

ROLES: tuple[str, ...] = ("coder", "auditor", "admin")
WRITERS: tuple[str, ...] = ("coder", "admin")  # roles that may decide, attest and export
_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 10


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    kind, n, r, p, salt, digest = stored.split("$")
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


def _users(log: AuditLog) -> sa.Table:
    return sa.Table("review_users", sa.MetaData(), autoload_with=log.engine)


def add_user(log: AuditLog, name: str, role: str, password: str) -> None:
    """Create an account; an existing name, an unknown role or a short password is refused."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password of {name!r} is shorter than {MIN_PASSWORD} characters")
    table = _users(log)
    with log.engine.begin() as connection:
        if connection.execute(sa.select(table.c.name).where(table.c.name == name)).first():
            raise ValueError(f"a review account named {name!r} exists already")
        connection.execute(sa.insert(table).values(name=name, role=role, password_hash=hash_password(password),
                                                   created_at=datetime.now(UTC).isoformat()))  # fmt: skip


def authenticate(log: AuditLog, name: str, password: str) -> str | None:
    """The account's role when the password is right, else None (an unknown name costs a hash too)."""
    table = _users(log)
    with log.engine.connect() as connection:
        row = connection.execute(sa.select(table).where(table.c.name == name)).first()
    stored = row.password_hash if row else hash_password(secrets.token_hex(8))
    return row.role if row is not None and password_matches(password, stored) else None
