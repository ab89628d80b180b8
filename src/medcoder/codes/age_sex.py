"""Pre-submission age and sex edits: the codes a patient's age, sex or visit history rules out, each edit named.

One place for every consumer, so a prediction is routed for exactly what a payer running these edits denies:
the guideline layer corrects a procedure code when the right one is unambiguous (`inference.guidelines`), review
routing sends every violation left to a coder as `<rule>:<code>` (`inference.routing`), the claim check before
submission names the rule (`claims.edit_check`), and the simulated payer denies the same lines with CARC 6 (age)
or 7 (sex) (`claims.payer`).

Sources:
- Diagnoses: the CMS Medicare Code Editor (MCE), edit 4 "age conflict" with its four groups (newborn: age 0;
  pediatric: 0-17; maternity: 9-64; adult: 15-124, inclusive) and edit 5 "sex conflict". The MCE's own code list
  per group (its definitions manual) could not be checked here, so each group holds only what the ICD-10-CM
  tabular itself states: chapter 16 (P00-P96, "conditions that have their origin in the perinatal period") and
  the newborn's own encounters (Z38 liveborn infants, Z00.11 newborn exam, Z05 newborn observation); the child
  exam and child health supervision (Z00.12, Z76.1, Z76.2); chapter 15 (O00-O9A, "for use only on maternal
  records") and the pregnancy and delivery Z codes (Z33 pregnant state, Z34 supervision of normal pregnancy, Z36
  antenatal screening, Z37 outcome of delivery, Z39 postpartum care, Z3A weeks of gestation); the adult exam and
  the codes titled "age-related" (Z00.0, R54, H25). Sex: the blocks and categories the tabular titles by one
  sex's organs (female: C51-C58, D06, D07.0-D07.3, D25-D28, D39, N70-N98, R87, Z01.41, Z12.4, and the maternity
  codes; male: C60-C63, D07.4-D07.6, D29, D40, N40-N53, R86, Z12.5), and any code whose own title names one sex
  only ("... of right female breast", C50.911).
- Procedures (CPT): immunization administration with counseling 90460/90461 is "through 18 years of age"
  (90471-90474 have no age); preventive medicine 99381-99387 (new) / 99391-99397 (established) by the age band
  of their titles (under 1, 1-4, 5-11, 12-17, 18-39, 40-64, 65 and over).
- New or established patient (CPT E/M guidelines): an established patient received professional services from
  the physician or another of the same specialty in the same group practice within the past three years. A
  new-patient code (99202-99205, 99381-99387) with the practice's last visit less than three years before the
  encounter is a violation, and so is an established-patient code (99211-99215, 99391-99397) when it was longer.

A fact the input does not give (age, sex "U" or none, the last visit) fires no edit that needs it: nothing rules
the code out. A diagnosis is never changed here; `inference.routing` sends it to a coder (a P code at 40 may be
a perinatal condition that continues, ICD-10-CM Official Guidelines I.C.16.a.4: a coder decides).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from medcoder.codes.em import OFFICE_ESTABLISHED, OFFICE_NEW_PATIENT, PREVENTIVE_ESTABLISHED, PREVENTIVE_NEW_PATIENT
from medcoder.codes.formats import CPT, ICD10CM

NEWBORN_AGE, PEDIATRIC_AGE, MATERNITY_AGE, ADULT_AGE = "newborn_age", "pediatric_age", "maternity_age", "adult_age"
PREVENTIVE_AGE, VACCINE_ADMIN_AGE = "preventive_age", "vaccine_admin_age"
SEX_CONFLICT, EM_PATIENT_STATUS = "sex_conflict", "em_patient_status"
# every edit's name, in the order review reasons list them (inference.routing.REASON_ORDER)
EDIT_RULES: tuple[str, ...] = (NEWBORN_AGE, PEDIATRIC_AGE, MATERNITY_AGE, ADULT_AGE, SEX_CONFLICT, PREVENTIVE_AGE,
                               VACCINE_ADMIN_AGE, EM_PATIENT_STATUS)  # fmt: skip
ESTABLISHED_YEARS = 3  # CPT: "within the past three years"


@dataclass(frozen=True)
class AgeGroup:
    """Codes (by prefix) billed only for ages `youngest` to `oldest` years, inclusive."""

    rule: str
    system: str
    prefixes: tuple[str, ...]
    youngest: int
    oldest: int
    source: str


MATERNITY_CODES = ("O", "Z33", "Z34", "Z36", "Z37", "Z39", "Z3A")
AGE_GROUPS: tuple[AgeGroup, ...] = (
    AgeGroup(NEWBORN_AGE, ICD10CM, ("P", "Z38", "Z00.11", "Z05"), 0, 0, "MCE age conflict, newborn group"),
    AgeGroup(PEDIATRIC_AGE, ICD10CM, ("Z00.12", "Z76.1", "Z76.2"), 0, 17, "MCE age conflict, pediatric group"),
    AgeGroup(MATERNITY_AGE, ICD10CM, MATERNITY_CODES, 9, 64, "MCE age conflict, maternity group"),
    AgeGroup(ADULT_AGE, ICD10CM, ("Z00.0", "R54", "H25"), 15, 124, "MCE age conflict, adult group"),
    AgeGroup(VACCINE_ADMIN_AGE, CPT, ("90460", "90461"), 0, 18, "CPT 90460-90461: through 18 years of age"),
    *(AgeGroup(PREVENTIVE_AGE, CPT, (new, established), youngest, oldest, "CPT preventive medicine age band")
      for new, established, (youngest, oldest) in zip(
          PREVENTIVE_NEW_PATIENT, PREVENTIVE_ESTABLISHED,
          ((0, 0), (1, 4), (5, 11), (12, 17), (18, 39), (40, 64), (65, 130)), strict=True)),
)  # fmt: skip
# ICD-10-CM codes for one sex only, by prefix: the tabular's blocks and categories of one sex's organs
SEX_ONLY: dict[str, tuple[str, ...]] = {
    "F": (*MATERNITY_CODES, "C51", "C52", "C53", "C54", "C55", "C56", "C57", "C58", "D06", "D07.0", "D07.1", "D07.2",
          "D07.3", "D25", "D26", "D27", "D28", "D39", "N7", "N8", "N90", "N91", "N92", "N93", "N94", "N95", "N96",
          "N97", "N98", "R87", "Z01.41", "Z12.4"),
    "M": ("C60", "C61", "C62", "C63", "D07.4", "D07.5", "D07.6", "D29", "D40", "N40", "N41", "N42", "N43", "N44", "N45",
          "N46", "N47", "N48", "N49", "N50", "N51", "N52", "N53", "R86", "Z12.5"),
}  # fmt: skip
_SEX_WORDS = {"F": "female", "M": "male"}


@dataclass(frozen=True)
class AgeSexEdit:
    """One code a patient's facts rule out: the edit's name and what it says (codes and ranges, never patient data)."""

    rule: str
    system: str
    code: str
    detail: str


@dataclass(frozen=True)
class PatientFacts:
    """What the edits read of a patient; None where the input does not say (then no edit that needs it fires)."""

    age: int | None = None
    sex: str | None = None  # F, M or U
    encounter_date: str | None = None  # YYYY-MM-DD, the date of service
    prior_visit_date: str | None = None  # YYYY-MM-DD, the patient's last visit with the practice (same specialty)


def age_edit(system: str, code: str, age: int | None) -> AgeSexEdit | None:
    """The age group `code` falls outside of at `age` (None: unknown age, or no group holds the code)."""
    if age is None:
        return None
    for group in AGE_GROUPS:
        if group.system == system and code.startswith(group.prefixes) and not group.youngest <= age <= group.oldest:
            detail = f"{code}: ages {group.youngest}-{group.oldest} ({group.source})"
            return AgeSexEdit(group.rule, system, code, detail)
    return None


@functools.lru_cache(maxsize=4096)
def sex_of_code(code: str) -> str | None:
    """The only sex an ICD-10-CM code is for ("F", "M"), or None: its category (SEX_ONLY), else its own title
    naming one sex only. A code the code set does not hold is judged by its category alone."""
    for sex, prefixes in SEX_ONLY.items():
        if code.startswith(prefixes):
            return sex
    from medcoder.codes import describe
    from medcoder.codes.errors import UnknownCodeError

    try:
        words = set(re.findall(r"[a-z]+", describe(ICD10CM, code).lower()))
    except UnknownCodeError:
        return None
    named = [sex for sex, word in _SEX_WORDS.items() if word in words]
    return named[0] if len(named) == 1 else None


def sex_edit(system: str, code: str, sex: str | None) -> AgeSexEdit | None:
    """The sex conflict of a diagnosis for a patient of `sex` (None for "U", an unknown sex or another system)."""
    if system != ICD10CM or sex not in _SEX_WORDS:
        return None
    only = sex_of_code(code)
    if only is None or only == sex:
        return None
    return AgeSexEdit(SEX_CONFLICT, system, code, f"{code}: {_SEX_WORDS[only]} patients only (MCE sex conflict)")


def code_edits(system: str, code: str, age: int | None, sex: str | None) -> list[AgeSexEdit]:
    """The age and sex edits one code breaks for a patient of `age` and `sex`, age first."""
    return [e for e in (age_edit(system, code, age), sex_edit(system, code, sex)) if e is not None]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # February 29 in a year without one
        return day.replace(year=day.year - years, day=28)


def patient_status_edit(code: str, encounter_date: str | None, prior_visit_date: str | None) -> AgeSexEdit | None:
    """A new-patient E/M code for an established patient (the practice's last visit less than three years before
    the encounter), or an established-patient code when it was longer; None when a date is missing."""
    if encounter_date is None or prior_visit_date is None:
        return None
    established = date.fromisoformat(prior_visit_date) > _years_before(date.fromisoformat(encounter_date), 3)
    if code in OFFICE_NEW_PATIENT + PREVENTIVE_NEW_PATIENT and established:
        detail = f"{code}: a new-patient code; the last visit was within {ESTABLISHED_YEARS} years (CPT E/M)"
    elif code in OFFICE_ESTABLISHED + PREVENTIVE_ESTABLISHED and not established:
        detail = f"{code}: an established-patient code; no visit within {ESTABLISHED_YEARS} years (CPT E/M)"
    else:
        return None
    return AgeSexEdit(EM_PATIENT_STATUS, CPT, code, detail)


def prediction_edits(labels: Iterable[tuple[str, str]], patient: PatientFacts) -> list[AgeSexEdit]:
    """Every edit the (system, code) labels of one encounter break for `patient`, E/M patient status included."""
    out: list[AgeSexEdit] = []
    for system, code in labels:
        out += code_edits(system, code, patient.age, patient.sex)
        status = patient_status_edit(code, patient.encounter_date, patient.prior_visit_date) if system == CPT else None
        out += [status] if status is not None else []
    return out


def line_edits(procedure: str, diagnoses: Sequence[str], age: int | None, sex: str | None) -> list[AgeSexEdit]:
    """The edits one claim line breaks: its procedure's age edit, then its diagnoses' age edits, then their sex
    edits (the order a payer reports them in: CARC 6 before 7). A claim carries no visit history, so the E/M
    patient-status edit is not among them."""
    procedure_edit = age_edit(CPT, procedure, age)
    ages = [e for dx in diagnoses if (e := age_edit(ICD10CM, dx, age)) is not None]
    sexes = [e for dx in diagnoses if (e := sex_edit(ICD10CM, dx, sex)) is not None]
    return ([procedure_edit] if procedure_edit is not None else []) + ages + sexes


def preventive_code(code: str, age: int) -> str:
    """The preventive medicine code of the same kind (new 9938x, established 9939x) in `age`'s band."""
    family = PREVENTIVE_NEW_PATIENT if code in PREVENTIVE_NEW_PATIENT else PREVENTIVE_ESTABLISHED
    bands = [g for g in AGE_GROUPS if g.rule == PREVENTIVE_AGE]
    return next((family[k] for k, g in enumerate(bands) if g.youngest <= age <= g.oldest), code)
