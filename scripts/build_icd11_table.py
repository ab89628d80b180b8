"""Generate src/medcoder/resources/icd11_map.tsv from WHO's ICD-10 -> ICD-11 mapping files.

    python scripts/build_icd11_table.py [--who-dir DIR]   (default: <reference data>/icd11, `medcoder data status`)

Why a packaged table: users who code notes should not need the 20 MB WHO download to get the
ICD-11 field of a prediction. The table keeps only what translation reads (WHO ICD-10 code,
ICD-11 code or cluster, ICD-11 title) for every WHO ICD-10 category, so it answers exactly as
the WHO files do (tests/test_codes.py checks both). Before writing, every ICD-11 stem code in
the map is checked against WHO's MMS tabulation of the same release, so a truncated or
mismatched download fails here instead of shipping codes that do not exist.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from pathlib import Path

from medcoder.codes.icd11 import PACKAGED_TABLE_NAME, Icd11Translator, write_packaged_table
from medcoder.paths import project_root, resources_dir, shared_data_dir

TABULATION_FILE = "SimpleTabulation-ICD-11-MMS-en.txt"


def mms_codes(tabulation: Path) -> set[str]:
    """Every code in WHO's MMS simple tabulation (column "Code"; groupings have none)."""
    with tabulation.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        if "Code" not in header:
            raise SystemExit(f"{tabulation}:1: no 'Code' column; is this {TABULATION_FILE}?")
        i = header.index("Code")
        return {row[i] for row in reader if len(row) > i and row[i]}


def unknown_stems(translator: Icd11Translator, known: set[str]) -> list[str]:
    """ICD-11 stem codes used by the map that the tabulation does not have."""
    stems = {part for code, _ in translator.table.values() if code for part in re.split(r"[&/]", code)}
    return sorted(stems - known)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--who-dir",
        type=Path,
        default=None,
        help="folder with WHO's 10To11MapToOneCategory.txt and the MMS simple tabulation (default <shared data>/icd11)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=resources_dir() / PACKAGED_TABLE_NAME,
        help="where to write the table (default: the package's resources folder)",
    )
    args = parser.parse_args(argv)
    # the header records the command; the default folder is left implicit so the file does not depend
    # on where (or through which links) this checkout sees the shared data
    command = "python scripts/build_icd11_table.py"
    if args.who_dir is None:
        args.who_dir = shared_data_dir() / "icd11"
    else:
        command += f" --who-dir {os.path.relpath(os.path.abspath(args.who_dir), project_root())}"

    translator = Icd11Translator.from_who_dir(args.who_dir)
    tabulation = args.who_dir / TABULATION_FILE
    if not tabulation.is_file():
        print(f"error: {tabulation} not found (needed to check the map's ICD-11 codes)", file=sys.stderr)
        return 2
    missing = unknown_stems(translator, mms_codes(tabulation))
    if missing:
        print(
            f"error: {len(missing)} ICD-11 codes in the map are not in {TABULATION_FILE}: {missing[:10]}",
            file=sys.stderr,
        )
        return 2

    rows = write_packaged_table(translator, args.out, command=command)
    print(
        f"{rows} WHO ICD-10 codes (ICD-11 MMS {translator.release}) -> {args.out} "
        f"({args.out.stat().st_size / 1e6:.2f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
