"""MIMIC-IV and MIMIC-III discharge summaries with their ICD codes, in the splits of Edin et al. 2023.

Edin et al., "Automated Medical Coding on MIMIC-III and MIMIC-IV: A Critical Review and
Replicability Study" (SIGIR 2023, github.com/JoakimEdin/medical-coding-reproducibility) define the
benchmark splits most current work reports on. Users bring the credentialed PhysioNet files
(nothing here ships MIMIC data) plus the split file from that repository (`files/data/...`):

MIMIC-IV (`data_dir` = mimiciv/<version>, `note_dir` = mimic-iv-note/<version>, default data_dir):
    <data_dir>/hosp/diagnoses_icd.csv.gz    subject_id, hadm_id, seq_num, icd_code, icd_version
    <data_dir>/hosp/procedures_icd.csv.gz   subject_id, hadm_id, seq_num, chartdate, icd_code, icd_version
    <note_dir>/note/discharge.csv.gz        note_id, subject_id, hadm_id, note_type, note_seq, ..., text
    split file mimiciv_icd10_split.feather (or _icd9_): columns _id (= hadm_id), split
MIMIC-III (`data_dir` = mimiciii/1.4):
    <data_dir>/NOTEEVENTS.csv.gz       ROW_ID, SUBJECT_ID, HADM_ID, CHARTDATE, ..., CATEGORY, DESCRIPTION, ..., TEXT
    <data_dir>/DIAGNOSES_ICD.csv.gz    ROW_ID, SUBJECT_ID, HADM_ID, SEQ_NUM, ICD9_CODE
    <data_dir>/PROCEDURES_ICD.csv.gz   ROW_ID, SUBJECT_ID, HADM_ID, SEQ_NUM, ICD9_CODE
    split file mimiciii_clean_splits.feather: columns _id, split
Each table may also be an unzipped `.csv`; a split file may be `.feather` or `.csv`.

What follows Edin et al., so numbers stay comparable:
- one record per admission (id = hadm_id); the split file decides which admissions exist and
  their split ("train"/"val"/"test"); only admissions it lists are read;
- MIMIC-IV: discharge notes; MIMIC-III: CATEGORY "Discharge summary" (report and addenda joined);
  duplicate texts of one admission are kept once;
- codes of one ICD version per dataset (MIMIC-IV: `icd_version`, MIMIC-III: ICD-9), diagnoses and
  procedures, duplicates removed; codes seen in fewer than `min_code_count` (10) admissions of the
  dataset are removed (their rule; counted over the admissions the split file lists, which gives
  the same kept set because they listed only admissions with at least one kept code).
What deliberately differs:
- the text is kept raw. Edin et al. lower-case and strip digits and punctuation for their models;
  that is a model's tokenisation choice, and raw text keeps evidence offsets meaningful.
- notes of one admission are joined with a blank line, in order (MIMIC-IV note_seq; MIMIC-III
  report before addenda, then chart date, then ROW_ID), rather than with one space.
- encounter_date is left unset: MIMIC dates are shifted into the 22nd century per patient, so they
  carry no calendar meaning (and would pick nonsense code-set versions).

ICD-9 codes map to ICD-9-CM (diagnoses) / ICD-9-PCS (procedures), ICD-10 to ICD-10-CM /
ICD-10-PCS, by the table and `icd_version`; MIMIC stores codes without dots and `normalize_code`
puts the dot back. Known MIMIC-III quirk, left as is (as Edin et al. do): PROCEDURES_ICD stores
ICD-9 procedure codes as numbers, so leading zeros are lost (00.66 appears as "66"). Setting is
"inpatient" throughout. Error line numbers are CSV record numbers (header = 1), which equal file
lines except in note tables, whose text fields span lines.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from medcoder.codes.formats import ICD9CM, ICD9PCS, ICD10CM, ICD10PCS, CodeFormatError, normalize_code
from medcoder.data.loading import DatasetNotFoundError, OnError, check_on_error, records_of, require_path
from medcoder.data.schema import LoadReport, NoteRecord, RecordError, parse_record
from medcoder.defaults import SPLITS
from medcoder.paths import shared_data_dir

log = logging.getLogger(__name__)

DIAGNOSIS_SYSTEMS: dict[int, str] = {9: ICD9CM, 10: ICD10CM}
PROCEDURE_SYSTEMS: dict[int, str] = {9: ICD9PCS, 10: ICD10PCS}
MIN_CODE_COUNT = 10  # Edin et al.'s MIN_TARGET_COUNT
# rows per pandas chunk, so memory stays bounded on multi-GB tables (a discharge note is ~10 KB)
_CODE_CHUNK_ROWS = 500_000
_NOTE_CHUNK_ROWS = 10_000
_INT = re.compile(r"^\s*(\d+)(\.0*)?\s*$")


# ---------------------------------------------------------------- reading tables
def _table(folder: Path, stem: str, option: str, what: str) -> Path:
    """`<folder>/<stem>.csv.gz`, else `<stem>.csv`; an error naming both and the option otherwise."""
    for suffix in (".csv.gz", ".csv"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    raise DatasetNotFoundError(
        f"{what} not found: looked for {folder / stem}.csv.gz and .csv (set it with the `{option}` option)"
    )


def _chunks(path: Path, columns: list[str], rows: int) -> Iterator[pd.DataFrame]:
    """The named columns as strings ("" for empty cells), in chunks whose index is the data row number."""
    header = list(pd.read_csv(path, nrows=0).columns)
    for column in columns:
        if column not in header:
            raise RecordError(str(path), 1, column, f"missing column (the header has: {', '.join(header)})")
    yield from pd.read_csv(path, usecols=columns, dtype=str, keep_default_na=False, na_filter=False, chunksize=rows)


def _as_int(value: Any) -> int | None:
    match = _INT.match(str(value))
    return int(match.group(1)) if match else None


def read_split_file(path: str | Path) -> dict[int, str]:
    """hadm_id -> "train" | "val" | "test" from an Edin et al. split file (feather or CSV; `_id` or `hadm_id`).

    The split file defines the dataset, so any problem in it is an error whatever `on_error` says.
    """
    path = Path(path)
    frame = pd.read_feather(path) if path.suffix == ".feather" else pd.read_csv(path, dtype=str, keep_default_na=False)
    id_col = next((c for c in ("_id", "hadm_id") if c in frame.columns), None)
    if id_col is None or "split" not in frame.columns:
        raise RecordError(
            str(path),
            1,
            "_id" if id_col is None else "split",
            f"missing column (expected _id or hadm_id, and split; found {', '.join(map(str, frame.columns))})",
        )
    first_line = 2 if path.suffix != ".feather" else 1  # CSV: header is line 1; feather: 1-based row
    splits: dict[int, str] = {}
    for i, (raw_id, split) in enumerate(zip(frame[id_col], frame["split"], strict=True)):
        hadm_id = _as_int(raw_id)
        if hadm_id is None:
            raise RecordError(str(path), i + first_line, id_col, f"{raw_id!r} is not an admission id")
        if split not in SPLITS:
            raise RecordError(
                str(path), i + first_line, "split", f"{split!r} is not one of {', '.join(SPLITS)}", str(hadm_id)
            )
        if hadm_id in splits:
            raise RecordError(str(path), i + first_line, id_col, "admission listed twice", str(hadm_id))
        splits[hadm_id] = split
    return splits


def _fail(err: RecordError, on_error: OnError, report: LoadReport) -> None:
    if on_error == "raise":
        raise err
    report.skipped.append(err)


# ---------------------------------------------------------------- codes
def _read_codes(
    path: Path,
    *,
    columns: dict[str, str],
    systems: dict[int, str],
    version: int,
    fixed_version: bool,
    wanted: dict[int, str],
    reports: dict[str, LoadReport],
    on_error: OnError,
) -> dict[int, list[tuple[float, int, str, str]]]:
    """hadm_id -> [(seq_num, row, system, canonical code)] for the wanted admissions and ICD version.

    `columns` maps "hadm_id", "seq_num", "code" (and "version" unless `fixed_version`) to header
    names. Empty code cells carry no label and are counted, not reported; codes of the other ICD
    version belong to the other dataset and are passed over.
    """
    wanted_str = {str(h) for h in wanted}
    names = [columns[k] for k in ("hadm_id", "seq_num", "code")] + ([] if fixed_version else [columns["version"]])
    normalised: dict[tuple[str, str], str | CodeFormatError] = {}
    codes: dict[int, list[tuple[float, int, str, str]]] = {}
    empty = 0
    for chunk in _chunks(path, names, _CODE_CHUNK_ROWS):
        chunk = chunk[chunk[columns["hadm_id"]].isin(wanted_str)]
        versions = [str(version)] * len(chunk) if fixed_version else chunk[columns["version"]]
        for row, hadm_raw, seq_raw, raw, version_raw in zip(
            chunk.index,
            chunk[columns["hadm_id"]],
            chunk[columns["seq_num"]],
            chunk[columns["code"]],
            versions,
            strict=True,
        ):
            hadm_id = int(hadm_raw)
            line = int(row) + 2
            if not raw.strip():
                empty += 1
                continue
            row_version = _as_int(version_raw)
            if row_version not in systems:
                _fail(
                    RecordError(str(path), line, columns["version"], f"{version_raw!r} is not 9 or 10", str(hadm_id)),
                    on_error,
                    reports[wanted[hadm_id]],
                )
                continue
            if row_version != version:
                continue
            system = systems[row_version]
            key = (system, raw)
            if key not in normalised:
                try:
                    normalised[key] = normalize_code(system, raw)
                except CodeFormatError as exc:
                    normalised[key] = exc
            code = normalised[key]
            if isinstance(code, CodeFormatError):
                _fail(
                    RecordError(str(path), line, columns["code"], str(code), str(hadm_id)),
                    on_error,
                    reports[wanted[hadm_id]],
                )
                continue
            seq = _as_int(seq_raw)
            codes.setdefault(hadm_id, []).append((float("inf") if seq is None else seq, line, system, code))
    if empty:
        log.info("%s: %d row(s) of listed admissions have an empty code cell (no label; ignored)", path.name, empty)
    return codes


# ---------------------------------------------------------------- assembling records
def _assemble(
    *,
    wanted: dict[int, str],
    notes: dict[int, list[tuple[tuple, str]]],
    subjects: dict[int, str],
    codes: list[dict[int, list[tuple[float, int, str, str]]]],
    notes_path: Path,
    codes_path: Path,
    min_code_count: int,
    on_error: OnError,
    reports: dict[str, LoadReport],
) -> dict[str, LoadReport]:
    """Join notes and codes per admission, apply the code-frequency rule, validate, sort by hadm_id."""
    candidates: dict[int, tuple[str, list[tuple[str, str]]]] = {}
    for hadm_id in sorted(wanted):
        report = reports[wanted[hadm_id]]
        if hadm_id not in notes:
            _fail(
                RecordError(
                    str(notes_path),
                    None,
                    "hadm_id",
                    "admission in the split file has no discharge summary",
                    str(hadm_id),
                ),
                on_error,
                report,
            )
            continue
        texts = [text for _, text in sorted(notes[hadm_id], key=lambda n: n[0])]
        text = "\n\n".join(dict.fromkeys(texts))  # keep the first copy of a repeated text, in order
        assigned: list[tuple[str, str]] = []
        for table in codes:  # diagnoses first, then procedures; each by seq_num
            for _, _, system, code in sorted(table.get(hadm_id, [])):
                if (system, code) not in assigned:
                    assigned.append((system, code))
        if not assigned:
            _fail(
                RecordError(
                    str(codes_path),
                    None,
                    "codes",
                    "admission in the split file has no codes of this ICD version",
                    str(hadm_id),
                ),
                on_error,
                report,
            )
            continue
        candidates[hadm_id] = (text, assigned)

    admissions_with = Counter(label for _, assigned in candidates.values() for label in assigned)
    rare = {label for label, n in admissions_with.items() if n < min_code_count}
    if rare:
        log.info(
            "dropped %d distinct code(s) seen in fewer than %d admissions (%d assignments), as Edin et al. do",
            len(rare),
            min_code_count,
            sum(admissions_with[label] for label in rare),
        )
    for hadm_id, (text, assigned) in candidates.items():
        report = reports[wanted[hadm_id]]
        kept = [{"system": s, "code": c} for s, c in assigned if (s, c) not in rare]
        if not kept:
            _fail(
                RecordError(
                    str(codes_path),
                    None,
                    "codes",
                    f"no codes left after dropping codes seen in fewer than {min_code_count} admissions",
                    str(hadm_id),
                ),
                on_error,
                report,
            )
            continue
        obj = {
            "id": str(hadm_id),
            "patient_id": subjects.get(hadm_id),
            "setting": "inpatient",
            "text": text,
            "codes": kept,
        }
        try:
            report.records.append(parse_record(obj, source=str(notes_path)))
        except RecordError as err:
            _fail(err, on_error, report)
    return reports


def _check_options(on_error: str, min_code_count: int) -> None:
    check_on_error(on_error)
    if min_code_count < 1:
        raise ValueError(f"min_code_count must be at least 1 (1 keeps every code), got {min_code_count}")


# ---------------------------------------------------------------- MIMIC-IV
def _default_split(root: Path, stem: str) -> Path:
    """`<root>/<stem>.feather` (as Edin et al. ship it), else `<stem>.csv` when only that exists."""
    feather, csv_file = root / f"{stem}.feather", root / f"{stem}.csv"
    return csv_file if csv_file.is_file() and not feather.is_file() else feather


def _mimic_iv_paths(
    data_dir: str | Path | None,
    *,
    note_dir: str | Path | None = None,
    split_file: str | Path | None = None,
    icd_version: int = 10,
    include_procedures: bool = True,
) -> tuple[Path, Path, Path | None, Path]:
    """(split file, diagnoses, procedures or None, discharge notes) of a MIMIC-IV layout; a missing one
    raises DatasetNotFoundError naming it and its option."""
    root = require_path(
        data_dir if data_dir is not None else shared_data_dir() / "mimic-iv", option="data_dir", what="MIMIC-IV folder"
    )
    note_root = require_path(note_dir if note_dir is not None else root, option="note_dir", what="MIMIC-IV-Note folder")
    split_path = require_path(
        split_file if split_file is not None else _default_split(root, f"mimiciv_icd{icd_version}_split"),
        option="split_file",
        what="Edin et al. MIMIC-IV split file",
    )
    hosp = root / "hosp"
    diagnoses_path = _table(hosp, "diagnoses_icd", "data_dir", "MIMIC-IV diagnoses table")
    procedures_path = (
        _table(hosp, "procedures_icd", "data_dir", "MIMIC-IV procedures table") if include_procedures else None
    )
    notes_path = _table(note_root / "note", "discharge", "note_dir", "MIMIC-IV-Note discharge table")
    return split_path, diagnoses_path, procedures_path, notes_path


def required_files_iv(data_dir: str | Path) -> list[Path]:
    """The files `read_mimic_iv` reads with its default options from `data_dir` (what `medcoder data` checks)."""
    return [p for p in _mimic_iv_paths(data_dir) if p is not None]


def read_mimic_iv(
    data_dir: str | Path | None = None,
    *,
    note_dir: str | Path | None = None,
    split_file: str | Path | None = None,
    icd_version: Literal[9, 10] = 10,
    include_procedures: bool = True,
    min_code_count: int = MIN_CODE_COUNT,
    on_error: OnError = "raise",
) -> dict[str, LoadReport]:
    """MIMIC-IV ICD-10 (or ICD-9) as {"train", "val", "test"} LoadReports.

    Defaults: data_dir `<shared data>/mimic-iv`, note_dir = data_dir, split_file
    `<data_dir>/mimiciv_icd<icd_version>_split.feather`.
    """
    _check_options(on_error, min_code_count)
    if icd_version not in (9, 10):
        raise ValueError(f"icd_version must be 9 or 10, got {icd_version!r}")
    split_path, diagnoses_path, procedures_path, notes_path = _mimic_iv_paths(
        data_dir,
        note_dir=note_dir,
        split_file=split_file,
        icd_version=icd_version,
        include_procedures=include_procedures,
    )

    wanted = read_split_file(split_path)
    reports = {split: LoadReport() for split in SPLITS}
    columns = {"hadm_id": "hadm_id", "seq_num": "seq_num", "code": "icd_code", "version": "icd_version"}
    codes = [
        _read_codes(
            diagnoses_path,
            columns=columns,
            systems=DIAGNOSIS_SYSTEMS,
            version=icd_version,
            fixed_version=False,
            wanted=wanted,
            reports=reports,
            on_error=on_error,
        )
    ]
    if procedures_path is not None:
        codes.append(
            _read_codes(
                procedures_path,
                columns=columns,
                systems=PROCEDURE_SYSTEMS,
                version=icd_version,
                fixed_version=False,
                wanted=wanted,
                reports=reports,
                on_error=on_error,
            )
        )

    wanted_str = {str(h) for h in wanted}
    notes: dict[int, list[tuple[tuple, str]]] = {}
    subjects: dict[int, str] = {}
    for chunk in _chunks(notes_path, ["subject_id", "hadm_id", "note_seq", "text"], _NOTE_CHUNK_ROWS):
        chunk = chunk[chunk["hadm_id"].isin(wanted_str)]
        for row, subject, hadm_raw, seq, text in zip(
            chunk.index, chunk["subject_id"], chunk["hadm_id"], chunk["note_seq"], chunk["text"], strict=True
        ):
            hadm_id = int(hadm_raw)
            order = (_as_int(seq) if _as_int(seq) is not None else float("inf"), int(row))
            notes.setdefault(hadm_id, []).append((order, text))
            subjects.setdefault(hadm_id, subject.strip() or None)
    return _assemble(
        wanted=wanted,
        notes=notes,
        subjects=subjects,
        codes=codes,
        notes_path=notes_path,
        codes_path=diagnoses_path,
        min_code_count=min_code_count,
        on_error=on_error,
        reports=reports,
    )


# ---------------------------------------------------------------- MIMIC-III
def _mimic_iii_paths(
    data_dir: str | Path | None,
    *,
    split_file: str | Path | None = None,
    include_procedures: bool = True,
) -> tuple[Path, Path, Path | None, Path]:
    """(split file, diagnoses, procedures or None, NOTEEVENTS) of a MIMIC-III layout; a missing one
    raises DatasetNotFoundError naming it and its option."""
    root = require_path(
        data_dir if data_dir is not None else shared_data_dir() / "mimic-iii",
        option="data_dir",
        what="MIMIC-III folder",
    )
    split_path = require_path(
        split_file if split_file is not None else _default_split(root, "mimiciii_clean_splits"),
        option="split_file",
        what="Edin et al. MIMIC-III split file",
    )
    diagnoses_path = _table(root, "DIAGNOSES_ICD", "data_dir", "MIMIC-III diagnoses table")
    procedures_path = (
        _table(root, "PROCEDURES_ICD", "data_dir", "MIMIC-III procedures table") if include_procedures else None
    )
    notes_path = _table(root, "NOTEEVENTS", "data_dir", "MIMIC-III NOTEEVENTS table")
    return split_path, diagnoses_path, procedures_path, notes_path


def required_files_iii(data_dir: str | Path) -> list[Path]:
    """The files `read_mimic_iii` reads with its default options from `data_dir` (what `medcoder data` checks)."""
    return [p for p in _mimic_iii_paths(data_dir) if p is not None]


def read_mimic_iii(
    data_dir: str | Path | None = None,
    *,
    split_file: str | Path | None = None,
    include_procedures: bool = True,
    min_code_count: int = MIN_CODE_COUNT,
    on_error: OnError = "raise",
) -> dict[str, LoadReport]:
    """MIMIC-III (ICD-9) discharge summaries as {"train", "val", "test"} LoadReports.

    Defaults: data_dir `<shared data>/mimic-iii`, split_file `<data_dir>/mimiciii_clean_splits.feather`
    (Edin et al.'s "MIMIC-III clean"; their mimiciii_full/_50 split files work the same way).
    """
    _check_options(on_error, min_code_count)
    split_path, diagnoses_path, procedures_path, notes_path = _mimic_iii_paths(
        data_dir, split_file=split_file, include_procedures=include_procedures
    )

    wanted = read_split_file(split_path)
    reports = {split: LoadReport() for split in SPLITS}
    columns = {"hadm_id": "HADM_ID", "seq_num": "SEQ_NUM", "code": "ICD9_CODE"}
    codes = [
        _read_codes(
            diagnoses_path,
            columns=columns,
            systems=DIAGNOSIS_SYSTEMS,
            version=9,
            fixed_version=True,
            wanted=wanted,
            reports=reports,
            on_error=on_error,
        )
    ]
    if procedures_path is not None:
        codes.append(
            _read_codes(
                procedures_path,
                columns=columns,
                systems=PROCEDURE_SYSTEMS,
                version=9,
                fixed_version=True,
                wanted=wanted,
                reports=reports,
                on_error=on_error,
            )
        )

    wanted_str = {str(h) for h in wanted}
    notes: dict[int, list[tuple[tuple, str]]] = {}
    subjects: dict[int, str] = {}
    note_columns = ["ROW_ID", "SUBJECT_ID", "HADM_ID", "CHARTDATE", "CATEGORY", "DESCRIPTION", "TEXT"]
    for chunk in _chunks(notes_path, note_columns, _NOTE_CHUNK_ROWS):
        chunk = chunk[(chunk["CATEGORY"] == "Discharge summary") & chunk["HADM_ID"].isin(wanted_str)]
        for row_id, subject, hadm_raw, date, description, text in zip(
            chunk["ROW_ID"],
            chunk["SUBJECT_ID"],
            chunk["HADM_ID"],
            chunk["CHARTDATE"],
            chunk["DESCRIPTION"],
            chunk["TEXT"],
            strict=True,
        ):
            hadm_id = int(hadm_raw)
            order = (description != "Report", date, _as_int(row_id) or 0)
            notes.setdefault(hadm_id, []).append((order, text))
            subjects.setdefault(hadm_id, subject.strip() or None)
    return _assemble(
        wanted=wanted,
        notes=notes,
        subjects=subjects,
        codes=codes,
        notes_path=notes_path,
        codes_path=diagnoses_path,
        min_code_count=min_code_count,
        on_error=on_error,
        reports=reports,
    )


# ---------------------------------------------------------------- training-side entry points
def load_mimic_iv_splits(
    data_dir: str | Path | None = None,
    *,
    note_dir: str | Path | None = None,
    split_file: str | Path | None = None,
    icd_version: Literal[9, 10] = 10,
    include_procedures: bool = True,
    min_code_count: int = MIN_CODE_COUNT,
    on_error: OnError = "raise",
) -> dict[str, list[NoteRecord]]:
    """{"train", "val", "test"} -> MIMIC-IV records (see `read_mimic_iv`); skips are counted in the log."""
    reports = read_mimic_iv(
        data_dir,
        note_dir=note_dir,
        split_file=split_file,
        icd_version=icd_version,
        include_procedures=include_procedures,
        min_code_count=min_code_count,
        on_error=on_error,
    )
    return records_of(reports, "mimic-iv")


def load_mimic_iii_splits(
    data_dir: str | Path | None = None,
    *,
    split_file: str | Path | None = None,
    include_procedures: bool = True,
    min_code_count: int = MIN_CODE_COUNT,
    on_error: OnError = "raise",
) -> dict[str, list[NoteRecord]]:
    """{"train", "val", "test"} -> MIMIC-III records (see `read_mimic_iii`); skips are counted in the log."""
    reports = read_mimic_iii(
        data_dir,
        split_file=split_file,
        include_procedures=include_procedures,
        min_code_count=min_code_count,
        on_error=on_error,
    )
    return records_of(reports, "mimic-iii")


def load_splits(dataset: Literal["mimic-iv", "mimic-iii"] = "mimic-iv", **options: Any) -> dict[str, list[NoteRecord]]:
    """The common loader signature: `dataset` picks MIMIC-IV or MIMIC-III; options as in their loaders."""
    if dataset == "mimic-iv":
        return load_mimic_iv_splits(**options)
    if dataset == "mimic-iii":
        return load_mimic_iii_splits(**options)
    raise ValueError(f"unknown MIMIC dataset {dataset!r}; expected 'mimic-iv' or 'mimic-iii'")
