"""The data contract: one clinical note per JSONL line (see docs/ARCHITECTURE.md, "Data contract").

Every loader (embedded corpus, CodiEsp, MIMIC, MDACE) produces `NoteRecord`s and every consumer
(training, evaluation, baseline, cards) reads them, so validation lives here, once. A record that
breaks the contract raises `RecordError` naming the file, line and field; error messages carry
note ids, field paths and codes, never note text.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medcoder.codes.formats import CODE_SYSTEMS, is_canonical

SETTINGS: tuple[str, ...] = ("outpatient", "inpatient")
SEXES: tuple[str, ...] = ("F", "M", "U")
# Mentions that are present in the text but must not be coded as a current condition.
MENTION_STATUSES: tuple[str, ...] = ("negated", "family", "historical", "hypothetical", "uncertain")

Span = tuple[int, int]


@dataclass(frozen=True)
class CodeAssignment:
    """A gold (or predicted) code with the character spans of `text` that justify it."""

    system: str
    code: str
    evidence: tuple[Span, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"system": self.system, "code": self.code, "evidence": [list(s) for s in self.evidence]}


@dataclass(frozen=True)
class Mention:
    """A mention of a condition that is NOT coded (negated, family, historical, hypothetical, uncertain)."""

    start: int
    end: int
    code: str
    status: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "code": self.code, "status": self.status}


@dataclass(frozen=True)
class NoteRecord:
    """One note and its gold codes. Optional demographic fields are None when a dataset lacks them."""

    id: str
    text: str
    codes: tuple[CodeAssignment, ...] = ()
    mentions: tuple[Mention, ...] = ()
    patient_id: str | None = None
    encounter_date: str | None = None
    setting: str | None = None
    age: int | None = None
    sex: str | None = None
    payer: str | None = None

    def codes_of(self, system: str) -> list[str]:
        """The codes of one system, in record order."""
        return [c.code for c in self.codes if c.system == system]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        for name in ("patient_id", "encounter_date", "setting", "age", "sex", "payer"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["text"] = self.text
        out["codes"] = [c.to_dict() for c in self.codes]
        if self.mentions:
            out["mentions"] = [m.to_dict() for m in self.mentions]
        return out


class RecordError(ValueError):
    """A record that breaks the data contract, located by source file, line and field."""

    def __init__(self, source: str, line: int | None, field: str, message: str, record_id: str | None = None):
        self.source, self.line, self.field, self.reason, self.record_id = source, line, field, message, record_id
        where = source if line is None else f"{source}:{line}"
        rid = f" (record {record_id})" if record_id else ""
        super().__init__(f"{where}{rid}: field '{field}': {message}")


@dataclass
class LoadReport:
    """Records that loaded, and the ones skipped (only when the caller asked to skip) with reasons."""

    records: list[NoteRecord] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        return skipped_by_reason(self.skipped)


def skipped_by_reason(skipped: Sequence[RecordError]) -> dict[str, int]:
    """How many items were skipped for each "field: reason", most frequent first (every loader's report)."""
    counts: dict[str, int] = {}
    for err in skipped:
        key = f"{err.field}: {err.reason}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- validation
def _span(value: Any, text_len: int, fail) -> Span:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        fail("must be a pair of integers [start, end)")
    start, end = value
    if not 0 <= start < end <= text_len:
        fail(f"span [{start}, {end}) is outside the text (length {text_len}) or empty")
    return (start, end)


def parse_record(obj: Any, *, source: str = "<memory>", line: int | None = None) -> NoteRecord:
    """Validate one decoded JSON object against the contract and build a NoteRecord."""
    record_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None

    def fail(field_path: str, message: str):
        raise RecordError(source, line, field_path, message, record_id)

    if not isinstance(obj, dict):
        fail("<record>", f"must be a JSON object, got {type(obj).__name__}")
    known = {"id", "patient_id", "encounter_date", "setting", "age", "sex", "payer", "text", "codes", "mentions"}
    for key in obj:
        if key not in known:
            fail(key, "unknown field")
    if not record_id or not record_id.strip():
        fail("id", "must be a non-empty string")
    text = obj.get("text")
    if not isinstance(text, str):
        fail("text", "must be a string")
    for name in ("patient_id", "payer"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            fail(name, "must be a string")
    date = obj.get("encounter_date")
    if date is not None:
        try:
            _dt.date.fromisoformat(date)
        except (TypeError, ValueError):
            fail("encounter_date", "must be an ISO date YYYY-MM-DD")
    setting = obj.get("setting")
    if setting is not None and setting not in SETTINGS:
        fail("setting", f"must be one of {', '.join(SETTINGS)}")
    age = obj.get("age")
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 130):
        fail("age", "must be an integer from 0 to 130")
    sex = obj.get("sex")
    if sex is not None and sex not in SEXES:
        fail("sex", f"must be one of {', '.join(SEXES)}")

    codes_raw = obj.get("codes", [])
    if not isinstance(codes_raw, list):
        fail("codes", "must be a list")
    codes: list[CodeAssignment] = []
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(codes_raw):
        at = f"codes[{i}]"
        if not isinstance(c, dict):
            fail(at, "must be an object")
        system, code = c.get("system"), c.get("code")
        if system not in CODE_SYSTEMS:
            fail(f"{at}.system", f"must be one of {', '.join(CODE_SYSTEMS)}")
        if not isinstance(code, str) or not is_canonical(system, code):
            fail(f"{at}.code", f"{code!r} is not a canonical {system} code")
        if (system, code) in seen:
            fail(f"{at}.code", f"duplicate code {system} {code}")
        seen.add((system, code))
        ev_raw = c.get("evidence", [])
        if not isinstance(ev_raw, list):
            fail(f"{at}.evidence", "must be a list of [start, end) pairs")
        evidence = tuple(
            _span(s, len(text), lambda m, j=j, at=at: fail(f"{at}.evidence[{j}]", m)) for j, s in enumerate(ev_raw)
        )
        codes.append(CodeAssignment(system=system, code=code, evidence=evidence))

    mentions_raw = obj.get("mentions", [])
    if not isinstance(mentions_raw, list):
        fail("mentions", "must be a list")
    mentions: list[Mention] = []
    for i, m in enumerate(mentions_raw):
        at = f"mentions[{i}]"
        if not isinstance(m, dict):
            fail(at, "must be an object")
        start, end = _span([m.get("start"), m.get("end")], len(text), lambda msg, at=at: fail(f"{at}.start", msg))
        status = m.get("status")
        if status not in MENTION_STATUSES:
            fail(f"{at}.status", f"must be one of {', '.join(MENTION_STATUSES)}")
        code = m.get("code")
        if not isinstance(code, str) or not any(is_canonical(s, code) for s in CODE_SYSTEMS):
            fail(f"{at}.code", f"{code!r} is not a canonical code")
        mentions.append(Mention(start=start, end=end, code=code, status=status))

    return NoteRecord(
        id=record_id,
        text=text,
        codes=tuple(codes),
        mentions=tuple(mentions),
        patient_id=obj.get("patient_id"),
        encounter_date=date,
        setting=setting,
        age=age,
        sex=sex,
        payer=obj.get("payer"),
    )


# ---------------------------------------------------------------- JSONL files
def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, decoded object or RecordError) for each non-blank line.

    A line that is not UTF-8 JSON is yielded as a RecordError rather than raised, so a caller that
    skips bad records can go on reading the lines after it.
    """
    path = Path(path)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                yield lineno, RecordError(str(path), lineno, "<line>", f"not valid UTF-8 (byte {exc.start})")
            except json.JSONDecodeError as exc:
                yield (
                    lineno,
                    RecordError(str(path), lineno, "<line>", f"not valid JSON ({exc.msg}, column {exc.colno})"),
                )


def read_notes(path: str | Path, *, on_error: Literal["raise", "skip"] = "raise") -> LoadReport:
    """Load and validate a contract JSONL file.

    on_error="raise" (default) stops at the first invalid record; "skip" keeps going and lists every
    skipped record with its reason in the report, so nothing is dropped silently. Duplicate ids are
    invalid records too, because they make splits and metrics ambiguous.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    report = LoadReport()
    seen_ids: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        try:
            if isinstance(obj, RecordError):
                raise obj
            record = parse_record(obj, source=str(path), line=lineno)
            if record.id in seen_ids:
                raise RecordError(
                    str(path), lineno, "id", f"duplicate id (first on line {seen_ids[record.id]})", record.id
                )
        except RecordError as err:
            if on_error == "raise":
                raise
            report.skipped.append(err)
            continue
        seen_ids[record.id] = lineno
        report.records.append(record)
    return report


def load_notes(path: str | Path) -> list[NoteRecord]:
    """Strict load: every record valid, or a RecordError naming file, line and field."""
    return read_notes(path, on_error="raise").records


def canonical_json(record: NoteRecord) -> str:
    """One record as compact JSON with sorted keys: the form that is written and digested."""
    return json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def write_notes(records: Iterable[NoteRecord], path: str | Path) -> int:
    """Write records as contract JSONL (one canonical JSON object per line); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for record in records:
            fh.write(canonical_json(record) + "\n")
            n += 1
    return n


def records_digest(records: Iterable[NoteRecord]) -> str:
    """sha256 over the canonical JSON lines of the records: a dataset fingerprint for MLflow and cards."""
    h = hashlib.sha256()
    for record in records:
        h.update(canonical_json(record).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def text_fingerprint(text: str, salt: str) -> str:
    """sha256 of `salt` + the note text with white space collapsed and case folded.

    Finds the same note again (re-indented, re-cased, under another id) without keeping its text:
    promotion compares an evaluation set's notes with a model's training notes this way. The salt
    (random per training run) keeps fingerprints of one run from being joined with another's or
    looked up in a precomputed table; like any hash, a fingerprint still confirms a guess of the
    WHOLE note, so it is stored only where note ids are (the run's artifacts).
    """
    normalised = " ".join(text.split()).casefold()
    return hashlib.sha256(f"{salt}\n{normalised}".encode()).hexdigest()
