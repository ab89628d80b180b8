"""Identification lines: the lines of a note that say who the patient is (name, MRN, SSN, date of
birth, payer, dates of the stay), which no evidence window may quote.

Evidence travels to the caller with the codes. The fallback window around an attention peak and the
E/M level's windows are whole words around a token, and on a short note the peak often falls on the
header, so the window would hand the patient's name and SSN to whoever reads the prediction; a
tagger's span there would too (a freshly trained tagger tags what it has not learnt to skip), so
neither is ever evidence. A line is an
identification line when it starts with an identification label ("Name:", "MRN",
"DOB:", "Payer:", "Date of service:" ... as the embedded corpus and MIMIC headers write them; "Patient:" and
"Pt:" only before a name-shaped value, as they also label clinical lines), or
holds such a label anywhere followed by ":", "#" or a number ("..., SSN <nine digits>, MRN <number>",
"; payer: medicare"), or an SSN-shaped number.
Pure Python and cheap: only the one line under a window is ever checked.
"""

from __future__ import annotations

import re

_LEADING_LABEL = re.compile(
    r"^\s*(patient\s+name|pt\.?\s+name|name|mrn|medical\s+record(\s+(number|no\.?))?|unit\s+no\.?|ssn|"
    r"social\s+security(\s+number)?|dob|date\s+of\s+birth|birth\s*date|payer|insurance|coverage|account(\s+(number|no\.?))?|"
    r"(admission|discharge)\s+date|date\s+of\s+(service|admission|discharge|visit)|date|phone|address)\s*[:#]",
    re.IGNORECASE,
)
# "Patient:" / "Pt:" label a name ("Patient: Ann Lee, 54 y/o female") or a clinical line ("Pt: hypothyroidism dx 2015,
# on levothyroxine"): the line identifies the patient when what follows the label is name-shaped (two to four
# capitalised words, "Lee, Ann", a lone capitalised word, or MIMIC's "___"), then the line's end, a comma, ";", "("
# or a number.
_PATIENT_LABEL = re.compile(r"^\s*(patient|pt\.?)\s*[:#]\s*", re.IGNORECASE)
_NAME_WORD = r"[A-Z][A-Za-z'’.-]*"
_NAME_SHAPED = re.compile(
    rf"(_{{2,}}|{_NAME_WORD}(\s+{_NAME_WORD}){{1,3}}|[A-Z][a-z'’-]+,\s*[A-Z][a-z'’-]+|{_NAME_WORD})"
    r"\s*($|[,;(]|\d)"
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
    patient = _PATIENT_LABEL.match(line)
    names_patient = patient is not None and _NAME_SHAPED.match(line, patient.end()) is not None
    return bool(names_patient or _LEADING_LABEL.match(line) or _LABEL_ANYWHERE.search(line) or _SSN.search(line))
