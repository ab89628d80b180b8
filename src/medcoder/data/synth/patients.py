"""Synthetic patients: demographics, payer, chronic conditions, history, habits, and their encounters.

A patient is drawn once and keeps the same chronic problems, medications, history and family
history across all their encounters, as in a real practice; that is also what makes a
patient-level split necessary (two notes of one patient share most of their text).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from medcoder.data.synth.catalog import (
    AGE_BANDS,
    ALLERGIES,
    CHRONIC,
    EXCLUSIVE,
    FAMILY,
    HISTORY,
    FamilyItem,
    Med,
    drug_class,
)
from medcoder.data.synth.phrasing import chance, pick, weighted

# Encounter dates fall in federal fiscal year 2026, the code-set version the labels follow.
FY_START = dt.date(2025, 10, 1)
FY_DAYS = 365


@dataclass
class Patient:
    id: str
    sex: str
    age: int  # at the first encounter
    payer: str
    conditions: list[str]  # keys of CHRONIC, in a stable order
    meds: dict[str, list[Med]]  # condition key -> drugs it is treated with
    history: list[tuple[str, int]]  # (HISTORY key, year)
    family: list[tuple[FamilyItem, str, str]]  # (item, relation, disease name)
    smoking: str  # "never" | "current" | "former" | "tobacco_use"
    pack_years: int
    quit_year: int | None
    allergy: tuple[str, str | None]
    bmi: float | None  # adults only
    infant_months: int | None = None
    seen_before: bool = False  # an established patient of the practice at the first encounter
    name: str = ""  # synthetic "First Last", on the identification line of every note (patient_name)
    encounters: list[Encounter] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.conditions

    @property
    def age_band(self) -> int:
        return 0 if self.age < 18 else 1 if self.age < 45 else 2 if self.age < 65 else 3


@dataclass(frozen=True)
class Encounter:
    index: int  # 0 for the patient's first encounter in the corpus
    date: dt.date
    setting: str  # "outpatient" | "inpatient"
    age: int


def _age(rng: random.Random) -> int:
    lo, hi, _ = weighted(rng, AGE_BANDS, [w for *_, w in AGE_BANDS])
    return rng.randint(lo, hi)


def _payer(rng: random.Random, age: int) -> str:
    if age >= 65:
        return weighted(rng, ("medicare", "commercial_a", "commercial_b", "medicaid"), (0.82, 0.07, 0.07, 0.04))
    if age < 18:
        return weighted(rng, ("medicaid", "commercial_a", "commercial_b", "self_pay"), (0.45, 0.28, 0.24, 0.03))
    return weighted(
        rng, ("commercial_a", "commercial_b", "medicaid", "self_pay", "medicare"), (0.36, 0.30, 0.20, 0.10, 0.04)
    )


def _conditions(rng: random.Random, age: int, sex: str, band: int, smoking: str) -> list[str]:
    chosen: list[str] = []
    for key, cond in CHRONIC.items():
        if age < cond.min_age or (cond.sex and cond.sex != sex):
            continue
        p = cond.prevalence[band]
        if key == "copd":
            p = p * 3.0 if smoking in ("current", "former") else p * 0.2
        if key in ("ckd3", "ckd4") and not any(k in chosen for k in ("htn", "t2dm")):
            p *= 0.3
        if key == "cad" and "hld" in chosen:
            p *= 1.5
        if chance(rng, p) and not any((key, c) in EXCLUSIVE or (c, key) in EXCLUSIVE for c in chosen):
            chosen.append(key)
    return chosen


def _meds(rng: random.Random, conditions: list[str]) -> dict[str, list[Med]]:
    meds: dict[str, list[Med]] = {}
    for key in conditions:
        options = list(CHRONIC[key].meds)
        if not options:
            continue
        if key == "t2dm":
            # Oral agents first; a third of diabetics also take basal insulin, a few are diet-controlled.
            oral = [m for m in options if m.z_code == "Z79.84"]
            insulin = [m for m in options if m.z_code == "Z79.4"]
            regimen = weighted(rng, ("oral", "oral+insulin", "insulin", "diet"), (0.55, 0.25, 0.12, 0.08))
            chosen = []
            if "oral" in regimen:
                chosen += rng.sample(oral, rng.randint(1, 2))
            if "insulin" in regimen:
                chosen += insulin
            meds[key] = chosen
        elif key == "afib":
            anticoag = [m for m in options if m.z_code == "Z79.01"]
            rate = [m for m in options if m.z_code is None]
            meds[key] = ([pick(rng, anticoag)] if chance(rng, 0.85) else []) + [pick(rng, rate)]
        elif key == "cad":
            meds[key] = [m for m in options if chance(rng, 0.7 if m.z_code else 0.6)] or [options[0]]
        elif key in ("anemia", "diverticulosis", "osa", "ckd3", "ckd4", "prediabetes"):
            continue
        elif key == "htn":
            meds[key] = rng.sample(options, 1 if chance(rng, 0.6) else 2)  # many take two antihypertensives
        else:
            meds[key] = [pick(rng, options)]
    # One drug per class across all conditions (the first condition listed keeps it).
    taken: list[str] = []
    for key in list(meds):
        kept = []
        for med in meds[key]:
            if drug_class(med) not in taken:
                taken.append(drug_class(med))
                kept.append(med)
        meds[key] = kept
    return meds


def make_patient(rng: random.Random, pid: str) -> Patient:
    age = _age(rng)
    sex = weighted(rng, ("F", "M"), (0.53, 0.47))
    band = 0 if age < 18 else 1 if age < 45 else 2 if age < 65 else 3
    smoking = "never"
    if age >= 18:
        smoking = weighted(rng, ("never", "current", "former", "tobacco_use"), (0.55, 0.15, 0.27, 0.03))
    conditions = _conditions(rng, age, sex, band, smoking)
    history = []
    for key, item in HISTORY.items():
        if age >= item.min_age and (not item.sex or item.sex == sex) and chance(rng, item.prevalence[band]):
            active = {"hx_colon_ca": "colon_ca", "hx_breast_ca": "breast_ca"}.get(key)
            if active not in conditions:
                history.append((key, rng.randint(2005, 2022)))
    family = []
    for item in FAMILY:
        if chance(rng, item.weight):
            family.append((item, pick(rng, item.relations), pick(rng, item.names)))
    bmi = None
    if age >= 20:
        bmi = round(
            rng.choice(
                (
                    rng.uniform(19.5, 29.9),
                    rng.uniform(19.5, 29.9),
                    rng.uniform(30.0, 39.9),
                    rng.uniform(30.0, 34.9),
                    rng.uniform(40.0, 52.0),
                )
            )
            if chance(rng, 0.85)
            else rng.uniform(20.0, 34.0),
            1,
        )
    text, code = weighted(rng, [a[:2] for a in ALLERGIES], [a[2] for a in ALLERGIES])
    return Patient(
        id=pid,
        sex=sex,
        age=age,
        payer=_payer(rng, age),
        conditions=conditions,
        meds=_meds(rng, conditions),
        history=history,
        family=family,
        smoking=smoking,
        pack_years=rng.randint(10, 50),
        quit_year=rng.randint(1995, 2023) if smoking == "former" else None,
        allergy=(text, code),
        bmi=bmi,
        infant_months=rng.choice((2, 4, 6, 9)) if age == 0 else None,
        seen_before=chance(rng, 0.8),
        name=patient_name(pid),
    )


# Synthetic names from many origins. Real notes open with the patient's name; a model trained on
# notes without one meets name tokens first at inference, and attention can latch onto them (the
# name-invariance behaviour cases caught a model coding sepsis from a first name). A name is never
# evidence of anything, so the corpus carries one on every note.
FIRST_NAMES: tuple[str, ...] = (
    "James",
    "Maria",
    "DeShawn",
    "Aaliyah",
    "Wei",
    "Mei",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Sofia",
    "Mateo",
    "Olga",
    "Dmitri",
    "Aiyana",
    "Kai",
    "Nguyen",
    "Linh",
    "Chinedu",
    "Amara",
    "Siobhan",
    "Liam",
    "Yuki",
    "Hiroshi",
    "Leilani",
    "Keanu",
    "Esperanza",
    "Jose",
    "Emily",
    "Robert",
    "Latoya",
    "Tyrone",
    "Ingrid",
    "Lars",
    "Zainab",
    "Tariq",
    "Anika",
    "Ravi",
    "Hannah",
    "Noah",
    "Guadalupe",
    "Carlos",
    "Min-jun",
    "Seo-yeon",
    "Ayesha",
    "Bilal",
)
LAST_NAMES: tuple[str, ...] = (
    "Whitfield",
    "Jackson",
    "Garcia",
    "Nguyen",
    "Chen",
    "Patel",
    "Okafor",
    "Kowalski",
    "Ivanova",
    "Haddad",
    "O'Brien",
    "Yamamoto",
    "Kealoha",
    "Hernandez",
    "Smith",
    "Johnson",
    "Washington",
    "Larsen",
    "Rahman",
    "Begay",
    "Kim",
    "Park",
    "Mensah",
    "Rossi",
    "Dubois",
    "Fischer",
    "Abdullah",
    "Singh",
    "Tran",
    "Lopez",
)


def patient_name(pid: str) -> str:
    """A synthetic name drawn from its own stream (seeded by the patient id), so adding names left
    every other draw of the corpus, and with it every label, where it was."""
    rng = random.Random(f"medcoder-patient-name-{pid}")
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


INPATIENT_RATE_BY_BAND = (0.07, 0.10, 0.18, 0.29)


def schedule(rng: random.Random, patient: Patient, n: int) -> list[Encounter]:
    """n encounters on increasing dates within the fiscal year; setting drawn by age band."""
    days = sorted(rng.sample(range(FY_DAYS), n))
    out = []
    for i, day in enumerate(days):
        date = FY_START + dt.timedelta(days=day)
        age = patient.age + (1 if day > 300 and patient.age > 0 and chance(rng, 0.3) else 0)
        setting = "inpatient" if chance(rng, INPATIENT_RATE_BY_BAND[patient.age_band]) else "outpatient"
        out.append(Encounter(index=i, date=date, setting=setting, age=age))
    return out


def encounter_count(rng: random.Random) -> int:
    return weighted(rng, (1, 2, 3, 4), (0.5, 0.25, 0.15, 0.10))
