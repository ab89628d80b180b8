"""Every dataset the platform knows, behind one call: `load_dataset(name, **options)`.

Training, evaluation, the baseline and the data-card generator all need "the train/val/test notes of
dataset X"; they get them here, so the dataset-specific knowledge (file layouts, code systems,
official splits) stays in one loader module per dataset:

- "embedded":  `<data_dir>/train|val|test.jsonl` in the contract format (`medcoder synth` writes them)
- "codiesp":   CodiEsp, English translations (`medcoder.data.codiesp`)
- "mimic-iv", "mimic-iii": MIMIC discharge summaries in the splits of Edin et al. 2023 (`medcoder.data.mimic`)
- "mdace":     MDACE evidence annotations joined to MIMIC-III note text (`medcoder.data.mdace`)

Every loader's main directory option is called `data_dir` so a CLI `--data-dir` maps onto any of
them. A path that is not there raises `DatasetNotFoundError` naming the path looked for and the
option that sets it. Loader modules are imported only when their dataset is asked for, so
`import medcoder.data.sources` stays cheap; the helpers every loader shares (path checks, the
on_error policy) are in `medcoder.data.loading`, which the loaders import and this module dispatches to.

`dataset_stats` computes the numbers the data cards print (never typed by hand).
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from medcoder.data.loading import DatasetNotFoundError, OnError, check_on_error, records_of, require_path
from medcoder.data.schema import NoteRecord, read_notes
from medcoder.defaults import SPLITS

log = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("embedded", "codiesp", "mimic-iv", "mimic-iii", "mdace")


# ---------------------------------------------------------------- dispatch
def _load_embedded(data_dir: str | Path | None = None, *, on_error: OnError = "raise") -> dict[str, list[NoteRecord]]:
    """The contract JSONL splits written by `medcoder synth --out DIR` (or any tool that writes the contract)."""
    check_on_error(on_error)
    if data_dir is None:
        raise DatasetNotFoundError(
            "the embedded corpus has no default location: pass `data_dir` (the folder `medcoder synth --out` wrote)"
        )
    root = require_path(data_dir, option="data_dir", what="embedded corpus folder")
    reports = {
        split: read_notes(
            require_path(root / f"{split}.jsonl", option="data_dir", what=f"embedded {split} split"), on_error=on_error
        )
        for split in SPLITS
    }
    return records_of(reports, "embedded")


def _loader(name: str) -> Callable[..., dict[str, list[NoteRecord]]]:
    if name == "embedded":
        return _load_embedded
    if name == "codiesp":
        from medcoder.data import codiesp

        return codiesp.load_splits
    if name == "mimic-iv":
        from medcoder.data import mimic

        return mimic.load_mimic_iv_splits
    if name == "mimic-iii":
        from medcoder.data import mimic

        return mimic.load_mimic_iii_splits
    if name == "mdace":
        from medcoder.data import mdace

        return mdace.load_splits
    raise ValueError(f"unknown dataset {name!r}; expected one of: {', '.join(DATASETS)}")


def load_dataset(name: str, **options: Any) -> dict[str, list[NoteRecord]]:
    """Load dataset `name` as {"train", "val", "test"} lists of validated NoteRecords.

    `options` are the keyword arguments of that dataset's loader (e.g. `data_dir`,
    `include_procedures`, `on_error`); an option the loader does not take is an error that lists
    the ones it does, rather than being ignored.
    """
    loader = _loader(name)
    accepted = [p.name for p in inspect.signature(loader).parameters.values()]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"dataset {name!r} does not take option(s) {', '.join(unknown)}; it takes: {', '.join(accepted)}"
        )
    return loader(**options)


# ---------------------------------------------------------------- statistics
_PERCENTILES = (5, 25, 50, 75, 95)


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {f"p{p}": 0.0 for p in _PERCENTILES} | {"max": 0.0}
    arr = np.asarray(values, dtype=float)
    out = {f"p{p}": float(np.percentile(arr, p)) for p in _PERCENTILES}
    out["max"] = float(arr.max())
    return out


def _split_stats(records: list[NoteRecord]) -> dict[str, Any]:
    codes_per_note = [len(r.codes) for r in records]
    assignments = [(c.system, c.code) for r in records for c in r.codes]
    by_system: dict[str, dict[str, int]] = {}
    for system in sorted({s for s, _ in assignments}):
        of_system = [code for s, code in assignments if s == system]
        by_system[system] = {"assignments": len(of_system), "distinct_codes": len(set(of_system))}
    with_evidence = sum(1 for r in records for c in r.codes if c.evidence)
    spans = [end - start for r in records for c in r.codes for start, end in c.evidence]
    patients = {r.patient_id for r in records if r.patient_id is not None}
    return {
        "notes": len(records),
        "patients": len(patients) if patients else None,
        "settings": dict(Counter(r.setting or "unknown" for r in records)),
        "code_assignments": len(assignments),
        "distinct_codes": len(set(assignments)),
        "codes_per_note": {
            "mean": float(np.mean(codes_per_note)) if records else 0.0,
            "median": float(np.median(codes_per_note)) if records else 0.0,
            "min": min(codes_per_note, default=0),
            "max": max(codes_per_note, default=0),
        },
        "systems": by_system,
        "text_chars": _percentiles([len(r.text) for r in records]),
        "text_words": _percentiles([len(r.text.split()) for r in records]),
        "evidence": {
            "assignments_with_evidence": with_evidence / len(assignments) if assignments else 0.0,
            "notes_with_evidence": (
                sum(1 for r in records if any(c.evidence for c in r.codes)) / len(records) if records else 0.0
            ),
            "spans": len(spans),
            "span_chars_median": float(np.median(spans)) if spans else 0.0,
        },
        "mentions": dict(Counter(m.status for r in records for m in r.mentions)),
    }


def dataset_stats(splits: dict[str, list[NoteRecord]]) -> dict[str, Any]:
    """Statistics of each split and of all splits together (plain JSON-serialisable types).

    Keys per split: notes, patients, settings, code_assignments, distinct_codes, codes_per_note
    (mean/median/min/max), systems (assignments and distinct codes per code system), text_chars and
    text_words (p5/p25/p50/p75/p95/max), evidence (share of code assignments and of notes with at
    least one evidence span, span count, median span length), mentions (count per status).
    Computed from codes and lengths only: nothing here contains note text.
    """
    all_records = [r for records in splits.values() for r in records]
    return {
        "splits": {name: _split_stats(records) for name, records in splits.items()},
        "all": _split_stats(all_records),
    }


def stats_markdown(stats: dict[str, Any]) -> str:
    """A compact markdown table of `dataset_stats` output, one column per split plus "all"."""
    columns = list(stats["splits"]) + ["all"]
    table = {**stats["splits"], "all": stats["all"]}
    systems = sorted({s for col in columns for s in table[col]["systems"]})
    rows: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("notes", lambda s: f"{s['notes']:,}"),
        ("patients", lambda s: "n/a" if s["patients"] is None else f"{s['patients']:,}"),
        ("code assignments", lambda s: f"{s['code_assignments']:,}"),
        ("distinct codes", lambda s: f"{s['distinct_codes']:,}"),
        ("codes per note, mean (max)", lambda s: f"{s['codes_per_note']['mean']:.1f} ({s['codes_per_note']['max']})"),
    ]
    for system in systems:
        rows.append(
            (
                f"{system}: assignments / distinct",
                lambda s, system=system: "{assignments:,} / {distinct_codes:,}".format(
                    **s["systems"].get(system, {"assignments": 0, "distinct_codes": 0})
                ),
            ),
        )
    rows += [
        ("text chars, median (p95)", lambda s: f"{s['text_chars']['p50']:,.0f} ({s['text_chars']['p95']:,.0f})"),
        ("text words, median (p95)", lambda s: f"{s['text_words']['p50']:,.0f} ({s['text_words']['p95']:,.0f})"),
        ("codes with evidence", lambda s: f"{100 * s['evidence']['assignments_with_evidence']:.1f}%"),
        ("evidence spans", lambda s: f"{s['evidence']['spans']:,}"),
    ]
    lines = ["| | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    lines += [f"| {label} | " + " | ".join(fmt(table[c]) for c in columns) + " |" for label, fmt in rows]
    return "\n".join(lines) + "\n"
