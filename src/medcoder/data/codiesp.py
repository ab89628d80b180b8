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
- Diagnosis codes are made billable in the configured ICD-10-CM release (`billable_icd10cm=True`,
  the default). CodiEsp was coded with CIE-10-ES 2018: some of its codes are categories that the
  US release has since split (R51 -> R51.9, FY2021) or that need a 7th character (T14.90 ->
  T14.90XA). A model must never learn, nor be scored on, a code it is not allowed to emit, so each
  such code is replaced by its successor from `ICD10CM_SUCCESSORS` (an explicit table: no guessing
  by rule), and a code that is still not billable is dropped. Both are counted per code and logged
  (codes and counts only). `billable_icd10cm=False` keeps the codes as distributed, for audits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcoder.codes.formats import ICD10CM, ICD10PCS, CodeFormatError, normalize_code
from medcoder.data.loading import OnError, check_on_error, records_of, require_path
from medcoder.data.schema import LoadReport, NoteRecord, RecordError, parse_record
from medcoder.paths import shared_data_dir

# contract split name -> CodiEsp folder name
SPLIT_DIRS: dict[str, str] = {"train": "train", "val": "dev", "test": "test"}

log = logging.getLogger(__name__)

# CodiEsp diagnosis code -> its billable successor in the configured ICD-10-CM release. Only codes
# whose successor is unambiguous: the category's own "unspecified" child, or the 7th character "A"
# (initial encounter: a case report describes the encounter that treats the condition). Codes the
# release split by meaning (R74.0 -> transaminase R74.01 or LDH R74.02) or by laterality or site
# are not here: they are dropped and counted. tests/test_loaders_codiesp.py checks every entry:
# the source is not billable, the successor is billable and lies under the source.
ICD10CM_SUCCESSORS: dict[str, str] = {
    # the five of the top-50 train codes
    "R51": "R51.9",  # Headache -> Headache, unspecified (R51 split in FY2021)
    "T14.8": "T14.8XXA",  # Other injury of unspecified body region, initial encounter
    "T14.90": "T14.90XA",  # Injury, unspecified, initial encounter
    "M54.5": "M54.50",  # Low back pain -> Low back pain, unspecified (M54.5 split in FY2022)
    "R05": "R05.9",  # Cough -> Cough, unspecified (R05 split in FY2023)
    # further categories split since 2018, mapped to their "unspecified" child
    "E87.2": "E87.20",  # Acidosis, unspecified (FY2023)
    "K56.60": "K56.609",  # Unspecified intestinal obstruction, unspecified as to partial versus complete
    "D72.1": "D72.10",  # Eosinophilia, unspecified (FY2024)
    "I48.2": "I48.20",  # Chronic atrial fibrillation, unspecified (FY2020)
    "I71.4": "I71.40",  # Abdominal aortic aneurysm, without rupture, unspecified (FY2023)
    "M79.1": "M79.10",  # Myalgia, unspecified site (FY2022)
    "K20.9": "K20.90",  # Esophagitis, unspecified without bleeding (FY2022)
    "C90.0": "C90.00",  # Multiple myeloma not having achieved remission
    "C34.9": "C34.90",  # Malignant neoplasm of unspecified part of unspecified bronchus or lung
    "I82.40": "I82.409",  # Acute DVT of unspecified deep veins of unspecified lower extremity
    "H43.1": "H43.10",  # Vitreous hemorrhage, unspecified eye
    # codes that need the 7th character: initial encounter
    "T14.91": "T14.91XA",  # Suicide attempt, initial encounter
    "T07": "T07.XXXA",  # Unspecified multiple injuries, initial encounter
    "W19.XXX": "W19.XXXA",  # Unspecified fall, initial encounter
    "X58.XXX": "X58.XXXA",  # Exposure to other specified factors, initial encounter
}


@dataclass
class Recoding:
    """What making the diagnosis codes billable changed: (code, successor) and dropped code counts."""

    mapped: Counter[tuple[str, str]] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)

    def log_summary(self, split: str) -> None:
        """One log line per kind of change, codes and counts only (never note text or ids)."""
        if self.mapped:
            pairs = ", ".join(f"{a}->{b} x{n}" for (a, b), n in self.mapped.most_common())
            log.info("codiesp %s: %d diagnosis assignment(s) mapped to their billable successor: %s",
                     split, sum(self.mapped.values()), pairs)  # fmt: skip
        if self.dropped:
            codes = ", ".join(f"{c} x{n}" for c, n in self.dropped.most_common(20))
            more = f" (and {len(self.dropped) - 20} more codes)" if len(self.dropped) > 20 else ""
            log.warning("codiesp %s: dropped %d diagnosis assignment(s) not billable in ICD-10-CM %s and without a "
                        "successor in ICD10CM_SUCCESSORS: %s%s", split, sum(self.dropped.values()),
                        _code_set_version(), codes, more)  # fmt: skip


def _code_set_version() -> str:
    from medcoder.codes import icd10cm

    return icd10cm.CODE_SET_VERSION


def billable_codes(codes: Sequence[str], recoding: Recoding) -> list[str]:
    """`codes` (canonical ICD-10-CM) made billable: successors from ICD10CM_SUCCESSORS, codes still
    not billable dropped, repeats removed (R05 and R05.9 on one note are one label); `recoding` counts."""
    from medcoder.codes import icd10cm

    out: list[str] = []
    for code in codes:
        successor = ICD10CM_SUCCESSORS.get(code, code)
        if successor != code:
            recoding.mapped[(code, successor)] += 1
        if not (icd10cm.is_valid(successor) and icd10cm.is_billable(successor)):
            recoding.dropped[code] += 1
            continue
        if successor not in out:
            out.append(successor)
    return out


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
                    raise RecordError(
                        str(tsv), lineno, "<line>", f"expected 2 tab-separated fields, got {len(fields)}", note_id
                    )
                if note_id not in texts:
                    raise RecordError(
                        str(tsv), lineno, "articleID", "has no readable text file in text_files_en", note_id
                    )
                try:
                    code = normalize_code(system, fields[1])
                except CodeFormatError as exc:
                    hint = ""
                    if system == ICD10PCS:
                        hint = (
                            " (CodiEsp gives some procedures as 4-character ICD-10-PCS prefixes;"
                            " load with include_procedures=False, or on_error='skip' to list them)"
                        )
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
    billable_icd10cm: bool = True,
) -> LoadReport:
    """One split ("train", "val" or "test") as a LoadReport: records plus every skipped item.

    `billable_icd10cm`: map diagnosis codes to billable successors and drop the rest (module docstring)."""
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
        system: _read_codes(
            require_path(tsv, option="data_dir", what=f"CodiEsp {system} table"), system, texts, on_error, report
        )
        for system, tsv in tables
    }
    if billable_icd10cm:
        recoding = Recoding()
        codes[ICD10CM] = {note_id: billable_codes(c, recoding) for note_id, c in codes[ICD10CM].items()}
        recoding.log_summary(split)
    for note_id, text in texts.items():
        obj: dict[str, Any] = {
            "id": note_id,
            "text": text,
            "codes": [
                {"system": system, "code": c} for system, by_note in codes.items() for c in by_note.get(note_id, [])
            ],
        }
        report.records.append(parse_record(obj, source=str(text_dir / f"{note_id}.txt")))
    return report


def read_splits(
    data_dir: str | Path | None = None,
    *,
    include_procedures: bool = True,
    on_error: OnError = "raise",
    billable_icd10cm: bool = True,
) -> dict[str, LoadReport]:
    """All three splits as LoadReports (see `read_split`)."""
    return {
        split: read_split(
            split,
            data_dir=data_dir,
            include_procedures=include_procedures,
            on_error=on_error,
            billable_icd10cm=billable_icd10cm,
        )
        for split in SPLIT_DIRS
    }


def load_splits(
    data_dir: str | Path | None = None,
    *,
    include_procedures: bool = True,
    on_error: OnError = "raise",
    billable_icd10cm: bool = True,
) -> dict[str, list[NoteRecord]]:
    """{"train", "val", "test"} -> records; with on_error="skip", skipped rows are counted in the log.
    Diagnosis codes are made billable unless `billable_icd10cm=False` (module docstring)."""
    reports = read_splits(
        data_dir, include_procedures=include_procedures, on_error=on_error, billable_icd10cm=billable_icd10cm
    )
    return records_of(reports, "codiesp")


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
    state it; load with `billable_icd10cm=False` to audit the codes as distributed. Per split:
    assignments, invalid_assignments (code not in the release),
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
