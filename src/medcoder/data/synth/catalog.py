"""The clinical knowledge behind the embedded corpus: conditions, phrasings, drugs, procedures, targets.

Everything a coder would look up lives here, in one place, as plain data: which ICD-10-CM code a
documented condition takes, the ways clinicians write it (full names, abbreviations, a few real
misspellings), who can have it (age, sex), how common it is by age band (the long tail of code
frequencies comes from these prevalences), which drugs imply a long-term-use Z79 code, and which
in-office procedures carry CPT/HCPCS codes. Combination rules (HTN with heart failure -> I11.0,
diabetes with CKD -> E11.22, ...) are applied in `coding.py`, never here.

Every ICD-10-CM code below is a billable leaf of the FY2026 code set (checked by the tests with
`simple_icd_10_cm`); phrasings were chosen so the Alphabetic Index leads to exactly that code
(e.g. "diverticulosis of the colon" -> K57.30, whereas bare "diverticulosis" would be K57.90).
"""

from __future__ import annotations

from dataclasses import dataclass

from medcoder.codes.values import adult_bmi_code

ICD = "ICD-10-CM"
CPT = "CPT"
HCPCS = "HCPCS"


def icd(code: str) -> tuple[str, str]:
    return (ICD, code)


def cpt(code: str) -> tuple[str, str]:
    return (CPT, code)


def hcpcs(code: str) -> tuple[str, str]:
    return (HCPCS, code)


# ---------------------------------------------------------------- drugs
@dataclass(frozen=True)
class Med:
    """A drug as written on a medication list; `z_code` is its long-term-use code, if any.

    Only drug classes with their own Z79 code are coded (insulin Z79.4, oral hypoglycemics
    Z79.84, anticoagulants Z79.01, antiplatelets Z79.02, aspirin Z79.82); other long-term drugs
    (Z79.899) are not coded, a corpus-wide policy stated in the data card.
    """

    name: str
    z_code: str | None = None


def _meds(*names: str, z: str | None = None) -> tuple[Med, ...]:
    return tuple(Med(n, z) for n in names)


# A patient takes one drug per class: the generator never lists two statins or two beta-blockers.
DRUG_CLASS: dict[str, str] = {
    "metoprolol": "beta-blocker",
    "carvedilol": "beta-blocker",
    "propranolol": "beta-blocker",
    "atorvastatin": "statin",
    "rosuvastatin": "statin",
    "simvastatin": "statin",
    "pravastatin": "statin",
    "lisinopril": "RAS blocker",
    "losartan": "RAS blocker",
    "sacubitril-valsartan": "RAS blocker",
    "sertraline": "antidepressant",
    "escitalopram": "antidepressant",
    "fluoxetine": "antidepressant",
    "venlafaxine": "antidepressant",
    "bupropion": "antidepressant",
    "buspirone": "anxiolytic",
    "amlodipine": "calcium channel blocker",
    "diltiazem": "calcium channel blocker",
    "furosemide": "loop diuretic",
    "albuterol": "rescue inhaler",
    "levothyroxine": "thyroid hormone",
}


def drug_class(med: Med) -> str:
    first = med.name.split(" ")[0]
    return DRUG_CLASS.get(first, first)


# ---------------------------------------------------------------- chronic conditions
@dataclass(frozen=True)
class Condition:
    """A condition a patient carries across encounters.

    `prevalence` is the chance per age band (0-17, 18-44, 45-64, 65+) that a patient has it.
    `problem` is its MDM problem category when stable (see em.py).
    """

    key: str
    code: str
    names: tuple[str, ...]
    prevalence: tuple[float, float, float, float]
    meds: tuple[Med, ...] = ()
    misspellings: tuple[str, ...] = ()
    sex: str | None = None
    min_age: int = 18
    short: str = ""  # the label used in problem lists / MDM parentheses; defaults to names[1] or names[0]


CHRONIC: dict[str, Condition] = {
    c.key: c
    for c in (
        Condition(
            "htn",
            "I10",
            ("hypertension", "HTN", "essential hypertension", "high blood pressure"),
            (0.0, 0.12, 0.40, 0.62),
            _meds(
                "lisinopril 20 mg daily",
                "amlodipine 5 mg daily",
                "losartan 50 mg daily",
                "hydrochlorothiazide 25 mg daily",
                "metoprolol succinate 50 mg daily",
            ),
            misspellings=("hypertenion", "hypertention"),
            min_age=25,
        ),
        Condition(
            "hld",
            "E78.5",
            ("hyperlipidemia", "HLD", "dyslipidemia"),
            (0.0, 0.10, 0.35, 0.50),
            _meds(
                "atorvastatin 40 mg nightly",
                "rosuvastatin 10 mg daily",
                "simvastatin 20 mg nightly",
                "pravastatin 40 mg daily",
            ),
            misspellings=("hyperlipedemia",),
            min_age=25,
        ),
        Condition(
            "t2dm",
            "E11.9",
            (
                "type 2 diabetes mellitus",
                "T2DM",
                "DM2",
                "type 2 diabetes",
                "diabetes mellitus type 2",
                "type II diabetes",
            ),
            (0.0, 0.04, 0.15, 0.25),
            _meds("metformin 1000 mg twice daily", "glipizide 5 mg daily", "empagliflozin 10 mg daily", z="Z79.84")
            + _meds("insulin glargine 24 units nightly", z="Z79.4"),
            misspellings=("type 2 diabetis", "diabetes melitus type 2"),
            min_age=25,
        ),
        Condition(
            "ckd3",
            "N18.30",
            ("CKD stage 3", "CKD 3", "chronic kidney disease stage 3", "stage 3 chronic kidney disease"),
            (0.0, 0.0, 0.05, 0.12),
            min_age=45,
        ),
        Condition(
            "ckd4",
            "N18.4",
            ("CKD stage 4", "CKD 4", "chronic kidney disease stage 4", "stage 4 CKD"),
            (0.0, 0.0, 0.006, 0.025),
            min_age=50,
        ),
        Condition(
            "chf",
            "I50.9",
            ("congestive heart failure", "CHF", "heart failure"),
            (0.0, 0.0, 0.012, 0.045),
            _meds("furosemide 40 mg daily", "carvedilol 12.5 mg twice daily"),
            min_age=45,
        ),
        Condition(
            "hfref",
            "I50.22",
            (
                "chronic systolic heart failure",
                "chronic HFrEF",
                "chronic systolic CHF",
                "chronic heart failure with reduced ejection fraction",
            ),
            (0.0, 0.0, 0.012, 0.045),
            _meds(
                "sacubitril-valsartan 49-51 mg twice daily",
                "carvedilol 25 mg twice daily",
                "furosemide 40 mg daily",
                "spironolactone 25 mg daily",
            ),
            min_age=45,
        ),
        Condition(
            "afib",
            "I48.91",
            ("atrial fibrillation", "AFib", "A-fib", "AF"),
            (0.0, 0.0, 0.02, 0.09),
            _meds("apixaban 5 mg twice daily", "warfarin 5 mg daily", "rivaroxaban 20 mg daily", z="Z79.01")
            + _meds("metoprolol tartrate 25 mg twice daily", "diltiazem ER 120 mg daily"),
            misspellings=("atrial fibrilation",),
            min_age=45,
        ),
        Condition(
            "cad",
            "I25.10",
            ("coronary artery disease", "CAD", "atherosclerotic heart disease", "coronary atherosclerosis"),
            (0.0, 0.0, 0.05, 0.13),
            _meds("aspirin 81 mg daily", z="Z79.82")
            + _meds("clopidogrel 75 mg daily", z="Z79.02")
            + _meds("metoprolol succinate 25 mg daily"),
            misspellings=("coronary artery desease",),
            min_age=40,
        ),
        Condition(
            "copd",
            "J44.9",
            ("COPD", "chronic obstructive pulmonary disease", "chronic obstructive lung disease"),
            (0.0, 0.01, 0.05, 0.10),
            _meds(
                "tiotropium 18 mcg inhaled daily",
                "albuterol inhaler 2 puffs every 4 hours as needed",
                "fluticasone-salmeterol 250/50 one inhalation twice daily",
            ),
            misspellings=("chronic obstructive pulmonory disease",),
            min_age=40,
        ),
        Condition(
            "asthma",
            "J45.909",
            ("asthma", "reactive airway disease"),
            (0.08, 0.07, 0.06, 0.04),
            _meds(
                "albuterol inhaler 2 puffs every 4 hours as needed",
                "fluticasone 110 mcg 2 puffs twice daily",
                "montelukast 10 mg nightly",
            ),
            misspellings=("athsma",),
            min_age=3,
        ),
        Condition(
            "gerd",
            "K21.9",
            ("GERD", "gastroesophageal reflux disease", "acid reflux"),
            (0.0, 0.08, 0.14, 0.17),
            _meds("omeprazole 20 mg daily", "pantoprazole 40 mg daily", "famotidine 20 mg twice daily"),
            misspellings=("gastroesophogeal reflux disease",),
        ),
        Condition(
            "osa",
            "G47.33",
            ("obstructive sleep apnea", "OSA"),
            (0.0, 0.02, 0.07, 0.08),
            min_age=25,
        ),
        Condition(
            "hypothyroid",
            "E03.9",
            ("hypothyroidism", "hypothyroid"),
            (0.0, 0.04, 0.08, 0.11),
            _meds("levothyroxine 75 mcg daily", "levothyroxine 100 mcg daily"),
            misspellings=("hypothyroidsm",),
        ),
        Condition(
            "gad",
            "F41.1",
            ("generalized anxiety disorder", "GAD"),
            (0.0, 0.07, 0.05, 0.03),
            _meds("sertraline 50 mg daily", "escitalopram 10 mg daily", "buspirone 10 mg twice daily"),
        ),
        Condition(
            "depression",
            "F32.A",
            ("depression", "depressive disorder"),
            (0.0, 0.06, 0.05, 0.04),
            _meds("sertraline 100 mg daily", "fluoxetine 20 mg daily", "bupropion XL 150 mg daily"),
            misspellings=("depresion",),
        ),
        Condition(
            "mdd",
            "F32.9",
            ("major depressive disorder", "MDD", "major depression"),
            (0.0, 0.03, 0.03, 0.02),
            _meds("escitalopram 20 mg daily", "venlafaxine XR 75 mg daily"),
        ),
        Condition(
            "bph",
            "N40.0",
            ("BPH", "benign prostatic hyperplasia", "enlarged prostate"),
            (0.0, 0.0, 0.06, 0.20),
            _meds("finasteride 5 mg daily"),
            sex="M",
            min_age=45,
        ),
        Condition(
            "vitd",
            "E55.9",
            ("vitamin D deficiency",),
            (0.0, 0.04, 0.05, 0.05),
            _meds("vitamin D3 2000 units daily"),
            misspellings=("vitamin D defficiency",),
        ),
        Condition(
            "migraine",
            "G43.909",
            ("migraine", "migraine headaches", "migraines"),
            (0.0, 0.07, 0.05, 0.01),
            _meds("sumatriptan 50 mg as needed", "topiramate 25 mg nightly"),
            misspellings=("migrane",),
            min_age=12,
        ),
        Condition(
            "oa_knee",
            "M17.11",
            (
                "osteoarthritis of the right knee",
                "OA of right knee",
                "right knee OA",
                "right knee osteoarthritis",
                "primary osteoarthritis of the right knee",
                "DJD of the right knee",
            ),
            (0.0, 0.005, 0.04, 0.08),
            _meds("diclofenac 1% gel four times daily"),
            misspellings=("osteoarthritis of the rigth knee",),
            min_age=40,
        ),
        Condition(
            "lbp",
            "M54.50",
            ("low back pain", "LBP", "chronic low back pain", "lumbago"),
            (0.0, 0.04, 0.06, 0.05),
            _meds("cyclobenzaprine 10 mg at bedtime as needed"),
        ),
        Condition(
            "diverticulosis",
            "K57.30",
            ("diverticulosis of the colon", "colonic diverticulosis", "sigmoid diverticulosis"),
            (0.0, 0.0, 0.025, 0.05),
            min_age=40,
        ),
        Condition("anemia", "D64.9", ("anemia",), (0.0, 0.012, 0.02, 0.035), misspellings=("anaemia",)),
        Condition("prediabetes", "R73.03", ("prediabetes", "pre-diabetes"), (0.0, 0.05, 0.10, 0.09), min_age=25),
        Condition(
            "breast_ca",
            "C50.919",
            ("breast cancer", "carcinoma of the breast", "breast carcinoma"),
            (0.0, 0.004, 0.016, 0.022),
            sex="F",
            min_age=35,
        ),
        Condition(
            "colon_ca",
            "C18.9",
            ("colon cancer", "adenocarcinoma of the colon", "malignant neoplasm of the colon"),
            (0.0, 0.0, 0.008, 0.014),
            min_age=40,
        ),
    )
}

PNEUMONIA_MISSPELLINGS: tuple[str, ...] = ("pnuemonia", "community-acquired pnuemonia")

# Pairs that are never generated together: the corpus avoids I13.0 (HTN + heart failure + CKD),
# asthma-COPD overlap, two heart-failure phrasings, and prediabetes in a diabetic.
EXCLUSIVE: tuple[tuple[str, str], ...] = (
    ("chf", "hfref"),
    ("ckd3", "ckd4"),
    ("chf", "ckd3"),
    ("chf", "ckd4"),
    ("hfref", "ckd3"),
    ("hfref", "ckd4"),
    ("asthma", "copd"),
    ("t2dm", "prediabetes"),
    ("depression", "mdd"),
    ("breast_ca", "colon_ca"),
)

# Uncontrolled diabetes: the assessment names the hyperglycemia, and the A1c value is evidence.
DM_HYPERGLYCEMIA_NAMES: tuple[str, ...] = (
    "type 2 diabetes with hyperglycemia",
    "uncontrolled type 2 diabetes",
    "poorly controlled T2DM",
    "T2DM with hyperglycemia",
    "DM2, poorly controlled with hyperglycemia",
    "uncontrolled DM2",
)

OBESITY_NAMES: tuple[str, ...] = ("obesity",)
MORBID_OBESITY_NAMES: tuple[str, ...] = ("morbid obesity", "severe obesity", "morbid (severe) obesity")


def bmi_code(bmi: float) -> str:
    """Z68 code for an adult (age 20+) BMI value (the code set's bands: medcoder.codes.values)."""
    return adult_bmi_code(bmi)


# ---------------------------------------------------------------- symptoms (and ROS negatives)
@dataclass(frozen=True)
class Symptom:
    """A sign or symptom with its R-code (or the code its name indexes to)."""

    key: str
    code: str
    names: tuple[str, ...]
    ros: bool = True  # asked about in a review of systems


SYMPTOMS: dict[str, Symptom] = {
    s.key: s
    for s in (
        Symptom("chest_pain", "R07.9", ("chest pain",)),
        Symptom("sob", "R06.02", ("shortness of breath", "SOB")),
        Symptom("cough", "R05.9", ("cough",)),
        Symptom("fever", "R50.9", ("fever", "fevers")),
        Symptom("headache", "R51.9", ("headache", "headaches")),
        Symptom("abd_pain", "R10.9", ("abdominal pain",)),
        Symptom("nv", "R11.2", ("nausea and vomiting", "nausea with vomiting")),
        Symptom("dysuria", "R30.0", ("dysuria", "painful urination")),
        Symptom("frequency", "R35.0", ("urinary frequency",)),
        Symptom("fatigue", "R53.83", ("fatigue",)),
        Symptom("dizziness", "R42", ("dizziness",)),
        Symptom("palpitations", "R00.2", ("palpitations",)),
        Symptom("diarrhea", "R19.7", ("diarrhea",)),
        Symptom("rash", "R21", ("rash",)),
        Symptom("wheezing", "R06.2", ("wheezing",)),
        Symptom("edema", "R60.9", ("edema", "swelling")),
        Symptom("weight_loss", "R63.4", ("weight loss", "unintentional weight loss")),
        Symptom("snoring", "R06.83", ("snoring", "loud snoring"), ros=False),
        Symptom("sore_throat", "J02.9", ("sore throat",)),
        Symptom("ear_pain", "H92.09", ("ear pain",)),
        Symptom("congestion", "R09.81", ("nasal congestion",)),
        Symptom("murmur", "R01.1", ("murmurs", "murmur"), ros=False),
        Symptom("lymphadenopathy", "R59.9", ("lymphadenopathy",), ros=False),
    )
}


# ---------------------------------------------------------------- personal and family history
@dataclass(frozen=True)
class HistoryItem:
    """A resolved condition coded with its history code; the condition itself is a historical mention."""

    key: str
    code: str  # the history code that IS coded
    mention_code: str  # the active-disease code that is NOT coded
    templates: tuple[str, ...]  # "{dx}" marks the mention inside the evidence phrase
    names: tuple[str, ...]
    prevalence: tuple[float, float, float, float]
    sex: str | None = None
    min_age: int = 30


HISTORY: dict[str, HistoryItem] = {
    h.key: h
    for h in (
        HistoryItem(
            "hx_colon_ca",
            "Z85.038",
            "C18.9",
            (
                "history of {dx}, completed treatment in {year}, no recurrence",
                "h/o {dx} ({year}), no evidence of recurrence",
                "personal history of {dx}, treated {year}, currently no evidence of disease",
                "hx of {dx} s/p colectomy {year}, no treatment since",
                "{dx} resected in {year}, surveillance only, no current treatment",
            ),
            ("colon cancer", "colon adenocarcinoma", "colon CA", "adenocarcinoma of the colon"),
            (0.0, 0.0, 0.01, 0.025),
            min_age=40,
        ),
        HistoryItem(
            "hx_breast_ca",
            "Z85.3",
            "C50.919",
            (
                "history of {dx}, completed treatment in {year}, no recurrence",
                "h/o {dx} ({year}), no evidence of recurrence",
                "personal history of {dx}, treated {year}, in surveillance with no evidence of disease",
                "hx of {dx} s/p lumpectomy + radiation {year}, no treatment since",
                "{dx} treated with mastectomy in {year}, completed endocrine therapy, no evidence of disease",
            ),
            ("breast cancer", "breast carcinoma", "breast CA"),
            (0.0, 0.002, 0.02, 0.04),
            sex="F",
            min_age=35,
        ),
        HistoryItem(
            "hx_stroke",
            "Z86.73",
            "I63.9",
            (
                "history of {dx} in {year} without residual deficits",
                "prior {dx} ({year}), no residual deficits",
                "remote {dx} in {year} with no residual neurologic deficit",
            ),
            ("stroke", "CVA", "ischemic stroke"),
            (0.0, 0.0, 0.015, 0.05),
            min_age=45,
        ),
        HistoryItem(
            "old_mi",
            "I25.2",
            "I21.9",
            ("history of {dx} in {year}", "remote {dx} ({year})", "old {dx} ({year})", "prior {dx} in {year}"),
            ("myocardial infarction", "MI"),
            (0.0, 0.0, 0.02, 0.06),
            min_age=40,
        ),
    )
}


# Family history: relation + disease -> the Z80-Z84 code IS coded, the disease is a "family" mention.
@dataclass(frozen=True)
class FamilyItem:
    key: str
    code: str  # family-history code
    mention_code: str
    names: tuple[str, ...]
    relations: tuple[str, ...]
    weight: float


FAMILY: tuple[FamilyItem, ...] = (
    FamilyItem(
        "fh_breast_ca",
        "Z80.3",
        "C50.919",
        ("breast cancer",),
        ("mother", "sister", "maternal aunt", "maternal grandmother"),
        0.10,
    ),
    FamilyItem(
        "fh_colon_ca", "Z80.0", "C18.9", ("colon cancer",), ("father", "mother", "brother", "paternal uncle"), 0.08
    ),
    FamilyItem("fh_lung_ca", "Z80.1", "C34.90", ("lung cancer",), ("father", "mother", "paternal grandfather"), 0.03),
    FamilyItem("fh_diabetes", "Z83.3", "E11.9", ("type 2 diabetes", "diabetes"), ("mother", "father", "sister"), 0.07),
    FamilyItem("fh_cad", "Z82.49", "I25.10", ("coronary artery disease", "CAD"), ("father", "mother", "brother"), 0.05),
)

# Allergy status codes are coded when a drug allergy is documented (policy: status codes coded).
ALLERGIES: tuple[tuple[str, str | None, float], ...] = (
    ("NKDA", None, 0.45),
    ("No known drug allergies", None, 0.2),
    ("penicillin (hives)", "Z88.0", 0.14),
    ("sulfa drugs (rash)", "Z88.2", 0.07),
    ("codeine (nausea)", "Z88.5", 0.04),
    ("none known", None, 0.1),
)

# ---------------------------------------------------------------- payers and demographics
PAYERS: tuple[str, ...] = ("medicare", "medicaid", "commercial_a", "commercial_b", "self_pay")
AGE_BANDS: tuple[tuple[int, int, float], ...] = ((0, 17, 0.15), (18, 44, 0.24), (45, 64, 0.28), (65, 95, 0.33))

# ---------------------------------------------------------------- targets the generator is tuned to
# Share of notes (of the stated denominator) showing each phenomenon, measured by stats.phenomenon_rates
# from the records themselves. The corpus test checks a 3000-note corpus hits each within target_tolerance.
PHENOMENON_TARGETS: dict[str, float] = {
    "inpatient": 0.18,  # of all notes
    # of all notes: at least one negated mention (ROS and exam negatives are near universal in full notes;
    # brief notes, synth/brief.py, keep only the negations their assessment lines make)
    "negated": 0.94,
    "family": 0.23,  # a family-history mention (its Z80-Z84 code is coded)
    # a resolved condition mentioned as history (coded with its Z85/Z86/Z87/I25.2 code when one applies)
    "historical": 0.20,
    "hypothetical": 0.42,  # return precautions, procedures only considered (brief notes: half keep them)
    "uncertain_outpatient": 0.10,  # of outpatient notes: an uncertain mention (symptoms coded instead)
    "uncertain_inpatient_coded": 0.27,  # of inpatient notes: an uncertain discharge diagnosis that is coded
    "implied_by_values": 0.20,  # of all notes: a code whose evidence is a value (A1c, BMI, FEV1/FVC)
    "procedures_outpatient": 0.45,  # of outpatient notes: a CPT/HCPCS code besides the E/M code
    "misspelled": 0.07,  # of all notes: a catalogued misspelling used as evidence
    "core_distractor": 0.81,  # of all notes: a core diagnosis (not R/Z) named as a distractor and not coded
    # of all notes: a coded core diagnosis with exactly one evidence span (more in brief notes, which name a
    # condition once)
    "single_mention": 0.56,
    "longer_than_512_tokens": 0.14,  # of all notes (MiniLM word pieces, special tokens included)
}
TOLERANCE: float = 0.02  # the smallest allowed |rate - target|; per phenomenon see stats.phenomenon_tolerances


def target_tolerance(target: float, n: int) -> float:
    """Allowed |rate - target| for a share measured over n notes: 3 binomial standard errors, at least TOLERANCE.

    Rates over the inpatient subset (~550 of 3000 notes) vary more between seeds than rates over
    all notes, so one fixed tolerance would be either too loose for one or flaky for the other.
    """
    return max(TOLERANCE, 3 * (target * (1 - target) / n) ** 0.5)


# The codes the corpus must contain (the list), and the CPT/HCPCS codes.
CORE_ICD_CODES: tuple[str, ...] = tuple(
    "J18.9 J44.9 J44.1 J45.909 I10 I11.0 I50.9 I50.22 I25.10 I25.2 I21.4 I48.91 E11.9 E11.65 E11.22 E78.5 "
    "E66.9 E66.01 Z68.30 Z68.35 Z68.41 N18.30 N18.4 N39.0 K21.9 K35.80 M54.50 M17.11 F32.A F41.1 F17.210 "
    "G47.33 R07.9 R05.9 R50.9 R51.9 R10.9 R11.2 R06.02 R73.03 D64.9 E03.9 E87.1 J06.9 J02.9 H66.90 L03.115 "
    "B34.9 U07.1 Z80.3 Z80.0 Z85.038 Z85.3 Z86.73 Z87.891 Z79.4 Z79.01 Z23 Z00.129 Z00.00 C50.919 C18.9 "
    "I63.9 G43.909 K57.30 N40.0 E55.9 Z72.0 A41.9".split()
)
CORE_PROCEDURE_CODES: tuple[tuple[str, str], ...] = (
    cpt("93000"),
    cpt("94010"),
    cpt("36415"),
    cpt("90471"),
    cpt("90686"),
    cpt("81002"),
    cpt("87880"),
    cpt("99406"),
    cpt("20610"),
    cpt("10060"),
    cpt("69210"),
    cpt("82962"),
    hcpcs("G0444"),
)

# Every misspelling the generator can write (stats count notes whose evidence uses one).
MISSPELLINGS: tuple[str, ...] = tuple(m for c in CHRONIC.values() for m in c.misspellings) + PNEUMONIA_MISSPELLINGS
