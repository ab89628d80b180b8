"""The embedded clinical corpus: synthetic office notes and discharge summaries with gold codes.

`generate_corpus(n_notes, seed)` draws patients, schedules their encounters, plans and writes
each note (outpatient.py, inpatient.py) with exact evidence and mention offsets (builder.py),
validates every record against the data contract, and splits by patient (split.py). One
`random.Random(seed)` is threaded through every decision and nothing iterates over a set or
depends on hash order, so the same seed gives byte-identical files in any process.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from medcoder.data.schema import NoteRecord, parse_record, write_notes
from medcoder.data.synth import inpatient, outpatient
from medcoder.data.synth.builder import NoteBuilder
from medcoder.data.synth.patients import Encounter, Patient, encounter_count, make_patient, schedule
from medcoder.data.synth.phrasing import make_style
from medcoder.data.synth.sites import SiteDialect, site_rng
from medcoder.data.synth.split import split_by_patient
from medcoder.defaults import SPLITS

__all__ = ["generate_corpus", "generate_notes", "write_corpus", "corpus_is_current", "GENERATOR_VERSION", "SPLITS"]

# Bumped whenever the same (n_notes, seed) writes different notes. `write_corpus` stamps it into
# corpus.json, so a corpus folder written by an older generator is regenerated, never trained on as
# if it were today's corpus (the folder name holds only notes and seed). 2: brief office notes; 3: pneumonia
# named by its lobe, vaccines other than influenza (Z23), more ways to write a personal history of cancer.
GENERATOR_VERSION = 3
STAMP = "corpus.json"

# Statuses whose code must never also be a gold code of the same note.
_EXCLUSIVE_STATUSES = ("negated", "hypothetical", "uncertain")


class CorpusBugError(RuntimeError):
    """The generator produced a note that breaks its own labelling rules (a bug, never user error)."""


def _record(note_id: str, patient: Patient, enc: Encounter, b: NoteBuilder) -> NoteRecord:
    codes = b.code_assignments()
    coded = {c.code for c in codes}
    for m in b.mentions:
        if m.status in _EXCLUSIVE_STATUSES and m.code in coded:
            raise CorpusBugError(f"note {note_id}: {m.code} is both coded and a {m.status} mention")
    obj = {
        "id": note_id,
        "patient_id": patient.id,
        "encounter_date": enc.date.isoformat(),
        "setting": enc.setting,
        "age": enc.age,
        "sex": patient.sex,
        "payer": patient.payer,
        "text": b.text,
        "codes": [c.to_dict() for c in codes],
        "mentions": [m.to_dict() for m in b.mentions],
    }
    return parse_record(obj, source="synth", line=None)  # the contract check, once per note


def generate_notes(n_notes: int, seed: int, site: SiteDialect | None = None) -> list[NoteRecord]:
    """`n_notes` notes in encounter order, before splitting; with `site`, written in that practice's words
    (`sites`): the same encounters and gold codes as without it."""
    if n_notes < 1:
        raise ValueError(f"n_notes must be at least 1, got {n_notes}")
    rng = random.Random(seed)
    site_stream = site_rng(seed, site) if site is not None else None
    records: list[NoteRecord] = []
    p = 0
    while len(records) < n_notes:
        p += 1
        patient = make_patient(rng, f"p{p:05d}")
        n = min(encounter_count(rng), n_notes - len(records))
        for enc in schedule(rng, patient, n):
            style = make_style(rng, site, site_stream)
            if enc.setting == "inpatient":
                b = inpatient.render(rng, style, patient, enc)
            else:
                visit = outpatient.plan_visit(rng, style, patient, enc)
                b = outpatient.render(rng, style, patient, enc, visit)
            records.append(_record(f"n{len(records) + 1:06d}", patient, enc, b))
    return records


def generate_corpus(n_notes: int, seed: int) -> dict[str, list[NoteRecord]]:
    """The corpus as {"train": [...], "val": [...], "test": [...]}, split by patient (~70/15/15)."""
    return split_by_patient(generate_notes(n_notes, seed), seed)


def _stamp(n_notes: int, seed: int) -> dict[str, int]:
    return {"generator_version": GENERATOR_VERSION, "notes": n_notes, "seed": seed}


def write_corpus(out_dir: Path, n_notes: int, seed: int) -> dict[str, int]:
    """Write train.jsonl, val.jsonl and test.jsonl under `out_dir`, then the corpus.json stamp that says
    which generator wrote them; returns the note count per split."""
    corpus = generate_corpus(n_notes, seed)
    out_dir = Path(out_dir)
    counts = {name: write_notes(corpus[name], out_dir / f"{name}.jsonl") for name in SPLITS}
    (out_dir / STAMP).write_text(json.dumps(_stamp(n_notes, seed)) + "\n", encoding="utf-8")
    return counts


def corpus_is_current(out_dir: Path, n_notes: int, seed: int) -> bool:
    """Whether `out_dir` holds the corpus this generator writes for (n_notes, seed): every split and a
    stamp of this GENERATOR_VERSION (a folder without a stamp was written before stamps existed)."""
    out_dir = Path(out_dir)
    if not all((out_dir / f"{name}.jsonl").is_file() for name in SPLITS):
        return False
    try:
        return json.loads((out_dir / STAMP).read_text(encoding="utf-8")) == _stamp(n_notes, seed)
    except (OSError, ValueError):
        return False
