"""CodiEsp (CLEF eHealth 2020) as contract records: English text, ICD-10-CM and ICD-10-PCS codes.

CodiEsp is the platform's external benchmark: 1,000 Spanish clinical case reports coded by
experts, with machine translations to English. Layout (`<split>` is train, dev or test):

    <data_dir>/<split>/text_files_en/<id>.txt   English text (sentence split, one sentence a line)
    <data_dir>/<split>/<split>D.tsv             <id> TAB <ICD-10-CM code>, lower case (`r50.9`)
    <data_dir>/<split>/<split>P.tsv             <id> TAB <ICD-10-PCS code> (`bw03zzz`)
    <data_dir>/background/text_files_en/*.txt   2,751 unlabelled English cases

Choices, and why:
- The official split is kept: train -> "train", dev -> "val", test -> "test". Results are then
  comparable with the CodiEsp literature, and test is touched once.
- English records carry NO evidence spans. The offsets in `*X.tsv` point into the Spanish
  originals; the translation changes every offset and is sentence split, so mapping them would be
  a guess, and a wrong span is worse than none.
- The English text is kept exactly as distributed (sentence split, no re-joining), so character
  offsets predicted on it are offsets into the file.
- Codes are put in canonical form with `normalize_code`. About half of the procedure rows hold a
  4-character ICD-10-PCS prefix (section, body system, root operation, body part), which is not a
  code: with on_error="raise" that is an error naming file, line and code; with on_error="skip" the
  row is left out and listed in the report. A note is never dropped for a bad code row.
- `setting` is left unset: case reports mix inpatient and outpatient care and do not say which.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcoder.codes.formats import ICD10CM, ICD10PCS, CodeFormatError, normalize_code
from medcoder.data.schema import LoadReport, NoteRecord, RecordError, parse_record
from medcoder.data.sources import OnError, check_on_error, records_of, require_path
from medcoder.paths import shared_data_dir

# contract split name -> CodiEsp folder name
SPLIT_DIRS: dict[str, str] = {"train": "train", "val": "dev", "test": "test"}



def default_dir() -> Path:
    """`<shared data>/codiesp` (see `medcoder.paths.shared_data_dir`)."""
    return shared_data_dir() / "codiesp"


def _read_text(path: Path, note_id: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(str(path), None, "text", f"not valid UTF-8 (byte {exc.start})", note_id) from None


def _read_texts(folder: Path, on_error: OnError, report: LoadReport) -> dict[str, str]:
    """Note id (file stem) -> text for every `*.txt` in `folder`, in sorted id order."""
    texts: dict[str, str] = {}
    for path in sorted(folder.glob("*.txt")):
        try:
            texts[path.stem] = _read_text(path, path.stem)
        except RecordError as err:
            if on_error == "raise":
                raise
            report.skipped.append(err)
    return texts


def _read_codes(
    tsv: Path, system: str, texts: dict[str, str], on_error: OnError, report: LoadReport
) -> dict[str, list[str]]:
    """Note id -> canonical codes of `system`, in file order; bad rows raise or go to the report."""
    codes: dict[str, list[str]] = {}
    with tsv.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            fields = raw.rstrip("\r\n").split("\t")
            note_id = fields[0].strip() or None
            try:
                if len(fields) != 2:
                    raise RecordError(str(tsv), lineno, "<line>", f"expected 2 tab-separated fields, got {len(fields)}", note_id)
                if note_id not in texts:
                    raise RecordError(str(tsv), lineno, "articleID", "has no readable text file in text_files_en", note_id)
                try:
                    code = normalize_code(system, fields[1])
                except CodeFormatError as exc:
                    hint = ""
                    if system == ICD10PCS:
                        hint = (" (CodiEsp gives some procedures as 4-character ICD-10-PCS prefixes;"
                                " load with include_procedures=False, or on_error='skip' to list them)")
                    raise RecordError(str(tsv), lineno, "code", f"{exc}{hint}", note_id) from None
            except RecordError as err:
                if on_error == "raise":
                    raise
                report.skipped.append(err)
                continue
            if code not in codes.setdefault(note_id, []):
                codes[note_id].append(code)
    return codes


def read_split(
    split: str,
    *,
    data_dir: str | Path | None = None,
    include_procedures: bool = True,
    on_error: OnError = "raise",
) -> LoadReport:
    """One split ("train", "val" or "test") as a LoadReport: records plus every skipped item."""
    check_on_error(on_error)
    if split not in SPLIT_DIRS:
        raise ValueError(f"unknown CodiEsp split {split!r}; expected one of {', '.join(SPLIT_DIRS)}")
    root = require_path(data_dir if data_dir is not None else default_dir(), option="data_dir", what="CodiEsp folder")
    folder = SPLIT_DIRS[split]
    split_dir = require_path(root / folder, option="data_dir", what=f"CodiEsp {folder} folder")
    text_dir = require_path(split_dir / "text_files_en", option="data_dir", what="CodiEsp English text folder")

    report = LoadReport()
    texts = _read_texts(text_dir, on_error, report)
    tables = [(ICD10CM, split_dir / f"{folder}D.tsv")]
    if include_procedures:
        tables.append((ICD10PCS, split_dir / f"{folder}P.tsv"))
    codes = {
        system: _read_codes(require_path(tsv, option="data_dir", what=f"CodiEsp {system} table"), system, texts, on_error, report)
        for system, tsv in tables
    }
    for note_id, text in texts.items():
        obj: dict[str, Any] = {
            "id": note_id,
            "text": text,
            "codes": [{"system": system, "code": c} for system, by_note in codes.items() for c in by_note.get(note_id, [])],
        }
        report.records.append(parse_record(obj, source=str(text_dir / f"{note_id}.txt")))
    return report


def read_splits(
    data_dir: str | Path | None = None, *, include_procedures: bool = True, on_error: OnError = "raise"
) -> dict[str, LoadReport]:
    """All three splits as LoadReports (see `read_split`)."""
    return {
        split: read_split(split, data_dir=data_dir, include_procedures=include_procedures, on_error=on_error)
        for split in SPLIT_DIRS
    }


def load_splits(
    data_dir: str | Path | None = None, *, include_procedures: bool = True, on_error: OnError = "raise"
) -> dict[str, list[NoteRecord]]:
    """{"train", "val", "test"} -> records; with on_error="skip", skipped rows are counted in the log."""
    return records_of(read_splits(data_dir, include_procedures=include_procedures, on_error=on_error), "codiesp")


def load_background(data_dir: str | Path | None = None) -> list[NoteRecord]:
    """The 2,751 unlabelled English background cases (no codes): for throughput benchmarks."""
    root = require_path(data_dir if data_dir is not None else default_dir(), option="data_dir", what="CodiEsp folder")
    text_dir = require_path(root / "background" / "text_files_en", option="data_dir", what="CodiEsp background folder")
    report = LoadReport()
    texts = _read_texts(text_dir, "raise", report)
    return [parse_record({"id": i, "text": t}, source=str(text_dir / f"{i}.txt")) for i, t in texts.items()]


def icd10cm_validity(splits: dict[str, list[NoteRecord]]) -> dict[str, Any]:
    """How many ICD-10-CM diagnosis codes are not in the current ICD-10-CM release, per split.

    CodiEsp was coded with the Spanish CIE-10-ES 2018 edition; the platform only ever emits codes of
    its configured US release (`medcoder.codes.icd10cm.CODE_SET_VERSION`). Gold codes outside it
    can never be predicted, which caps recall: this helper measures that cap so model cards can
    state it. Per split: assignments, invalid_assignments (code not in the release),
    non_billable_assignments (in the release but not a billable leaf), distinct_codes, and
    invalid_codes (the sorted distinct codes that are not in the release).
    """
    from medcoder.codes import icd10cm

    out: dict[str, Any] = {"code_set_version": icd10cm.CODE_SET_VERSION, "splits": {}}
    for split, records in splits.items():
        assigned = [code for r in records for code in r.codes_of(ICD10CM)]
        invalid = [c for c in assigned if not icd10cm.is_valid(c)]
        non_billable = [c for c in assigned if icd10cm.is_valid(c) and not icd10cm.is_billable(c)]
        out["splits"][split] = {
            "assignments": len(assigned),
            "invalid_assignments": len(invalid),
            "non_billable_assignments": len(non_billable),
            "distinct_codes": len(set(assigned)),
            "invalid_codes": sorted(set(invalid)),
        }
    return out
