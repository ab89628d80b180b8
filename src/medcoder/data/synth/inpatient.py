"""Inpatient discharge summaries: admission and discharge diagnoses, hospital course, procedures, meds.

Inpatient rules differ from office rules in the way coders are paid to notice (guideline II.H):
a diagnosis still qualified at discharge as "probable", "suspected", "likely" or "possible" is
coded as if established, and no mention is recorded for it. Symptoms integral to the principal
diagnosis (chest pain with NSTEMI, fever with sepsis) are not coded; a symptom whose cause was
ruled out (chest pain, MI ruled out) is coded and the excluded diagnosis is a negated mention.
Only diagnoses are coded: inpatient procedures would take ICD-10-PCS codes, which this corpus
does not assign (stated in the data card), and no CPT/E/M code is attached to a discharge summary.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from medcoder.data.synth.builder import NoteBuilder, Piece, ev, fill, join, men
from medcoder.data.synth.catalog import (
    DM_HYPERGLYCEMIA_NAMES,
    HISTORY,
    MORBID_OBESITY_NAMES,
    OBESITY_NAMES,
    PNEUMONIA_MISSPELLINGS,
    SYMPTOMS,
    Med,
    drug_class,
    icd,
)
from medcoder.data.synth.chronic import a1c, a1c_value, bmi_piece
from medcoder.data.synth.coding import condition_codes
from medcoder.data.synth.distractors import core_distractors
from medcoder.data.synth.patients import Encounter, Patient
from medcoder.data.synth.phrasing import (
    DX_NEGATION_CUES,
    HYPOTHETICAL_SYMPTOM_CUES,
    INPATIENT_UNCERTAIN_CUES,
    Style,
    age_phrase,
    chance,
    cue,
    name_of,
    pick,
    sex_word,
)
from medcoder.data.synth.sections import (
    bullets,
    cap_first,
    condition,
    drug,
    exam,
    family_history,
    history_item,
    neg_symptom,
    section,
    smoking,
    social_history,
)


@dataclass
class Stay:
    key: str
    admit_dx: Piece  # the presenting problem at admission (integral symptoms: plain, not coded)
    principal: Piece  # discharge diagnosis 1 (annotated)
    hpi: list
    course: list  # hospital-course sentences
    other_dx: list = field(default_factory=list)  # other acute discharge diagnoses (annotated)
    procedures: list[str] = field(default_factory=list)
    consults: list[str] = field(default_factory=list)
    new_meds: list[Med] = field(default_factory=list)
    uncertain: bool = False  # the principal diagnosis is qualified as uncertain (and still coded)
    los: int = 3
    avoid: list[str] = field(default_factory=list)
    hf_code: str | None = None  # acute-on-chronic heart failure code replacing the chronic one
    copd_code: str | None = None  # J44.1 (exacerbation) or J44.0 (lower respiratory infection) replaces J44.9
    followup: str = "PCP in 1 week"
    service: str = ""  # admitting service sentence, when not the default medicine one
    own: tuple[str, ...] = ()  # chronic conditions this admission is about (not called "stable" elsewhere)
    results: list[str] = field(default_factory=list)  # admission results specific to this stay
    na: int | None = None  # admission sodium when it is part of the story
    wbc_high: bool = False
    febrile: bool = False


def _maybe_uncertain(rng: random.Random, p: float, body: Piece) -> tuple[Piece, bool]:
    if chance(rng, p):
        return cue(rng, INPATIENT_UNCERTAIN_CUES, body), True
    return body, False


def negated(rng: random.Random, name: str, code: str) -> list:
    return cue(rng, DX_NEGATION_CUES, men(name, code, "negated"))


# ---------------------------------------------------------------- admissions
def pneumonia(rng, style, pt, age) -> Stay:
    side = pick(rng, ("right lower lobe", "left lower lobe", "right middle lobe"))
    # named by its lobe, a pneumonia is still J18.9 ("lobar pneumonia", J18.1, is a named type, not a site)
    names = ("community-acquired pneumonia", "pneumonia", "CAP", f"{side} pneumonia")
    name = lambda: ev(name_of(rng, style, names, PNEUMONIA_MISSPELLINGS), icd("J18.9"))  # noqa: E731
    principal, unsure = _maybe_uncertain(rng, 0.55, name())
    course = [
        f"Presented with cough, fever and shortness of breath. Chest x-ray showed a {side} opacity. ",
        "Treated with IV ceftriaxone and azithromycin for ",
        (fill("presumed {x}", x=name()) if unsure else name()),
        ", transitioned to oral amoxicillin-clavulanate on day 3. Blood cultures negative; ",
        negated(rng, "sepsis", "A41.9"),
        ". Weaned from 2 L nasal cannula to room air.",
    ]
    return Stay(
        "pneumonia",
        pick(rng, ("cough and fever", "shortness of breath", "fever")),
        principal,
        hpi=["Three days of productive cough, fevers and malaise; SpO2 89% on arrival."],
        course=course,
        procedures=["Chest x-ray"],
        uncertain=unsure,
        febrile=True,
        copd_code="J44.0",
        los=rng.randint(2, 5),
        wbc_high=True,
        results=[f"Procalcitonin {rng.uniform(0.6, 3.2):.1f}", f"Chest x-ray: {side} consolidation"],
        avoid=["J18.9", "R05.9", "R50.9", "R06.02", "A41.9"],
    )


def copd_exacerbation(rng, style, pt, age) -> Stay:
    names = ("acute exacerbation of COPD", "COPD exacerbation", "AECOPD", "COPD with acute exacerbation")
    name = lambda: ev(name_of(rng, style, names), icd("J44.1"))  # noqa: E731
    principal, unsure = _maybe_uncertain(rng, 0.2, name())
    course = [
        "Admitted with increased dyspnea, wheezing and sputum. Chest x-ray without infiltrate; ",
        negated(rng, "pneumonia", "J18.9"),
        ". Treated with nebulized albuterol-ipratropium, prednisone 40 mg daily and "
        "doxycycline. Improved to baseline by day 3, ambulating on room air.",
    ]
    return Stay(
        "copd_exac",
        "shortness of breath",
        principal,
        hpi=["Worsening dyspnea and cough over 4 days."],
        course=course,
        procedures=["Chest x-ray"],
        uncertain=unsure,
        los=rng.randint(2, 5),
        copd_code="J44.1",
        own=("copd",),
        new_meds=[Med("prednisone 40 mg daily x 2 more days")],
        avoid=["J44.1", "J44.9", "J18.9", "R06.02", "R06.2", "R05.9"],
    )


def chf_exacerbation(rng, style, pt, age) -> Stay:
    names = ("acute on chronic systolic heart failure", "acute on chronic systolic CHF", "acute on chronic HFrEF")
    codes = condition_codes(pt.conditions, heart_failure_code="I50.23")["hfref"]
    name = lambda: ev(name_of(rng, style, names), *codes)  # noqa: E731
    principal, unsure = _maybe_uncertain(rng, 0.15, name())
    course = [
        "Admitted with orthopnea, leg swelling and 5 kg weight gain. BNP elevated. Diuresed with IV furosemide, net "
        f"negative {rng.randint(3, 6)} L. Echo: EF {rng.randint(20, 35)}%. Troponin flat; ",
        negated(rng, "acute coronary syndrome", "I24.9"),
        ". Transitioned to oral diuretic; discharge weight documented.",
    ]
    return Stay(
        "chf_exac",
        "shortness of breath",
        principal,
        hpi=["Progressive dyspnea on exertion and orthopnea for a week."],
        course=course,
        procedures=["Transthoracic echocardiogram"],
        consults=["cardiology"],
        uncertain=unsure,
        los=rng.randint(3, 6),
        hf_code="I50.23",
        own=("hfref",),
        results=[
            f"BNP {rng.randint(900, 2400)}",
            "Troponin 0.02, 0.02",
            "Chest x-ray: cardiomegaly, vascular congestion",
        ],
        avoid=["I50.23", "I50.22", "R06.02", "R60.9", "I24.9"],
    )


def nstemi(rng, style, pt, age) -> Stay:
    names = ("NSTEMI", "non-ST elevation myocardial infarction", "non-ST-elevation MI")
    principal = ev(name_of(rng, style, names), icd("I21.4"))
    course = [
        "Presented with substernal chest pain. ECG with ST depressions, troponin peaked at ",
        f"{rng.uniform(1.2, 9.8):.1f} ng/mL. Started on heparin drip. "
        "Left heart catheterization showed a 90% LAD stenosis, "
        "treated with a drug-eluting stent. Pain free after the procedure.",
    ]
    meds = [
        Med("aspirin 81 mg daily", "Z79.82"),
        Med("clopidogrel 75 mg daily", "Z79.02"),
        Med("atorvastatin 80 mg nightly"),
    ]
    return Stay(
        "nstemi",
        "chest pain",
        principal,
        hpi=["Two hours of pressure-like chest pain radiating to the left arm."],
        course=course,
        procedures=["Left heart catheterization with drug-eluting stent to the LAD"],
        consults=["cardiology"],
        new_meds=meds,
        los=rng.randint(2, 4),
        own=("cad",),
        results=["Troponin peak as above", "LDL 142"],
        avoid=["I21.4", "R07.9", "I21.9"],
        followup="cardiology in 2 weeks; cardiac rehab",
    )


def sepsis_uti(rng, style, pt, age) -> Stay:
    uti = lambda: ev(name_of(rng, style, ("urinary tract infection", "UTI")), icd("N39.0"))  # noqa: E731
    source, unsure = _maybe_uncertain(rng, 0.5, uti())
    principal = [ev("Sepsis", icd("A41.9")), pick(rng, (" due to ", " secondary to ", ", source: ")), source]
    course = [
        "Presented with fever, tachycardia and dysuria; lactate 2.4, WBC 16. "
        "Met sepsis criteria without organ dysfunction; ",
        negated(rng, "septic shock", "R65.21"),
        ". Treated with IV fluids and ceftriaxone for ",
        uti() if not unsure else fill("a presumed {x}", x=uti()),
        ". Blood and urine cultures without growth.",
    ]
    return Stay(
        "sepsis",
        "fever",
        principal,
        hpi=["Fever, chills and burning with urination for 2 days."],
        course=course,
        uncertain=unsure,
        febrile=True,
        los=rng.randint(3, 6),
        wbc_high=True,
        results=["Lactate 2.4", "UA: large leukocyte esterase, positive nitrite, >50 WBC"],
        avoid=["A41.9", "N39.0", "R50.9", "R30.0", "R65.21", "R65.20"],
    )


def appendicitis(rng, style, pt, age) -> Stay:
    principal = ev(
        pick(rng, ("acute appendicitis", "acute appendicitis without perforation", "appendicitis, acute")),
        icd("K35.80"),
    )
    course = [
        "CT abdomen showed a dilated, inflamed appendix without perforation or abscess. Underwent laparoscopic "
        "appendectomy on the day of admission without complication. Pathology: ",
        ev("acute appendicitis", icd("K35.80")),
        ". Tolerating diet.",
    ]
    return Stay(
        "appendicitis",
        "abdominal pain",
        principal,
        service="Admitted to general surgery.",
        hpi=["Periumbilical pain migrating to the right lower quadrant with nausea and vomiting."],
        course=course,
        procedures=["CT abdomen/pelvis with contrast", "Laparoscopic appendectomy"],
        consults=["general surgery"],
        los=rng.randint(1, 2),
        avoid=["K35.80", "R10.9", "R11.2", "R10.31"],
        followup="general surgery clinic in 2 weeks",
    )


def stroke(rng, style, pt, age) -> Stay:
    principal = ev(pick(rng, ("acute ischemic stroke", "acute CVA", "ischemic stroke")), icd("I63.9"))
    course = [
        "Presented with transient neurologic symptoms that resolved before arrival (NIHSS 0). "
        "MRI brain showed a small acute infarct. CT head: ",
        negated(rng, "intracranial hemorrhage", "I62.9"),
        ". Telemetry without arrhythmia. Echo unremarkable. No residual deficits at discharge.",
    ]
    return Stay(
        "stroke",
        "stroke symptoms",
        principal,
        hpi=["Sudden-onset symptoms that resolved within an hour."],
        course=course,
        procedures=["MRI brain", "CT head", "Transthoracic echocardiogram"],
        consults=["neurology"],
        new_meds=[Med("aspirin 81 mg daily", "Z79.82"), Med("atorvastatin 80 mg nightly")],
        los=rng.randint(2, 4),
        avoid=["I63.9", "I62.9"],
        followup="neurology clinic in 4 weeks",
    )


def covid_pneumonia(rng, style, pt, age) -> Stay:
    covid = ev("COVID-19", icd("U07.1"))
    principal = ev(fill(pick(rng, ("{c} pneumonia", "pneumonia due to {c}")), c=covid), icd("J12.82"))
    course = [
        "Positive SARS-CoV-2 PCR. Bilateral infiltrates on chest x-ray. "
        "Required 2-3 L oxygen, treated with dexamethasone and remdesivir. CTA chest: ",
        negated(rng, "pulmonary embolism", "I26.99"),
        ". Weaned to room air by discharge.",
    ]
    return Stay(
        "covid",
        "fever and shortness of breath",
        principal,
        hpi=["Fever, cough and worsening dyspnea for 6 days."],
        course=course,
        procedures=["CT angiography of the chest"],
        febrile=True,
        copd_code="J44.0",
        los=rng.randint(3, 7),
        avoid=["U07.1", "J12.82", "J18.9", "R50.9", "R05.9", "R06.02", "I26.99"],
    )


def afib_rvr(rng, style, pt, age) -> Stay:
    codes = condition_codes(pt.conditions)["afib"]
    principal = ev(
        pick(
            rng,
            ("atrial fibrillation with rapid ventricular response", "AFib with RVR", "atrial fibrillation with RVR"),
        ),
        *codes,
    )
    anticoagulated = any(m.z_code == "Z79.01" for m in pt.meds.get("afib", []))
    course = [
        "Heart rate 150s on arrival. Rate controlled with IV diltiazem, then oral rate control. "
        "TSH normal. Troponin negative; ",
        negated(rng, "acute MI", "I21.9"),
        ". ",
        "Home anticoagulation continued." if anticoagulated else "Anticoagulation discussed; patient declined.",
    ]
    return Stay(
        "afib_rvr",
        "palpitations",
        principal,
        hpi=["Palpitations and lightheadedness since the morning."],
        course=course,
        procedures=["ECG", "Transthoracic echocardiogram"],
        los=rng.randint(1, 3),
        own=("afib",),
        avoid=["I48.91", "R00.2", "I21.9", "R42"],
    )


def chest_pain_ruled_out(rng, style, pt, age) -> Stay:
    principal = ev(pick(rng, ("chest pain", "chest pain, unspecified")), icd("R07.9"))
    course = [
        "Serial troponins negative x3 and ECG without ischemic changes; ",
        negated(rng, pick(rng, ("acute MI", "myocardial infarction")), "I21.9"),
        ". Stress test without ischemia. Pain resolved; etiology not determined.",
    ]
    return Stay(
        "chest_pain",
        ev("chest pain", icd("R07.9")),
        principal,
        hpi=["Intermittent ", ev("chest pain", icd("R07.9")), " at rest since yesterday."],
        course=course,
        procedures=["Exercise stress test"],
        los=rng.randint(1, 2),
        avoid=["R07.9", "I21.9", "I21.4", "I24.9"],
    )


def aki_dehydration(rng, style, pt, age) -> Stay:
    principal = ev(pick(rng, ("acute kidney injury", "AKI")), icd("N17.9"))
    dehydration = ev("dehydration", icd("E86.0"))
    gastro = ev(pick(rng, ("viral gastroenteritis", "gastroenteritis, viral")), icd("A08.4"))
    course = [
        "Creatinine 2.4 from baseline 0.9 after several days of vomiting and diarrhea from ",
        gastro,
        ". Treated for ",
        ev("dehydration", icd("E86.0")),
        " with IV fluids; creatinine improved to 1.1. Nephrotoxins held.",
    ]
    return Stay(
        "aki",
        "vomiting and diarrhea",
        principal,
        results=["BUN 48", "Urinalysis bland"],
        hpi=["Four days of vomiting and watery diarrhea, poor oral intake."],
        course=course,
        other_dx=[dehydration, ev("viral gastroenteritis", icd("A08.4"))],
        los=rng.randint(2, 4),
        avoid=["N17.9", "E86.0", "A08.4", "R11.2", "R19.7"],
    )


def hyponatremia(rng, style, pt, age) -> Stay:
    principal = ev(pick(rng, ("hyponatremia", "hypovolemic hyponatremia", "symptomatic hyponatremia")), icd("E87.1"))
    na = rng.randint(119, 127)
    course = [
        f"Sodium {na} on admission with poor oral intake. "
        f"Treated with isotonic saline with slow correction; sodium {na + 9} at discharge. ",
        ev("Hyponatremia", icd("E87.1")),
        " felt to be hypovolemic from poor oral intake.",
    ]
    return Stay(
        "hyponatremia",
        "weakness",
        principal,
        hpi=["Generalized weakness and poor appetite for a week."],
        course=course,
        los=rng.randint(2, 4),
        na=na,
        results=["Serum osmolality 262", "Urine sodium 12"],
        avoid=["E87.1", "R53.1"],
    )


def cellulitis(rng, style, pt, age) -> Stay:
    def name() -> Piece:
        return ev(
            pick(rng, ("cellulitis of the right lower leg", "right lower extremity cellulitis", "RLE cellulitis")),
            icd("L03.115"),
        )

    principal, unsure = _maybe_uncertain(rng, 0.4, name())
    course = [
        "Erythema and warmth of the right leg failing oral antibiotics. Venous duplex: ",
        negated(rng, "DVT", "I82.409"),
        ". Treated with IV cefazolin with improvement, transitioned to oral cephalexin.",
    ]
    return Stay(
        "cellulitis",
        "leg redness",
        principal,
        hpi=["Spreading redness of the right lower leg for 4 days."],
        course=course,
        procedures=["Venous duplex ultrasound, right leg"],
        uncertain=unsure,
        los=rng.randint(2, 4),
        new_meds=[Med("cephalexin 500 mg four times daily x 7 days")],
        avoid=["L03.115", "I82.409", "L02.415"],
    )


# A diagnosis the stay considered and excluded, listed with the discharge diagnoses in the words a
# positive summary uses: (names, code, chronic condition that rules it out as a distractor).
RULED_OUT_AT_DISCHARGE: dict[str, tuple[tuple[str, ...], str, str]] = {
    "chest_pain": (("NSTEMI", "non-ST elevation myocardial infarction"), "I21.4", "none"),
    "afib_rvr": (("NSTEMI", "non-ST elevation myocardial infarction"), "I21.4", "none"),
    "chf_exac": (("pneumonia", "community-acquired pneumonia"), "J18.9", "none"),
    "copd_exac": (("pneumonia", "community-acquired pneumonia"), "J18.9", "none"),
    "sepsis": (("pneumonia", "community-acquired pneumonia"), "J18.9", "none"),
    "stroke": (("atrial fibrillation", "AFib"), "I48.91", "afib"),
    "hyponatremia": (("heart failure", "congestive heart failure"), "I50.9", "chf"),
    "aki": (("urinary tract infection", "UTI"), "N39.0", "none"),
}


@dataclass(frozen=True)
class AdmissionType:
    build: Callable[..., Stay]
    weight: float
    min_age: int = 18
    max_age: int = 120
    requires: str | None = None
    excludes: tuple[str, ...] = ()
    no_history: str | None = None


ADMISSIONS: tuple[AdmissionType, ...] = (
    AdmissionType(pneumonia, 14, 0),
    AdmissionType(copd_exacerbation, 30, 40, requires="copd"),
    AdmissionType(chf_exacerbation, 80, 45, requires="hfref"),
    AdmissionType(nstemi, 24, 40, requires="cad"),
    AdmissionType(sepsis_uti, 7, 18),
    AdmissionType(appendicitis, 5, 6, 60),
    AdmissionType(stroke, 4, 50, no_history="hx_stroke"),
    AdmissionType(covid_pneumonia, 4, 18),
    AdmissionType(afib_rvr, 25, 45, requires="afib"),
    AdmissionType(chest_pain_ruled_out, 6, 30),
    AdmissionType(aki_dehydration, 4, 18, excludes=("ckd3", "ckd4")),
    AdmissionType(hyponatremia, 3, 50),
    AdmissionType(cellulitis, 5, 18),
)


def _eligible(a: AdmissionType, patient: Patient, age: int) -> bool:
    return (
        a.min_age <= age <= a.max_age
        and (not a.requires or patient.has(a.requires))
        and not any(patient.has(k) for k in a.excludes)
        and not (a.no_history and any(k == a.no_history for k, _ in patient.history))
    )


# ---------------------------------------------------------------- writing
def render(rng: random.Random, style: Style, patient: Patient, enc: Encounter) -> NoteBuilder:
    age = enc.age
    options = [a for a in ADMISSIONS if _eligible(a, patient, age)]
    stay = rng.choices(options, weights=[a.weight for a in options], k=1)[0].build(rng, style, patient, age)
    hyper = patient.has("t2dm") and chance(rng, 0.25)
    codes = condition_codes(
        patient.conditions, hyperglycemia=hyper, heart_failure_code=stay.hf_code, copd_code=stay.copd_code
    )
    b = NoteBuilder()
    b.line(pick(rng, ("DISCHARGE SUMMARY", "Discharge Summary", "HOSPITAL DISCHARGE SUMMARY")))
    discharge = enc.date + dt.timedelta(days=stay.los)
    b.line(
        f"Admission date: {enc.date.isoformat()}", pick(rng, ("  ", "\n")), f"Discharge date: {discharge.isoformat()}"
    )
    b.line(
        "Patient: ",
        patient.name,
        ", ",
        age_phrase(rng, age, patient.infant_months),
        " ",
        sex_word(rng, patient.sex, age),
        f"; payer: {patient.payer.replace('_', ' ')}.",
    )
    section(b, style, "adm_dx", stay.admit_dx)

    # --- discharge diagnoses: principal, other acute, chronic
    dx_entries: list = [[stay.principal, pick(rng, (" (principal)", "", " - principal diagnosis"))]]
    dx_entries += stay.other_dx
    extra_course: list = []
    avoid = list(stay.avoid)
    anemia = patient.has("anemia")
    if chance(rng, 0.12) and not anemia and stay.key != "hyponatremia":
        anemia = True
        dx_entries.append(ev("anemia", icd("D64.9")))
        extra_course += [" ", ev("Anemia", icd("D64.9")), " noted, stable without bleeding; outpatient workup."]
        avoid.append("D64.9")
    na_low = None
    if chance(rng, 0.1) and stay.key != "hyponatremia":
        na_low = rng.randint(128, 133)
        dx_entries.append(ev(pick(rng, ("hyponatremia", "mild hyponatremia")), icd("E87.1")))
        extra_course += [" ", ev("Hyponatremia", icd("E87.1")), f" (Na {na_low}) corrected with fluids."]
        avoid.append("E87.1")
    chronic_keys = list(patient.conditions)
    for key in [k for k in chronic_keys if k not in stay.own or k == "cad"]:
        if key == "t2dm" and hyper:
            dx_entries.append(ev(name_of(rng, style, DM_HYPERGLYCEMIA_NAMES), *codes[key]))
        else:
            dx_entries.append(condition(rng, style, key, codes[key]))
    if patient.bmi and patient.bmi >= 30 and chance(rng, 0.4):
        names = MORBID_OBESITY_NAMES if patient.bmi >= 40 else OBESITY_NAMES
        dx_entries.append(
            [
                ev(name_of(rng, style, names), icd("E66.01" if patient.bmi >= 40 else "E66.9")),
                ", ",
                bmi_piece(rng, patient.bmi, coded=True),
            ]
        )
    ruled_out = RULED_OUT_AT_DISCHARGE.get(stay.key)
    involved = (
        set(avoid)
        | {c for cs in codes.values() for _, c in cs}
        | {c for k, _ in patient.history for c in (HISTORY[k].code, HISTORY[k].mention_code)}
    )
    if ruled_out and ruled_out[1] not in involved and not patient.has(ruled_out[2]) and chance(rng, 0.7):
        name, code, _ = ruled_out
        dx_entries.append(cap_first(cue(rng, DX_NEGATION_CUES, men(name_of(rng, style, name), code, "negated"))))
        involved.add(code)
    section(b, style, "dc_dx", *bullets(style, dx_entries), block=True)

    # --- history
    hpi = [age_phrase(rng, age, patient.infant_months), " ", sex_word(rng, patient.sex, age), " with "]
    pmh_items = [condition(rng, style, k, codes[k]) for k in chronic_keys]
    pmh_items += [history_item(rng, hk, year) for hk, year in patient.history]
    hpi += [join(pmh_items[:4], ", ", " and ") if pmh_items else "no significant past history", " who presented with "]
    hpi += [stay.admit_dx, ". ", *stay.hpi]
    temp = rng.uniform(38.3, 39.4) if stay.febrile else rng.uniform(36.4, 37.3)
    hpi += [
        f" In the ED: T {temp:.1f} C, HR {rng.randint(96, 124) if stay.febrile else rng.randint(64, 98)}, "
        f"BP {rng.randint(104, 150) if age >= 18 else rng.randint(96, 118)}/"
        f"{rng.randint(60, 88) if age >= 18 else rng.randint(54, 72)}, "
        f"SpO2 {rng.randint(90, 98)}%. ",
        stay.service
        or pick(
            rng,
            (
                "Admitted to the hospitalist service.",
                "Admitted to medicine for further management.",
                "Admitted to a telemetry bed." if age >= 18 else "Admitted to pediatrics.",
            ),
        ),
    ]
    if chance(rng, 0.5):
        negs = [
            k
            for k in ("chest_pain", "headache", "abd_pain", "dysuria", "diarrhea", "rash", "dizziness")
            if SYMPTOMS[k].code not in avoid
        ]
        hpi += [
            " ",
            pick(rng, ("Denies ", "No ")),
            join([neg_symptom(rng, k) for k in rng.sample(negs, min(3, len(negs)))], ", ", " or "),
            ".",
        ]
    section(b, style, "hpi", *hpi)
    if pmh_items:
        section(b, style, "pmh", *join(pmh_items, ", "))
    home_meds = [m for k in chronic_keys for m in patient.meds.get(k, [])]
    if age >= 18:
        section(b, style, "social", cap_first(smoking(rng, patient)), ".")
    else:
        section(b, style, "social", *social_history(rng, patient, age))
    if chance(rng, 0.45):
        section(b, style, "family", *family_history(rng, patient))
    text, z = patient.allergy
    section(b, style, "allergies", ev(text, icd(z)) if z else text)

    # --- hospital course
    course: list = list(stay.course) + extra_course
    if hyper:
        value = a1c_value(rng, "hyper")
        course += [
            " ",
            ev(name_of(rng, style, DM_HYPERGLYCEMIA_NAMES), *codes["t2dm"]),
            ": ",
            a1c(rng, value, (icd("E11.65"),)),
            ", basal-bolus insulin in hospital, regimen intensified at discharge.",
        ]
    others = [k for k in chronic_keys if not (k == "t2dm" and hyper) and k not in stay.own]
    if others and chance(rng, 0.5):
        course += [
            " Chronic conditions (",
            join([condition(rng, style, k, codes[k]) for k in others[:5]], ", "),
            ") ",
            pick(
                rng,
                (
                    "were stable; home medications continued.",
                    "remained stable during the stay.",
                    "were managed with home regimens.",
                ),
            ),
        ]
    elif others:
        for k in others:
            meds = patient.meds.get(k, [])
            plan = (
                ["home ", join([drug(m, full=False) for m in meds], ", ", " and "), " continued"]
                if meds
                else ["monitored, no changes"]
            )
            course += ["\n", condition(rng, style, k, codes[k]), ": stable; ", *plan, "."]
    for entry in core_distractors(
        rng, style, patient, age, involved | {"A1c"} if hyper else involved, rate=0.35, family_rate=0.15
    ):
        course += ["\n", cap_first(entry)]
    course += [
        " ",
        pick(
            rng,
            (
                "Evaluated by physical therapy, safe for discharge home.",
                "Ambulating independently at discharge.",
                "Case management arranged follow-up; discharged home with family.",
            )
            if age >= 18
            else ("Tolerating diet, pain controlled with oral medication.",),
        ),
    ]
    section(b, style, "course", *course, block=True)
    if stay.procedures:
        section(b, style, "ip_procedures", "; ".join(stay.procedures) + ".")
    if stay.consults:
        section(b, style, "consults", ", ".join(stay.consults) + ".")
    b.line(
        pick(rng, ("Pertinent results: ", "Admission labs and studies: ", "Key results: ")),
        _results(rng, patient, stay, na_low, anemia),
    )
    b.line(pick(rng, ("Discharge exam: ", "Exam at discharge: ")), exam(rng, {}, avoid, brief=True))

    # --- discharge medications and follow-up
    # A drug started in hospital replaces the home drug of the same class (e.g. high-intensity statin).
    new_classes = [drug_class(m) for m in stay.new_meds]
    meds = [m for m in home_meds if drug_class(m) not in new_classes] + list(stay.new_meds)
    section(
        b,
        style,
        "dc_meds",
        *(bullets(style, [drug(m) for m in meds]) if meds else ["No medications."]),
        block=bool(meds),
    )
    section(b, style, "dc_condition", pick(rng, ("stable", "good, ambulating independently", "improved")) + ".")
    bp = (
        f"{rng.randint(110, 138)}/{rng.randint(64, 84)}"
        if age >= 18
        else f"{rng.randint(96, 116)}/{rng.randint(54, 72)}"
    )
    b.line(
        f"Discharge vitals: T {rng.uniform(36.4, 37.2):.1f} C, HR {rng.randint(62, 92)}, BP {bp}, "
        f"SpO2 {rng.randint(94, 99)}% on room air. Disposition: "
        + (pick(rng, ("home.", "home with home health.", "home with family.")) if age >= 18 else "home with parents.")
    )
    follow: list = [f"Follow up with {stay.followup}"]
    if chance(rng, 0.55):
        keys = [k for k in ("chest_pain", "sob", "fever", "dizziness") if SYMPTOMS[k].code not in avoid]
        if keys:
            sym = SYMPTOMS[pick(rng, keys)]
            follow += [
                ". ",
                cap_first(cue(rng, HYPOTHETICAL_SYMPTOM_CUES, men(pick(rng, sym.names), sym.code, "hypothetical"))),
            ]
    section(b, style, "dc_followup", *follow, ".")
    b.line(pick(rng, ("Discharge instructions: ", "Patient instructions: ")), *_instructions(rng, patient, avoid))
    b.line(
        pick(
            rng,
            (
                "Code status: full code.",
                "Code status: Full Code.",
                "Pending results at discharge: none.",
                "Time spent on discharge: over 30 minutes.",
            ),
        )
    )
    return b


def _results(rng: random.Random, patient: Patient, stay: Stay, na_low: int | None, anemia: bool) -> str:
    """Admission labs consistent with what is documented (an abnormal value appears only with its diagnosis)."""
    wbc = rng.uniform(13.5, 19.5) if stay.wbc_high else rng.uniform(4.8, 10.2)
    hgb = rng.uniform(9.0, 11.2) if anemia else rng.uniform(12.4, 15.6)
    na = stay.na or na_low or rng.randint(136, 143)
    if stay.key == "aki":
        cr = 2.4
    elif patient.has("ckd4"):
        cr = round(rng.uniform(2.3, 3.4), 1)
    elif patient.has("ckd3"):
        cr = round(rng.uniform(1.4, 1.9), 1)
    else:
        cr = round(rng.uniform(0.6, 1.1), 1)
    lines = [
        f"WBC {wbc:.1f}, Hgb {hgb:.1f}, Plt {rng.randint(160, 360)}",
        f"Na {na}, K {rng.uniform(3.6, 4.8):.1f}, HCO3 {rng.randint(22, 28)}, Cr {cr}",
        f"glucose {rng.randint(88, 135) if not patient.has('t2dm') else rng.randint(140, 260)}",
    ]
    return "; ".join(lines + stay.results) + "."


def _instructions(rng: random.Random, patient: Patient, avoid: list[str]) -> list:
    diet = (
        "diabetic diet"
        if patient.has("t2dm")
        else "low-sodium diet"
        if any(patient.has(k) for k in ("hfref", "chf", "htn"))
        else "regular diet"
    )
    out: list = [f"{diet.capitalize()}; activity as tolerated; take medications as listed."]
    keys = [k for k in ("fever", "chest_pain", "sob", "dizziness", "abd_pain") if SYMPTOMS[k].code not in avoid]
    if keys and chance(rng, 0.6):
        chosen = rng.sample(keys, min(len(keys), rng.randint(1, 3)))
        warn = join([men(pick(rng, SYMPTOMS[k].names), SYMPTOMS[k].code, "hypothetical") for k in chosen], ", ", " or ")
        out += [" ", pick(rng, ("Return to the ED for ", "Call your doctor for any ", "Seek care for new ")), warn, "."]
    return out
