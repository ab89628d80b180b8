"""MDACE code-evidence annotations joined to MIMIC-III note text: records WITH evidence spans.

MDACE (Cheng et al., ACL 2023; github.com/3mcloud/MDACE, MIT) is the one public dataset where
professional coders marked, for every code of a MIMIC-III admission, the text that supports it.
It is how the platform measures evidence grounding on real notes. Layout:

    <data_dir>/data/<Inpatient|Profee>/<ICD-10|ICD-9>/1.0/<hadm_id>-<ICD-10|ICD-9>.json
        {hadm_id, comment, notes: [{note_id, category, description,
                                    annotations: [{begin, end, code, code_system, description, type}]}]}
    <data_dir>/splits/<Inpatient|Profee>/MDace-ev-<train|val|test>.csv    one hadm_id per line

The note text is not in MDACE: it is MIMIC-III (credentialed), so users pass their own
NOTEEVENTS.csv(.gz). `note_id` is NOTEEVENTS ROW_ID and `begin`/`end` are character offsets into
its TEXT field exactly as Python's csv module returns it from a file opened in text mode
(universal newlines), which is how MDACE's own `inject-note-text.py` reads it; this loader reads
it the same way so `text[begin:end]` is the annotated span.

Choices, and why:
- One record per annotated note (id = note_id): offsets are per note, and notes of one admission
  differ in kind (discharge summary, radiology, physician notes). `categories` keeps only some
  (MDACE's evaluation commonly uses "Discharge summary" only). Splits follow MDACE's
  MDace-ev-* files by admission, so all notes of an admission share a split.
- Annotations of one code in a note become one CodeAssignment whose evidence is all its spans.
- Inpatient -> setting "inpatient". Profee (professional-fee coding of the physicians' services)
  -> setting "outpatient": provider coding follows the outpatient guidelines (Section IV of the
  ICD-10-CM Official Guidelines, e.g. uncertain diagnoses are not coded) even in the hospital.
- ICD-9 annotations were mapped by MDACE from the ICD-10 ones (annotation `type` EXACT, APPROX,
  MULTI...); they are loaded as given, the ICD-10 set is the human one.
- An annotation whose offsets fall outside the supplied text means the text is not the one that
  was annotated (another MIMIC version, an edited file), so every span of that note is suspect:
  the whole note is an error (skipped and reported with on_error="skip"). A malformed code only
  costs its own annotation.
- `trim_evidence=True` strips white space and the punctuation MDACE's evaluation trims
  (`-.,/` and a leading ")" or trailing "(") from span ends, as its `--trim-annotations` does.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from medcoder.codes.formats import CODE_SYSTEMS, CodeFormatError, normalize_code
from medcoder.data.loading import OnError, check_on_error, records_of, require_path
from medcoder.data.schema import LoadReport, NoteRecord, RecordError, parse_record
from medcoder.defaults import SPLITS
from medcoder.paths import shared_data_dir

Setting = Literal["Inpatient", "Profee"]
CodeVersion = Literal["ICD-10", "ICD-9"]

RELEASE = "1.0"  # the annotation release folder MDACE ships
CONTRACT_SETTING: dict[str, str] = {"Inpatient": "inpatient", "Profee": "outpatient"}
_TRIM = set("-.,/ \n\t")
_TRIM_LEFT = _TRIM | {")"}
_TRIM_RIGHT = _TRIM | {"("}


def default_dir() -> Path:
    """`<shared data>/mdace` (see `medcoder.paths.shared_data_dir`)."""
    return shared_data_dir() / "mdace"


def _fail(err: RecordError, on_error: OnError, report: LoadReport) -> None:
    if on_error == "raise":
        raise err
    report.skipped.append(err)


# ---------------------------------------------------------------- MDACE files
def read_split_files(data_dir: Path, setting: Setting) -> dict[int, str]:
    """hadm_id -> split from `splits/<setting>/MDace-ev-<split>.csv` (val is MDACE's "val")."""
    out: dict[int, str] = {}
    for split in SPLITS:
        path = require_path(
            data_dir / "splits" / setting / f"MDace-ev-{split}.csv",
            option="data_dir",
            what=f"MDACE {setting} {split} split file",
        )
        for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            if not raw.strip().isdigit():
                raise RecordError(str(path), lineno, "hadm_id", f"{raw.strip()!r} is not an admission id")
            hadm_id = int(raw)
            if hadm_id in out:
                raise RecordError(
                    str(path), lineno, "hadm_id", f"admission also listed in the {out[hadm_id]} split", str(hadm_id)
                )
            out[hadm_id] = split
    return out


def _annotation_files(data_dir: Path, setting: Setting, code_version: CodeVersion) -> list[Path]:
    folder = require_path(
        data_dir / "data" / setting / code_version / RELEASE,
        option="data_dir",
        what=f"MDACE {setting} {code_version} annotation folder",
    )
    files = sorted(folder.glob("*.json"))
    if not files:
        raise RecordError(str(folder), None, "<folder>", "no MDACE *.json annotation files")
    return files


def _expect(cond: bool, path: Path, field: str, message: str, record_id: str | None = None) -> None:
    if not cond:
        raise RecordError(str(path), None, field, message, record_id)


def read_admission(path: Path) -> dict[str, Any]:
    """One MDACE JSON file, structure-checked (types of every field this loader uses)."""
    try:
        adm = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(str(path), None, "<file>", f"not valid UTF-8 JSON ({exc.__class__.__name__})") from None
    _expect(isinstance(adm, dict), path, "<file>", "must be a JSON object")
    _expect(isinstance(adm.get("hadm_id"), int), path, "hadm_id", "must be an integer")
    _expect(isinstance(adm.get("notes"), list), path, "notes", "must be a list")
    for i, note in enumerate(adm["notes"]):
        at = f"notes[{i}]"
        _expect(isinstance(note, dict), path, at, "must be an object")
        _expect(isinstance(note.get("note_id"), int), path, f"{at}.note_id", "must be an integer")
        _expect(isinstance(note.get("category"), str), path, f"{at}.category", "must be a string", str(note["note_id"]))
        _expect(
            isinstance(note.get("annotations"), list), path, f"{at}.annotations", "must be a list", str(note["note_id"])
        )
        for j, ann in enumerate(note["annotations"]):
            a_at = f"{at}.annotations[{j}]"
            _expect(isinstance(ann, dict), path, a_at, "must be an object", str(note["note_id"]))
            for key in ("begin", "end"):
                value = ann.get(key)
                _expect(
                    isinstance(value, int) and not isinstance(value, bool),
                    path,
                    f"{a_at}.{key}",
                    "must be an integer character offset",
                    str(note["note_id"]),
                )
            for key in ("code", "code_system"):
                _expect(isinstance(ann.get(key), str), path, f"{a_at}.{key}", "must be a string", str(note["note_id"]))
    return adm


# ---------------------------------------------------------------- NOTEEVENTS
def _open_text(path: Path) -> IO[str]:
    """Text mode with universal newlines, as MDACE's inject-note-text.py opens NOTEEVENTS.csv."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open("r", encoding="utf-8")


def read_note_texts(noteevents: Path, note_ids: Iterable[int]) -> dict[int, tuple[int | None, str | None, str]]:
    """ROW_ID -> (HADM_ID, SUBJECT_ID, TEXT) for the wanted note ids; stops once all are found."""
    wanted = set(note_ids)
    found: dict[int, tuple[int | None, str | None, str]] = {}
    csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 2**31 - 1)))  # notes exceed the 128 KB default
    with _open_text(noteevents) as fh:
        reader = csv.reader(fh)
        header = next(reader, None) or []
        index = {name.strip().upper(): i for i, name in enumerate(header)}
        for column in ("ROW_ID", "SUBJECT_ID", "HADM_ID", "TEXT"):
            if column not in index:
                raise RecordError(str(noteevents), 1, column, f"missing column (the header has: {', '.join(header)})")
        width = max(index[c] for c in ("ROW_ID", "SUBJECT_ID", "HADM_ID", "TEXT")) + 1
        for row in reader:
            if len(row) < width or not row[index["ROW_ID"]].strip().isdigit():
                continue  # not a note row this loader can key; MDACE note ids are checked below
            row_id = int(row[index["ROW_ID"]])
            if row_id in wanted:
                hadm = row[index["HADM_ID"]].strip()
                subject = row[index["SUBJECT_ID"]].strip()
                found[row_id] = (int(hadm) if hadm.isdigit() else None, subject or None, row[index["TEXT"]])
                if len(found) == len(wanted):
                    break
    return found


# ---------------------------------------------------------------- records
def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Span without surrounding white space/punctuation; the original span if nothing would be left."""
    new_start, new_end = start, end
    while new_start < new_end and text[new_start] in _TRIM_LEFT:
        new_start += 1
    while new_end > new_start and text[new_end - 1] in _TRIM_RIGHT:
        new_end -= 1
    return (new_start, new_end) if new_start < new_end else (start, end)


def _note_record(
    path: Path,
    at: str,
    hadm_id: int,
    note: dict[str, Any],
    source: tuple[int | None, str | None, str],
    *,
    noteevents: Path,
    setting: str,
    trim_evidence: bool,
    on_error: OnError,
    report: LoadReport,
) -> NoteRecord:
    """One note as a record; a whole-note problem raises, a bad code is raised or reported alone."""
    note_id = str(note["note_id"])
    note_hadm, subject, text = source
    if note_hadm is not None and note_hadm != hadm_id:
        raise RecordError(
            str(noteevents),
            None,
            "HADM_ID",
            f"note belongs to admission {note_hadm} in NOTEEVENTS, MDACE says {hadm_id}",
            note_id,
        )
    evidence: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for j, ann in enumerate(note["annotations"]):
        a_at = f"{at}.annotations[{j}]"
        begin, end = ann["begin"], ann["end"]
        if not 0 <= begin < end <= len(text):
            raise RecordError(
                str(path),
                None,
                f"{a_at}.end",
                f"span [{begin}, {end}) does not fit the NOTEEVENTS text (length {len(text)}): "
                "the supplied text is not the annotated one",
                note_id,
            )
        system = ann["code_system"]
        try:
            if system not in CODE_SYSTEMS:
                raise CodeFormatError(f"unknown code system {system!r}")
            code = normalize_code(system, ann["code"])
        except CodeFormatError as exc:
            _fail(RecordError(str(path), None, f"{a_at}.code", str(exc), note_id), on_error, report)
            continue
        span = _trim(text, begin, end) if trim_evidence else (begin, end)
        spans = evidence.setdefault((system, code), [])
        if span not in spans:
            spans.append(span)
    obj = {
        "id": note_id,
        "patient_id": subject,
        "setting": setting,
        "text": text,
        "codes": [
            {"system": s, "code": c, "evidence": [list(x) for x in sorted(spans)]} for (s, c), spans in evidence.items()
        ],
    }
    return parse_record(obj, source=str(path))


def read_splits(
    noteevents: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    setting: Setting = "Inpatient",
    code_version: CodeVersion = "ICD-10",
    categories: Sequence[str] | None = None,
    trim_evidence: bool = False,
    on_error: OnError = "raise",
) -> dict[str, LoadReport]:
    """MDACE notes with codes and evidence as {"train", "val", "test"} LoadReports.

    `noteevents` defaults to `<shared data>/mimic-iii/NOTEEVENTS.csv.gz`; `data_dir` to
    `<shared data>/mdace`. `categories` keeps only notes of those NOTEEVENTS categories.
    """
    check_on_error(on_error)
    if setting not in CONTRACT_SETTING:
        raise ValueError(f"setting must be one of {', '.join(CONTRACT_SETTING)}, got {setting!r}")
    if code_version not in ("ICD-10", "ICD-9"):
        raise ValueError(f"code_version must be 'ICD-10' or 'ICD-9', got {code_version!r}")
    root = require_path(data_dir if data_dir is not None else default_dir(), option="data_dir", what="MDACE folder")
    notes_path = require_path(
        noteevents if noteevents is not None else shared_data_dir() / "mimic-iii" / "NOTEEVENTS.csv.gz",
        option="noteevents",
        what="MIMIC-III NOTEEVENTS.csv(.gz) with the note text MDACE annotates",
    )
    splits = read_split_files(root, setting)
    reports = {split: LoadReport() for split in SPLITS}
    keep = set(categories) if categories is not None else None

    # 1. the annotation files: which notes are wanted, and in which split
    wanted: list[tuple[Path, int, str, int, dict[str, Any]]] = []  # (file, hadm_id, split, note index, note)
    for path in _annotation_files(root, setting, code_version):
        adm = read_admission(path)
        hadm_id = adm["hadm_id"]
        if hadm_id not in splits:  # the two halves of the dataset disagree: no split to report it under
            raise RecordError(
                str(path), None, "hadm_id", f"admission is in no MDace-ev-*.csv split file of {setting}", str(hadm_id)
            )
        for i, note in enumerate(adm["notes"]):
            if keep is None or note["category"] in keep:
                wanted.append((path, hadm_id, splits[hadm_id], i, note))

    # 2. the text of those notes, then one record per note
    texts = read_note_texts(notes_path, (note["note_id"] for *_, note in wanted))
    for path, hadm_id, split, i, note in sorted(wanted, key=lambda w: (w[1], w[3])):
        report = reports[split]
        try:
            if note["note_id"] not in texts:
                raise RecordError(
                    str(notes_path),
                    None,
                    "ROW_ID",
                    "note annotated by MDACE is not in NOTEEVENTS",
                    str(note["note_id"]),
                )
            record = _note_record(
                path,
                f"notes[{i}]",
                hadm_id,
                note,
                texts[note["note_id"]],
                noteevents=notes_path,
                setting=CONTRACT_SETTING[setting],
                trim_evidence=trim_evidence,
                on_error=on_error,
                report=report,
            )
        except RecordError as err:
            _fail(err, on_error, report)
            continue
        report.records.append(record)
    return reports


def load_splits(
    noteevents: str | Path | None = None,
    *,
    data_dir: str | Path | None = None,
    setting: Setting = "Inpatient",
    code_version: CodeVersion = "ICD-10",
    categories: Sequence[str] | None = None,
    trim_evidence: bool = False,
    on_error: OnError = "raise",
) -> dict[str, list[NoteRecord]]:
    """{"train", "val", "test"} -> MDACE records (see `read_splits`); skips are counted in the log."""
    reports = read_splits(
        noteevents,
        data_dir=data_dir,
        setting=setting,
        code_version=code_version,
        categories=categories,
        trim_evidence=trim_evidence,
        on_error=on_error,
    )
    return records_of(reports, "mdace")


def annotation_stats(
    data_dir: str | Path | None = None, *, setting: Setting = "Inpatient", code_version: CodeVersion = "ICD-10"
) -> dict[str, Any]:
    """Statistics of the annotation JSON alone (no MIMIC text needed), for the data card.

    admissions/notes/annotations per split, notes per category, annotations and distinct codes per
    code system, annotation types, and span length percentiles (characters).
    """
    root = require_path(data_dir if data_dir is not None else default_dir(), option="data_dir", what="MDACE folder")
    splits = read_split_files(root, setting)
    per_split: dict[str, Counter[str]] = {s: Counter() for s in (*SPLITS, "no split")}
    categories: Counter[str] = Counter()
    types: Counter[str] = Counter()
    codes: dict[str, Counter[str]] = {}
    lengths: list[int] = []
    for path in _annotation_files(root, setting, code_version):
        adm = read_admission(path)
        counts = per_split[splits.get(adm["hadm_id"], "no split")]
        counts["admissions"] += 1
        for note in adm["notes"]:
            counts["notes"] += 1
            categories[note["category"]] += 1
            for ann in note["annotations"]:
                counts["annotations"] += 1
                types[str(ann.get("type"))] += 1
                codes.setdefault(ann["code_system"], Counter())[ann["code"]] += 1
                lengths.append(ann["end"] - ann["begin"])
    arr = np.asarray(lengths or [0], dtype=float)
    return {
        "setting": setting,
        "code_version": code_version,
        "splits": {s: dict(c) for s, c in per_split.items() if c or s in SPLITS},
        "note_categories": dict(categories.most_common()),
        "systems": {s: {"annotations": sum(c.values()), "distinct_codes": len(c)} for s, c in sorted(codes.items())},
        "annotation_types": dict(types.most_common()),
        "span_chars": {f"p{p}": float(np.percentile(arr, p)) for p in (5, 25, 50, 75, 95)} | {"max": float(arr.max())},
    }
