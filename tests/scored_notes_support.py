"""Small scored splits for tests of the comparison record: notes with evidence spans for their codes and
distractor mentions that are not coded, and scores that mostly rank the gold codes first (the comparison
reads what a run logged; the run's model is not what it tests)."""

from __future__ import annotations

import numpy as np

from medcoder.data.labels import LabelSpace
from medcoder.data.schema import CodeAssignment, Mention, NoteRecord

CANARY = "ZQXCANARYNOTEWORD"  # stands for note text: it must never reach a record
CONDITIONS = {
    "I10": "hypertension",
    "E78.5": "hyperlipidemia",
    "E11.9": "type 2 diabetes",
    "J18.9": "pneumonia",
    "N39.0": "urinary tract infection",
    "K21.9": "reflux",
}
DISTRACTOR_OF = {"negated": "denies {}", "family": "mother had {}", "historical": "history of {} resolved"}


def make_notes(n: int, seed: int, prefix: str) -> list[NoteRecord]:
    """Notes with evidence spans for their codes and distractor mentions that are not coded."""
    rng = np.random.default_rng(seed)
    codes = list(CONDITIONS)
    notes = []
    for i in range(n):
        gold = [c for j, c in enumerate(codes) if rng.random() < 0.5 / (1 + j * 0.4)]
        text, assignments, mentions = f"{CANARY} clinic visit.", [], []
        for c in gold:
            start = len(text) + 1
            text += f" Assessment: {CONDITIONS[c]}."
            assignments.append(
                CodeAssignment("ICD-10-CM", c, evidence=((start + 12, start + 12 + len(CONDITIONS[c])),))
            )
        absent = [c for c in codes if c not in gold]
        if absent and rng.random() < 0.6:
            c = absent[int(rng.integers(len(absent)))]
            status = list(DISTRACTOR_OF)[int(rng.integers(len(DISTRACTOR_OF)))]
            phrase = DISTRACTOR_OF[status].format(CONDITIONS[c])
            start = len(text) + 1
            text += f" {phrase}."
            mentions.append(Mention(start, start + len(phrase), c, status))
        notes.append(
            NoteRecord(
                id=f"{prefix}{i:03d}",
                text=text,
                codes=tuple(assignments),
                mentions=tuple(mentions),
                setting="outpatient",
            )
        )
    return notes


def noisy_scores(records: list[NoteRecord], labels: LabelSpace, seed: int) -> np.ndarray:
    """Scores that mostly rank gold codes first, with distractor mentions scored high now and then."""
    rng = np.random.default_rng(seed)
    y = labels.encode_many(records).astype(float)
    scores = np.clip(0.65 * y + rng.normal(0.2, 0.18, y.shape), 0.0, 1.0)
    for i, record in enumerate(records):
        for m in record.mentions:
            if ("ICD-10-CM", m.code) in labels.labels and rng.random() < 0.5:
                scores[i, labels.labels.index(("ICD-10-CM", m.code))] = 0.9
    return scores
