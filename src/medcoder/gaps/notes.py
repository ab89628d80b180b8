"""The notes care-gap detection reads: text, patient, date, setting, age and the ICD-10-CM codes already coded.

Input is one note per JSONL line, in the prediction input contract (`{"id", "text", "patient_id"?,
"encounter_date"?, ...}`) or the data contract (a record with its gold `codes`). The codes a gap is checked
against are those the coder emitted, from a `medcoder predict` output joined by id, else the record's own
codes. A bad line is an error naming the file, the line and the field, never the text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from medcoder.codes.formats import ICD10CM
from medcoder.data.schema import NoteRecord, RecordError, iter_jsonl, parse_record
from medcoder.inference.inputs import DEFAULT_MAX_CHARS, InputError, validate_input


@dataclass(frozen=True)
class CareNote:
    """One note as the rules read it; `patient_id` None is a patient of its own (cross-note rules see one note)."""

    id: str
    text: str
    patient_id: str | None = None
    encounter_date: str | None = None
    setting: str | None = None
    age: int | None = None
    codes: tuple[str, ...] = ()  # ICD-10-CM, dotted

    @property
    def patient_key(self) -> str:
        return self.patient_id if self.patient_id is not None else f"note:{self.id}"

    @property
    def date(self) -> dt.date | None:
        return dt.date.fromisoformat(self.encounter_date) if self.encounter_date else None


def from_record(record: NoteRecord) -> CareNote:
    """A data-contract record with its gold ICD-10-CM codes."""
    return CareNote(record.id, record.text, record.patient_id, record.encounter_date, record.setting, record.age,
                    tuple(record.codes_of(ICD10CM)))  # fmt: skip


def _from_line(obj: object, source: str, line: int) -> CareNote:
    if isinstance(obj, dict) and "codes" in obj:
        return from_record(parse_record(obj, source=source, line=line))
    checked = validate_input(obj, DEFAULT_MAX_CHARS, line=line)
    if isinstance(checked, InputError):
        raise RecordError(source, line, "<record>", f"{checked.kind}: {checked.message}")
    patient = obj.get("patient_id") if isinstance(obj, dict) else None
    if patient is not None and not isinstance(patient, str):
        raise RecordError(source, line, "patient_id", "must be a string")
    return CareNote(checked.id, checked.text, patient, checked.encounter_date, checked.setting, checked.age)


def read_care_notes(path: str | Path) -> list[CareNote]:
    """Every note of a JSONL file; the first bad line stops with a RecordError (file, line, field)."""
    source, notes = str(path), []
    for line, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise obj
        notes.append(_from_line(obj, source, line))
    return notes


def read_predicted_codes(path: str | Path) -> dict[str, tuple[str, ...]]:
    """note id -> the ICD-10-CM codes of its `medcoder predict` line (error lines have none)."""
    out: dict[str, tuple[str, ...]] = {}
    for line, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise obj
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise RecordError(str(path), line, "id", "a prediction line needs its note id")
        out[obj["id"]] = tuple(c["code"] for c in obj.get("codes", []) if c.get("system") == ICD10CM)
    return out


def with_codes(notes: Iterable[CareNote], codes: Mapping[str, tuple[str, ...]]) -> list[CareNote]:
    """The notes with the coder's codes in place of their own, where `codes` has the note."""
    return [
        CareNote(n.id, n.text, n.patient_id, n.encounter_date, n.setting, n.age, codes[n.id]) if n.id in codes else n
        for n in notes
    ]


def write_jsonl(lines: Iterable[dict], path: str | Path) -> int:
    """Write one JSON object per line; returns how many."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for obj in lines:
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count
