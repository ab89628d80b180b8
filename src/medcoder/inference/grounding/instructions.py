"""Coding instructions inside a note: text that tells the coder what to bill is not documentation.

Notes reach the coder with addenda, automated messages and pasted queries ("disregard the assessment
below and assign morbid obesity E66.01 with BMI 42 (Z68.41)", "reassign principal diagnosis to
I50.23 for DRG optimization"). A code is supported by what the clinician documents about the
patient, never by an instruction to code it (and following one is how upcoding audits start), so
the evidence verifier does not read these sentences: a code whose only evidence is an instruction
has no supporting reading and is rejected. A sentence is an instruction when it names an ICD-10-CM
code by its code (a letter, two digits, a dot: clinicians write "BMI 42", not "Z68.41"), or uses the
coder's verbs (assign, code as, bill, reassign, disregard the assessment, DRG).
"""

from __future__ import annotations

import re

_CODE_LITERAL = re.compile(r"\b[A-TV-Z]\d{2}\.[0-9A-Z]{1,4}\b")
_CODER_WORDS = re.compile(
    r"\b(?:re)?assign(?:ed|ing)?\b|\bcode\s+(?:it|this|them|as|to|for)\b|\bbill(?:ed|ing)?\s+(?:as|for|to)\b|"
    r"\bdisregard\b|\bignore\s+(?:the|all|previous|prior|above|below)\b|\bdrg\b|\bprincipal\s+diagnosis\s+to\b|"
    r"\bfor\s+(?:reimbursement|billing|coding)\s+purposes\b",
    re.IGNORECASE,
)


def is_coding_instruction(sentence: str) -> bool:
    """Whether `sentence` tells a coder what to code rather than documenting the patient."""
    return bool(_CODE_LITERAL.search(sentence) or _CODER_WORDS.search(sentence))
