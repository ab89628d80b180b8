"""Is a diagnosis family documented in a note? Coded, or a current, affirmed mention in its text.

A value only makes a care gap when nothing in the note says the condition: not a code the coder emitted (or
the record's gold codes), and no mention the ConText check (`inference.grounding.context`) lets stand. A
mention that is negated ("no diabetes"), a relative's ("mother with diabetes"), historical, hypothetical, or
doubted in an office note ("possible COPD") documents nothing, so the gap stays; "prediabetes" is not diabetes
and "diabetes insipidus" is another disease.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from medcoder.inference.grounding.context import HISTORICAL, blocks_grounding, detect_context


@dataclass(frozen=True)
class DiagnosisFamily:
    """A condition as a care-gap rule expects it: how a query names it (`label`, a category, never a code to
    submit), the ICD-10-CM code prefixes that document it, and the words that state it."""

    label: str
    code_prefixes: tuple[str, ...]
    mention: re.Pattern[str]
    name: str  # the condition in a sentence ("chronic kidney disease")
    default_code: str  # its code when the provider confirms it without more detail (the Index's default)


OBESITY = DiagnosisFamily(
    "obesity (E66)",
    ("E66",),  # any E66 code: overweight, obesity of any class or cause
    re.compile(r"\b(?:obes(?:e|ity)|overweight|adiposity)\b", re.IGNORECASE),
    "obesity",
    "E66.9",
)
DIABETES = DiagnosisFamily(
    "diabetes mellitus (E08-E13)",
    ("E08", "E09", "E10", "E11", "E13", "O24"),
    re.compile(
        r"(?<![-\w])(?:(?:type\s*(?:1|2|I|II)\s+)?diabet(?:es|is|ic)(?:\s+mell?itus)?(?!\s+insipidus)"
        r"|DM\s?(?:1|2|I|II)?|T[12]\s?DM|NIDDM|IDDM)\b",
        re.IGNORECASE,
    ),
    "diabetes mellitus",
    "E11.9",  # I.C.4.a.2: diabetes of undocumented type is type 2
)
CKD = DiagnosisFamily(
    "chronic kidney disease (N18)",
    ("N18", "I12", "I13", "E08.22", "E09.22", "E10.22", "E11.22", "E13.22"),
    re.compile(
        r"\b(?:CKD|ESRD|chronic\s+(?:kidney|renal)\s+(?:disease|insufficiency|failure)"
        r"|end[\s-]stage\s+(?:renal|kidney)\s+disease)\b",
        re.IGNORECASE,
    ),
    "chronic kidney disease",
    "N18.9",
)
# GOLD: a persistent airflow limitation is COPD unless another obstructive disease explains it, so any chronic
# obstructive diagnosis (emphysema, chronic bronchitis, asthma, bronchiectasis) documents the finding
OBSTRUCTIVE_LUNG_DISEASE = DiagnosisFamily(
    "chronic obstructive pulmonary disease (J44)",
    ("J41", "J42", "J43", "J44", "J45", "J47"),
    re.compile(
        r"\b(?:COPD|chronic\s+obstructive\s+(?:pulmon\w*|lung|airways?)\s+disease|emphysema|chronic\s+bronchitis"
        r"|asthma|reactive\s+airways?\s+disease|bronchiectasis|obstructive\s+lung\s+disease)\b",
        re.IGNORECASE,
    ),
    "chronic obstructive pulmonary disease",
    "J44.9",
)


def is_coded(family: DiagnosisFamily, codes: Iterable[str]) -> bool:
    """Whether a code of the family is among `codes` (ICD-10-CM, dotted)."""
    return any(code.startswith(family.code_prefixes) for code in codes)


def current_mentions(family: DiagnosisFamily, text: str, setting: str | None) -> list[tuple[int, int]]:
    """The spans of `text` that state the condition as the patient's current one (in a note of `setting`).
    Every family here is chronic, so "history of diabetes" names a condition the patient still has (as
    `context.ongoing_condition` reads it, Section IV.J)."""
    found = []
    for match in family.mention.finditer(text):
        context = detect_context(text, match.start(), match.end())
        status = None if context is None or context.status == HISTORICAL else context.status
        if not blocks_grounding(status, setting):
            found.append((match.start(), match.end()))
    return found


def is_documented(family: DiagnosisFamily, text: str, codes: Iterable[str], setting: str | None) -> bool:
    """Whether the note documents the condition: coded, or stated as current in its text."""
    return is_coded(family, codes) or bool(current_mentions(family, text, setting))
