"""Office E/M level from medical decision making (AMA CPT 2021+ office E/M guidelines).

MDM has three elements, each rated straightforward(0) / low(1) / moderate(2) / high(3):
- number and complexity of problems addressed;
- amount and complexity of data reviewed and analysed (category 1: each unique test reviewed or
  ordered, each external note, an independent historian; category 2: independent interpretation
  of a test reported by another physician; category 3: discussion with an external physician);
- risk of complications of patient management.
The level is the one met or exceeded by two of the three elements, i.e. the middle rating.
New patients take 99202-99205, established 99212-99215; 99211 is a nurse visit without MDM.
Tests whose interpretation is billed separately in the visit (ECG 93000, spirometry 94010) do not
count as data, so they are never listed among the data elements.
Preventive visits are not leveled by MDM: their code (99381-99397) follows age and new/established.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVEL_NAMES = ("straightforward", "low", "moderate", "high")

# Problem categories and what one of them is worth on its own.
MINOR = "self-limited or minor problem"
ACUTE_UNCOMPLICATED = "acute uncomplicated illness"
STABLE_CHRONIC = "stable chronic illness"
CHRONIC_PROGRESSION = "chronic illness with exacerbation or progression"
UNDIAGNOSED = "undiagnosed new problem with uncertain prognosis"
ACUTE_SYSTEMIC = "acute illness with systemic symptoms"
CHRONIC_SEVERE = "chronic illness with severe exacerbation"
THREAT = "acute illness that poses a threat to life or bodily function"
PROBLEM_CATEGORIES = (
    MINOR,
    ACUTE_UNCOMPLICATED,
    STABLE_CHRONIC,
    CHRONIC_PROGRESSION,
    UNDIAGNOSED,
    ACUTE_SYSTEMIC,
    CHRONIC_SEVERE,
    THREAT,
)
_SINGLE_LEVEL = {
    MINOR: 0,
    ACUTE_UNCOMPLICATED: 1,
    STABLE_CHRONIC: 1,
    CHRONIC_PROGRESSION: 2,
    UNDIAGNOSED: 2,
    ACUTE_SYSTEMIC: 2,
    CHRONIC_SEVERE: 3,
    THREAT: 3,
}

# Risk of management, by level.
RISK_MINIMAL, RISK_LOW, RISK_MODERATE, RISK_HIGH = 0, 1, 2, 3


@dataclass
class MDM:
    problems: list[str] = field(default_factory=list)  # one category per problem addressed
    tests: list[str] = field(default_factory=list)  # unique tests reviewed or ordered (category 1)
    external_notes: int = 0  # unique external sources whose notes were reviewed (category 1)
    historian: bool = False  # assessment requiring an independent historian
    interpretation: bool = False  # independent interpretation of a test (category 2)
    discussion: bool = False  # discussion of management with an external physician (category 3)
    risk: int = RISK_MINIMAL


def problem_level(problems: list[str]) -> int:
    if not problems:
        return 0
    level = max(_SINGLE_LEVEL[p] for p in problems)
    if problems.count(STABLE_CHRONIC) + problems.count(CHRONIC_PROGRESSION) >= 2:
        level = max(level, 2)  # two or more chronic illnesses
    if problems.count(MINOR) >= 2:
        level = max(level, 1)
    return level


def data_level(mdm: MDM) -> int:
    cat1_without_historian = len(mdm.tests) + mdm.external_notes
    cat1 = cat1_without_historian + (1 if mdm.historian else 0)
    categories_met = sum((cat1 >= 3, mdm.interpretation, mdm.discussion))
    if categories_met >= 2:
        return 3
    if categories_met == 1:
        return 2
    if cat1_without_historian >= 2 or mdm.historian:
        return 1
    return 0


def mdm_level(mdm: MDM) -> int:
    """The MDM level met by two of the three elements."""
    return sorted((problem_level(mdm.problems), data_level(mdm), mdm.risk))[1]


def office_em_code(mdm: MDM, new_patient: bool) -> str:
    level = mdm_level(mdm)
    return str((99202 if new_patient else 99212) + level)


def preventive_em_code(age: int, new_patient: bool) -> str:
    """99381-99387 (new) / 99391-99397 (established) by age band: <1, 1-4, 5-11, 12-17, 18-39, 40-64, 65+."""
    bands = (1, 5, 12, 18, 40, 65)
    index = sum(age >= b for b in bands)
    return str((99381 if new_patient else 99391) + index)
