"""SHA-256 of a file, read in 1 MiB blocks: what seals a model folder (`medcoder.inference.manifest`)
and what checks a user's reference data against its shipped manifest (`medcoder.data.reference`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()
