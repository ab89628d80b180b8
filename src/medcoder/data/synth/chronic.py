"""Chronic problems as addressed in an office visit: status, lab values, drug management, MDM category.

Values are consistent with the documented status: a diabetic "with hyperglycemia" has an A1c of
8.2% or more and that value is evidence for E11.65; a controlled one has 6.3-7.4% and the value
is plain text; a non-diabetic may show an A1c of 5.7-6.2% that is coded as prediabetes (R73.03)
only when the provider documents prediabetes (guideline III.B: abnormal findings are not coded
unless the provider gives their significance).
"""

from __future__ import annotations

import random

from medcoder.data.synth import em
from medcoder.data.synth.builder import Piece, ev, join, men
from medcoder.data.synth.catalog import DM_HYPERGLYCEMIA_NAMES, MORBID_OBESITY_NAMES, OBESITY_NAMES, bmi_code, icd
from medcoder.data.synth.coding import Code
from medcoder.data.synth.patients import Patient
from medcoder.data.synth.phrasing import Style, chance, name_of, pick
from medcoder.data.synth.sections import cap_first as cap
from medcoder.data.synth.sections import condition, drug
from medcoder.data.synth.visit import Problem

A1C_FORMS = ("A1c {v}%", "HbA1c {v}%", "Hemoglobin A1c {v}%", "A1c of {v}%")


def a1c(rng: random.Random, value: float, codes: tuple[Code, ...] = ()) -> Piece:
    text = pick(rng, A1C_FORMS).format(v=f"{value:.1f}")
    return ev(text, *codes) if codes else text


def a1c_value(rng: random.Random, status: str) -> float:
    lo, hi = {
        "hyper": (8.2, 11.8),
        "controlled": (6.3, 7.4),
        "pre": (5.7, 6.4),
        "near": (5.7, 6.2),
        "normal": (4.8, 5.6),
    }[status]
    return round(rng.uniform(lo, hi), 1)


def bmi_piece(rng: random.Random, bmi: float, coded: bool) -> Piece:
    text = pick(rng, ("BMI {b}", "BMI {b} kg/m2", "BMI: {b}")).format(b=f"{bmi:.1f}")
    return ev(text, icd(bmi_code(bmi))) if coded else text


def lab_lines(rng: random.Random, patient: Patient, tests: list[str], anemia: bool, tsh_high: bool) -> list:
    """Result lines for reviewed tests other than A1c (which the diabetes planner writes)."""
    lines: list = []
    for test in tests:
        if test == "lipid panel":
            lines.append(
                f"Lipid panel: LDL {rng.randint(62, 158)}, HDL {rng.randint(35, 68)}, TG {rng.randint(85, 240)}"
            )
        elif test in ("CMP", "BMP"):
            if patient.has("ckd4"):
                cr, egfr = round(rng.uniform(2.3, 3.4), 1), rng.randint(16, 29)
            elif patient.has("ckd3"):
                cr, egfr = round(rng.uniform(1.4, 1.9), 1), rng.randint(32, 58)
            else:
                cr, egfr = round(rng.uniform(0.6, 1.1), 1), rng.randint(65, 110)
            lines.append(f"{test}: Na {rng.randint(136, 144)}, K {rng.uniform(3.6, 4.9):.1f}, Cr {cr}, eGFR {egfr}")
        elif test == "CBC":
            hgb = rng.uniform(9.4, 11.2) if anemia else rng.uniform(12.6, 15.8)
            lines.append(f"CBC: WBC {rng.uniform(4.5, 9.8):.1f}, Hgb {hgb:.1f}, Plt {rng.randint(160, 380)}")
        elif test == "TSH":
            lines.append(f"TSH {rng.uniform(6.2, 11.5) if tsh_high else rng.uniform(0.7, 3.6):.2f}")
        elif test == "vitamin D level":
            lines.append(f"25-OH vitamin D {rng.randint(11, 27) if patient.has('vitd') else rng.randint(31, 55)} ng/mL")
        elif test == "urine albumin/creatinine ratio":
            lines.append(f"Urine albumin/creatinine ratio {rng.randint(8, 26)} mg/g")
        elif test == "BNP":
            lines.append(f"BNP {rng.randint(90, 380)}")
    return lines


def plan_chronic_problems(
    rng: random.Random,
    style: Style,
    patient: Patient,
    cond_codes: dict[str, tuple[Code, ...]],
    hyperglycemia: bool,
    brief: bool,
) -> list[Problem]:
    """One Problem per documented chronic condition. `brief`: an acute visit that only touches them."""
    problems: list[Problem] = []
    seen: list[str] = []
    for key in cond_codes:
        codes = cond_codes[key]
        meds = patient.meds.get(key, [])
        name = condition(rng, style, key, codes)
        label = condition(rng, style, key, codes)
        p = Problem(key=key, category=em.STABLE_CHRONIC, label=label, entry=[])
        tsh_high = False
        med_txt: list = join([drug(m, full=False) for m in meds], ", ", " and ") if meds else []
        cont = ["continue ", med_txt] if meds else [pick(rng, ("monitor", "no changes", "observation"))]
        if meds:
            p.risk, p.risk_text = em.RISK_MODERATE, "prescription drug management"
        if brief:
            p.entry = [name, ": ", pick(rng, ("stable", "chronic, stable", "unchanged")), "; ", *cont, "."]
            problems.append(p)
            continue
        status = pick(rng, ("stable", "well controlled", "at goal", "doing well"))
        if key == "htn" and chance(rng, 0.25):
            p.category = em.CHRONIC_PROGRESSION
            p.bp = (rng.randint(142, 164), rng.randint(88, 99))
            on = " ".join(m.name for m in meds)
            add = pick(
                rng,
                [
                    d
                    for d in (
                        "amlodipine 5 mg daily",
                        "hydrochlorothiazide 12.5 mg daily",
                        "chlorthalidone 12.5 mg daily",
                        "lisinopril 10 mg daily",
                    )
                    if d.split()[0] not in on
                    and not (d.startswith("lisinopril") and "losartan" in on)
                    and not (d.startswith("chlorthalidone") and "hydrochlorothiazide" in on)
                ],
            )
            p.entry = [
                name,
                f", not at goal today (BP {p.bp[0]}/{p.bp[1]}). ",
                "Add " + add,
                "; ",
                *cont,
                ". Home BP log.",
            ]
            p.risk, p.risk_text = em.RISK_MODERATE, "prescription drug management"
        elif key == "htn":
            p.bp = (rng.randint(116, 134), rng.randint(68, 84))
            p.entry = [name, f": BP {p.bp[0]}/{p.bp[1]}, {status}. ", cap(cont), "."]
        elif key == "t2dm":
            if hyperglycemia:
                p.category = em.CHRONIC_PROGRESSION
                value = a1c_value(rng, "hyper")
                hyper_codes = tuple(c for c in codes if c[1] == "E11.65")
                dm = ev(name_of(rng, style, DM_HYPERGLYCEMIA_NAMES), *codes)
                p.labs.append(a1c(rng, value, hyper_codes))
                if meds:
                    first, rest = meds[-1], meds[:-1]  # insulin, when taken, is listed last
                    change = ["Increase ", drug(first, full=False), " dose"]
                    if rest:
                        change += ["; continue ", join([drug(m, full=False) for m in rest], ", ", " and ")]
                else:
                    change = ["Diet-controlled so far: diabetes education referral, recheck A1c in 3 months"]
                p.entry = [
                    dm,
                    " - ",
                    a1c(rng, value, hyper_codes),
                    pick(rng, (", above goal. ", ", not at goal. ")),
                    *change,
                    ".",
                ]
                p.risk, p.risk_text = em.RISK_MODERATE, "prescription drug management"
            else:
                value = a1c_value(rng, "controlled")
                p.labs.append(a1c(rng, value))
                p.entry = [name, " - ", a1c(rng, value), f", {status}. ", cap(cont) if meds else "Diet controlled", "."]
            p.reviewed.append("A1c")
        elif key == "prediabetes":
            value = a1c_value(rng, "pre")
            p.labs.append(a1c(rng, value, codes))
            p.entry = [name, " - ", a1c(rng, value, codes), ". Diet and exercise; recheck in 6 months."]
            p.reviewed.append("A1c")
        elif key == "hld":
            p.reviewed.append("lipid panel")
            p.entry = [name, f": LDL reviewed, {status}. ", cap(cont), "."]
        elif key in ("ckd3", "ckd4"):
            p.reviewed.append(pick(rng, ("BMP", "CMP")))
            p.entry = [name, ": creatinine stable. Avoid NSAIDs; renal dosing of medications."]
        elif key in ("chf", "hfref"):
            p.entry = [name, ": euvolemic, NYHA class II. Daily weights. ", cap(cont), "."]
            if chance(rng, 0.3):
                p.reviewed.append("BNP")
        elif key == "afib":
            p.entry = [name, f": rate controlled (HR {rng.randint(62, 84)}). ", cap(cont), "."]
        elif key == "cad":
            p.entry = [
                name,
                ": ",
                pick(rng, ("denies ", "no ")),
                men("angina", "I20.9", "negated"),
                ". ",
                cap(cont),
                ".",
            ]
        elif key == "copd":
            p.entry = [
                name,
                ": stable, no recent ",
                men("COPD exacerbations", "J44.1", "negated"),
                ". ",
                cap(cont),
                ".",
            ]
        elif key == "hypothyroid":
            p.reviewed.append("TSH")
            if chance(rng, 0.25):
                p.category = em.CHRONIC_PROGRESSION
                p.entry = [name, ": TSH elevated, increase levothyroxine dose; recheck TSH in 6 weeks."]
                p.risk, p.risk_text = em.RISK_MODERATE, "prescription drug management"
                tsh_high = True
            else:
                p.entry = [name, f": TSH within range, {status}. ", cap(cont), "."]
        elif key in ("gad", "depression", "mdd"):
            score = rng.randint(2, 8)
            p.entry = [name, f": mood {status}, {'GAD-7' if key == 'gad' else 'PHQ-9'} {score}. ", cap(cont), "."]
        elif key == "vitd":
            p.reviewed.append("vitamin D level")
            p.entry = [name, ": ", cap(cont), "."]
        elif key == "anemia":
            p.reviewed.append("CBC")
            p.entry = [name, ": Hgb stable; recheck CBC in 3 months."]
        elif key == "osa":
            p.entry = [name, ": using CPAP nightly, good adherence."]
        elif key in ("breast_ca", "colon_ca"):
            p.entry = [
                name,
                pick(
                    rng,
                    (
                        ": newly diagnosed, surgery scheduled with surgical oncology.",
                        ": followed by oncology, treatment plan in progress.",
                    ),
                ),
            ]
        else:
            p.entry = [name, f": {status}. ", cap(cont), "."]
        # One result line per unique test across the visit (CKD and heart failure may both want a BMP).
        p.reviewed = [t for t in p.reviewed if t not in seen]
        seen.extend(p.reviewed)
        p.labs += lab_lines(rng, patient, [t for t in p.reviewed if t != "A1c"], key == "anemia", tsh_high)
        problems.append(p)
    return problems


def obesity_problem(rng: random.Random, style: Style, bmi: float, bmi_text: Piece) -> Problem:
    morbid = bmi >= 40
    names = MORBID_OBESITY_NAMES if morbid else OBESITY_NAMES
    code = icd("E66.01" if morbid else "E66.9")
    name = ev(name_of(rng, style, names), code)
    entry = [
        name,
        ", ",
        bmi_text,
        ". ",
        pick(
            rng,
            (
                "Lifestyle modification encouraged.",
                "Diet and activity goals reviewed.",
                "Referred to weight management program.",
            ),
        ),
    ]
    return Problem(key="obesity", category=em.STABLE_CHRONIC, label=ev(name_of(rng, style, names), code), entry=entry)
