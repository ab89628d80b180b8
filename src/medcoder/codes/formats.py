"""Canonical spellings of codes in each code system, and normalisation of external spellings.

Datasets spell codes in many ways (`e11.65`, `E1165`, ` E11.65 `, `4280` for ICD-9 428.0). The
data contract stores exactly one canonical form per system so that label spaces, metrics and
the registry compare strings, never fuzzy variants. Anything that cannot be put in canonical form
is an error: guessing would silently change a label.
"""

from __future__ import annotations

import re

ICD10CM = "ICD-10-CM"
ICD10PCS = "ICD-10-PCS"
ICD9CM = "ICD-9-CM"
ICD9PCS = "ICD-9-PCS"
CPT = "CPT"
HCPCS = "HCPCS"

CODE_SYSTEMS: tuple[str, ...] = (ICD10CM, ICD10PCS, ICD9CM, ICD9PCS, CPT, HCPCS)

# Canonical forms, checked on every record the platform loads.
CANONICAL_PATTERNS: dict[str, re.Pattern[str]] = {
    # Letter, two characters, then an optional dot with 1-4 more (E11.65, I10, S72.001A).
    ICD10CM: re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$"),
    # Seven alphanumerics, no dot (0DTJ4ZZ); I and O are not used by the system.
    ICD10PCS: re.compile(r"^[0-9A-HJ-NP-Z]{7}$"),
    # Diagnoses: 3 digits (.1-2 digits), V + 2 digits (.1-2), E + 3 digits (.1 digit).
    ICD9CM: re.compile(r"^([0-9]{3}(\.[0-9]{1,2})?|V[0-9]{2}(\.[0-9]{1,2})?|E[0-9]{3}(\.[0-9])?)$"),
    # Procedures: 2 digits, optional dot with 1-2 digits (00.66).
    ICD9PCS: re.compile(r"^[0-9]{2}(\.[0-9]{1,2})?$"),
    # Category I: 5 digits; Category II/III: 4 digits and F or T; PLA: 4 digits and U.
    CPT: re.compile(r"^[0-9]{4}[0-9FTU]$"),
    HCPCS: re.compile(r"^[A-V][0-9]{4}$"),
}


class CodeFormatError(ValueError):
    """A code string that cannot be read as a code of the named system."""


def is_canonical(system: str, code: str) -> bool:
    """True when `code` is already in the canonical spelling of `system`."""
    pattern = CANONICAL_PATTERNS.get(system)
    return bool(pattern and pattern.match(code))


def normalize_code(system: str, raw: object) -> str:
    """Return the canonical spelling of `raw` in `system`, or raise CodeFormatError saying why.

    Handles case, surrounding white space, and a missing or misplaced dot. Does not check that
    the code exists in a code-set version (see `medcoder.codes.icd10cm` for that).
    """
    if system not in CANONICAL_PATTERNS:
        raise CodeFormatError(f"unknown code system {system!r}; expected one of {', '.join(CODE_SYSTEMS)}")
    if not isinstance(raw, str):
        raise CodeFormatError(f"{system} code must be a string, got {type(raw).__name__}")
    compact = raw.strip().upper().replace(".", "")
    if not compact:
        raise CodeFormatError(f"empty {system} code")
    if system == ICD10CM:
        code = compact if len(compact) <= 3 else f"{compact[:3]}.{compact[3:]}"
    elif system == ICD9CM:
        head = 4 if compact.startswith("E") else 3
        code = compact if len(compact) <= head else f"{compact[:head]}.{compact[head:]}"
    elif system == ICD9PCS:
        code = compact if len(compact) <= 2 else f"{compact[:2]}.{compact[2:]}"
    else:
        code = compact
    stripped = raw.strip().upper()
    # A dot the source did write must stand where the canonical form puts it: reading "E11.65.1" as
    # E11.651 or "E1.165" as E11.65 would invent a different code.
    if "." in stripped and stripped.rstrip(".") != code:
        raise CodeFormatError(f"{raw.strip()!r} is not a well-formed {system} code (misplaced dot)")
    if not is_canonical(system, code):
        raise CodeFormatError(f"{raw.strip()!r} is not a well-formed {system} code")
    return code
