"""ICD-10-CM -> ICD-11 MMS translation with WHO's 2024-01 "10To11MapToOneCategory" table.

WHO maps WHO ICD-10, not ICD-10-CM. The US clinical modification adds digits under WHO codes
(E11.65 under WHO E11.6), so a CM code is looked up as itself, then as its 4-character and its
3-character parent. The first WHO key found decides: when WHO maps that key to a grouping
without a code (a block or a chapter) or writes "No Mapping", the answer is "none" rather than
a broader parent's code, because WHO has already said no single ICD-11 category fits.

WHO targets that combine a stem code with extension codes (`1A00&XN8P1`) or several stems
(`BA01/BD1Z`) are returned as they are, marked "post-coordinated": a consumer that needs one
stem code must not silently take the first part.

Two sources give identical answers (a test checks it): the WHO files themselves
(`Icd11Translator.from_who_dir`) and the compact table shipped in the package
(`Icd11Translator.packaged`), which `scripts/build_icd11_table.py` generates from them.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from medcoder.codes.formats import ICD10CM, normalize_code
from medcoder.paths import resources_dir

MapKind = Literal["one-to-one", "via-parent", "post-coordinated", "none"]
MAP_KINDS: tuple[str, ...] = ("one-to-one", "via-parent", "post-coordinated", "none")

WHO_MAP_FILE = "10To11MapToOneCategory.txt"
PACKAGED_TABLE_NAME = "icd11_map.tsv"
PACKAGED_HEADER = ("icd10", "icd11", "icd11_title")
# Columns of WHO's map file that this module reads (the file has 13; the last names the release).
_WHO_COLUMNS = ("10ClassKind", "icd10Code", "11ClassKind", "icd11Code", "icd11Title")
# WHO ICD-10 rows that are codes (chapters and blocks are not keys a CM code can fall back to).
_WHO_KEY_KINDS = ("category", "modifiedcategory")

Target = tuple[str | None, str | None]  # (ICD-11 code or cluster, its title); (None, None) = no target


class Icd11TableError(ValueError):
    """A WHO map file or packaged table that cannot be read; the message names file and line."""


@dataclass(frozen=True)
class Icd11Translation:
    """The ICD-11 MMS answer for one ICD-10-CM code.

    `via` is the WHO ICD-10 key that gave the answer when it is a parent of `source`, else None.
    """

    source: str
    code: str | None
    title: str | None
    map: MapKind
    via: str | None

    def to_dict(self) -> dict[str, str | None]:
        """The `icd11` object of the prediction contract."""
        return {"code": self.code, "title": self.title, "map": self.map}


def _lookup_keys(code: str) -> list[str]:
    """E11.65 -> [E11.65, E11.6, E11]; I25.2 -> [I25.2, I25]; I10 -> [I10]."""
    compact = code.replace(".", "")
    keys = [code]
    if len(compact) > 4:
        keys.append(f"{compact[:3]}.{compact[3]}")
    if len(compact) > 3:
        keys.append(compact[:3])
    return keys


def _release_from_who_header(cell: str, where: str) -> str:
    """WHO writes the release date as the last header cell ('2024-Jan-21'); return '2024-01'."""
    try:
        return _dt.datetime.strptime(cell.strip(), "%Y-%b-%d").strftime("%Y-%m")
    except ValueError:
        raise Icd11TableError(f"{where}: last header column {cell!r} is not a WHO release date") from None


def read_who_map(path: Path) -> tuple[dict[str, Target], str]:
    """Parse WHO's 10To11MapToOneCategory.txt into {WHO ICD-10 code: target} and the release.

    WHO ships it as UTF-8 (with or without BOM), tab-separated, CRLF. A target counts only when
    its ICD-11 class kind is "category"; blocks and chapters carry no code (the code column of a
    chapter target holds the chapter number, e.g. "02"), and "No Mapping" rows have no kind.
    """
    path = Path(path)
    table: dict[str, Target] = {}
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None:
            raise Icd11TableError(f"{path}: empty file")
        missing = [c for c in _WHO_COLUMNS if c not in header]
        if missing:
            raise Icd11TableError(f"{path}:1: missing WHO columns {missing}; is this {WHO_MAP_FILE}?")
        release = _release_from_who_header(header[-1], f"{path}:1")
        col = {name: header.index(name) for name in _WHO_COLUMNS}
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < len(header) - 1:
                raise Icd11TableError(f"{path}:{line}: {len(row)} columns, expected {len(header) - 1}")
            if row[col["10ClassKind"]] not in _WHO_KEY_KINDS:
                continue
            key = row[col["icd10Code"]].strip()
            if key in table:
                raise Icd11TableError(f"{path}:{line}: field icd10Code: duplicate WHO ICD-10 code {key}")
            code, title = row[col["icd11Code"]].strip(), row[col["icd11Title"]].strip()
            if row[col["11ClassKind"]] == "category":
                if not code or not title:
                    raise Icd11TableError(f"{path}:{line}: field icd11Code/icd11Title: empty for category target")
                table[key] = (code, title)
            else:
                table[key] = (None, None)
    if not table:
        raise Icd11TableError(f"{path}: no WHO ICD-10 category rows")
    return table, release


def read_packaged_table(path: Path) -> tuple[dict[str, Target], str]:
    """Parse the compact TSV written by `write_packaged_table` (release read from its header)."""
    path = Path(path)
    table: dict[str, Target] = {}
    release = None
    with path.open(encoding="utf-8", newline="") as f:
        for line, text in enumerate(f, start=1):
            text = text.rstrip("\n")
            if text.startswith("#"):
                if text.startswith("# release:"):
                    release = text.split(":", 1)[1].strip()
                continue
            fields = text.split("\t")
            if tuple(fields) == PACKAGED_HEADER:
                continue
            if len(fields) != 3 or not fields[0] or bool(fields[1]) != bool(fields[2]):
                raise Icd11TableError(
                    f"{path}:{line}: expected 'icd10<TAB>icd11<TAB>title' (icd11 and title both set or both empty)"
                )
            if fields[0] in table:
                raise Icd11TableError(f"{path}:{line}: duplicate WHO ICD-10 code {fields[0]}")
            table[fields[0]] = (fields[1] or None, fields[2] or None)
    if release is None:
        raise Icd11TableError(f"{path}: missing '# release:' header line")
    return table, release


class Icd11Translator:
    """Translates canonical ICD-10-CM codes to ICD-11 MMS with one WHO map table."""

    def __init__(self, table: Mapping[str, Target], release: str, source: str) -> None:
        self.table: Mapping[str, Target] = MappingProxyType(dict(table))  # shared via cache: read-only
        self.release = release
        self.source = source

    @classmethod
    def from_who_dir(cls, who_dir: Path) -> Icd11Translator:
        """Read the WHO download folder (it must hold 10To11MapToOneCategory.txt)."""
        path = Path(who_dir) / WHO_MAP_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: download the ICD-10 to ICD-11 mapping tables from WHO")
        table, release = read_who_map(path)
        return cls(table, release, source=str(path))

    @classmethod
    def packaged(cls) -> Icd11Translator:
        """The compact table shipped in medcoder/resources (no WHO download needed)."""
        return _packaged_translator()

    def translate(self, code: str) -> Icd11Translation:
        """Translate one ICD-10-CM code (any spelling `normalize` accepts; CodeFormatError otherwise)."""
        source = normalize_code(ICD10CM, code)
        for key in _lookup_keys(source):
            if key not in self.table:
                continue
            icd11, title = self.table[key]
            via = None if key == source else key
            if icd11 is None:
                kind: MapKind = "none"
            elif "&" in icd11 or "/" in icd11:
                kind = "post-coordinated"
            else:
                kind = "one-to-one" if via is None else "via-parent"
            return Icd11Translation(source=source, code=icd11, title=title, map=kind, via=via)
        return Icd11Translation(source=source, code=None, title=None, map="none", via=None)

    def __len__(self) -> int:
        return len(self.table)


@functools.cache
def _packaged_translator() -> Icd11Translator:
    path = resources_dir() / PACKAGED_TABLE_NAME
    table, release = read_packaged_table(path)
    return Icd11Translator(table, release, source=str(path))


def load_translator(who_dir: Path | None = None) -> Icd11Translator:
    """The WHO files when `who_dir` is given and holds them, else the packaged table."""
    if who_dir is not None and (Path(who_dir) / WHO_MAP_FILE).is_file():
        return Icd11Translator.from_who_dir(Path(who_dir))
    return Icd11Translator.packaged()


def write_packaged_table(translator: Icd11Translator, out: Path, command: str) -> int:
    """Write the compact table (header comments, then one row per WHO ICD-10 code); return rows.

    Output is deterministic (sorted, no timestamps), so regenerating it gives identical bytes.
    """
    lines = [
        "# ICD-10 -> ICD-11 MMS single-category map: WHO ICD-10 code, ICD-11 code or cluster, ICD-11 title.",
        f"# Extracted without changes from WHO's {WHO_MAP_FILE} (ICD-11 MMS release {translator.release}).",
        "# Source: World Health Organization, ICD-11 for Mortality and Morbidity Statistics,",
        "#   ICD-10 to ICD-11 mapping tables, https://icd.who.int/",
        "# License: Creative Commons Attribution-NoDerivatives 3.0 IGO (CC BY-ND 3.0 IGO),",
        "#   https://creativecommons.org/licenses/by-nd/3.0/igo/ ; (c) World Health Organization.",
        "# Empty icd11 and title: WHO gives no ICD-11 category (No Mapping, or a block/chapter only).",
        f"# Generated by: {command}",
        f"# release: {translator.release}",
        "\t".join(PACKAGED_HEADER),
    ]
    for key in sorted(translator.table):
        icd11, title = translator.table[key]
        if any(ch in f"{key}{icd11}{title}" for ch in "\t\r\n"):
            raise Icd11TableError(f"WHO ICD-10 code {key}: a field holds a tab or line break")
        lines.append(f"{key}\t{icd11 or ''}\t{title or ''}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(translator.table)


def icd11_table_stats(translator: Icd11Translator | None = None) -> dict[str, object]:
    """Numbers for the ICD-11 map data card: table size and how the core ICD-10-CM codes map."""
    from medcoder.codes.icd10cm import CORE_ICD10CM_CODES

    translator = translator or Icd11Translator.packaged()
    targets = [code for code, _ in translator.table.values() if code is not None]
    kinds = Counter(translator.translate(c).map for c in CORE_ICD10CM_CODES)
    return {
        "release": translator.release,
        "rows": len(translator.table),
        "rows_with_icd11_target": len(targets),
        "distinct_icd11_codes": len(set(targets)),
        "core_codes": len(CORE_ICD10CM_CODES),
        "core_map_kinds": {kind: kinds.get(kind, 0) for kind in MAP_KINDS},
    }
