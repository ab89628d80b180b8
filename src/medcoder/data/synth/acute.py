"""Acute office problems: what each presentation documents, codes, and contributes to MDM.

Each scenario returns a `Problem`. Three patterns recur, all from the Official Guidelines:
- a confirmed diagnosis: symptoms routinely associated with it are integral and NOT coded
  (cough and fever with pneumonia -> J18.9 only), so symptom phrases stay plain text;
- an uncertain diagnosis in the office ("probable", "suspected", "rule out"; guideline IV.H): the
  diagnosis is an "uncertain" mention and the documented symptoms ARE coded;
- a test result that rules something out: the excluded diagnosis is a "negated" mention.
In-office procedures are documented as done ("performed", "administered") and carry their CPT
code; tests merely ordered are MDM data, not procedures.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from medcoder.data.synth import em
from medcoder.data.synth.builder import Piece, ev, fill, join, men
from medcoder.data.synth.catalog import CHRONIC, PNEUMONIA_MISSPELLINGS, SYMPTOMS, cpt, hcpcs, icd
from medcoder.data.synth.patients import Patient
from medcoder.data.synth.phrasing import DX_NEGATION_CUES, UNCERTAIN_CUES, Style, chance, cue, name_of, pick
from medcoder.data.synth.sections import cap_first, symptom
from medcoder.data.synth.visit import Problem

RX = (em.RISK_MODERATE, "prescription drug management")
OTC = (em.RISK_LOW, "OTC medications")
SUPPORTIVE = (em.RISK_MINIMAL, "supportive care only")
ED = (em.RISK_HIGH, "decision regarding hospitalization (sent to the ED)")


def symptoms(rng: random.Random, keys: list[str], coded: bool) -> list[Piece]:
    return [symptom(rng, k, (icd(SYMPTOMS[k].code),) if coded else ()) for k in keys]


def dx(
    rng: random.Random, style: Style, names: tuple[str, ...], code: str, misspellings: tuple[str, ...] = ()
) -> Piece:
    return ev(name_of(rng, style, names, misspellings), icd(code))


def negated_dx(rng: random.Random, name: str, code: str) -> list:
    return cue(rng, DX_NEGATION_CUES, men(name, code, "negated"))


def hpi_line(rng: random.Random, sx: list[Piece], days: int) -> list:
    template = pick(
        rng,
        (
            "Reports {s} for {d} days.",
            "{d} days of {s}.",
            "Presents with {s} x {d} days.",
            "Complains of {s}, onset {d} days ago.",
        ),
    )
    return cap_first(fill(template, s=join(sx, ", ", " and "), d=str(days)))


def fever_temp(rng: random.Random) -> float:
    return round(rng.uniform(38.2, 39.3), 1)


# ---------------------------------------------------------------- confirmed diagnoses
def uri(rng, style, pt, age) -> Problem:
    keys = ["congestion", "cough"] + (["sore_throat"] if chance(rng, 0.4) else [])
    name = dx(
        rng, style, ("upper respiratory infection", "URI", "acute upper respiratory infection", "viral URI"), "J06.9"
    )
    risk = OTC if chance(rng, 0.6) else SUPPORTIVE
    entry = [
        name,
        ". ",
        pick(rng, ("Supportive care, fluids, rest.", "Saline rinses, honey for cough.")),
        " OTC decongestant as needed." if risk is OTC else "",
    ]
    if chance(rng, 0.5):
        entry += [" Lungs clear; ", negated_dx(rng, "pneumonia", "J18.9"), "."]
    return Problem(
        "uri",
        em.MINOR,
        dx(rng, style, ("URI", "upper respiratory infection"), "J06.9"),
        entry,
        cc=pick(rng, ("cold symptoms", "congestion and cough", "cough")),
        hpi=[hpi_line(rng, symptoms(rng, keys, False), rng.randint(2, 7))],
        positives=symptoms(rng, keys, False),
        risk=risk[0],
        risk_text=risk[1],
        avoid=["J06.9", "J18.9"] + [SYMPTOMS[k].code for k in keys],
    )


def pharyngitis(rng, style, pt, age) -> Problem:
    positive = chance(rng, 0.4)
    test = ev(
        pick(
            rng,
            (
                "Rapid strep test performed in clinic",
                "Rapid strep antigen test done in office",
                "Rapid strep performed",
            ),
        ),
        cpt("87880"),
    )
    proc = [test, ": ", "positive." if positive else "negative."]
    if positive:
        name = dx(rng, style, ("strep pharyngitis", "streptococcal pharyngitis", "strep throat"), "J02.0")
        entry = [name, ". Amoxicillin 500 mg twice daily x 10 days."]
        risk, label = RX, dx(rng, style, ("strep pharyngitis",), "J02.0")
    else:
        name = dx(rng, style, ("acute pharyngitis", "pharyngitis"), "J02.9")
        entry = [
            name,
            "; ",
            negated_dx(rng, pick(rng, ("strep pharyngitis", "strep throat")), "J02.0"),
            ". Salt-water gargles, acetaminophen as needed.",
        ]
        risk, label = OTC, dx(rng, style, ("pharyngitis",), "J02.9")
    # Sore throat is integral to pharyngitis; it names J02.9 itself, so it is evidence only when J02.9 is coded.
    sx = [symptom(rng, "sore_throat", () if positive else (icd("J02.9"),)), symptom(rng, "fever")]
    return Problem(
        "pharyngitis",
        em.ACUTE_UNCOMPLICATED,
        label,
        entry,
        cc=symptom(rng, "sore_throat", () if positive else (icd("J02.9"),)),
        hpi=[hpi_line(rng, sx, rng.randint(1, 4))],
        positives=[symptom(rng, "sore_throat", () if positive else (icd("J02.9"),))],
        exam={"HEENT": pick(rng, ("tonsillar erythema with exudate", "pharynx erythematous, tonsils 2+"))},
        procedures=[proc],
        risk=risk[0],
        risk_text=risk[1],
        temp_c=fever_temp(rng),
        febrile=True,
        avoid=["J02.0", "J02.9", "R50.9", "J06.9"],
    )


def otitis(rng, style, pt, age) -> Problem:
    keys = ["ear_pain", "fever"]
    parent = pick(rng, ("mother", "father", "parent"))
    name = dx(rng, style, ("acute otitis media", "AOM", "otitis media"), "H66.90")
    entry = [name, ". Amoxicillin 90 mg/kg/day divided twice daily x 10 days. Ibuprofen for pain."]
    hpi = [
        f"History provided by {parent} (independent historian). ",
        hpi_line(rng, symptoms(rng, keys, False), rng.randint(1, 3)),
    ]
    return Problem(
        "otitis",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("otitis media", "AOM"), "H66.90"),
        entry,
        cc=pick(rng, ("ear pain", "ear pulling and fever")),
        hpi=hpi,
        positives=symptoms(rng, keys, False),
        exam={"HEENT": "tympanic membrane erythematous and bulging, decreased mobility"},
        historian=True,
        risk=RX[0],
        risk_text=RX[1],
        temp_c=fever_temp(rng),
        febrile=True,
        avoid=["H66.90", "H92.09", "R50.9"],
    )


def uti(rng, style, pt, age) -> Problem:
    keys = ["dysuria", "frequency"]
    name = dx(rng, style, ("urinary tract infection", "UTI"), "N39.0")
    dip = ev(
        pick(
            rng,
            ("Urine dipstick performed in clinic", "Urine dipstick (non-automated) in office", "Office urine dipstick"),
        ),
        cpt("81002"),
    )
    entry = [
        name,
        ". Nitrofurantoin 100 mg twice daily x 5 days. ",
        cap_first(negated_dx(rng, "pyelonephritis", "N12")),
        ".",
    ]
    ordered = ["urine culture"] if chance(rng, 0.6) else []
    if ordered:
        entry.append(" Urine culture sent.")
    return Problem(
        "uti",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("UTI",), "N39.0"),
        entry,
        cc="burning with urination",
        hpi=[hpi_line(rng, symptoms(rng, keys, False), rng.randint(1, 4)), "No flank pain."],
        positives=symptoms(rng, keys, False),
        procedures=[[dip, ": positive leukocyte esterase and nitrite."]],
        exam={"Abdomen": "mild suprapubic tenderness, no CVA tenderness"},
        ordered=ordered,
        risk=RX[0],
        risk_text=RX[1],
        avoid=["N39.0", "N12", "R30.0", "R35.0"],
    )


def cellulitis(rng, style, pt, age) -> Problem:
    name = dx(
        rng,
        style,
        (
            "cellulitis of the right lower leg",
            "right lower extremity cellulitis",
            "cellulitis of right lower limb",
            "RLE cellulitis",
        ),
        "L03.115",
    )
    entry = [
        name,
        ". Cephalexin 500 mg four times daily x 7 days; mark borders, elevate. ",
        cap_first(negated_dx(rng, "abscess", "L02.415")),
        ".",
    ]
    return Problem(
        "cellulitis",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("RLE cellulitis",), "L03.115"),
        entry,
        cc="red, painful right leg",
        hpi=[f"Redness and warmth of the right lower leg for {rng.randint(2, 5)} days."],
        exam={"Skin": "erythema, warmth and tenderness of the right shin, no fluctuance"},
        risk=RX[0],
        risk_text=RX[1],
        avoid=["L03.115", "L02.415"],
    )


def abscess(rng, style, pt, age) -> Problem:
    site, code = pick(rng, (("right thigh", "L02.415"), ("left thigh", "L02.416"), ("right axilla", "L02.411")))
    name = dx(rng, style, (f"abscess of the {site}", f"{site} abscess", f"cutaneous abscess, {site}"), code)
    proc = [
        ev(
            pick(
                rng,
                ("Incision and drainage of abscess", "I&D of abscess", "Simple incision and drainage of skin abscess"),
            ),
            cpt("10060"),
        ),
        f" ({site}): prepped, 1% lidocaine, incised, purulent material drained, packed.",
    ]
    rx = chance(rng, 0.5)
    entry = [name, ", drained today. Wound care reviewed.", " TMP-SMX 1 DS tab twice daily x 7 days." if rx else ""]
    risk = RX if rx else (em.RISK_LOW, "minor procedure without risk factors")
    return Problem(
        "abscess",
        em.ACUTE_UNCOMPLICATED,
        ev(f"{site} abscess", icd(code)),
        entry,
        cc=f"painful lump {site}",
        hpi=[f"Painful swelling of the {site} for {rng.randint(3, 8)} days."],
        exam={"Skin": f"{rng.randint(2, 4)} cm fluctuant, tender area, {site}"},
        procedures=[proc],
        risk=risk[0],
        risk_text=risk[1],
        avoid=[code, "L03.115"],
    )


def cerumen(rng, style, pt, age) -> Problem:
    side, code = pick(rng, (("right", "H61.21"), ("left", "H61.22")))
    name = dx(
        rng,
        style,
        (f"impacted cerumen, {side} ear", f"{side} ear cerumen impaction", f"cerumen impaction of the {side} ear"),
        code,
    )
    proc = [
        ev(
            pick(
                rng,
                (
                    f"Cerumen removal with curette, {side} ear",
                    f"Impacted cerumen removed from the {side} ear with curette",
                    f"{side.capitalize()} ear cerumen removed with instrumentation",
                ),
            ),
            cpt("69210"),
        ),
        ", under direct visualization; canal clear afterwards, TM intact.",
    ]
    return Problem(
        "cerumen",
        em.MINOR,
        ev(f"cerumen impaction, {side}", icd(code)),
        [name, ", removed today. Debrox as needed."],
        cc="decreased hearing",
        hpi=[f"Muffled hearing in the {side} ear for {rng.randint(1, 3)} weeks."],
        exam={"HEENT": f"{side} canal occluded by cerumen"},
        procedures=[proc],
        risk=em.RISK_LOW,
        risk_text="minor procedure without risk factors",
        avoid=[code],
    )


def low_back_pain(rng, style, pt, age) -> Problem:
    name = dx(rng, style, ("acute low back pain", "low back pain", "LBP"), "M54.50")
    risk = RX if chance(rng, 0.5) else OTC
    plan = (
        "Cyclobenzaprine 10 mg at bedtime as needed; "
        if risk is RX
        else "Ibuprofen 600 mg three times daily with food (OTC); "
    )
    entry = [
        name,
        " after lifting. ",
        plan,
        "heat, activity as tolerated. ",
        cap_first(negated_dx(rng, "radiculopathy", "M54.16")),
        ".",
    ]
    return Problem(
        "lbp_acute",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("low back pain",), "M54.50"),
        entry,
        cc=ev("low back pain", icd("M54.50")),
        hpi=[f"Low back pain for {rng.randint(2, 10)} days after lifting boxes; no leg weakness."],
        exam={"Extremities": "lumbar paraspinal tenderness, negative straight leg raise"},
        risk=risk[0],
        risk_text=risk[1],
        avoid=["M54.50", "M54.16"],
    )


def knee_injection(rng, style, pt, age) -> Problem:
    key = "oa_knee"
    name = ev(name_of(rng, style, CHRONIC[key].names, CHRONIC[key].misspellings), icd("M17.11"))
    proc = [
        ev(
            pick(
                rng,
                (
                    "Right knee joint injection",
                    "Intra-articular injection, right knee",
                    "Right knee arthrocentesis/injection",
                ),
            ),
            cpt("20610"),
        ),
        ": sterile prep, ",
        ev("triamcinolone acetonide 40 mg", hcpcs("J3301")),
        " with 1% lidocaine via lateral approach, no ultrasound guidance; tolerated well.",
    ]
    entry = [
        name,
        ", worsening pain despite topical diclofenac. Steroid injection today; "
        "continue diclofenac gel and home exercises.",
    ]
    return Problem(
        key,
        em.CHRONIC_PROGRESSION,
        ev(pick(rng, ("right knee OA", "OA of right knee")), icd("M17.11")),
        entry,
        cc="right knee pain",
        hpi=["Worsening right knee pain with stairs over 2 months."],
        exam={"Extremities": "right knee crepitus, mild effusion, no erythema"},
        procedures=[proc],
        risk=RX[0],
        risk_text=RX[1],
        avoid=["M17.11", "M25.561"],
    )


def covid(rng, style, pt, age) -> Problem:
    keys = ["fever", "cough"]
    name = dx(rng, style, ("COVID-19", "COVID-19 infection", "COVID"), "U07.1")
    rx = age >= 50 and chance(rng, 0.5)
    entry = [
        name,
        ", positive home antigen test yesterday. ",
        "Nirmatrelvir-ritonavir x 5 days." if rx else "Supportive care, isolation guidance.",
        " SpO2 normal; ",
        negated_dx(rng, "pneumonia", "J18.9"),
        ".",
    ]
    risk = RX if rx else SUPPORTIVE
    return Problem(
        "covid",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("COVID-19",), "U07.1"),
        entry,
        cc="fever and cough",
        hpi=[hpi_line(rng, symptoms(rng, keys, False), rng.randint(1, 4))],
        positives=symptoms(rng, keys, False),
        risk=risk[0],
        risk_text=risk[1],
        temp_c=fever_temp(rng),
        febrile=True,
        avoid=["U07.1", "J18.9", "R50.9", "R05.9"],
    )


def viral_syndrome(rng, style, pt, age) -> Problem:
    name = dx(rng, style, ("viral syndrome", "viral illness", "viral infection"), "B34.9")
    entry = [name, ". Fluids, acetaminophen as needed. ", cap_first(negated_dx(rng, "COVID-19", "U07.1")), "."]
    return Problem(
        "viral",
        em.MINOR,
        dx(rng, style, ("viral syndrome",), "B34.9"),
        entry,
        cc="fever and body aches",
        hpi=[hpi_line(rng, [symptom(rng, "fever"), "body aches"], rng.randint(1, 3))],
        positives=[symptom(rng, "fever")],
        risk=OTC[0],
        risk_text=OTC[1],
        temp_c=fever_temp(rng),
        febrile=True,
        avoid=["B34.9", "U07.1", "R50.9"],
    )


def pneumonia(rng, style, pt, age) -> Problem:
    keys = ["cough", "fever", "sob"]
    side = pick(rng, ("right lower lobe", "left lower lobe"))
    # a pneumonia named by the lobe it is in is still J18.9: "lobar pneumonia" (J18.1) is a named type, not a site
    names = ("community-acquired pneumonia", "CAP", "pneumonia", f"{side} pneumonia")
    name = dx(rng, style, names, "J18.9", PNEUMONIA_MISSPELLINGS)
    interp = ["Chest x-ray obtained; my independent interpretation: ", f"{side} infiltrate."]
    entry = [
        name,
        f" ({side} infiltrate on CXR). ",
        pick(rng, ("Amoxicillin-clavulanate plus azithromycin.", "Doxycycline 100 mg twice daily x 7 days.")),
        " Return precautions.",
    ]
    return Problem(
        "pneumonia",
        em.ACUTE_SYSTEMIC,
        dx(rng, style, ("pneumonia", "CAP"), "J18.9"),
        entry,
        cc="cough and fever",
        hpi=[hpi_line(rng, symptoms(rng, keys, False), rng.randint(3, 8))],
        positives=symptoms(rng, keys, False),
        exam={"Lungs": f"crackles at the {side.split()[0]} base"},
        ordered=["chest x-ray"],
        interpretation=interp,
        risk=RX[0],
        risk_text=RX[1],
        temp_c=fever_temp(rng),
        febrile=True,
        spo2=rng.randint(92, 95),
        avoid=["J18.9", "R05.9", "R50.9", "R06.02"],
    )


def gerd_new(rng, style, pt, age) -> Problem:
    name = dx(rng, style, CHRONIC["gerd"].names, "K21.9", CHRONIC["gerd"].misspellings)
    entry = [name, ", new. Omeprazole 20 mg daily before breakfast x 8 weeks; avoid late meals."]
    return Problem(
        "gerd",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("GERD",), "K21.9"),
        entry,
        cc="heartburn",
        hpi=[
            f"Burning epigastric discomfort after meals for {rng.randint(3, 8)} weeks, worse lying down. No dysphagia."
        ],
        risk=RX[0],
        risk_text=RX[1],
        avoid=["K21.9"],
    )


def migraine_new(rng, style, pt, age) -> Problem:
    name = dx(rng, style, CHRONIC["migraine"].names, "G43.909", CHRONIC["migraine"].misspellings)
    entry = [name, ". Sumatriptan 50 mg at onset, may repeat once. Headache diary. Neuro exam nonfocal."]
    return Problem(
        "migraine",
        em.ACUTE_UNCOMPLICATED,
        dx(rng, style, ("migraine",), "G43.909"),
        entry,
        cc="headaches",
        hpi=[["Recurrent throbbing ", symptom(rng, "headache"), f" with photophobia, {rng.randint(2, 5)} per month."]],
        positives=[symptom(rng, "headache")],
        risk=RX[0],
        risk_text=RX[1],
        avoid=["G43.909", "R51.9"],
    )


def anxiety_new(rng, style, pt, age) -> Problem:
    name = dx(rng, style, CHRONIC["gad"].names, "F41.1")
    entry = [name, f", GAD-7 {rng.randint(11, 17)}. Start sertraline 25 mg daily, titrate; therapy referral."]
    return Problem(
        "gad",
        em.CHRONIC_PROGRESSION,
        dx(rng, style, ("GAD",), "F41.1"),
        entry,
        cc="anxiety",
        hpi=["Excessive worry most days for over 6 months, poor sleep, irritability."],
        risk=RX[0],
        risk_text=RX[1],
        avoid=["F41.1"],
    )


def depression_new(rng, style, pt, age) -> Problem:
    key = pick(rng, ("depression", "mdd"))
    cond = CHRONIC[key]
    name = dx(rng, style, cond.names, cond.code, cond.misspellings)
    entry = [
        name,
        f", PHQ-9 {rng.randint(12, 19)}. Denies suicidal ideation. Start escitalopram 10 mg daily; follow up 4 weeks.",
    ]
    return Problem(
        key,
        em.CHRONIC_PROGRESSION,
        dx(rng, style, (cond.names[0],), cond.code),
        entry,
        cc="low mood",
        hpi=["Low mood, anhedonia and poor sleep for 2 months."],
        risk=RX[0],
        risk_text=RX[1],
        avoid=[cond.code],
    )


def copd_spirometry(rng, style, pt, age) -> Problem:
    """Long-term smoker with exertional dyspnea: spirometry decides (FEV1/FVC < 0.70 -> COPD, J44.9)."""
    obstructed = chance(rng, 0.5)
    ratio = round(rng.uniform(0.52, 0.68), 2) if obstructed else round(rng.uniform(0.74, 0.82), 2)
    spiro = ev(
        pick(rng, ("Spirometry performed in office", "Office spirometry performed", "Spirometry done today")),
        cpt("94010"),
    )
    value_text = pick(rng, ("FEV1/FVC {r}", "FEV1/FVC ratio {r}", "FEV1/FVC of {r}")).format(r=f"{ratio:.2f}")
    if obstructed:
        copd = CHRONIC["copd"]
        name = ev(name_of(rng, style, copd.names, copd.misspellings), icd("J44.9"))
        value = ev(value_text, icd("J44.9"))
        entry = [
            name,
            ", new diagnosis: ",
            ev(value_text, icd("J44.9")),
            ", obstructive pattern. Start tiotropium daily, albuterol as needed.",
        ]
        hpi = [f"{pt.pack_years} pack-year smoker with dyspnea on exertion for months."]
        return Problem(
            "copd_new",
            em.CHRONIC_PROGRESSION,
            ev("COPD", icd("J44.9")),
            entry,
            cc="short of breath with exertion",
            hpi=hpi,
            procedures=[[spiro, ": ", value, f", FEV1 {rng.randint(48, 72)}% predicted."]],
            risk=RX[0],
            risk_text=RX[1],
            avoid=["J44.9", "R06.02", "J44.1"],
        )
    sob = ev(pick(rng, ("exertional shortness of breath", "shortness of breath with exertion")), icd("R06.02"))
    entry = [
        sob,
        ": spirometry normal (",
        value_text,
        "), ",
        negated_dx(rng, "COPD", "J44.9"),
        ". Check CBC; cardiac evaluation if persists.",
    ]
    hpi = [
        [
            f"{pt.pack_years} pack-year smoking history; reports ",
            ev("shortness of breath with exertion", icd("R06.02")),
            " for months.",
        ]
    ]
    return Problem(
        "dyspnea",
        em.UNDIAGNOSED,
        ev("shortness of breath", icd("R06.02")),
        entry,
        cc=ev("shortness of breath with exertion", icd("R06.02")),
        hpi=hpi,
        procedures=[[spiro, ": ", value_text, ", no obstruction."]],
        ordered=["CBC"],
        blood_ordered=True,
        risk=em.RISK_LOW,
        risk_text="OTC medications",
        avoid=["J44.9", "R06.02", "J44.1"],
    )


# ---------------------------------------------------------------- uncertain diagnoses (symptoms coded)
@dataclass(frozen=True)
class Uncertain:
    key: str
    symptoms: tuple[str, ...]
    dx_names: tuple[str, ...]
    dx_code: str
    plan: str
    ordered: tuple[str, ...]
    risk: tuple[int, str]
    category: str = em.UNDIAGNOSED
    ecg: bool = False
    dipstick: bool = False
    blood: bool = False
    febrile: bool = False


UNCERTAIN: tuple[Uncertain, ...] = (
    Uncertain(
        "u_pneumonia",
        ("cough", "fever"),
        ("pneumonia", "community-acquired pneumonia"),
        "J18.9",
        "Chest x-ray ordered; empiric doxycycline pending result.",
        ("chest x-ray",),
        RX,
        febrile=True,
    ),
    Uncertain(
        "u_uti",
        ("dysuria", "frequency"),
        ("UTI", "urinary tract infection"),
        "N39.0",
        "Urine culture sent; await results before antibiotics.",
        ("urine culture",),
        SUPPORTIVE,
        dipstick=True,
    ),
    Uncertain("u_migraine", ("headache",), ("migraine",), "G43.909", "Ibuprofen as needed; headache diary.", (), OTC),
    Uncertain(
        "u_appendicitis",
        ("abd_pain", "nv"),
        ("appendicitis", "acute appendicitis"),
        "K35.80",
        "Sent to the ED for surgical evaluation and CT.",
        (),
        ED,
        category=em.THREAT,
    ),
    Uncertain(
        "u_gerd", ("chest_pain",), ("GERD", "reflux"), "K21.9", "Trial of omeprazole 20 mg daily.", (), RX, ecg=True
    ),
    Uncertain(
        "u_acs",
        ("chest_pain",),
        ("acute coronary syndrome", "ACS"),
        "I24.9",
        "Sent to the ED by ambulance for serial troponins.",
        (),
        ED,
        category=em.THREAT,
        ecg=True,
    ),
    Uncertain(
        "u_hypothyroid",
        ("fatigue",),
        ("hypothyroidism",),
        "E03.9",
        "TSH and CBC ordered.",
        ("TSH", "CBC"),
        SUPPORTIVE,
        blood=True,
    ),
    Uncertain(
        "u_anemia",
        ("fatigue",),
        ("anemia",),
        "D64.9",
        "CBC and ferritin ordered.",
        ("CBC", "ferritin"),
        SUPPORTIVE,
        blood=True,
    ),
    Uncertain(
        "u_osa",
        ("snoring", "fatigue"),
        ("obstructive sleep apnea", "OSA"),
        "G47.33",
        "Home sleep study ordered.",
        ("sleep study",),
        SUPPORTIVE,
    ),
    Uncertain(
        "u_covid",
        ("fever", "cough"),
        ("COVID-19",),
        "U07.1",
        "COVID-19 PCR sent; isolate pending result.",
        ("COVID-19 PCR",),
        SUPPORTIVE,
        febrile=True,
    ),
    Uncertain(
        "u_gastro",
        ("nv",),
        ("viral gastroenteritis",),
        "A08.4",
        "Oral rehydration, ondansetron 4 mg as needed.",
        (),
        RX,
    ),
)


def uncertain(spec: Uncertain) -> Callable:
    def build(rng: random.Random, style: Style, pt: Patient, age: int) -> Problem:
        sx_codes = [SYMPTOMS[k].code for k in spec.symptoms]
        hpi_sx = symptoms(rng, list(spec.symptoms), True)
        mention = cue(rng, UNCERTAIN_CUES, men(pick(rng, spec.dx_names), spec.dx_code, "uncertain"))
        entry = [join(symptoms(rng, list(spec.symptoms), True), ", ", " and "), ", ", mention, ". ", spec.plan]
        p = Problem(
            spec.key,
            spec.category,
            join(symptoms(rng, list(spec.symptoms), True), ", "),
            cap_first(entry),
            cc=join(symptoms(rng, list(spec.symptoms), True), " and "),
            hpi=[hpi_line(rng, hpi_sx, rng.randint(1, 14))],
            positives=symptoms(rng, list(spec.symptoms), True),
            ordered=list(spec.ordered),
            blood_ordered=spec.blood,
            risk=spec.risk[0],
            risk_text=spec.risk[1],
            avoid=sx_codes + [spec.dx_code],
            febrile=spec.febrile,
        )
        if spec.risk is ED:
            p.discussion = chance(rng, 0.5)
            if p.discussion:
                p.entry += [" Case discussed with the ED physician."]
        if spec.febrile:
            p.temp_c = fever_temp(rng)
        if spec.ecg:
            p.procedures.append(
                [
                    ev(
                        pick(
                            rng,
                            (
                                "12-lead ECG performed and interpreted in office",
                                "ECG obtained in clinic and interpreted",
                                "EKG done in office (12-lead, interpreted by me)",
                            ),
                        ),
                        cpt("93000"),
                    ),
                    ": normal sinus rhythm, no acute ST changes.",
                ]
            )
        if spec.dipstick:
            p.procedures.append(
                [ev("Urine dipstick performed in clinic", cpt("81002")), ": trace leukocytes, nitrite negative."]
            )
        return p

    return build


# ---------------------------------------------------------------- registry
@dataclass(frozen=True)
class Scenario:
    build: Callable[..., Problem]
    weight: float
    min_age: int = 0
    max_age: int = 120
    sex: str | None = None
    requires: str | None = None  # a chronic condition the patient must have
    excludes: tuple[str, ...] = ()  # chronic conditions the patient must not have
    smoker: bool = False


def _u(key: str) -> Callable:
    return uncertain(next(u for u in UNCERTAIN if u.key == key))


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(uri, 10, 1),
    Scenario(pharyngitis, 6, 3, 60),
    Scenario(otitis, 6, 0, 10),
    Scenario(uti, 6, 16, 90, sex="F"),
    Scenario(cellulitis, 2.5, 18),
    Scenario(abscess, 2, 12),
    Scenario(cerumen, 2.5, 4),
    Scenario(low_back_pain, 4, 18, 80, excludes=("lbp",)),
    Scenario(knee_injection, 25, 40, requires="oa_knee"),
    Scenario(covid, 3, 5),
    Scenario(viral_syndrome, 3, 1),
    Scenario(pneumonia, 3, 18),
    Scenario(gerd_new, 2, 18, excludes=("gerd",)),
    Scenario(migraine_new, 1.5, 14, 60, excludes=("migraine",)),
    Scenario(anxiety_new, 1.5, 18, 70, excludes=("gad", "depression", "mdd")),
    Scenario(depression_new, 1.5, 18, 80, excludes=("gad", "depression", "mdd")),
    Scenario(copd_spirometry, 7, 40, excludes=("copd", "asthma"), smoker=True),
    Scenario(_u("u_pneumonia"), 2.8, 18),
    Scenario(_u("u_uti"), 2.0, 18, sex="F"),
    Scenario(_u("u_migraine"), 1.3, 14, 65, excludes=("migraine",)),
    Scenario(_u("u_appendicitis"), 1.2, 8, 60),
    Scenario(_u("u_gerd"), 1.5, 25, excludes=("gerd", "cad")),
    Scenario(_u("u_acs"), 1.4, 40),
    Scenario(_u("u_hypothyroid"), 1.3, 25, excludes=("hypothyroid",)),
    Scenario(_u("u_anemia"), 0.8, 18, excludes=("anemia",)),
    Scenario(_u("u_osa"), 0.9, 30, excludes=("osa",)),
    Scenario(_u("u_covid"), 1.3, 5),
    Scenario(_u("u_gastro"), 1.3, 2),
)


def eligible(scenario: Scenario, patient: Patient, age: int) -> bool:
    if not scenario.min_age <= age <= scenario.max_age:
        return False
    if scenario.sex and scenario.sex != patient.sex:
        return False
    if scenario.requires and not patient.has(scenario.requires):
        return False
    if any(patient.has(k) for k in scenario.excludes):
        return False
    if scenario.smoker and patient.smoking not in ("current", "former"):
        return False
    return True


def plan_acute(rng: random.Random, style: Style, patient: Patient, age: int) -> Problem:
    options = [s for s in SCENARIOS if eligible(s, patient, age)]
    scenario = rng.choices(options, weights=[s.weight for s in options], k=1)[0]
    return scenario.build(rng, style, patient, age)
