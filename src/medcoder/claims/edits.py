"""Payer edits a user supplies: CMS NCCI procedure-to-procedure (PTP) code-pair edits and medically unlikely
edits (MUE, units per code), looked up by date of service.

CPT codes and descriptors are AMA-licensed, so no edit data ships: a user loads the quarterly CMS files they
downloaded (or their payer's edits in the same columns) with `read_ptp_edits` and `read_mue_edits`.

Files are CSV or TSV with a header row. Header names match case-insensitively, ignoring spaces and
punctuation, and by prefix, so our short names (`column_1`) and CMS's long header texts ("Modifier 0=not
allowed 1=allowed 9=not applicable") both work. Lines above the header (CMS files open with a copyright
notice) are passed over; the header must be within the first 50 lines. A bad row is a RecordError naming
the file, the line and the column; there is no skip mode: an edit table with a row left out would
adjudicate differently without saying so.

Dates are YYYYMMDD (as CMS writes them) or YYYY-MM-DD. An edit applies on a date of service when
effective <= date <= deletion: the deletion date is the LAST day the edit applies, because CMS's quarterly
releases date a deletion to the last day of the quarter before the release (edits dropped from the
1 October 2010 release carry 30 September 2010) while additions carry the release's first day. A
deletion date before the effective date means the edit never applied; an empty deletion date or "*"
means it has not been deleted.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from medcoder.codes.formats import CPT, HCPCS, is_canonical
from medcoder.data.schema import RecordError

# NCCI PTP-associated modifiers (NCCI Policy Manual, chapter I): with modifier indicator 1, one of these on
# the pair's lines, when clinically appropriate, lets both codes pay.
NCCI_PTP_MODIFIERS: tuple[str, ...] = (
    # anatomic
    *("E1", "E2", "E3", "E4", "FA", "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9"),
    *("TA", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "LT", "RT", "LC", "LD", "RC", "LM", "RI"),
    # global surgery
    *("24", "25", "57", "58", "78", "79"),
    # other: separate procedure or session (59 and its X{EPSU} subsets), staged, repeat test
    *("27", "59", "91", "XE", "XS", "XP", "XU"),
)
NOT_ALLOWED, ALLOWED, NOT_APPLICABLE = 0, 1, 9  # PTP modifier indicator
MUE_LINE, MUE_DATE_POLICY, MUE_DATE_CLINICAL = 1, 2, 3  # MUE adjudication indicator (MAI)
HEADER_SEARCH_LINES = 50

_MUE_SETTINGS = ("practitioner", "outpatienthospital", "dmesupplier")
# our column name -> accepted header prefixes, normalised (lower case, letters and digits only)
PTP_COLUMNS: dict[str, tuple[str, ...]] = {
    "column_1": ("column1",),  # CMS "Column 1" / "Column1"
    "column_2": ("column2",),  # CMS "Column 2"
    "effective_date": ("effective",),  # CMS "Effective Date"
    "deletion_date": ("deletion",),  # CMS "Deletion Date *=no data"
    "modifier_indicator": ("modifier",),  # CMS "Modifier 0=not allowed 1=allowed 9=not applicable"
}
PTP_REQUIRED = ("column_1", "column_2", "effective_date", "modifier_indicator")
MUE_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code", "hcpcs", "cpt"),  # CMS "HCPCS/CPT Code"
    # CMS "Practitioner Services MUE Values" (or "Outpatient Hospital Services ...", "DME Supplier Services ...")
    "max_units": ("maxunits", "unitlimit", "muevalue", *(f"{s}servicesmue" for s in _MUE_SETTINGS)),
    # CMS "MUE Adjudication Indicator"
    "adjudication_indicator": ("adjudicationindicator", "mueadjudicationindicator", "mai"),
    "effective_date": ("effective",),  # optional: CMS MUE files are quarterly snapshots without dates
    "deletion_date": ("deletion",),
}
MUE_REQUIRED = ("code", "max_units", "adjudication_indicator")

_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_MAI = re.compile(r"^([123])(?:\D.*)?$")  # CMS writes "2 Date of Service Edit: Policy"


def service_day(value: date | str) -> date:
    """A date of service from a date or "YYYYMMDD"/"YYYY-MM-DD" (the 835's and 837's CCYYMMDD)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    parsed = _parse_date(value.strip())
    if parsed is None:
        raise ValueError("service_date must be a date or a string YYYYMMDD or YYYY-MM-DD")
    return parsed


def _parse_date(text: str) -> date | None:
    match = _DATE.match(text)
    if not match or len(text) not in (8, 10):
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _active(effective: date | None, deletion: date | None, day: date) -> bool:
    return (effective is None or effective <= day) and (deletion is None or day <= deletion)


@dataclass(frozen=True)
class PtpEdit:
    """One code pair: billed together on one date of service, the column-2 code is denied unless the
    modifier indicator allows an NCCI PTP-associated modifier and one is reported."""

    column_1: str
    column_2: str
    effective: date
    deletion: date | None  # the last day the edit applies; None: not deleted
    modifier_indicator: int  # 0 never bypassed, 1 bypassed by an NCCI PTP-associated modifier, 9 not applicable

    def active_on(self, day: date | str) -> bool:
        """effective <= day <= deletion (the deletion date is the last day the edit applies)."""
        return _active(self.effective, self.deletion, service_day(day))

    def bypassed_by(self, modifiers: Iterable[str]) -> bool:
        """True when these modifiers (those reported on the pair's lines; NCCI expects them on the column-2
        code) let both codes pay: indicator 1 and one of NCCI_PTP_MODIFIERS. Indicator 0 is never bypassed;
        indicator 9 edits nothing, so there is nothing to bypass."""
        if self.modifier_indicator == NOT_APPLICABLE:
            return True
        wanted = {m.strip().upper() for m in modifiers}
        return self.modifier_indicator == ALLOWED and not wanted.isdisjoint(NCCI_PTP_MODIFIERS)


@dataclass(frozen=True)
class MueEdit:
    """The most units of `code` a provider may report for one beneficiary: per claim line (MAI 1), or per
    date of service, absolute by policy (MAI 2) or by clinical benchmark (MAI 3)."""

    code: str
    max_units: int
    adjudication_indicator: int
    effective: date | None = None  # None: the file's rows carry no dates and apply whenever the file does
    deletion: date | None = None

    def active_on(self, day: date | str) -> bool:
        return _active(self.effective, self.deletion, service_day(day))


class PtpEdits:
    """The PTP edits of one or more files, by unordered code pair."""

    def __init__(self, edits: Iterable[PtpEdit]):
        self._by_pair: dict[tuple[str, str], list[PtpEdit]] = {}
        for edit in edits:
            self._by_pair.setdefault(_pair(edit.column_1, edit.column_2), []).append(edit)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_pair.values())

    def conflict(self, code_a: str, code_b: str, service_date: date | str) -> PtpEdit | None:
        """The edit that applies to these two codes on this date of service, in either order, or None.

        Indicator-9 edits are no conflict and never returned. Should two edits of the pair apply on one date
        (CMS files should not have that), the one a modifier cannot bypass (indicator 0) is returned."""
        day = service_day(service_date)
        edits = self._by_pair.get(_pair(code_a, code_b), [])
        active = [e for e in edits if e.modifier_indicator != NOT_APPLICABLE and e.active_on(day)]
        return min(active, key=lambda e: e.modifier_indicator, default=None)


class MueEdits:
    """The MUEs of one file, by code. `read_mue_edits` refuses two rows of one code that apply on one day."""

    def __init__(self, edits: Iterable[MueEdit]):
        self._by_code: dict[str, list[MueEdit]] = {}
        for edit in edits:
            self._by_code.setdefault(edit.code, []).append(edit)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_code.values())

    def limit(self, code: str, service_date: date | str) -> MueEdit | None:
        """The MUE that applies to `code` on this date of service, or None when the code has none."""
        day = service_day(service_date)
        return next((e for e in self._by_code.get(code.strip().upper(), []) if e.active_on(day)), None)


def _pair(code_a: str, code_b: str) -> tuple[str, str]:
    a, b = code_a.strip().upper(), code_b.strip().upper()
    return (a, b) if a <= b else (b, a)


def _normalised(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.lower())


def _read_text(path: Path) -> str:
    """The file as text: UTF-8, else Windows-1252 (CMS's text files write their copyright sign that way;
    codes, dates and indicators are ASCII either way)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


class _Table:
    """A CSV/TSV file's rows after its header, with the header's columns resolved to our names."""

    def __init__(self, path: str | Path, columns: Mapping[str, tuple[str, ...]], required: tuple[str, ...]):
        self.source = str(path)
        text = _read_text(Path(path))
        head = text.splitlines()[:HEADER_SEARCH_LINES]
        self._reader = csv.reader(text.splitlines(), delimiter="\t" if any("\t" in h for h in head) else ",")
        for row in self._reader:
            found = self._resolve(row, columns)
            if all(name in found for name in required):
                twice = next((name for name, positions in found.items() if len(positions) > 1), None)
                if twice is not None:
                    where = " and ".join(str(p + 1) for p in found[twice])
                    raise RecordError(self.source, self._reader.line_num, twice, f"columns {where} all read as it")
                self.index = {name: positions[0] for name, positions in found.items()}
                return
            if self._reader.line_num >= HEADER_SEARCH_LINES:
                break
        expected = ", ".join(required)
        message = f"no header row with the columns {expected} in the first {HEADER_SEARCH_LINES} lines"
        raise RecordError(self.source, None, "<header>", message)

    @staticmethod
    def _resolve(row: list[str], columns: Mapping[str, tuple[str, ...]]) -> dict[str, list[int]]:
        """Our column name -> the positions of the cells that read as it (the first matching name wins)."""
        found: dict[str, list[int]] = {}
        for position, cell in enumerate(row):
            key = _normalised(cell)
            name = next((n for n, prefixes in columns.items() if key and key.startswith(prefixes)), None)
            if name is not None:
                found.setdefault(name, []).append(position)
        return found

    def rows(self) -> Iterable[tuple[int, dict[str, str]]]:
        """(line number, our column -> the cell, stripped) per non-blank row; a missing cell reads as ""."""
        for row in self._reader:
            if not "".join(row).strip():
                continue
            yield self._reader.line_num, {n: row[i].strip() if i < len(row) else "" for n, i in self.index.items()}

    def error(self, line: int, column: str, message: str) -> RecordError:
        return RecordError(self.source, line, column, message)


def _code(table: _Table, line: int, column: str, value: str) -> str:
    code = value.upper()
    if not (is_canonical(CPT, code) or is_canonical(HCPCS, code)):
        raise table.error(line, column, "not a CPT or HCPCS code (5 characters, e.g. 99214 or G0439)")
    return code


def _date_cell(table: _Table, line: int, column: str, value: str) -> date:
    parsed = _parse_date(value)
    if parsed is None:
        raise table.error(line, column, "must be a date, YYYYMMDD or YYYY-MM-DD")
    return parsed


def _optional_date_cell(table: _Table, line: int, column: str, value: str) -> date | None:
    """Empty or "*" (CMS: "*=no data") is no date."""
    if value in ("", "*"):
        return None
    parsed = _parse_date(value)
    if parsed is None:
        raise table.error(line, column, 'must be a date, YYYYMMDD or YYYY-MM-DD, or empty or "*" for none')
    return parsed


def read_ptp_edits(path: str | Path) -> PtpEdits:
    """NCCI PTP edits from a CSV/TSV file. Columns (CMS header in brackets): column_1 ("Column 1"),
    column_2 ("Column 2"), effective_date ("Effective Date"), deletion_date ("Deletion Date *=no data";
    the column may be absent), modifier_indicator ("Modifier 0=not allowed 1=allowed 9=not applicable").
    Other columns (CMS's "PTP Edit Rationale", "*=in existence prior to 1996") are ignored."""
    table = _Table(path, PTP_COLUMNS, PTP_REQUIRED)
    edits = []
    for line, cells in table.rows():
        indicator = cells["modifier_indicator"]
        if indicator not in ("0", "1", "9"):
            raise table.error(line, "modifier_indicator", "must be 0, 1 or 9")
        edits.append(PtpEdit(
            column_1=_code(table, line, "column_1", cells["column_1"]),
            column_2=_code(table, line, "column_2", cells["column_2"]),
            effective=_date_cell(table, line, "effective_date", cells["effective_date"]),
            deletion=_optional_date_cell(table, line, "deletion_date", cells.get("deletion_date", "")),
            modifier_indicator=int(indicator),
        ))  # fmt: skip
    return PtpEdits(edits)


def read_mue_edits(path: str | Path) -> MueEdits:
    """MUEs from a CSV/TSV file. Columns (CMS header in brackets): code ("HCPCS/CPT Code"), max_units
    ("Practitioner Services MUE Values", or the outpatient hospital or DME supplier one),
    adjudication_indicator ("MUE Adjudication Indicator": 1, 2 or 3, CMS's "2 Date of Service Edit: Policy"
    read by its digit), and optional effective_date and deletion_date. Two rows of one code that apply on
    a common day are an error: the limit would be ambiguous."""
    table = _Table(path, MUE_COLUMNS, MUE_REQUIRED)
    seen: dict[str, list[tuple[int, MueEdit]]] = {}
    for line, cells in table.rows():
        units, mai = cells["max_units"], _MAI.match(cells["adjudication_indicator"])
        if not units.isdigit() or not units.isascii():
            raise table.error(line, "max_units", "must be a whole number of units, 0 or more")
        if mai is None:
            message = "must be 1 (line), 2 (date of service, policy) or 3 (date of service, clinical)"
            raise table.error(line, "adjudication_indicator", message)
        edit = MueEdit(
            code=_code(table, line, "code", cells["code"]),
            max_units=int(units),
            adjudication_indicator=int(mai.group(1)),
            effective=_optional_date_cell(table, line, "effective_date", cells.get("effective_date", "")),
            deletion=_optional_date_cell(table, line, "deletion_date", cells.get("deletion_date", "")),
        )
        for other_line, other in seen.get(edit.code, []):
            if _overlap(edit, other):
                raise table.error(line, "code", f"applies on days the row on line {other_line} also covers")
        seen.setdefault(edit.code, []).append((line, edit))
    return MueEdits(e for rows in seen.values() for _, e in rows)


def _overlap(a: MueEdit, b: MueEdit) -> bool:
    """Whether two edits' date ranges share a day (no effective date: from always; no deletion: for ever)."""
    start = max(a.effective or date.min, b.effective or date.min)
    end = min(a.deletion or date.max, b.deletion or date.max)
    return start <= end
