"""Office E/M levels: the one-of-ten choice made by the coder's E/M head.

An office visit bills exactly one evaluation-and-management level, so E/M is a single-choice head,
not ten independent yes/no codes: new patient 99202-99205, established patient 99211-99215, or
"none" (no office visit billed, e.g. inpatient notes). These codes are kept out of the multi-label
code space so the two heads never disagree about them.
"""

from __future__ import annotations

from medcoder.codes.formats import CPT
from medcoder.data.schema import NoteRecord

EM_NONE = "none"
OFFICE_EM_CODES: tuple[str, ...] = ("99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215")
EM_CLASSES: tuple[str, ...] = (EM_NONE, *OFFICE_EM_CODES)


def is_office_em(system: str, code: str) -> bool:
    return system == CPT and code in OFFICE_EM_CODES


def em_class_index(record: NoteRecord) -> int:
    """Index into EM_CLASSES of the note's office E/M code (0 = none); two levels on one note is an error."""
    levels = [c.code for c in record.codes if is_office_em(c.system, c.code)]
    if len(levels) > 1:
        raise ValueError(
            f"note {record.id} has {len(levels)} office E/M codes ({', '.join(levels)}); "
            "an office visit bills exactly one E/M level: fix the record"
        )
    return EM_CLASSES.index(levels[0]) if levels else 0
