"""What every dataset loader shares: the on_error policy, path checks that name the option to set,
and the per-split records with skipped items counted in the log (never their text).

The loaders (`medcoder.data.codiesp`, `mimic`, `mdace`) import this module; `medcoder.data.sources`
imports the loaders. Imports point one way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from medcoder.data.schema import LoadReport, NoteRecord

log = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]  # every loader: stop at the first bad item, or skip and report it


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file or folder is not where the options say it is."""


def require_path(path: str | Path, *, option: str, what: str) -> Path:
    """Return `path` if it exists, else raise an error that names it and the option that sets it."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"{what} not found: looked for {path} (set it with the `{option}` option)")
    return path


def check_on_error(on_error: str) -> None:
    """Loaders take on_error="raise" (stop at the first bad item) or "skip" (report it); nothing else."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def records_of(reports: dict[str, LoadReport], dataset: str) -> dict[str, list[NoteRecord]]:
    """The records of each split; items a loader skipped (on_error="skip") are counted in the log.

    Only counts, fields and reasons are logged, never note text, so nothing is dropped silently and
    nothing private leaks into logs.
    """
    out: dict[str, list[NoteRecord]] = {}
    for split, report in reports.items():
        if report.skipped:
            reasons = "; ".join(f"{n} x {reason}" for reason, n in list(report.skipped_by_reason().items())[:5])
            log.warning("%s %s: skipped %d item(s): %s", dataset, split, len(report.skipped), reasons)
        out[split] = report.records
    return out
