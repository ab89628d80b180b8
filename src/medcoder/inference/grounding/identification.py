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
Each line of a note is judged once (`_identification_lines`): grounding asks about every sentence and
span, and a transcribed note is often one line of several pages, which scanning again per question
made grounding quadratic in the note's length.
"""

from __future__ import annotations

import bisect
import functools
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
_LINE_BREAK = re.compile("\n")


def is_identification_line(text: str, position: int) -> bool:
    """Whether the line holding character `position` identifies the patient (module docstring)."""
    starts, verdicts = _identification_lines(text)
    return verdicts[bisect.bisect_right(starts, position) - 1]


def identifies_patient(line: str) -> bool:
    """Whether one line (no line break in it) identifies the patient (module docstring)."""
    patient = _PATIENT_LABEL.match(line)
    names_patient = patient is not None and _NAME_SHAPED.match(line, patient.end()) is not None
    return bool(names_patient or _LEADING_LABEL.match(line) or _LABEL_ANYWHERE.search(line) or _SSN.search(line))


@functools.lru_cache(maxsize=8)
def _identification_lines(text: str) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """(where each line of the note starts, whether it identifies the patient), found once per note."""
    starts = (0, *(m.end() for m in _LINE_BREAK.finditer(text)))
    ends = (*(start - 1 for start in starts[1:]), len(text))
    return starts, tuple(identifies_patient(text[a:b]) for a, b in zip(starts, ends))
