"""Seal a model artifact folder with a SHA-256 manifest, and refuse to serve one that changed.

`write_manifest` lists every file under the folder (relative POSIX path, SHA-256, size; sorted) in
`MANIFEST.sha256.json` together with `manifest_sha256`, a hash over that list that identifies the
artifact's exact content (record it with the registered model version). `verify_manifest` checks
the folder against its manifest and returns that hash, or raises `TamperedArtifactError` naming the
first file that is missing, extra (not listed), or different. Cheap checks (presence, size) run for
every file before any file is hashed, so a missing file is reported without reading gigabytes.

Symbolic links are refused: the file a link points at can change without the folder changing.
Empty folders carry no content and are not listed. Files are hashed in 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath
from typing import Any

MANIFEST_NAME = "MANIFEST.sha256.json"
MANIFEST_FORMAT = "medcoder-manifest/1"
_CHUNK = 1 << 20


class TamperedArtifactError(ValueError):
    """The artifact folder does not match its manifest; `path` is the file at fault (relative)."""

    def __init__(self, artifact_dir: Path, path: str, problem: str) -> None:
        self.artifact_dir, self.path, self.problem = artifact_dir, path, problem
        super().__init__(f"{artifact_dir}: {path}: {problem}")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _scan(root: Path) -> tuple[dict[str, Path], list[str]]:
    """(relative POSIX path -> file, relative paths of symbolic links) under root, manifest excluded."""
    files: dict[str, Path] = {}
    links: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        for name in dirnames + filenames:
            full = here / name
            rel = full.relative_to(root).as_posix()
            if full.is_symlink():
                links.append(rel)
            elif name in filenames and rel != MANIFEST_NAME:
                files[rel] = full
    return dict(sorted(files.items())), sorted(links)


def _manifest_hash(files: list[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON of the file list: independent of how the manifest is indented."""
    canonical = json.dumps({"format": MANIFEST_FORMAT, "files": files}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_manifest(artifact_dir: str | Path) -> Path:
    """Write `<artifact_dir>/MANIFEST.sha256.json` (replacing an old one) and return its path."""
    root = Path(artifact_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: artifact folder not found")
    tmp = root / f".{MANIFEST_NAME}.tmp"
    tmp.unlink(missing_ok=True)  # left by an interrupted earlier write
    files, links = _scan(root)
    if links:
        raise ValueError(f"{root}: {links[0]} is a symbolic link; copy the file into the artifact instead")
    entries = [{"path": rel, "sha256": file_sha256(p), "size": p.stat().st_size} for rel, p in files.items()]
    manifest = {"format": MANIFEST_FORMAT, "manifest_sha256": _manifest_hash(entries), "files": entries}
    out = root / MANIFEST_NAME
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out)
    return out


def _valid_entry(e: Any) -> bool:
    if not (isinstance(e, dict) and set(e) == {"path", "sha256", "size"}):
        return False
    if not (isinstance(e["path"], str) and isinstance(e["sha256"], str) and isinstance(e["size"], int)):
        return False
    rel = PurePosixPath(e["path"])  # a listed path may never point outside the folder
    return not rel.is_absolute() and ".." not in rel.parts and rel.as_posix() == e["path"]


def _read_manifest(root: Path) -> tuple[list[dict[str, Any]], str]:
    path = root / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        raise TamperedArtifactError(root, MANIFEST_NAME, "manifest is missing (the artifact was never sealed, or it was removed)")
    invalid = TamperedArtifactError(root, MANIFEST_NAME, f"not a valid {MANIFEST_FORMAT} manifest")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:  # JSON and UTF-8 errors alike
        raise invalid from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise invalid
    files, stored = manifest.get("files"), manifest.get("manifest_sha256")
    if not isinstance(files, list) or not isinstance(stored, str) or not all(_valid_entry(e) for e in files):
        raise invalid
    if [e["path"] for e in files] != sorted({e["path"] for e in files}):
        raise invalid
    if _manifest_hash(files) != stored:
        raise TamperedArtifactError(root, MANIFEST_NAME, "manifest was edited: its manifest_sha256 does not match its file list")
    return files, stored


def verify_manifest(artifact_dir: str | Path, expected_hash: str | None = None) -> str:
    """Check every file against the manifest; return `manifest_sha256` (and compare it to `expected_hash`)."""
    root = Path(artifact_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: artifact folder not found")
    listed, manifest_hash = _read_manifest(root)
    if expected_hash is not None and manifest_hash != expected_hash:
        raise TamperedArtifactError(root, MANIFEST_NAME, f"manifest hash {manifest_hash} is not the expected {expected_hash}")
    actual, links = _scan(root)
    if links:
        raise TamperedArtifactError(root, links[0], "is a symbolic link, which a sealed artifact never holds")
    by_path = {e["path"]: e for e in listed}
    for rel in sorted(set(by_path) | set(actual)):
        if rel not in actual:
            raise TamperedArtifactError(root, rel, "listed in the manifest but missing")
        if rel not in by_path:
            raise TamperedArtifactError(root, rel, "not listed in the manifest (extra file)")
        size, listed_size = actual[rel].stat().st_size, by_path[rel]["size"]
        if size != listed_size:
            raise TamperedArtifactError(root, rel, f"size {size} differs from the manifest's {listed_size}")
    for rel, entry in by_path.items():
        if file_sha256(actual[rel]) != entry["sha256"]:
            raise TamperedArtifactError(root, rel, "SHA-256 differs from the manifest (content changed)")
    return manifest_hash
