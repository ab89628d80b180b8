"""Patient-level train/val/test split: no patient's notes in two splits, deterministic for a seed.

Notes of one patient share history, medications and phrasing, so splitting by note would leak
answers from train into test. Patients are shuffled with their own seeded generator and filled
into train, then val, then test until each split reaches its share of *notes*.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from medcoder.data.schema import NoteRecord
from medcoder.defaults import SPLITS

FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)


def split_by_patient(
    records: Sequence[NoteRecord], seed: int, fractions: tuple[float, float, float] = FRACTIONS
) -> dict[str, list[NoteRecord]]:
    """Assign whole patients to splits so each split holds about its fraction of the notes."""
    if abs(sum(fractions) - 1.0) > 1e-9 or any(f < 0 for f in fractions):
        raise ValueError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    by_patient: dict[str, list[NoteRecord]] = {}
    for record in records:
        if record.patient_id is None:
            raise ValueError(f"record {record.id} has no patient_id; a patient-level split needs one")
        by_patient.setdefault(record.patient_id, []).append(record)
    patients = sorted(by_patient)
    random.Random(f"split:{seed}").shuffle(patients)
    total = len(records)
    bounds = (fractions[0] * total, (fractions[0] + fractions[1]) * total)
    out: dict[str, list[NoteRecord]] = {name: [] for name in SPLITS}
    placed = 0
    for pid in patients:
        # A patient goes to the split in which the midpoint of their notes falls.
        mid = placed + len(by_patient[pid]) / 2
        name = "train" if mid <= bounds[0] else "val" if mid <= bounds[1] else "test"
        out[name].extend(by_patient[pid])
        placed += len(by_patient[pid])
    for name in SPLITS:
        out[name].sort(key=lambda r: r.id)
    return out
