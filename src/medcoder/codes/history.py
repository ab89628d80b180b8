"""The history code of a condition documented as past: old MI -> I25.2 (ICD-10-CM I.C.9.e.4), personal
history of malignancy -> Z85 (I.C.2.d), of other conditions -> Z86/Z87 (I.C.21.c.4).

One table, read by the guideline layer (which codes a past mention as its history code) and by grounding
(which looks for past conditions in the sentences that state a history).
"""

from __future__ import annotations

from medcoder.codes.formats import ICD10CM

# (prefix of the current condition's code, its history code)
HISTORY_CODES: tuple[tuple[str, str], ...] = (
    ("I21", "I25.2"),
    ("I22", "I25.2"),  # old myocardial infarction
    ("I63", "Z86.73"),
    ("G45", "Z86.73"),  # stroke / TIA without residual deficits
    ("C18", "Z85.038"),
    ("C19", "Z85.048"),
    ("C20", "Z85.048"),
    ("C50", "Z85.3"),
    ("C34", "Z85.118"),
    ("C61", "Z85.46"),
    ("C67", "Z85.51"),
    ("C64", "Z85.528"),
    ("I26", "Z86.711"),
    ("I82.4", "Z86.718"),  # pulmonary embolism, deep vein thrombosis
    ("F17.21", "Z87.891"),  # nicotine dependence, cigarettes
)


def history_code(system: str, code: str) -> str | None:
    """The ICD-10-CM code of a past `code` (I21.4 -> I25.2), None when it has none in HISTORY_CODES."""
    if system != ICD10CM:
        return None
    return next((history for prefix, history in HISTORY_CODES if code.startswith(prefix)), None)
