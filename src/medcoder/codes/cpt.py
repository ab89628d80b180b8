"""CPT / HCPCS Level II codes the platform predicts, with medcoder's own plain-language descriptions.

CPT descriptors are copyrighted by the AMA and licensed, so medcoder ships none: the built-in
catalog holds bare code numbers with short descriptions written for this project. Users with a
CPT licence load their file with `load_licensed_cpt`; its descriptions REPLACE the built-in ones
for the codes it lists (and add the codes it has that medcoder lacks). The catalog's `source`
says which text a prediction, card or audit shows, so reviewers know whose words they read.

E/M levels follow the 2021+ office visit rules (level chosen by medical decision making or total
time); 99201 no longer exists and is deliberately absent.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medcoder.codes.em import VISIT_EM_CODES
from medcoder.codes.errors import UnknownCodeError
from medcoder.codes.formats import CPT, HCPCS, CodeFormatError, is_canonical, normalize_code

BUILTIN_SOURCE = "medcoder plain-language"


_PLAIN_DESCRIPTIONS: dict[str, str] = {
    # Office visits: new patients.
    "99202": "Office visit, new patient, straightforward decision making",
    "99203": "Office visit, new patient, low complexity decision making",
    "99204": "Office visit, new patient, moderate complexity decision making",
    "99205": "Office visit, new patient, high complexity decision making",
    # Office visits: established patients.
    "99211": "Office visit, established patient, minimal problem, often staff-only",
    "99212": "Office visit, established patient, straightforward decision making",
    "99213": "Office visit, established patient, low complexity decision making",
    "99214": "Office visit, established patient, moderate complexity decision making",
    "99215": "Office visit, established patient, high complexity decision making",
    # Procedures and services done in the office.
    "93000": "Heart tracing (ECG) with at least 12 leads, recorded and read",
    "94010": "Breathing test measuring how much and how fast air is exhaled (spirometry)",
    "36415": "Blood drawn from a vein with a needle",
    "90471": "Giving one vaccine by injection",
    "90686": "Flu vaccine, four strains, preservative-free, injected",
    "81002": "Urine test strip read by eye, no microscope",
    "87880": "Quick strep throat test on a swab",
    "99406": "Counselling to stop smoking or tobacco use, 3 to 10 minutes",
    "20610": "Needle injection into or fluid drawn from a large joint (knee, shoulder, hip)",
    "10060": "Cutting open and draining a skin abscess",
    "69210": "Removing impacted earwax by instrument, one ear",
    "82962": "Blood sugar test with a home-type glucose meter",
    "G0444": "Yearly depression screening, up to 15 minutes (HCPCS)",
    "G0008": "Giving a flu vaccine, Medicare billing (HCPCS)",
    "G0009": "Giving a pneumococcal vaccine, Medicare billing (HCPCS)",
    "G0010": "Giving a hepatitis B vaccine, Medicare billing (HCPCS)",
    "J3301": "Triamcinolone acetonide (steroid) injection, per 10 mg (HCPCS)",
    # Preventive medicine visits (check-ups), new patient by age band.
    "99381": "Check-up visit, new patient, under 1 year",
    "99382": "Check-up visit, new patient, age 1 to 4",
    "99383": "Check-up visit, new patient, age 5 to 11",
    "99384": "Check-up visit, new patient, age 12 to 17",
    "99385": "Check-up visit, new patient, age 18 to 39",
    "99386": "Check-up visit, new patient, age 40 to 64",
    "99387": "Check-up visit, new patient, 65 and over",
    # Preventive medicine visits (check-ups), established patient by age band.
    "99391": "Check-up visit, established patient, under 1 year",
    "99392": "Check-up visit, established patient, age 1 to 4",
    "99393": "Check-up visit, established patient, age 5 to 11",
    "99394": "Check-up visit, established patient, age 12 to 17",
    "99395": "Check-up visit, established patient, age 18 to 39",
    "99396": "Check-up visit, established patient, age 40 to 64",
    "99397": "Check-up visit, established patient, 65 and over",
}

PROCEDURE_CODES: tuple[str, ...] = tuple(c for c in _PLAIN_DESCRIPTIONS if c not in VISIT_EM_CODES)


def system_of(code: str) -> str:
    """ "CPT" or "HCPCS" for a canonical code (the two canonical forms do not overlap)."""
    if is_canonical(CPT, code):
        return CPT
    if is_canonical(HCPCS, code):
        return HCPCS
    raise CodeFormatError(f"{code!r} is neither a canonical CPT (5 characters, e.g. 99214) nor HCPCS (e.g. G0444) code")


@dataclass(frozen=True)
class CptCatalog:
    """Codes known to the platform and the description shown for each.

    `source` is BUILTIN_SOURCE or the path of the licensed file that supplied descriptions;
    `version` adds a content hash so two licensed files with one name are told apart.
    """

    descriptions: Mapping[str, str]
    source: str = BUILTIN_SOURCE
    version: str = BUILTIN_SOURCE
    _codes: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_codes", frozenset(self.descriptions))

    def __contains__(self, code: object) -> bool:
        return code in self._codes

    def __len__(self) -> int:
        return len(self._codes)

    def codes(self, system: str | None = None) -> tuple[str, ...]:
        """Sorted codes, optionally only those of one system ("CPT" or "HCPCS")."""
        return tuple(sorted(c for c in self._codes if system is None or system_of(c) == system))

    def description(self, code: str) -> str:
        """The description of `code`; UnknownCodeError (a ValueError) when the catalog lacks it."""
        if code not in self._codes:
            raise UnknownCodeError(f"{code!r} is not a CPT/HCPCS code in the catalog ({self.source})")
        return self.descriptions[code]


BUILTIN_CATALOG = CptCatalog(descriptions=dict(_PLAIN_DESCRIPTIONS))


class CptFileError(ValueError):
    """A licensed CPT file that cannot be loaded; the message names file, line and field."""


def _normalize_cpt_or_hcpcs(raw: str) -> str:
    try:
        return normalize_code(CPT, raw)
    except CodeFormatError:
        return normalize_code(HCPCS, raw)


def load_licensed_cpt(path: Path, base: CptCatalog = BUILTIN_CATALOG) -> CptCatalog:
    """Read a licensed `code,description` CSV (header required) over `base`.

    Every row is checked: a well-formed CPT or HCPCS code, a non-empty description, no code twice.
    Extra columns are ignored. Descriptions are never echoed in errors (they are licensed text).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"licensed CPT file not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise CptFileError(f"{path}: not UTF-8 text (byte {err.start}); save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    licensed: dict[str, str] = {}
    first_line: dict[str, int] = {}
    try:
        header = next(reader, None)
        columns = [c.strip().lower() for c in header or []]
        if "code" not in columns or "description" not in columns:
            raise CptFileError(f"{path}:1: header: the first line must name the columns 'code' and 'description'")
        i_code, i_desc = columns.index("code"), columns.index("description")
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) != len(columns):
                raise CptFileError(
                    f"{path}:{line}: {len(row)} fields, header has {len(columns)} (quote descriptions holding commas)"
                )
            try:
                code = _normalize_cpt_or_hcpcs(row[i_code])
            except CodeFormatError:
                raise CptFileError(
                    f"{path}:{line}: field 'code': {row[i_code].strip()!r} is not a CPT or HCPCS code"
                ) from None
            desc = " ".join(row[i_desc].split())
            if not desc:
                raise CptFileError(f"{path}:{line}: field 'description': empty for code {code}")
            if code in licensed:
                raise CptFileError(f"{path}:{line}: field 'code': {code} already given on line {first_line[code]}")
            licensed[code], first_line[code] = desc, line
    except csv.Error as err:
        raise CptFileError(f"{path}:{reader.line_num}: not valid CSV ({err})") from None
    if not licensed:
        raise CptFileError(f"{path}: no code rows after the header")

    merged = {**dict(base.descriptions), **licensed}
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return CptCatalog(descriptions=merged, source=str(path), version=f"licensed {path.name} sha256:{digest}")
