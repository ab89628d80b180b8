"""The ONNX fast path as part of a packaged coder: added at registration, measured, sealed, used at load.

    add_fast_path(coder_dir, "onnx-int8", notes, sample)  -> FastPathInfo (coder_dir now holds it)
    read_fast_path(coder_dir)                              -> FastPathInfo | None
    with_packaged_fast_path(coder, coder_dir)              -> the coder, its encoder on ONNX Runtime if packaged

Layout: the ONNX file (`encoder.onnx` or `encoder-int8.onnx`, medcoder.export.fast_path) and
`fast_path.json` (which path, which file, and its measured agreement) sit INSIDE the exported coder folder,
and the folder is sealed again (`write_manifest`). Why inside: `load_exported` verifies the manifest before it
reads anything, so a swapped ONNX file is refused like a swapped weight file; and the folder's content hash
(`manifest_sha256`, the unregistered model's `model.version` in every answer) differs from the float
model's, so an answer still says which model, and so which path, produced it.

Why the agreement is measured here, once, and kept in the folder: the share of notes whose returned code
set is identical on the fast path and on the float path (`code_set_agreement`) is a property of this
file with these heads and this threshold, so it travels with them; registration copies it onto the
version as tags (FastPathInfo.tags) and the promotion gate refuses a version below its floor
(medcoder.registry.gates, `min_fast_path_agreement`).

Why a packaged fast path without onnxruntime is an error and not a silent fall-back to torch: the version
was registered, gated and sized as the ONNX model (its requirements name onnxruntime); serving it at a
different speed on a different path without anyone choosing that would hide a broken environment.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcoder.export.artifact import ArtifactError, ExportedCoder, load_exported
from medcoder.export.fast_path import FAST_PATHS, FILE_NAMES, code_set_agreement, export_fast_encoder, with_fast_encoder
from medcoder.export.fast_path_tags import FAST_PATH_AGREEMENT, TAG_NOTES, TAG_PATH, TAG_SAMPLE
from medcoder.inference.manifest import write_manifest

log = logging.getLogger(__name__)

FAST_PATH_FILE = "fast_path.json"


@dataclass(frozen=True)
class FastPathInfo:
    """A packaged fast path: `fast_path` (onnx-fp32 | onnx-int8), its ONNX `file` (relative to the coder
    folder), and the share of `notes` notes of `sample` on which it returned the float path's code set."""

    fast_path: str
    file: str
    agreement: float
    notes: int
    sample: str

    def tags(self) -> dict[str, str]:
        """The registry version tags that record it."""
        return {
            TAG_PATH: self.fast_path,
            FAST_PATH_AGREEMENT: repr(float(self.agreement)),
            TAG_NOTES: str(self.notes),
            TAG_SAMPLE: self.sample,
        }


def add_fast_path(coder_dir: str | Path, fast_path: str, notes: Sequence[dict], sample: str) -> FastPathInfo:
    """Export `coder_dir`'s encoder for `fast_path` into the folder, measure its code-set agreement with the
    float path on `notes` (contract inputs; `sample` says which they are, no text), record both in
    `fast_path.json` and seal the folder again. A fast path already in the folder is replaced."""
    if fast_path not in FAST_PATHS:
        raise ValueError(f"fast_path must be one of {', '.join(FAST_PATHS)}, got {fast_path!r}")
    root = Path(coder_dir)
    _remove_fast_path(root)
    coder = load_exported(root)  # verifies the float folder first
    onnx_path = export_fast_encoder(coder.net, root, fast_path)
    for name in FILE_NAMES.values():  # only the file the path runs stays (int8 export leaves the float one)
        if name != onnx_path.name:
            (root / name).unlink(missing_ok=True)
    fast_coder = dataclasses.replace(coder, net=with_fast_encoder(coder.net, onnx_path))
    reference, candidate = coder.predict_records(notes), fast_coder.predict_records(notes)
    # a note the float path answered with an error entry returns no codes on either path: it says nothing
    answered = [i for i, line in enumerate(reference) if "error" not in line]
    if len(answered) < len(reference):
        log.warning("fast-path agreement: the float path returned error entries for %d of %d notes (e.g. %s); "
                    "measured on the others", len(reference) - len(answered), len(reference),
                    next(line["id"] for line in reference if "error" in line))  # fmt: skip
    agreement = code_set_agreement([reference[i] for i in answered], [candidate[i] for i in answered])
    info = FastPathInfo(fast_path, onnx_path.name, agreement, len(answered), sample)
    (root / FAST_PATH_FILE).write_text(json.dumps(dataclasses.asdict(info), indent=2) + "\n", encoding="utf-8")
    write_manifest(root)
    return info


def _remove_fast_path(root: Path) -> None:
    for name in (FAST_PATH_FILE, *FILE_NAMES.values()):
        (root / name).unlink(missing_ok=True)


def read_fast_path(coder_dir: str | Path) -> FastPathInfo | None:
    """The coder folder's packaged fast path, or None without one; ArtifactError naming the file and the
    field when `fast_path.json` is not what add_fast_path writes."""
    path = Path(coder_dir) / FAST_PATH_FILE
    if not path.is_file():
        return None
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        info = FastPathInfo(**raw)
    except (ValueError, TypeError) as err:
        raise ArtifactError(f"{path}: not a fast-path record ({type(err).__name__}: {err})") from None
    if info.fast_path not in FAST_PATHS or info.file != FILE_NAMES[info.fast_path]:
        raise ArtifactError(f"{path}: field fast_path/file: {info.fast_path!r} with {info.file!r} is not a fast path")
    if not (isinstance(info.agreement, (int, float)) and math.isfinite(info.agreement) and 0 <= info.agreement <= 1):
        raise ArtifactError(f"{path}: field agreement: {info.agreement!r} is not a share from 0 to 1")
    if not (Path(coder_dir) / info.file).is_file():
        raise ArtifactError(f"{path}: field file: {info.file} is not in the folder")
    return info


def with_packaged_fast_path(coder: ExportedCoder, coder_dir: str | Path, threads: int | None = None) -> ExportedCoder:
    """`coder` (loaded, so verified, from `coder_dir`) with its encoder on the packaged ONNX file, or `coder`
    itself when the folder has no fast path. Without onnxruntime: ImportError naming `medcoder[fast]`."""
    info = read_fast_path(coder_dir)
    if info is None:
        return coder
    return dataclasses.replace(coder, net=with_fast_encoder(coder.net, Path(coder_dir) / info.file, threads))
