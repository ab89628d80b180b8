"""ICD-10-CM Excludes1 notes as code ranges: which two codes are never reported together.

An Excludes1 note (Official Guidelines I.A.12.a) says "NOT CODED HERE": the two conditions cannot
occur together (Z87.891 personal history of nicotine dependence excludes1 "current nicotine
dependence (F17.2-)"; R73 hyperglycemia excludes1 "diabetes mellitus (E08-E13)"). The notes come
from the tabular list `simple_icd_10_cm` ships, on the code and on every ancestor up to its block
(a note on a category applies to all its codes). The references in parentheses are parsed into
prefix ranges: "F17.2-" and "N30.-" are every code under F17.2 / N30; "E08-E13" every code from
category E08 through E13; "R73.01-R73.02" those two codes and their children; "E16.2" that code
and its children.
"""

from __future__ import annotations

import functools
import re

from medcoder.codes.icd10cm import _sicd  # the package, loaded once

_PARENTHESES = re.compile(r"\(([^()]*)\)")
_REFERENCE = re.compile(r"^([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?)-?(?:-([A-Z]\d[0-9A-Z](?:\.[0-9A-Z]*)?))?$")

Range = tuple[str, str]  # (first, last) undotted prefixes, inclusive: a code is in it when its prefix is


def _undot(code: str) -> str:
    return code.replace(".", "").rstrip("-")


def parse_references(note: str) -> list[Range]:
    """The code ranges one Excludes1 line names: "diabetes mellitus (E08-E13)" -> [("E08", "E13")]."""
    ranges: list[Range] = []
    for group in _PARENTHESES.findall(note):
        for item in group.split(","):
            item = item.strip().rstrip(".").replace(".-", "").rstrip("-")
            m = _REFERENCE.match(item)
            if m:
                first = _undot(m.group(1))
                ranges.append((first, _undot(m.group(2)) if m.group(2) else first))
    return ranges


@functools.lru_cache(maxsize=4096)
def excluded_ranges(code: str) -> tuple[Range, ...]:
    """Every range the Excludes1 notes of `code` (dotted) and of its ancestors exclude."""
    cm = _sicd()
    item = code.replace(".", "")
    if not cm.is_valid_item(item):
        return ()
    notes = list(cm.get_excludes1(item))
    for ancestor in cm.get_ancestors(item):
        notes += cm.get_excludes1(ancestor)
    return tuple(r for note in notes for r in parse_references(note))


def _in_range(code: str, rng: Range) -> bool:
    item = code.replace(".", "")
    first, last = rng
    return item[: len(first)] >= first and item[: len(last)] <= last


def excludes1(a: str, b: str) -> bool:
    """Whether an Excludes1 note of either code (or its ancestors) names the other."""
    return any(_in_range(b, r) for r in excluded_ranges(a)) or any(_in_range(a, r) for r in excluded_ranges(b))
