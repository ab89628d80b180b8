"""The embedded clinical corpus: synthetic office notes and discharge summaries with gold codes.

`generate_corpus(n_notes, seed)` draws patients, schedules their encounters, plans and writes
each note (outpatient.py, inpatient.py) with exact evidence and mention offsets (builder.py),
validates every record against the data contract, and splits by patient (split.py). One
`random.Random(seed)` is threaded through every decision and nothing iterates over a set or
depends on hash order, so the same seed gives byte-identical files in any process.
"""

from __future__ import annotations

import random
from pathlib import Path

from medcoder.data.schema import NoteRecord, parse_record, write_notes
from medcoder.data.synth import inpatient, outpatient
from medcoder.data.synth.builder import NoteBuilder
from medcoder.data.synth.patients import Encounter, Patient, encounter_count, make_patient, schedule
from medcoder.data.synth.phrasing import make_style
from medcoder.data.synth.split import split_by_patient
from medcoder.defaults import SPLITS

__all__ = ["generate_corpus", "generate_notes", "write_corpus", "SPLITS"]

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


def generate_notes(n_notes: int, seed: int) -> list[NoteRecord]:
    """`n_notes` notes in encounter order, before splitting."""
    if n_notes < 1:
        raise ValueError(f"n_notes must be at least 1, got {n_notes}")
    rng = random.Random(seed)
    records: list[NoteRecord] = []
    p = 0
    while len(records) < n_notes:
        p += 1
        patient = make_patient(rng, f"p{p:05d}")
        n = min(encounter_count(rng), n_notes - len(records))
        for enc in schedule(rng, patient, n):
            style = make_style(rng)
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


def write_corpus(out_dir: Path, n_notes: int, seed: int) -> dict[str, int]:
    """Write train.jsonl, val.jsonl and test.jsonl under `out_dir`; returns the note count per split."""
    corpus = generate_corpus(n_notes, seed)
    out_dir = Path(out_dir)
    return {name: write_notes(corpus[name], out_dir / f"{name}.jsonl") for name in SPLITS}
