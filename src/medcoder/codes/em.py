"""Evaluation and management (E/M) visit codes: the one place that says which CPT codes they are.

A visit bills at most one visit-level E/M code. Two families exist in the platform:
- office/outpatient visits (2021+ rules, level by medical decision making or time): new patient
  99202-99205, established patient 99211-99215 (99201 no longer exists). The coder's E/M head makes
  this one-of-ten choice (`EM_CLASSES`: "none" or one office level), so these codes are kept out of
  the multi-label code space and the two heads never disagree about them;
- preventive medicine visits: new patient 99381-99387, established patient 99391-99397, by age band.
  They are ordinary labels of the code space.
Other codes of the E/M section (99406 tobacco counselling, ...) are services added to a visit, not
its level: `is_visit_em` is False for them.
"""

from __future__ import annotations

from medcoder.codes.formats import CPT

OFFICE_NEW_PATIENT: tuple[str, ...] = ("99202", "99203", "99204", "99205")
OFFICE_ESTABLISHED: tuple[str, ...] = ("99211", "99212", "99213", "99214", "99215")
OFFICE_EM_CODES: tuple[str, ...] = OFFICE_NEW_PATIENT + OFFICE_ESTABLISHED
PREVENTIVE_NEW_PATIENT: tuple[str, ...] = tuple(str(c) for c in range(99381, 99388))
PREVENTIVE_ESTABLISHED: tuple[str, ...] = tuple(str(c) for c in range(99391, 99398))
PREVENTIVE_EM_CODES: tuple[str, ...] = PREVENTIVE_NEW_PATIENT + PREVENTIVE_ESTABLISHED
VISIT_EM_CODES: tuple[str, ...] = OFFICE_EM_CODES + PREVENTIVE_EM_CODES

# The E/M head's classes: index 0 is "no office visit billed" (e.g. inpatient notes).
EM_NONE = "none"
EM_CLASSES: tuple[str, ...] = (EM_NONE, *OFFICE_EM_CODES)


def is_office_em(system: str, code: str) -> bool:
    """True for an office/outpatient visit level (the E/M head's codes)."""
    return system == CPT and code in OFFICE_EM_CODES


def is_visit_em(system: str, code: str) -> bool:
    """True for a visit-level E/M code, office or preventive: a visit has at most one."""
    return system == CPT and code in VISIT_EM_CODES
