"""Claim Adjustment Reason Codes (CARC) grouped by what caused them, so that only coding-caused denials
teach the coder: a claim denied for eligibility (CARC 27) or a missing authorisation (197) says nothing
about its codes; one denied because the diagnosis does not support the procedure (11) or for a code pair
(236) does.

The table (resources/claims/carc_categories.tsv) is our own: codes and short category names. CARC
descriptions are X12-licensed and not shipped; a user who holds the licensed list loads it with
`load_carc_descriptions` for display.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

UNCATEGORISED = "uncategorised"


class CarcFileError(ValueError):
    """A CARC description file that is not the expected two columns (code, description)."""


@dataclass(frozen=True)
class CarcCategory:
    """What caused an adjustment, in our words, and whether a better code assignment would have avoided it."""

    category: str
    coding_caused: bool


@functools.cache
def carc_table() -> dict[str, CarcCategory]:
    """CARC -> its category, from the packaged table."""
    text = resources.files("medcoder.resources").joinpath("claims/carc_categories.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader((line for line in text.splitlines() if not line.startswith("#")), delimiter="\t")
    return {row["carc"]: CarcCategory(row["category"], row["coding_caused"] == "yes") for row in rows}


def carc_category(code: str) -> CarcCategory:
    """The category of a CARC; a code the table does not list is "uncategorised" and not coding-caused (it
    teaches nothing until someone says what causes it)."""
    return carc_table().get(code.strip().upper(), CarcCategory(UNCATEGORISED, False))


def load_carc_descriptions(path: str | Path) -> dict[str, str]:
    """CARC -> description from a licensed CSV or TSV file of two columns (code, description), a header
    line optional. A line without both is an error naming the file and line."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CarcFileError(f"{source}: cannot be read as text ({type(exc).__name__})") from None
    delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    out: dict[str, str] = {}
    for number, row in enumerate(csv.reader(text.splitlines(), delimiter=delimiter), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and row[0].strip().lower() in ("code", "carc"):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise CarcFileError(f"{source}:{number}: expected two columns, code and description")
        out[row[0].strip().upper()] = row[1].strip()
    return out
