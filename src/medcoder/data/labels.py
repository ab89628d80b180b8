"""The label space: which codes a model predicts, in a fixed order, and multi-hot encoding.

Models, the baseline and the metrics all index codes by position, so the order is fixed once here
and saved with every trained model. Codes are (system, code) pairs because "99214" (CPT) and an
ICD code can never be confused that way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from medcoder.codes.em import EM_CLASSES, is_office_em
from medcoder.data.schema import NoteRecord

Label = tuple[str, str]  # (system, code)


@dataclass(frozen=True)
class LabelSpace:
    """An ordered, duplicate-free list of (system, code) labels."""

    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("label space has duplicate labels")
        object.__setattr__(self, "_index", {label: i for i, label in enumerate(self.labels)})

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: Label) -> int:
        return self._index[label]  # type: ignore[attr-defined]

    def __contains__(self, label: object) -> bool:
        return label in self._index  # type: ignore[attr-defined]

    @property
    def codes(self) -> list[str]:
        return [code for _, code in self.labels]

    @classmethod
    def from_records(
        cls,
        records: Iterable[NoteRecord],
        *,
        systems: Sequence[str] | None = None,
        top_k: int | None = None,
        min_count: int = 1,
    ) -> LabelSpace:
        """Labels seen in `records` (usually the train split), most frequent first, ties by code.

        `systems` keeps only those code systems; `top_k` keeps the k most frequent (the CodiEsp and
        MIMIC "top-50" setups); `min_count` drops rarer labels.
        """
        counts: Counter[Label] = Counter()
        for record in records:
            for c in record.codes:
                if systems is None or c.system in systems:
                    counts[(c.system, c.code)] += 1
        ranked = sorted((lab for lab, n in counts.items() if n >= min_count), key=lambda lab: (-counts[lab], lab))
        if top_k is not None:
            ranked = ranked[:top_k]
        return cls(tuple(ranked))

    def encode(self, record: NoteRecord) -> np.ndarray:
        """Multi-hot vector of the record's gold codes that are in this label space."""
        y = np.zeros(len(self.labels), dtype=np.float32)
        for c in record.codes:
            i = self._index.get((c.system, c.code))  # type: ignore[attr-defined]
            if i is not None:
                y[i] = 1.0
        return y

    def encode_many(self, records: Sequence[NoteRecord]) -> np.ndarray:
        if not records:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.stack([self.encode(r) for r in records])

    def to_list(self) -> list[list[str]]:
        return [list(label) for label in self.labels]

    @classmethod
    def from_list(cls, items: Sequence[Sequence[str]]) -> LabelSpace:
        return cls(tuple((str(s), str(c)) for s, c in items))


def coding_label_space(
    train: Sequence[NoteRecord], systems: Sequence[str] | None = None, top_k: int | None = None
) -> LabelSpace:
    """The multi-label output space every coder (neural model and baseline) is trained and scored on.

    Train-split codes of `systems`, most frequent first, cut to `top_k`, WITHOUT the office E/M
    levels: a visit has exactly one level, so it is a single-choice output (the model's E/M head,
    scored by em_accuracy), not one more independent label. One function, so that the model and the
    baseline always compare on the same labels.
    """
    ranked = LabelSpace.from_records(train, systems=systems)
    labels = [label for label in ranked.labels if not is_office_em(*label)]
    return LabelSpace(tuple(labels[:top_k] if top_k is not None else labels))


def em_class_index(record: NoteRecord) -> int:
    """Index into EM_CLASSES of the note's office E/M code (0 = none), the E/M head's target; two
    levels on one note is an error (an office visit bills exactly one)."""
    levels = [c.code for c in record.codes if is_office_em(c.system, c.code)]
    if len(levels) > 1:
        raise ValueError(
            f"note {record.id} has {len(levels)} office E/M codes ({', '.join(levels)}); "
            "an office visit bills exactly one E/M level: fix the record"
        )
    return EM_CLASSES.index(levels[0]) if levels else 0
