"""What an office visit documents, decided before any text is written.

Planners (`chronic.py`, `acute.py`, `outpatient.py`) fill these; `outpatient.render` lays them
out. A `Problem` is one item of the assessment and plan, carrying everything the note must say
about it (history, ROS positives, exam findings, in-office procedures, data, risk) and its MDM
problem category, so the E/M level is computed from the same objects that produce the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medcoder.data.synth.builder import Piece


@dataclass
class Problem:
    key: str
    category: str | None  # MDM problem category (em.py); None: not counted in MDM
    label: Piece  # the problem's name as listed in the MDM statement (annotated)
    entry: list  # the assessment-and-plan entry (annotated)
    cc: Piece | None = None  # chief complaint (annotated when it names a coded symptom)
    hpi: list = field(default_factory=list)
    positives: list = field(default_factory=list)  # ROS positives (annotated when coded)
    exam: dict[str, Piece] = field(default_factory=dict)  # system -> abnormal finding
    procedures: list = field(default_factory=list)  # documentation of procedures done in the visit
    labs: list = field(default_factory=list)  # result lines of tests reviewed
    reviewed: list[str] = field(default_factory=list)  # unique tests reviewed (MDM data)
    ordered: list[str] = field(default_factory=list)  # unique tests ordered (MDM data)
    blood_ordered: bool = False  # an ordered test needs a blood draw (venipuncture 36415 if drawn here)
    interpretation: Piece | None = None  # independent interpretation (MDM data category 2)
    discussion: bool = False  # management discussed with an external physician (MDM data category 3)
    historian: bool = False
    risk: int = 0
    risk_text: str = ""
    avoid: list[str] = field(default_factory=list)  # codes no distractor may name in this note
    temp_c: float | None = None
    spo2: int | None = None
    bp: tuple[int, int] | None = None
    febrile: bool = False


@dataclass
class Visit:
    kind: str  # "chronic" | "acute" | "preventive" | "nurse"
    new_patient: bool
    problems: list[Problem]
    extras: list[Problem] = field(default_factory=list)  # vaccines, counselling, screening: not MDM problems
    hypotheticals: list = field(default_factory=list)  # plan sentences with hypothetical mentions
    em_code: str = ""
    documented: list[str] = field(default_factory=list)  # chronic condition keys documented in the note
    obesity: bool = False  # a weight diagnosis is documented (then the BMI is coded)
    hyperglycemia: bool = False  # the diabetes is documented as uncontrolled (E11.65) in this note
    copd_code: str | None = None  # J44.0 when a lower respiratory infection is diagnosed in a COPD patient
