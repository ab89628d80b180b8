"""Does the documentation say what makes this code THIS code, and not a sibling?

The evidence verifier compares meanings, and a sentence encoder hears "type 2 diabetes" as close to
E11.65 ("... with hyperglycemia") as to E11.9: siblings of one category share most of their words.
A certified coder reads the axis the code adds (a complication, the acuity, the type, the side) and
codes to the level of detail documented, no further (ICD-10-CM Official Guidelines I.B.2), and
never an "unspecified" code when the record holds the detail (I.B.18).

`resources/code_specificity.tsv` says, per code, what must be documented (`requires`) or must not
be documented, in the quoted sentence or anywhere in the note (`excluded_by`), and which code the documentation supports
instead when a requirement fails (`fallback`, the category's unspecified code). Written from the
ICD-10-CM descriptions and Alphabetic Index, not from the corpus generator.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medcoder.paths import resources_dir

SPECIFICITY_FILE = "code_specificity.tsv"
KINDS: tuple[str, ...] = ("requires", "excluded_by")
SCOPES: tuple[str, ...] = ("sentence", "note")


@dataclass(frozen=True)
class SpecificityRule:
    """One row of the table: `code` is a code or a prefix ending in "*"."""

    code: str
    kind: Literal["requires", "excluded_by"]
    scope: Literal["sentence", "note"]
    pattern: re.Pattern[str]
    fallback: str | None

    def applies_to(self, code: str) -> bool:
        return code.startswith(self.code[:-1]) if self.code.endswith("*") else code == self.code


@dataclass(frozen=True)
class Unmet:
    """Why the documentation does not support a code as specific as it is."""

    rule: SpecificityRule

    @property
    def reason(self) -> str:
        """`requires:<code>` or `excluded_by:<code>`: names the table row, never the note's words."""
        return f"{self.rule.kind}:{self.rule.code}"


@functools.lru_cache(maxsize=1)
def specificity_rules() -> tuple[SpecificityRule, ...]:
    """The rows of the packaged resources/code_specificity.tsv."""
    return load_specificity_rules(resources_dir() / SPECIFICITY_FILE)


def load_specificity_rules(path: Path) -> tuple[SpecificityRule, ...]:
    """The rows of a specificity table; a malformed row is an error naming its line and field."""
    rules = []
    with open(path, encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 5:
                raise ValueError(f"{path}:{line}: expected 5 tab-separated fields, got {len(row)}")
            code, kind, scope, pattern, fallback = (field.strip() for field in row)
            if kind not in KINDS:
                raise ValueError(f"{path}:{line}: field kind must be one of {', '.join(KINDS)}, got {kind!r}")
            if scope not in SCOPES:
                raise ValueError(f"{path}:{line}: field scope must be one of {', '.join(SCOPES)}, got {scope!r}")
            if kind == "excluded_by" and fallback != "-":
                raise ValueError(f"{path}:{line}: excluded_by rows have no fallback")
            try:
                compiled = re.compile(rf"(?<![\w/])(?:{pattern})", re.IGNORECASE)
            except re.error as err:
                raise ValueError(f"{path}:{line}: field pattern is not a regular expression ({err})") from None
            rules.append(SpecificityRule(code, kind, scope, compiled, None if fallback == "-" else fallback))  # type: ignore[arg-type]
    return tuple(rules)


@functools.lru_cache(maxsize=4096)
def rules_for(code: str) -> tuple[SpecificityRule, ...]:
    """The table's rows for `code`, and the side rule when its description leaves the side unspecified."""
    side = (_side_rule(code),) if _side_unspecified(code) else ()
    return (*(r for r in specificity_rules() if r.applies_to(code)), *side)


# a code for an unspecified side, ear, eye or limb, by its description: the record names the side (I.B.13)
_UNSPECIFIED_SIDE = re.compile(
    r"\bunspecified (?:side|ears?|eyes?|(?:female |male )?breast|kidney|ovary|lung|(?:upper |lower )?(?:limb|arm|leg)|"
    r"knee|hip|shoulder|elbow|wrist|hand|foot|ankle|forearm|thigh|finger|toe)\b",
    re.IGNORECASE,
)
_SIDE_WORDS = re.compile(
    r"(?<![\w/])(?:right|left|bilateral|both (?:ears|eyes|sides|breasts|knees|hips|legs|arms|feet|hands)|rt\b|lt\b)",
    re.IGNORECASE,
)


def _side_unspecified(code: str) -> bool:
    from medcoder.codes import icd10cm
    from medcoder.codes.errors import UnknownCodeError

    if not code[:1].isalpha():
        return False
    try:
        return bool(_UNSPECIFIED_SIDE.search(icd10cm.description(code)))
    except UnknownCodeError:  # a HCPCS code
        return False


def _side_rule(code: str) -> SpecificityRule:
    """ICD-10-CM I.B.13 and I.B.18: "H66.90 ... unspecified ear" is not what "right TM bulging" documents."""
    return SpecificityRule(code, "excluded_by", "sentence", _SIDE_WORDS, None)


def fallback_for(code: str) -> str | None:
    """The code a failed requirement falls back to (the first row's that names one)."""
    return next((r.fallback for r in rules_for(code) if r.fallback), None)


def specific_siblings(code: str, candidates: Iterable[str]) -> list[str]:
    """The codes among `candidates` of `code`'s category that a `requires` row makes specific: where the
    note holds the detail that excludes an unspecified code ("COPD exacerbation" beside J44.9), the
    sibling whose requirement that detail meets (J44.1) is what the documentation supports."""
    same_category = (c for c in candidates if c != code and c[:3] == code[:3])
    return [c for c in same_category if any(r.kind == "requires" for r in rules_for(c))]


def check_documentation(
    code: str,
    text: str,
    quoted: Sequence[tuple[int, int]],
    is_current: Callable[[int, int], bool],
    find_in_note: Callable[[re.Pattern[str]], tuple[int, int] | None],
) -> tuple[Unmet | None, tuple[tuple[int, int], ...]]:
    """(the first rule the documentation breaks or None, spans found elsewhere in the note that
    satisfy `note`-scope requirements and join the code's evidence).

    `quoted`: the spans of `text` the code quotes (its sentences and their section headers); an
    `excluded_by` or `note`-scope match there counts only when `is_current(start, end)` ("no recent
    exacerbations" does not exclude J44.9, "no hyperglycemia" does not document E11.65);
    `find_in_note(pattern)`: the span of a current mention matching `pattern` anywhere in the note, or None."""
    found: list[tuple[int, int]] = []
    for rule in rules_for(code):
        # a detail that excludes, or a complication that specifies, must be affirmed; a side, an
        # "Allergies:" header or the condition's name is a word of the mention itself
        counts = is_current if rule.kind == "excluded_by" or rule.scope == "note" else _always
        matches = (m for a, b in quoted for m in rule.pattern.finditer(text, a, b) if m.end() > m.start())
        in_quote = any(counts(m.start(), m.end()) for m in matches)
        if rule.kind == "excluded_by":
            if in_quote or (rule.scope == "note" and find_in_note(rule.pattern) is not None):
                return Unmet(rule), ()
            continue
        if in_quote:
            continue
        span = find_in_note(rule.pattern) if rule.scope == "note" else None
        if span is None:
            return Unmet(rule), ()
        found.append(span)
    return None, tuple(found)


def _always(start: int, end: int) -> bool:
    return True
