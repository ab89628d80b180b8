"""The office visit's E/M code: its level from the E/M head, new versus established from the note's own words.

CPT splits office visits into two families by the patient's status, not by the visit's content: a new
patient (99202-99205) has had no professional service from the practice's same specialty in three
years, an established one (99211-99215) has. Notes say which in a few fixed words ("new patient",
"establishing care", "established patient", "return visit"), usually once in the header. The head's
ten-way softmax spreads one level over two families and, on the simulated practice's notes, put
most of its office-visit errors there (99204 billed as 99214, 99203 as 99213) while the same
notes said "new patient" in their first line. So the level is the head's (its probability summed
over both families), and the family is what the note states; a note that states neither, or both,
keeps the head's own choice.

99211 (a visit that needs no physician, established patients only) has no new-patient code: a note
that says "new patient" folds its probability into the lowest new-patient level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from medcoder.codes.em import EM_CLASSES, EM_NONE, OFFICE_ESTABLISHED, OFFICE_NEW_PATIENT
from medcoder.data.schema import Span

NEW = "new"
ESTABLISHED = "established"

# Words that state the patient's status with the practice. Bare "follow-up" is not among them: a
# new patient follows up on an emergency visit or a referral.
_STATUS_WORDS: dict[str, re.Pattern[str]] = {
    NEW: re.compile(
        r"\b(?:new (?:patient|pt)\b|new to (?:the |this |our )?(?:practice|clinic|office)|"
        r"establish(?:es|ing)? care|transferring care)",
        re.IGNORECASE,
    ),
    ESTABLISHED: re.compile(
        r"\b(?:established (?:patient|pt)\b|est\. (?:patient|pt)\b|return (?:patient|pt|visit)\b|"
        r"(?:since|at) (?:her|his|their|the) last visit\b|known to (?:the |this |our )?(?:practice|clinic))",
        re.IGNORECASE,
    ),
}
# the head's class index of each office code, and of each level within a family
_INDEX = {code: i for i, code in enumerate(EM_CLASSES)}
_NEW_BY_LEVEL = dict(zip((2, 3, 4, 5), OFFICE_NEW_PATIENT, strict=True))
_ESTABLISHED_BY_LEVEL = dict(zip((1, 2, 3, 4, 5), OFFICE_ESTABLISHED, strict=True))


@dataclass(frozen=True)
class VisitLevel:
    """The visit's E/M code, the probability of its level, and the words that stated the patient's status."""

    code: str
    score: float
    status_evidence: tuple[Span, ...]


def stated_status(text: str) -> tuple[str | None, tuple[Span, ...]]:
    """("new" | "established" | None, the spans that say it): None when the note states neither or both."""
    found = {status: [m.span() for m in pattern.finditer(text)] for status, pattern in _STATUS_WORDS.items()}
    stated = [status for status, spans in found.items() if spans]
    if len(stated) != 1:
        return None, ()
    return stated[0], tuple(found[stated[0]])


def level_probabilities(em_probs: np.ndarray) -> dict[int, float]:
    """Level (1-5) -> the head's probability of that level in either family (level 1 is 99211 alone)."""
    levels = {level: float(em_probs[_INDEX[code]]) for level, code in _ESTABLISHED_BY_LEVEL.items()}
    for level, code in _NEW_BY_LEVEL.items():
        levels[level] += float(em_probs[_INDEX[code]])
    return {level: min(p, 1.0) for level, p in levels.items()}  # float32 softmax mass may sum past 1 in the last bit


def visit_level(em_probs: np.ndarray, text: str) -> VisitLevel | None:
    """The office E/M code for a note, or None when the head's most likely class is "no office visit"."""
    best = int(np.argmax(em_probs))
    if EM_CLASSES[best] == EM_NONE:
        return None
    status, spans = stated_status(text)
    if status is None:
        return VisitLevel(EM_CLASSES[best], float(em_probs[best]), ())
    levels = level_probabilities(em_probs)
    if status == NEW:
        levels[2] = min(levels[2] + levels.pop(1), 1.0)
        by_level = _NEW_BY_LEVEL
    else:
        by_level = _ESTABLISHED_BY_LEVEL
    level = max(by_level, key=lambda lv: (levels[lv], -lv))  # a tie goes to the lower level
    return VisitLevel(by_level[level], levels[level], spans)
