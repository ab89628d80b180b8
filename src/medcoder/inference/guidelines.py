"""Coding logic the model should not have to guess: ICD-10-CM Official Guidelines as rules.

Between the model's grounded codes and the contract, each rule rewrites a prediction the way a
certified coder would, and says so: every code it adds or changes carries the rule's id in
`rules_applied`, and every change is a `RuleEvent` (rule, guideline section, codes removed and added)
in the prediction. Rules never invent a condition: they only combine, replace or remove codes the
model emitted (or, for history codes, mentions it found and the context check blocked), and an
added code inherits the evidence, score and grounding of the codes it comes from.

Section numbers are those of the ICD-10-CM Official Guidelines for Coding and Reporting FY2026.
Rules run in the order of RULES; each sees the previous one's output.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from medcoder.codes.age_sex import age_edit, preventive_code
from medcoder.codes.bmi import ADULT_MIN_AGE, BMI_CATEGORY, has_weight_diagnosis, in_age_band, indicates_pregnancy
from medcoder.codes.em import PREVENTIVE_EM_CODES, PREVENTIVE_ESTABLISHED, PREVENTIVE_NEW_PATIENT
from medcoder.codes.formats import CPT, HCPCS, ICD10CM
from medcoder.codes.history import history_code
from medcoder.codes.values import CKD_STAGE_CODES, adult_bmi_code, documented_bmi_at, documented_ckd_stage
from medcoder.data.predictions import NotePrediction, PredictedCode, RuleEvent
from medcoder.inference.grounding.visit_level import NEW, stated_status

Label = tuple[str, str]


@dataclass(frozen=True)
class Patient:
    """What the rules may know about the note besides its codes."""

    age: int | None = None
    sex: str | None = None
    setting: str | None = None
    ckd_stage: str | None = None  # the CKD stage the note documents (values.documented_ckd_stage)
    abnormal_findings: bool = False  # the note says its exam found something abnormal or new
    neurological_deficit: bool = False  # the note documents a deficit a stroke leaves (`documents_stroke_deficit`)
    # codes the note names only by the symptom among their inclusion terms (`symptom_worded_codes`)
    symptom_worded: tuple[str, ...] = ()
    payer: str | None = None  # who the encounter is billed to (the input's `payer`), for billing-code choices
    patient_status: str | None = None  # "new" or "established" with the practice, where the note says which
    bmi: tuple[float, tuple[int, int]] | None = None  # the first measured BMI the note writes, and where

    @classmethod
    def of(cls, record: Any) -> Patient:
        """What the rules may know of a note record (age, sex, setting, payer, and the CKD stage, abnormal
        exam findings, neurological deficits and the patient's status with the practice its text writes)."""
        return cls(record.age, record.sex, record.setting, documented_ckd_stage(record.text),
                   bool(_ABNORMAL_FINDINGS.search(record.text)), documents_stroke_deficit(record.text),
                   symptom_worded_codes(record.text), getattr(record, "payer", None),
                   stated_status(record.text)[0], documented_bmi_at(record.text))  # fmt: skip


# codes one of whose inclusion terms is a bare symptom ("Sore throat (acute) NOS" under J02.9): (the symptom's words,
# the words of the diagnosis the code is otherwise for)
_SYMPTOM_TERMS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "J02.9": (
        re.compile(r"\bsore\s+throat\b", re.IGNORECASE),
        re.compile(r"\b(?:pharyngitis|tonsillitis|strep\w*)\b", re.IGNORECASE),
    ),
}


def symptom_worded_codes(text: str) -> tuple[str, ...]:
    """Codes the note names only by the symptom among their inclusion terms: "sore throat and fever, probably
    viral" codes J02.9 for the sore throat, which is then a symptom beside the fever, not a pharyngitis that
    explains it (I.B.4-5 remove only what an established diagnosis explains)."""
    return tuple(code for code, (symptom, diagnosis) in _SYMPTOM_TERMS.items()
                 if symptom.search(text) and not diagnosis.search(text))  # fmt: skip


# an exam that found something: "Adult exam with abnormal finding", "new diagnosis of hypertension"
_ABNORMAL_FINDINGS = re.compile(
    r"(?<!\bno\s)(?<!\bwithout\s)\b(?:abnormal\s+findings?|new(?:ly)?\s+diagnos(?:is|ed))\b", re.IGNORECASE
)


# deficits a stroke leaves (the sequelae of I69.3-): weakness or paralysis of one side or limb, language and speech
# deficits, facial droop, and what a note calls its residual deficits
_STROKE_DEFICIT = re.compile(
    r"\b(?:hemipar\w*|hemipleg\w*|monopar\w*|monopleg\w*|aphasi\w*|dysphasi\w*|dysarthri\w*|facial\s+droop"
    r"|residual\s+(?:[\w-]+\s+){0,2}?(?:weakness|deficits?|neglect))\b",
    re.IGNORECASE,
)
# "no residual deficits", "without aphasia", "free of facial droop": the deficit is denied (the context check reads
# "no residual" as a pseudo-trigger, right for "no residual disease" elsewhere, so the denial is read here)
_DENIED_BEFORE = re.compile(r"\b(?:no|not|without|denies|denied|free\s+of)(?:\s+[\w-]+){0,2}\s+$", re.IGNORECASE)


def documents_stroke_deficit(text: str) -> bool:
    """Whether `text` documents a deficit of the kind a stroke leaves as present: not negated, doubted,
    hypothetical, resolved or a relative's ("no residual deficits", "aphasia resolved" document none)."""
    from medcoder.inference.grounding.context import HISTORICAL, detect_context

    for m in _STROKE_DEFICIT.finditer(text):
        if _DENIED_BEFORE.search(text, max(0, m.start() - 40), m.start()):
            continue
        found = detect_context(text, m.start(), m.end())
        if found is None or found.status == HISTORICAL:  # "stroke in 2019, left with hemiparesis" is present now
            return True
    return False


RuleFn = Callable[[list[PredictedCode], NotePrediction, Patient], tuple[list[PredictedCode], list[RuleEvent]]]


# ---------------------------------------------------------------- helpers
def _icd(codes: Iterable[PredictedCode], *prefixes: str) -> list[PredictedCode]:
    """The ICD-10-CM codes among `codes`, only those starting with one of `prefixes` when given."""
    return [c for c in codes if c.system == ICD10CM and (not prefixes or c.code.startswith(prefixes))]


def _derived(code: str, sources: Sequence[PredictedCode], rule: str) -> PredictedCode:
    """A code a rule builds from `sources`: their evidence, their lowest score and support, grounded
    only when every source is."""
    supports = [c.support for c in sources if c.support is not None]
    return PredictedCode(
        ICD10CM, code, min(c.score for c in sources),
        tuple(sorted({span for c in sources for span in c.evidence})),
        all(c.grounded for c in sources),
        min(supports) if supports else None,
        tuple(dict.fromkeys(r for c in sources for r in c.rules_applied)) + (rule,),
        all(c.stated for c in sources),
    )  # fmt: skip


def _replace_codes(
    codes: list[PredictedCode], remove: Sequence[PredictedCode], add: Sequence[PredictedCode], rule: str, section: str
) -> tuple[list[PredictedCode], list[RuleEvent]]:
    removed = {(c.system, c.code) for c in remove}
    present = {(c.system, c.code) for c in codes} - removed
    best: dict[
        Label, PredictedCode
    ] = {}  # two sources may map to one code (two preventive bands -> one): keep the surest
    for c in add:
        if (c.system, c.code) not in present and (
            (c.system, c.code) not in best or c.score > best[(c.system, c.code)].score
        ):
            best[(c.system, c.code)] = c
    added = list(best.values())
    out = [c for c in codes if (c.system, c.code) not in removed] + added
    really_removed = tuple(sorted(removed - {(c.system, c.code) for c in added}))
    really_added = tuple((c.system, c.code) for c in added if (c.system, c.code) not in removed)
    if not really_removed and not really_added:
        return codes, []
    return out, [RuleEvent(rule, section, really_removed, really_added)]


# ---------------------------------------------------------------- rules
def documented_specificity(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A code is reported at the level of detail the record documents, no further (I.B.2, I.B.18):
    "type 2 diabetes, controlled" is E11.9, not the E11.65 a model learnt to expect beside it. The
    codes grounding found documented less specifically (`specificity_fallbacks`, from
    resources/code_specificity.tsv) become the code the documentation supports, on the same evidence
    and score, grounded when the verifier grounds the fallback there (or merge into it, when the
    model already coded it)."""
    by_code = {(system, code): (fallback, support, grounded)
               for system, code, fallback, support, grounded in pred.specificity_fallbacks}  # fmt: skip
    remove, add = [], []
    for c in codes:
        if (c.system, c.code) in by_code:
            fallback, support, grounded = by_code[(c.system, c.code)]
            remove.append(c)
            add.append(replace(c, code=fallback, grounded=grounded, support=support,
                               rules_applied=(*c.rules_applied, "documented_specificity")))  # fmt: skip
    return _replace_codes(codes, remove, add, "documented_specificity", "I.B.2, I.B.18")


def history_codes(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A condition documented as past ("old MI", "h/o colon cancer", resected) is not coded as current
    (the context check blocked it) but as its history code: old MI -> I25.2 (I.C.9.e.4), personal
    history of malignancy -> Z85 (I.C.2.d), of other conditions -> Z86/Z87 (I.C.21.c.4)."""
    added = []
    for system, code, score, span in pred.historical_mentions:
        target = history_code(system, code)
        if target is not None:
            added.append(PredictedCode(ICD10CM, target, score, (span,), True, None, ("history_codes",)))
    return _replace_codes(codes, [], added, "history_codes", "I.C.9.e.4, I.C.2.d, I.C.21.c.4")


def stroke_with_deficits(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Z86.73 is a history of stroke or TIA WITHOUT residual deficits: deficits an old stroke left are its
    sequelae, coded from I69 (I.C.9.d; Excludes1 at Z86.73), so beside a documented hemiparesis, aphasia or
    facial droop Z86.73 goes, and the event says why (a coder assigns the I69.3- code for the deficit)."""
    if not patient.neurological_deficit:
        return codes, []
    return _replace_codes(codes, _icd(codes, "Z86.73"), [], "stroke_with_deficits", "I.C.9.d")


def outpatient_uncertainty(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Outside the hospital a diagnosis documented as probable, suspected or "rule out" is not coded
    (the context check blocked it); the condition is coded to the highest degree of certainty for the
    visit, its documented signs and symptoms (Section IV.H; I.B.4-5). The signs are those grounding
    found stated plainly in the note (`documented_signs`, verifier support >= rescue_support); their
    score is that support, because the model's own score for them is what the doubted diagnosis
    suppressed. In inpatient notes the uncertain diagnosis itself is coded (Section II.H), except the
    codes of confirmed cases only (`CONFIRMED_ONLY`): "possible COVID-19" at discharge is its fever
    and cough (I.C.1.g.1.a)."""
    from medcoder.inference.grounding.context import is_confirmed_only

    if patient.setting == "inpatient" and not any(is_confirmed_only(code) for _, code in pred.context_blocked):
        return codes, []
    present = {(c.system, c.code) for c in codes}
    added = [PredictedCode(system, code, support, (span,), True, support, ("outpatient_uncertainty",))
             for system, code, support, span in pred.documented_signs if (system, code) not in present]  # fmt: skip
    return _replace_codes(codes, [], added, "outpatient_uncertainty", "IV.H, I.B.4-5")


_CKD_STAGE = re.compile(r"^N18\.(\d)")


def hypertension_combinations(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Hypertension with heart failure and/or chronic kidney disease is one combination code, the link
    presumed unless the note says otherwise: I11.0, I12.9/I12.0, I13.0/I13.2 (I.C.9.a.1-3), with the
    heart failure and CKD stage coded as well ("use additional code"). When the model coded the
    combination itself, I10 beside it goes (the combination is the hypertension) and the heart failure
    or CKD it names without a code of its own gets the unspecified one (I50.9), or for CKD the code of
    the stage the note documents (N18.9 when none)."""
    htn = _icd(codes, "I10", "I11", "I12", "I13")
    hf, ckd = _icd(codes, "I50"), _icd(codes, "N18")
    if not htn or not (hf or ckd):
        combined = _icd(codes, "I11.0", "I12", "I13")
        # the CKD a combination names is coded at the stage the note documents ("CKD stage 3b": N18.32)
        ckd_code = CKD_STAGE_CODES.get(patient.ckd_stage or "", "N18.9")
        additional = [_derived(extra, [c], "hypertension_combinations") for c in combined
                      for extra, prefixes in (("I50.9", ("I11.0", "I13")), (ckd_code, ("I12", "I13")))
                      if c.code.startswith(prefixes)]  # fmt: skip
        if not combined:
            return codes, []
        return _replace_codes(codes, _icd(codes, "I10"), additional, "hypertension_combinations", "I.C.9.a.1-3")
    late_ckd = any((m := _CKD_STAGE.match(c.code)) and m.group(1) in "56" for c in ckd)
    if hf and ckd:
        target = "I13.2" if late_ckd else "I13.0"
    elif ckd:
        target = "I12.0" if late_ckd else "I12.9"
    else:
        target = "I11.0"
    sources = htn + hf[:1] + ckd[:1]
    return _replace_codes(codes, htn, [_derived(target, sources, "hypertension_combinations")],
                          "hypertension_combinations", "I.C.9.a.1-3")  # fmt: skip


def diabetes_ckd(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Diabetes and chronic kidney disease are linked by "with" (I.A.15, I.C.4.a): type 2 diabetes with
    CKD is E11.22 (with the N18 stage); E11.9 "without complications" cannot stand beside it."""
    dm, ckd = _icd(codes, "E11"), _icd(codes, "N18")
    if not dm or not ckd or _icd(codes, "E11.22"):
        return codes, []
    plain = [c for c in dm if c.code == "E11.9"]
    return _replace_codes(
        codes, plain, [_derived("E11.22", dm[:1] + ckd[:1], "diabetes_ckd")], "diabetes_ckd", "I.A.15, I.C.4.a"
    )


# Medicare bills the administration of influenza, pneumococcal and hepatitis B vaccines with its own HCPCS codes
# (CMS Medicare Claims Processing Manual, ch. 18, section 10.2): G0008, G0009, G0010; other payers take the CPT
# administration code 90471 for one injected vaccine. The vaccine products of each family, by CPT code:
_MEDICARE_ADMINISTRATION: dict[str, frozenset[str]] = {
    "G0008": frozenset({"90630", "90653", "90654", "90655", "90656", "90657", "90658", "90660", "90661", "90662",
                        "90664", "90666", "90667", "90668", "90672", "90673", "90674", "90682", "90685", "90686",
                        "90687", "90688", "90689", "90694", "90756"}),
    "G0009": frozenset({"90670", "90671", "90677", "90732"}),
    "G0010": frozenset({"90739", "90740", "90743", "90744", "90746", "90747", "90759"}),
}  # fmt: skip


# vaccine products (CPT 90476-90759) and their administration (CPT 90460-90474; HCPCS G0008-G0010 for Medicare's
# influenza, pneumococcal and hepatitis B vaccines)
def _is_vaccination(code: PredictedCode) -> bool:
    if code.system == CPT and code.code.isdigit():
        return 90460 <= int(code.code) <= 90474 or 90476 <= int(code.code) <= 90759
    return code.system == HCPCS and code.code in _MEDICARE_ADMINISTRATION


def immunization_encounter(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A vaccine given is an encounter for immunization: Z23 goes with it (I.C.21.c.2: "Code Z23 for encounters
    for inoculations and vaccinations"), on the vaccine's evidence; only from a grounded vaccine code (its words
    say it was given, not offered or declined: the context check treats vaccines as services). A Z23 the model
    coded without grounding takes that evidence too."""
    given = [c for c in codes if _is_vaccination(c) and c.grounded]
    if not given:
        return codes, []
    surest = max(given, key=lambda c: c.score)
    z23 = _derived("Z23", [surest], "immunization_encounter")
    ungrounded = [c for c in _icd(codes, "Z23") if not c.grounded]
    if _icd(codes, "Z23") and not ungrounded:
        return codes, []
    if ungrounded:  # kept, now on the vaccine's evidence: a change, but neither a removal nor an addition
        z23 = replace(z23, score=ungrounded[0].score)
        out = [z23 if c is ungrounded[0] else c for c in codes]
        return out, [RuleEvent("immunization_encounter", "I.C.21.c.2")]
    return _replace_codes(codes, [], [z23], "immunization_encounter", "I.C.21.c.2")


_MEDICARE = re.compile(r"\bmedicare\b", re.IGNORECASE)


def vaccine_administration_by_payer(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """The administration code of a vaccine given is the payer's (CMS Medicare Claims Processing Manual, ch. 18,
    section 10.2): for Medicare, 90471 beside an influenza, pneumococcal or hepatitis B product becomes G0008,
    G0009 or G0010; for any other payer, G0008-G0010 becomes 90471. The note does not say who pays, so the model
    cannot learn this; the input's `payer` does (no payer: nothing changes)."""
    if not patient.payer:
        return codes, []
    products = {c.code for c in codes if c.system == CPT}
    if _MEDICARE.search(patient.payer):
        wrong = [c for c in codes if c.system == CPT and c.code == "90471"]
        right = [g for g, family in _MEDICARE_ADMINISTRATION.items() if family & products]
        if not wrong or len(right) != 1:  # no CPT administration, or which vaccine it was is not one answer
            return codes, []
        add = [replace(wrong[0], system=HCPCS, code=right[0],
                       rules_applied=wrong[0].rules_applied + ("vaccine_administration_by_payer",))]  # fmt: skip
    else:
        wrong = [c for c in codes if c.system == HCPCS and c.code in _MEDICARE_ADMINISTRATION]
        if not wrong:
            return codes, []
        surest = max(wrong, key=lambda c: c.score)
        add = [replace(surest, system=CPT, code="90471",
                       rules_applied=surest.rules_applied + ("vaccine_administration_by_payer",))]  # fmt: skip
    return _replace_codes(codes, wrong, add, "vaccine_administration_by_payer", "CMS MCPM ch. 18 §10.2")


# acute lower respiratory infections: influenza and pneumonia (J09-J18), acute bronchitis,
# bronchiolitis and unspecified acute lower respiratory infection (J20-J22)
LOWER_RESPIRATORY_INFECTIONS = tuple(f"J{n:02d}" for n in (*range(9, 19), 20, 21, 22))


def copd_with_infection(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """COPD with an acute lower respiratory infection is the combination J44.0, the infection coded as
    well (I.B.9 combination codes; tabular J44.0 "code also to identify the infection"). J44.9 goes;
    an exacerbation (J44.1) stays beside J44.0, as both are documented."""
    copd, infection = _icd(codes, "J44.1", "J44.9"), _icd(codes, *LOWER_RESPIRATORY_INFECTIONS)
    if not copd or not infection or _icd(codes, "J44.0"):
        return codes, []
    combined = _derived("J44.0", copd[:1] + infection[:1], "copd_with_infection")
    return _replace_codes(codes, _icd(codes, "J44.9"), [combined], "copd_with_infection", "I.B.9")


@functools.lru_cache(maxsize=4096)
def _is_unspecified(code: str) -> bool:
    from medcoder.codes import describe

    words = describe(ICD10CM, code).lower()
    return "unspecified" in words or "without complications" in words


def unspecified_beside_specific(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """An "unspecified" or "without complications" code is for when the record holds nothing more
    specific (I.A.9, I.B.18): beside a more specific code of the same condition (E11.9 with E11.65,
    I50.9 with I50.22, J44.9 with J44.1) it is removed. "The same condition" is the unspecified code's
    parent in the classification: M54.50 (low back pain, unspecified, under M54.5 low back pain) stays
    beside M54.2 (cervicalgia), another condition of category M54. Only a grounded specific code displaces
    it: one whose documentation grounding could not find ("COPD - stable" for J44.1) establishes nothing."""
    from medcoder.codes.icd10cm import ancestors

    remove = []
    specific = [o for o in _icd(codes) if o.grounded and not _is_unspecified(o.code)]
    for c in _icd(codes):
        if not _is_unspecified(c.code):
            continue
        condition = (ancestors(c.code) or [c.code])[0]  # a category that is a code itself (R52) has no parent
        if any(o.code.startswith(condition) and o.code != c.code for o in specific):
            remove.append(c)
    return _replace_codes(codes, remove, [], "unspecified_beside_specific", "I.A.9, I.B.18")


# symptom code -> diagnoses (code prefixes) it is routinely part of
_INTEGRAL_SYMPTOMS: dict[str, tuple[str, ...]] = {
    # acute respiratory infections: the common cold and sinusitis to bronchitis, influenza, COVID-19
    "R05.9": (
        "J00",
        "J01",
        "J02",
        "J03",
        "J04",
        "J06",
        "J09",
        "J10",
        "J11",
        "J18",
        "J12",
        "J20",
        "J40",
        "J44",
        "U07.1",
        "J45",
    ),
    # fever is what a viral syndrome (B34.9) is, as it is of the infections named by site
    "R50.9": ("J18", "J12", "U07.1", "A41", "J02", "J03", "H66", "A08", "N10", "J06", "J09", "J10", "J11", "B34"),
    # sore throat NOS indexes to J02.9 (its inclusion term); in an upper respiratory infection of several
    # sites (J06) it is that infection's symptom
    "J02.9": ("J06",),
    "R07.9": ("I21", "I22", "I20"),
    "R06.02": ("J44", "J18", "J12", "I50", "I11.0", "I13.0", "I13.2", "J45", "J81"),
    "R11.2": ("A08", "K35", "G43"),  # nausea is a diagnostic criterion of migraine
    "R11.0": ("A08", "K35", "G43"),
    "R10.9": ("K35", "A08"),
    "R30.0": ("N39.0", "N30"),
    "R35.0": ("N39.0", "N30"),
    "R51.9": ("G43", "G44"),  # a tension-type or cluster headache is the headache
    # low back pain is what a lumbar strain or sprain (S39.01-, S33.5) or a lumbar disc disorder (M51) is; the
    # M54.5- codes are symptom codes though outside chapter 18
    "M54.50": ("S39.01", "S33.5", "M51"),
    "R06.83": ("G47.33",),
}


def integral_symptoms(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Signs and symptoms routinely associated with an established diagnosis are not coded (I.B.4-5):
    no R05.9 cough beside pneumonia. (An outpatient "probable pneumonia" is not established: the
    context check removed it, and its symptoms stay, I.B.5 and IV.H.) The diagnosis may be one no label
    codes, stated in the note's diagnostic statements (`NotePrediction.outside_diagnoses`, by category):
    "A: common cold" explains the cough though the model cannot code J00. A code the note names only by its
    symptom inclusion term (J02.9 for "sore throat", `Patient.symptom_worded`) is that symptom, and explains none."""
    diagnoses = [c.code for c in _icd(codes) if c.code not in patient.symptom_worded]
    categories = [category for category, _ in pred.outside_diagnoses]

    def explains(symptom: str) -> bool:  # an outside category explains it when a prefix lies within the category
        prefixes = _INTEGRAL_SYMPTOMS[symptom]
        return any(d.startswith(prefixes) for d in diagnoses + categories) or any(
            p.startswith(category) for category in categories for p in prefixes
        )

    remove = [c for c in _icd(codes) if c.code in _INTEGRAL_SYMPTOMS and explains(c.code)]
    return _replace_codes(codes, remove, [], "integral_symptoms", "I.B.4-5")


def excludes1_pairs(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Two codes an Excludes1 note keeps apart are never reported together (I.A.12.a): the
    conditions cannot coexist (F17.210 current nicotine dependence and Z87.891 its history; R73.03
    prediabetes and E11.9 diabetes). Of each such pair the less certain code goes: an ungrounded one
    before a grounded one, then the lower score, then the lower support."""
    from medcoder.codes.excludes import excludes1

    def certainty(c: PredictedCode) -> tuple[bool, float, float]:
        return (c.grounded, c.score, c.support or 0.0)

    icd = _icd(codes)
    remove: list[PredictedCode] = []
    for c in sorted(icd, key=certainty, reverse=True):
        kept = [o for o in icd if o is not c and o not in remove and certainty(o) >= certainty(c)]
        if c not in remove and any(excludes1(c.code, o.code) for o in kept):
            remove.append(c)
    return _replace_codes(codes, remove, [], "excludes1_pairs", "I.A.12.a")


def bmi_from_value(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A weight diagnosis the provider documents (obesity, malnutrition) takes the BMI code of the BMI the note
    measures, which any clinician may record (I.B.14): "Obesity, BMI 32.1" or vitals "BMI 39.3 kg/m2" beside
    "Obesity" is E66.9 and Z68.32 / Z68.39. A number is where the model reads worst ("BMI 32.1" and "BMI 39.3"
    alike), and the band is the Z68 titles' (`codes.values.adult_bmi_code`). Adults (20 and over) only: a
    child's BMI code is a percentile, which a value alone does not give; none in pregnancy, and none where the
    model coded a BMI code itself (the evidence check has judged that one against the value)."""
    if patient.bmi is None or patient.age is None or patient.age < ADULT_MIN_AGE or _icd(codes, BMI_CATEGORY):
        return codes, []
    diagnoses = [c for c in _icd(codes) if c.grounded]
    weight = [c for c in diagnoses if has_weight_diagnosis([c.code])]
    if not weight or indicates_pregnancy(c.code for c in _icd(codes)):
        return codes, []
    value, span = patient.bmi
    source = max(weight, key=lambda c: c.score)
    bmi = replace(
        source, code=adult_bmi_code(value), evidence=(span,), rules_applied=(*source.rules_applied, "bmi_from_value")
    )
    return _replace_codes(codes, [], [bmi], "bmi_from_value", "I.B.14")


def bmi_needs_weight_diagnosis(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """BMI codes (Z68) are reported only as secondary codes with an associated weight diagnosis
    (obesity, malnutrition, underweight) (I.B.14, I.C.21.c.3); adult bands (Z68.1-Z68.45) are for ages
    20 and over, pediatric percentiles (Z68.51-Z68.54) for 2-19; none in pregnancy (O99.21). The rules
    themselves are `medcoder.codes.bmi`'s, which risk adjustment reads too."""
    bmi = _icd(codes, BMI_CATEGORY)
    if not bmi:
        return codes, []
    diagnoses = [c.code for c in _icd(codes)]
    allowed = has_weight_diagnosis(diagnoses) and not indicates_pregnancy(diagnoses)
    remove = [c for c in bmi if not (allowed and in_age_band(c.code, patient.age))]
    return _replace_codes(codes, remove, [], "bmi_needs_weight_diagnosis", "I.B.14, I.C.21.c.3")


# routine exam without abnormal findings -> the same exam with abnormal findings
_EXAM_WITH_FINDINGS: dict[str, str] = {"Z00.00": "Z00.01", "Z00.129": "Z00.121"}


def exam_findings(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A routine exam that found a new or abnormal condition is the exam "with abnormal findings"
    (Z00.01, Z00.121), the condition coded beside it (I.C.21.c.13): "Annual preventive exam ...
    Assessment: new diagnosis of essential hypertension" is Z00.01 and I10, not Z00.00."""
    if not patient.abnormal_findings:
        return codes, []
    exams = [c for c in _icd(codes) if c.code in _EXAM_WITH_FINDINGS]
    added = [replace(c, code=_EXAM_WITH_FINDINGS[c.code], rules_applied=(*c.rules_applied, "exam_findings"))
             for c in exams]  # fmt: skip
    return _replace_codes(codes, exams, added, "exam_findings", "I.C.21.c.13")


# the routine general examinations a preventive medicine visit is billed for (adult, child; each without and with
# abnormal findings)
_GENERAL_EXAMS = frozenset({"Z00.00", "Z00.01", "Z00.121", "Z00.129"})


def preventive_visit(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A routine general exam (Z00.00/Z00.01 adult, Z00.121/Z00.129 child: I.C.21.c.13) that the model billed as
    a preventive medicine visit keeps that visit when the evidence verifier turned the visit's code down. The
    code's words are an age band and the patient's status with the practice ("Check-up visit, established patient,
    age 18 to 39"); a note states those as an age and "return patient", never in the code's words, so the
    verifier cannot find them, while the exam's own grounded words ("Annual physical") are what the visit bills.
    The band is the patient's age's, the family the note's stated status (else the one the model scored), the
    evidence, score and grounding the exam's. Nothing is added without the patient's age, in the hospital, or
    beside a preventive code the model kept."""
    if patient.age is None or patient.setting == "inpatient" or any(_is_preventive(c) for c in codes):
        return codes, []
    scored = [code for system, code in pred.verifier_rejected if system == CPT and code in PREVENTIVE_EM_CODES]
    exams = [c for c in _icd(codes) if c.code in _GENERAL_EXAMS and c.grounded]
    if not scored or not exams:
        return codes, []
    if patient.patient_status is not None:
        family = PREVENTIVE_NEW_PATIENT if patient.patient_status == NEW else PREVENTIVE_ESTABLISHED
    else:
        family = PREVENTIVE_NEW_PATIENT if scored[0] in PREVENTIVE_NEW_PATIENT else PREVENTIVE_ESTABLISHED
    exam = max(exams, key=lambda c: c.score)
    visit = replace(exam, system=CPT, code=preventive_code(family[0], patient.age),
                    rules_applied=(*exam.rules_applied, "preventive_visit"))  # fmt: skip
    return _replace_codes(codes, [], [visit], "preventive_visit", "I.C.21.c.13")


def age_and_sex(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """A preventive visit (99381-99397) is billed in the patient's age band (the CPT titles; the bands are
    `codes.age_sex`'s): a code of another band is corrected, the one unambiguous fix of an age edit. A diagnosis
    the patient's age or sex rules out (the Medicare Code Editor's groups, `codes.age_sex`) is never removed here:
    review routing sends it to a coder with the edit named (`inference.routing`), since either the code or the
    patient's facts may be wrong. One visit is one preventive service, new (9938x) or established (9939x), never
    both: when a correction lands beside the model's own in-band code, the model's surest in-band code stays."""
    if patient.age is None:
        return codes, []
    remove, add = [], []
    for c in codes:
        if _is_preventive(c) and (right := preventive_code(c.code, patient.age)) != c.code:
            remove.append(c)
            add.append(replace(c, code=right, rules_applied=c.rules_applied + ("age_and_sex",)))
    preventive = [c for c in codes if c not in remove and _is_preventive(c)] + [c for c in add if _is_preventive(c)]
    if len(preventive) > 1:  # own codes before corrections, then the surest
        keep = max(preventive, key=lambda c: ("age_and_sex" not in c.rules_applied, c.score))
        remove += [c for c in preventive if c is not keep and c not in add]
        add = [c for c in add if c is keep or not _is_preventive(c)]
    return _replace_codes(codes, remove, add, "age_and_sex", "I.B.12")


def _is_preventive(code: PredictedCode) -> bool:
    return code.system == CPT and code.code in PREVENTIVE_EM_CODES


# vaccine products given by mouth or nose: their administration is 90473/90474, not the injection codes 90471/90472
_NOT_INJECTED = frozenset({"90625", "90660", "90672", "90680", "90681", "90690"})


def vaccine_admin_age(codes: list[PredictedCode], pred: NotePrediction, patient: Patient):
    """Immunization administration with counseling, 90460 (with 90461 per additional component), is for patients
    through 18 years of age (CPT; `codes.age_sex`). From 19 on, 90460 alone beside injected vaccines is 90471, the
    unambiguous code; beside 90461 (how many vaccines, not components, were given decides 90472) or a vaccine
    given by mouth or nose (90473) it stays, and review routing sends it to a coder (`vaccine_admin_age:90460`)."""
    if patient.age is None or age_edit(CPT, "90460", patient.age) is None:
        return codes, []
    counseled = [c for c in codes if c.system == CPT and c.code == "90460"]
    products = {c.code for c in codes if c.system == CPT}
    if not counseled or "90461" in products or products & _NOT_INJECTED:
        return codes, []
    add = [replace(counseled[0], code="90471", rules_applied=counseled[0].rules_applied + ("vaccine_admin_age",))]
    return _replace_codes(codes, counseled, add, "vaccine_admin_age", "CPT 90460 (through 18 years), 90471")


RULES: tuple[tuple[str, RuleFn], ...] = (
    ("documented_specificity", documented_specificity),
    ("history_codes", history_codes),
    ("stroke_with_deficits", stroke_with_deficits),
    ("outpatient_uncertainty", outpatient_uncertainty),
    ("hypertension_combinations", hypertension_combinations),
    ("diabetes_ckd", diabetes_ckd),
    ("copd_with_infection", copd_with_infection),
    ("immunization_encounter", immunization_encounter),
    ("vaccine_admin_age", vaccine_admin_age),
    ("vaccine_administration_by_payer", vaccine_administration_by_payer),
    ("unspecified_beside_specific", unspecified_beside_specific),
    ("integral_symptoms", integral_symptoms),
    ("excludes1_pairs", excludes1_pairs),
    ("bmi_from_value", bmi_from_value),
    ("bmi_needs_weight_diagnosis", bmi_needs_weight_diagnosis),
    ("exam_findings", exam_findings),
    ("preventive_visit", preventive_visit),
    ("age_and_sex", age_and_sex),
)
RULE_IDS: tuple[str, ...] = tuple(name for name, _ in RULES)


def apply_guidelines(pred: NotePrediction, patient: Patient, rules: Sequence[str] | None = None) -> NotePrediction:
    """`pred` after the guideline rules (all of RULES, or the named ones, in RULES order)."""
    unknown = sorted(set(rules or ()) - set(RULE_IDS))
    if unknown:
        raise ValueError(f"unknown guideline rule(s) {unknown}; known: {', '.join(RULE_IDS)}")
    codes, events = list(pred.codes), list(pred.rules)
    for name, rule in RULES:
        if rules is None or name in rules:
            codes, new_events = rule(codes, pred, patient)
            events += new_events
    codes.sort(key=lambda c: -c.score)
    return replace(pred, codes=tuple(codes), rules=tuple(events))


def apply_guidelines_to(records: Sequence, predictions: Sequence[NotePrediction]) -> list[NotePrediction]:
    """`apply_guidelines` over a split, each prediction with its record's age, sex and setting."""
    return [apply_guidelines(p, Patient.of(r)) for r, p in zip(records, predictions, strict=True)]
