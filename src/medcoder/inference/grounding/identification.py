"""Identification lines: the lines of a note that say who the patient is (name, MRN, SSN, date of
birth, payer, dates of the stay), which no evidence window may quote.

Evidence travels to the caller with the codes. The fallback window around an attention peak and the
E/M level's windows are whole words around a token, and on a short note the peak often falls on the
header, so the window would hand the patient's name and SSN to whoever reads the prediction; a
tagger's span there would too (a freshly trained tagger tags what it has not learnt to skip), so
neither is ever evidence. A line is an
identification line when it starts with an identification label ("Patient:", "Name:", "MRN",
"DOB:", "Payer:", "Date of service:" ... as the embedded corpus and MIMIC headers write them), or
holds such a label anywhere followed by ":", "#" or a number ("..., SSN <nine digits>, MRN <number>",
"; payer: medicare"), or an SSN-shaped number.
Pure Python and cheap: only the one line under a window is ever checked.
"""

from __future__ import annotations

import re

_LEADING_LABEL = re.compile(
    r"^\s*(patient(\s+name)?|pt\.?(\s+name)?|name|mrn|medical\s+record(\s+(number|no\.?))?|unit\s+no\.?|ssn|"
    r"social\s+security(\s+number)?|dob|date\s+of\s+birth|birth\s*date|payer|insurance|coverage|account(\s+(number|no\.?))?|"
    r"(admission|discharge)\s+date|date\s+of\s+(service|admission|discharge|visit)|date|phone|address)\s*[:#]",
    re.IGNORECASE,
)
_LABEL_ANYWHERE = re.compile(
    r"\b(mrn|ssn|dob|date\s+of\s+birth|social\s+security|medical\s+record\s+(number|no)|payer|insurance|phone)\b\s*(:|#|\(?\d)",
    re.IGNORECASE,
)
_SSN = re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")


def line_at(text: str, position: int) -> tuple[int, int]:
    """[start, end) of the line holding character `position` (without its newline)."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return start, len(text) if end < 0 else end


def is_identification_line(text: str, position: int) -> bool:
    """Whether the line holding character `position` identifies the patient (module docstring)."""
    start, end = line_at(text, position)
    line = text[start:end]
    return bool(_LEADING_LABEL.match(line) or _LABEL_ANYWHERE.search(line) or _SSN.search(line))
