"""Batch input for `medcoder predict`: one note per JSONL line, checked so one bad line never stops a batch.

A prediction input line is `{"id", "text", "setting"?, "age"?, "sex"?}`; a full data-contract record
(with codes, mentions, payer...) is accepted too, so a test split can be predicted as it is. Every
line yields either an `InputNote` to code or an `InputError` that takes its place in the output
(`{"id": ..., "error": {"kind": ..., "message": ...}}`, docs/ARCHITECTURE.md "Prediction contract").

Messages name fields, lengths, byte offsets and line numbers, NEVER note text: error entries end up
in logs, tickets and dashboards that are not cleared for patient data. When the id itself cannot be
read, the entry is keyed `line:<n>` so the caller can still find the line.

A single huge line must not exhaust memory before it is rejected, so lines are read with a byte
cap derived from `max_chars` (see `max_line_bytes`) and an over-long line is skipped in chunks.

Text that is not a clinical note gets a `not_clinical_text` entry instead of codes (`content_problem`):
the coder was trained on English notes and answers anything, with confident scores, so Arabic or
Hebrew text, emoji, punctuation, zero-width or control characters, a single letter, or one word
repeated over kilobytes must never reach it. The check is cheap, deterministic and explainable:
- at least one word of `MIN_WORD_LETTERS` Latin letters (a word = a run of letters);
- at least `MIN_LATIN_SHARE` of all letters are Latin (accented Latin letters count; Greek, Arabic,
  Hebrew, CJK... do not), so a stray "alpha" sign in an English note passes and an Arabic note does not;
- a text of n words uses at least isqrt(n) different words (real notes use hundreds of words per
  thousand; a repeated word or phrase does not). Numbers and punctuation are not words.
It runs inside `validate_input`, the one place `medcoder predict`, the pyfunc and the server check input.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Kinds of error entries. `model_error` is for the predict loop: the model failed on one note.
ERROR_KINDS: tuple[str, ...] = (
    "empty_text",
    "not_a_string",
    "too_long",
    "invalid_utf8",
    "invalid_json",
    "missing_id",
    "invalid_field",
    "duplicate_id",
    "not_clinical_text",
    "empty_line",
    "model_error",
)
# MIMIC-IV discharge summaries reach ~60k characters; beyond 100k a "note" is almost always a
# concatenated export or a wrong column, and would cost minutes of encoder time on CPU.
DEFAULT_MAX_CHARS = 100_000
INPUT_FIELD_ORDER = ("id", "text", "setting", "age", "sex", "payer", "encounter_date", "prior_visit_date",
                     "dual_status", "new_enrollee", "institutional", "pregnant", "submitted_codes")  # fmt: skip
_INPUT_FIELDS = frozenset(INPUT_FIELD_ORDER)
# Data-contract fields a prediction input may carry; they are not used for prediction.
_IGNORED_CONTRACT_FIELDS = frozenset({"patient_id", "codes", "mentions"})
_READ_CHUNK = 1 << 20
# Work one request (a pyfunc predict call, a POST to the server) may ask for: ~2 notes of the longest
# accepted length, ~10-30 s of CPU for MiniLM. A larger batch is refused with a clear error instead
# of running for minutes after its client has given up (the server's timeout does not stop the work).
DEFAULT_MAX_REQUEST_NOTES = 256
DEFAULT_MAX_REQUEST_CHARS = 200_000
MIN_WORD_LETTERS = 3
MIN_LATIN_SHARE = 0.8
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters (any script)


@dataclass(frozen=True)
class InputNote:
    """A note that passed every check and can be coded."""

    id: str
    text: str
    setting: str | None = None
    age: int | None = None
    sex: str | None = None
    line: int | None = None
    # not used by the model: what a claim for the note is checked against before submission (medcoder
    # predict --denial-risk): the payer billed and the date of service
    payer: str | None = None
    encounter_date: str | None = None
    # not used by the model: the patient's last visit with the practice, which makes the patient new or established
    # (the E/M patient-status edit, medcoder.codes.age_sex); only with `encounter_date`, and not after it
    prior_visit_date: str | None = None
    # not used by the model either: what risk adjustment scores the codes with (medcoder predict
    # --risk-adjustment, docs/RISK.md): the enrollment fields, a pregnancy, the codes already submitted
    dual_status: str | None = None
    new_enrollee: bool | None = None
    institutional: bool | None = None
    pregnant: bool | None = None
    submitted_codes: tuple[str, ...] | None = None


@dataclass(frozen=True)
class InputError:
    """A line that cannot be coded; `to_dict` is the error entry written in its place."""

    id: str
    kind: str
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ERROR_KINDS:
            raise ValueError(f"unknown input error kind {self.kind!r}; expected one of {', '.join(ERROR_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "error": {"kind": self.kind, "message": self.message}}


def max_line_bytes(max_chars: int) -> int:
    """The longest JSONL line that can still hold a text of `max_chars` characters.

    JSON may spell one character as a 12-byte surrogate-pair escape; 1 MiB more covers the other
    fields (a data-contract record's codes and mentions). A longer line is `too_long` unread.
    """
    return 12 * max_chars + _READ_CHUNK


def _line_key(line: int | None) -> str:
    return f"line:{line}" if line is not None else "line:?"


def _decode_line(raw: bytes | str, line: int | None) -> Any | InputError:
    """bytes/str of one JSONL line -> decoded JSON value, or the error saying where it broke."""
    key = _line_key(line)
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return InputError(key, "invalid_utf8", f"line is not valid UTF-8 (bad byte at offset {exc.start})", line)
    if line == 1:
        raw = raw.removeprefix("\ufeff")  # a UTF-8 byte-order mark some editors write
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        # json's own messages may end in "at" ("Unterminated string starting at"): say the column once
        message = f"{exc.msg.removesuffix(' at')} at column {exc.colno}"
        return InputError(key, "invalid_json", f"line is not valid JSON ({message})", line)
    except RecursionError:
        return InputError(key, "invalid_json", "line is not valid JSON (nested too deeply)", line)


def _is_latin(letter: str) -> bool:
    return unicodedata.name(letter, "").startswith("LATIN ")


def content_problem(text: str) -> str | None:
    """Why `text` is not a clinical note medcoder can code (module docstring), or None. Never quotes it."""
    words = _WORD.findall(text)
    letters = sum(len(w) for w in words)
    latin = [w for w in words if all(_is_latin(c) for c in w)]
    if not any(len(w) >= MIN_WORD_LETTERS for w in latin):
        return f"it has no word of {MIN_WORD_LETTERS} or more Latin letters ({letters} letters in all)"
    latin_letters = sum(len(w) for w in latin)
    if latin_letters < MIN_LATIN_SHARE * letters:
        return (
            f"only {latin_letters} of its {letters} letters are Latin (at least {MIN_LATIN_SHARE:.0%} are needed: "
            "medcoder codes English notes)"
        )
    distinct = len({w.casefold() for w in latin})
    if distinct < math.isqrt(len(latin)):
        return (
            f"its {len(latin)} words use only {distinct} different words (at least {math.isqrt(len(latin))} are needed)"
        )
    return None


def validate_input(obj: Any, max_chars: int, *, line: int | None = None) -> InputNote | InputError:
    """Check one input line (a decoded object, or the raw bytes/str of a JSONL line).

    Checks run in a fixed order (JSON, id, text, optional fields) and the first failure is returned,
    so one line always gives the same error.
    """
    if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    if isinstance(obj, (bytes, str)):
        obj = _decode_line(obj, line)
        if isinstance(obj, InputError):
            return obj
    if not isinstance(obj, dict):
        return InputError(
            _line_key(line), "invalid_json", f"line is a JSON {type(obj).__name__}, expected an object", line
        )

    note_id = obj.get("id")
    if "id" not in obj:
        return InputError(_line_key(line), "missing_id", "field 'id' is missing", line)
    if not isinstance(note_id, str) or not note_id.strip():
        got = "an empty string" if isinstance(note_id, str) else type(note_id).__name__
        return InputError(_line_key(line), "missing_id", f"field 'id' must be a non-empty string, got {got}", line)

    def error(kind: str, message: str) -> InputError:
        return InputError(note_id, kind, message, line)

    unknown = sorted(k for k in obj if k not in _INPUT_FIELDS and k not in _IGNORED_CONTRACT_FIELDS)
    if unknown:
        return error(
            "invalid_field",
            f"unknown field(s) {', '.join(map(repr, unknown))}; expected {', '.join(INPUT_FIELD_ORDER)}",
        )

    text = obj.get("text")
    if "text" not in obj:
        return error("not_a_string", "field 'text' is missing")
    if not isinstance(text, str):
        return error("not_a_string", f"field 'text' must be a string, got {type(text).__name__}")
    if not text.strip():
        return error("empty_text", f"field 'text' is empty or only white space ({len(text)} characters)")
    if len(text) > max_chars:
        return error("too_long", f"field 'text' has {len(text)} characters, the limit is {max_chars}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone "\ud800" escape: valid JSON, not encodable text
        return error("invalid_utf8", f"field 'text' has an unpaired surrogate at character {exc.start}")
    problem = content_problem(text)
    if problem is not None:
        return error("not_clinical_text", f"field 'text' is not a clinical note: {problem}")

    # The optional fields against the one definition of the record (medcoder.inference.schema);
    # pydantic's messages name the rule, never the value (hide_input_in_errors, include_input=False).
    from pydantic import ValidationError

    from medcoder.inference.schema import PredictionInput

    try:
        record = PredictionInput.model_validate({k: v for k, v in obj.items() if k in _INPUT_FIELDS})
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False, include_context=False)[0]
        field = ".".join(str(part) for part in first["loc"])
        return error("invalid_field", f"field {field!r}: {first['msg']}")
    dates = date_problem(record.encounter_date, record.prior_visit_date)
    if dates is not None:
        return error("invalid_field", dates)
    submitted = None if record.submitted_codes is None else tuple(record.submitted_codes)
    return InputNote(id=note_id, text=text, setting=record.setting, age=record.age, sex=record.sex, line=line,
                     payer=record.payer, encounter_date=record.encounter_date,
                     prior_visit_date=record.prior_visit_date, dual_status=record.dual_status,
                     new_enrollee=record.new_enrollee, institutional=record.institutional, pregnant=record.pregnant,
                     submitted_codes=submitted)  # fmt: skip


def date_problem(encounter_date: str | None, prior_visit_date: str | None) -> str | None:
    """What is wrong with the dates of a record, naming the field (values are dates, never note text), or None:
    each must be a calendar date, and `prior_visit_date` needs an `encounter_date` it is not after, since the
    patient-status edit compares the two (`medcoder.codes.age_sex`)."""
    from datetime import date

    parsed = {}
    for field, value in (("encounter_date", encounter_date), ("prior_visit_date", prior_visit_date)):
        try:
            parsed[field] = None if value is None else date.fromisoformat(value)
        except ValueError:
            return f"field {field!r}: {value} is not a calendar date"
    if parsed["prior_visit_date"] is None:
        return None
    if parsed["encounter_date"] is None:
        return "field 'prior_visit_date': needs 'encounter_date', the date of service it is compared with"
    if parsed["prior_visit_date"] > parsed["encounter_date"]:
        return "field 'prior_visit_date': is after 'encounter_date' (the last visit before this one)"
    return None


def request_problem(
    records: list[Any], max_notes: int = DEFAULT_MAX_REQUEST_NOTES, max_chars: int = DEFAULT_MAX_REQUEST_CHARS
) -> str | None:
    """Why a request of `records` is more work than one request may ask for, or None (counts only)."""
    chars = sum(len(r["text"]) for r in records if isinstance(r, dict) and isinstance(r.get("text"), str))
    if len(records) > max_notes or chars > max_chars:
        return (
            f"the request holds {len(records)} notes and {chars} characters of text; one request may hold at most "
            f"{max_notes} notes and {max_chars} characters: split it into smaller requests"
        )
    return None


def _read_lines(path: Path, limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """Yield (line number, raw line or None when over `limit` bytes, line length in bytes)."""
    with path.open("rb") as fh:
        lineno = 0
        while True:
            raw = fh.readline(limit + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) <= limit or raw.endswith(b"\n"):
                yield lineno, raw, len(raw)
                continue
            size = len(raw)
            while not raw.endswith(b"\n"):  # skip the rest of the over-long line without keeping it
                raw = fh.readline(_READ_CHUNK)
                if not raw:
                    break
                size += len(raw)
            yield lineno, None, size


def read_input_lines(path: str | Path, *, max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[InputNote | InputError]:
    """Every line of a JSONL file as an InputNote or an InputError, in file order (a blank line is an
    `empty_line` error, so the output of a batch has exactly one line per input line).

    Never raises for a bad line (only for a file that cannot be opened). A repeated id is a
    `duplicate_id` error: the output is keyed by id, so two answers for one id would be ambiguous.
    """
    path = Path(path)
    limit = max_line_bytes(max_chars)
    first_line_of: dict[str, int] = {}
    for lineno, raw, size in _read_lines(path, limit):
        if raw is None:
            message = f"line has {size} bytes, over the {limit}-byte limit for notes of at most {max_chars} characters"
            yield InputError(_line_key(lineno), "too_long", message, lineno)
            continue
        if not raw.strip():  # an entry of its own: one output line per input line, in order
            yield InputError(_line_key(lineno), "empty_line", "line is blank (no JSON object)", lineno)
            continue
        item = validate_input(raw, max_chars, line=lineno)
        if item.id != _line_key(lineno):  # the line has a readable id (an error entry may too)
            if item.id in first_line_of:
                item = InputError(item.id, "duplicate_id", f"id already used on line {first_line_of[item.id]}", lineno)
            else:
                first_line_of[item.id] = lineno
        yield item
