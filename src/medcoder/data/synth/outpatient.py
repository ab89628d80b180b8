"""Office visit notes: plan the visit (what is addressed, done, coded), then write it.

Four kinds of visit: chronic-care follow-up, acute (sick) visit, preventive (well-child Z00.129,
adult physical Z00.00) and nurse blood-pressure check (99211). Every full note gets exactly one E/M
code: office 99202-99215 from the documented MDM (em.py), 99211 for the nurse visit, or the
preventive-medicine code 99381-99397 for a preventive visit (preventive visits are not billed
with office E/M codes). Procedures done in the visit carry their CPT/HCPCS codes; procedures only
considered are written as hypothetical mentions. A share of chronic and acute visits is written as
a brief note (brief.py): the assessment alone, which documents no E/M level and so has no E/M code.
"""

from __future__ import annotations

import random

from medcoder.data.synth import em
from medcoder.data.synth.acute import plan_acute
from medcoder.data.synth.brief import BRIEF_NOTE_RATE, render_brief
from medcoder.data.synth.builder import Ann, NoteBuilder, Piece, ev, fill, join, men
from medcoder.data.synth.catalog import HISTORY, SYMPTOMS, cpt, hcpcs, icd
from medcoder.data.synth.chronic import a1c, a1c_value, bmi_piece, obesity_problem, plan_chronic_problems
from medcoder.data.synth.coding import condition_codes
from medcoder.data.synth.distractors import core_distractors
from medcoder.data.synth.patients import Encounter, Patient
from medcoder.data.synth.phrasing import (
    HYPOTHETICAL_PROCEDURE_CUES,
    HYPOTHETICAL_SYMPTOM_CUES,
    Style,
    age_phrase,
    chance,
    cue,
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
    ros,
    ros_negatives,
    section,
    social_history,
    vitals,
)
from medcoder.data.synth.visit import Problem, Visit

FLU_MONTHS = (10, 11, 12, 1, 2, 3)
# Chance that an office note names a core diagnosis it does not code (distractors.py).
TERSE_NOTE_RATE = 0.45  # office notes whose author names each condition once (see render)
DISTRACTOR_RATE = {"chronic": 0.8, "acute": 0.6, "preventive": 0.7}
PLURAL = {
    em.MINOR: "self-limited or minor problems",
    em.ACUTE_UNCOMPLICATED: "acute uncomplicated illnesses",
    em.STABLE_CHRONIC: "stable chronic illnesses",
    em.CHRONIC_PROGRESSION: "chronic illnesses with progression",
    em.UNDIAGNOSED: "undiagnosed new problems with uncertain prognosis",
    em.ACUTE_SYSTEMIC: "acute illnesses with systemic symptoms",
    em.CHRONIC_SEVERE: "chronic illnesses with severe exacerbation",
    em.THREAT: "acute illnesses posing a threat to life or bodily function",
}


# ---------------------------------------------------------------- planning
def _visit_kind(rng: random.Random, patient: Patient, age: int) -> str:
    if not patient.conditions:
        if age < 18:
            return "preventive" if chance(rng, 0.42) else "acute"
        if age < 65 and patient.payer != "medicare":
            return "preventive" if chance(rng, 0.33) else "acute"
        return "acute"
    roll = rng.random()
    if patient.has("htn") and roll < 0.05:
        return "nurse"
    return "chronic" if roll < 0.60 else "acute"


def _chf_severe(rng: random.Random, style: Style, codes) -> Problem:
    name = ev(
        pick(rng, ("CHF exacerbation", "congestive heart failure exacerbation", "heart failure exacerbation")), *codes
    )
    entry = [
        name,
        f": {rng.randint(3, 6)} kg weight gain, orthopnea and leg ",
        "swelling",
        ". Sent to the ED for IV diuresis.",
    ]
    p = Problem(
        "chf",
        em.CHRONIC_SEVERE,
        ev("CHF exacerbation", *codes),
        entry,
        cc="weight gain and leg swelling",
        hpi=[f"Progressive dyspnea and {rng.randint(3, 6)} kg weight gain over a week despite furosemide."],
        exam={"Extremities": "2+ pitting edema to the knees", "Lungs": "bibasilar crackles"},
        risk=em.RISK_HIGH,
        risk_text="decision regarding hospitalization",
        avoid=["R06.02", "R60.9"],
    )
    p.discussion = chance(rng, 0.5)
    if p.discussion:
        p.entry.append(" Discussed with the on-call cardiologist.")
    return p


def plan_visit(rng: random.Random, style: Style, patient: Patient, enc: Encounter) -> Visit:
    age = enc.age
    new = enc.index == 0 and not patient.seen_before
    kind = _visit_kind(rng, patient, age)
    visit = Visit(kind=kind, new_patient=new, problems=[])
    if kind == "preventive":
        visit.problems.append(_preventive_problem(rng, age))
    elif kind == "nurse":
        visit.documented = ["htn"]
        codes = condition_codes(["htn"])["htn"]
        bp = (rng.randint(118, 136), rng.randint(70, 86))
        entry = [
            condition(rng, style, "htn", codes),
            f": BP {bp[0]}/{bp[1]} on recheck, at goal. Continue current regimen; message routed to provider.",
        ]
        visit.problems.append(Problem("htn", None, "", entry, cc="blood pressure check", bp=bp))
        visit.new_patient = False
    else:
        main = plan_acute(rng, style, patient, age) if kind == "acute" else None
        documented = [k for k in patient.conditions if not (main and main.key == k)]
        hyper = kind == "chronic" and patient.has("t2dm") and chance(rng, 0.4)
        visit.copd_code = "J44.0" if main and main.key == "pneumonia" else None  # COPD with pneumonia
        all_codes = condition_codes(patient.conditions, hyperglycemia=hyper, copd_code=visit.copd_code)
        cond_codes = {k: all_codes[k] for k in documented}
        # A sick visit addresses the chronic problems only half the time; they stay documented (and coded,
        # as coexisting conditions, guideline IV.J) in the history either way, but count for MDM only when addressed.
        addressed = cond_codes if kind == "chronic" or chance(rng, 0.5) else {}
        chronic = plan_chronic_problems(rng, style, patient, addressed, hyper, brief=kind == "acute")
        if kind == "chronic" and patient.has("chf") and chance(rng, 0.2):
            chronic = [p if p.key != "chf" else _chf_severe(rng, style, cond_codes["chf"]) for p in chronic]
        visit.documented = list(patient.conditions)
        visit.hyperglycemia = hyper
        visit.problems = ([main] if main else []) + chronic
        if patient.bmi and patient.bmi >= 30 and age >= 20 and kind == "chronic" and chance(rng, 0.7):
            # A documented weight diagnosis makes the BMI reportable (guideline I.B.14).
            visit.obesity = True
            visit.problems.append(obesity_problem(rng, style, patient.bmi, bmi_piece(rng, patient.bmi, coded=True)))
        if (
            kind == "chronic"
            and not patient.has("t2dm")
            and not patient.has("prediabetes")
            and age >= 30
            and chance(rng, 0.12)
        ):
            # Near miss: an A1c in the prediabetes range that the provider does not call prediabetes (not coded).
            visit.problems[0].labs.append(a1c(rng, a1c_value(rng, "near")))
            visit.problems[0].reviewed.append("A1c")
        if kind == "chronic":
            ordered = [
                t
                for t in ("A1c", "lipid panel", "CMP", "CBC", "TSH")
                if chance(rng, 0.18) and all(t not in p.reviewed for p in visit.problems)
            ]
            if ordered:
                visit.problems[-1].ordered += ordered
                visit.problems[-1].blood_ordered = True
                visit.problems[-1].entry = visit.problems[-1].entry + [
                    f" Ordered {', '.join(ordered)} before next visit."
                ]
    if age < 12 and kind == "acute":
        visit.problems[0].historian = True
    _add_extras(rng, style, patient, enc, visit)
    _add_hypotheticals(rng, patient, age, visit)
    _add_core_distractors(rng, style, patient, age, visit)
    return visit


def _add_core_distractors(rng: random.Random, style: Style, patient: Patient, age: int, visit: Visit) -> None:
    """Name core diagnoses in the plan without coding them (distractors.py); never in nurse visits."""
    if visit.kind == "nurse":
        return
    involved = set(_coded(visit)) | {c for cs in condition_codes(patient.conditions).values() for _, c in cs}
    involved |= {HISTORY[k].code for k, _ in patient.history} | {HISTORY[k].mention_code for k, _ in patient.history}
    involved |= {t for p in visit.problems for t in p.reviewed + p.ordered}
    involved |= {c for p in visit.problems for c in codes_in(p.labs)}
    if any("A1c" in str(line) for p in visit.problems for line in p.labs):
        involved.add("A1c")
    for entry in core_distractors(
        rng, style, patient, age, involved, rate=DISTRACTOR_RATE[visit.kind], family_rate=0.25
    ):
        visit.extras.append(Problem("distractor", None, "", entry))


def _preventive_problem(rng: random.Random, age: int) -> Problem:
    if age < 18:
        code = icd("Z00.129")
        phrase = pick(rng, ("well-child visit", "well child check", "routine child health exam", "well-child exam"))
        entry = [
            ev(cap_first(phrase), code),
            ": growth and development appropriate for age. Anticipatory guidance given "
            "(safety, nutrition, sleep). Immunizations up to date per registry.",
        ]
        return Problem("preventive", None, "", entry, cc=phrase, historian=age < 12)
    code = icd("Z00.00")
    phrase = pick(
        rng, ("annual physical", "routine adult physical exam", "annual preventive exam", "general adult medical exam")
    )
    entry = [
        ev(cap_first(phrase), code),
        ": no abnormal findings. Age-appropriate screening reviewed; lipid panel and A1c ordered. "
        "Diet, exercise and sleep discussed.",
    ]
    return Problem("preventive", None, "", entry, cc=phrase, ordered=["lipid panel", "A1c"], blood_ordered=True)


def _add_extras(rng: random.Random, style: Style, patient: Patient, enc: Encounter, visit: Visit) -> None:
    age, febrile = enc.age, any(p.febrile for p in visit.problems)
    sent_to_ed = any(p.risk == em.RISK_HIGH for p in visit.problems)
    if visit.kind == "nurse":
        return
    # Influenza vaccine in season: Z23 + product 90686 + administration (G0008 for Medicare, else 90471).
    if enc.date.month in FLU_MONTHS and age >= 19 and not febrile and not sent_to_ed and chance(rng, 0.33):
        admin = hcpcs("G0008") if patient.payer == "medicare" else cpt("90471")
        product = ev(
            pick(
                rng,
                (
                    "quadrivalent influenza vaccine (preservative-free, 0.5 mL)",
                    "influenza vaccine, quadrivalent, 0.5 mL preservative-free",
                ),
            ),
            cpt("90686"),
        )
        given = ev(
            pick(
                rng, ("administered IM in the left deltoid", "given IM, right deltoid", "administered intramuscularly")
            ),
            admin,
        )
        doc = [
            ev([product, " ", given], icd("Z23")),
            pick(rng, (". VIS provided, tolerated well.", "; no immediate reaction.")),
        ]
        entry = [
            ev(pick(rng, ("Encounter for immunization", "Flu vaccine given today", "Immunization")), icd("Z23")),
            ": influenza vaccine administered, see procedures.",
        ]
        visit.extras.append(Problem("flu_vaccine", None, "", entry, procedures=[doc]))
    # Another adult vaccine, payer not Medicare (whose hepatitis B and pneumococcal administration codes are
    # HCPCS G0010/G0009): Z23 + administration 90471 (its product code is outside the label space). "Vaccine
    # given" is Z23 whatever the vaccine; the flu vaccine alone would teach "influenza" as its words.
    elif 19 <= age < 65 and patient.payer != "medicare" and not febrile and not sent_to_ed and chance(rng, 0.08):
        vaccine = pick(rng, ("Hepatitis A vaccine", "Tdap vaccine (booster)", "Hepatitis B vaccine (dose 2 of 3)"))
        given = ev(pick(rng, ("given IM in the left deltoid", "administered IM, right deltoid")), cpt("90471"))
        doc = [ev([vaccine, " ", given], icd("Z23")), pick(rng, (". VIS provided.", "; tolerated well."))]
        entry = [ev(pick(rng, (f"{vaccine} given today", "Encounter for immunization")), icd("Z23")), "."]
        visit.extras.append(Problem("vaccine", None, "", entry, procedures=[doc]))
    if patient.smoking == "current" and visit.kind != "preventive" and not sent_to_ed and chance(rng, 0.4):
        minutes = rng.randint(4, 9)
        counsel = ev(
            pick(
                rng,
                (
                    f"Counseled on smoking cessation for {minutes} minutes",
                    f"Smoking cessation counseling, {minutes} minutes",
                    f"Tobacco cessation counseling provided ({minutes} min)",
                ),
            ),
            cpt("99406"),
            icd("Z71.6"),
        )
        name = ev(
            pick(rng, ("nicotine dependence, cigarettes", "cigarette smoker", "tobacco dependence, cigarettes")),
            icd("F17.210"),
        )
        entry = [
            name,
            ": ",
            counsel,
            pick(rng, ("; discussed nicotine patch.", "; quit date discussed.", "; declined pharmacotherapy.")),
        ]
        visit.extras.append(Problem("tobacco", None, "", entry))
    no_depression = not any(patient.has(k) for k in ("depression", "mdd", "gad"))
    if (
        patient.payer == "medicare"
        and visit.kind in ("chronic", "acute")
        and no_depression
        and not sent_to_ed
        and chance(rng, 0.25)
    ):
        screen = ev(
            pick(
                rng,
                (
                    f"Annual depression screening with PHQ-9 ({rng.randint(5, 12)} minutes)",
                    "Depression screening performed (PHQ-9), annual",
                ),
            ),
            hcpcs("G0444"),
            icd("Z13.31"),
        )
        visit.extras.append(
            Problem("depression_screen", None, "", [], procedures=[[screen, f": score {rng.randint(0, 4)}, negative."]])
        )
    if any(p.blood_ordered for p in visit.problems) and chance(rng, 0.6):
        draw = ev(
            pick(
                rng,
                (
                    "Venipuncture performed in clinic",
                    "Blood drawn by venipuncture in office",
                    "Labs drawn in clinic by venipuncture",
                ),
            ),
            cpt("36415"),
        )
        visit.extras.append(Problem("venipuncture", None, "", [], procedures=[[draw, " for ordered labs."]]))
    if visit.kind == "chronic" and patient.has("t2dm") and chance(rng, 0.3):
        glucose = ev(
            pick(rng, ("Fingerstick glucose by glucometer", "Point-of-care glucose (glucometer)")), cpt("82962")
        )
        visit.extras.append(
            Problem("glucometer", None, "", [], procedures=[[glucose, f": {rng.randint(96, 240)} mg/dL."]])
        )
    if visit.kind == "chronic" and patient.has("afib") and chance(rng, 0.3):
        codes = condition_codes(patient.conditions)["afib"]
        ecg = ev(
            pick(rng, ("12-lead ECG performed and interpreted in office", "ECG obtained in clinic and interpreted")),
            cpt("93000"),
        )
        visit.extras.append(
            Problem(
                "ecg",
                None,
                "",
                [],
                procedures=[
                    [
                        ecg,
                        ": ",
                        condition(rng, style, "afib", codes),
                        f", ventricular rate {rng.randint(64, 88)}, no acute ST changes.",
                    ]
                ],
            )
        )


def codes_in(piece: Piece) -> list[str]:
    """Every code annotated anywhere inside a piece (evidence codes and mention codes)."""
    if isinstance(piece, list):
        return [c for item in piece for c in codes_in(item)]
    if isinstance(piece, Ann):
        own = [c for _, c in piece.codes] + ([piece.mention[0]] if piece.mention else [])
        return own + codes_in(piece.body)
    return []


def _coded(visit: Visit) -> list[str]:
    """Codes this visit names or must keep clear of, so distractors never contradict the gold codes."""
    codes: list[str] = []
    for p in visit.problems + visit.extras:
        codes += p.avoid
        codes += codes_in([p.label, p.entry, p.hpi, p.positives, p.procedures, p.labs, list(p.exam.values())])
    return codes


def _add_hypotheticals(rng: random.Random, patient: Patient, age: int, visit: Visit) -> None:
    if visit.kind == "nurse" or not chance(rng, 0.42):
        return
    taken = set(_coded(visit))
    options: list[tuple[str, str]] = []  # (kind, key)
    for key in ("chest_pain", "sob", "fever", "abd_pain", "dizziness"):
        if SYMPTOMS[key].code not in taken and age >= 12:
            options.append(("symptom", key))
    if patient.smoking in ("current", "former") and age >= 40 and "94010" not in taken and not patient.has("copd"):
        options.append(("procedure", "spirometry"))
    if patient.has("oa_knee") and "20610" not in taken:
        options.append(("procedure", "knee injection"))
    if visit.kind == "chronic" and any(patient.has(k) for k in ("htn", "cad", "afib", "hld")) and "93000" not in taken:
        options.append(("procedure", "ECG"))
    if "90686" not in taken and age >= 19:
        options.append(("procedure", "flu vaccine"))
    if "J18.9" not in taken and age >= 18:
        options.append(("dx", "pneumonia"))
    if not options:
        return
    for kind, key in rng.sample(options, 2 if len(options) > 2 and chance(rng, 0.2) else 1):
        if kind == "symptom":
            sym = SYMPTOMS[key]
            visit.hypotheticals.append(
                cue(rng, HYPOTHETICAL_SYMPTOM_CUES, men(pick(rng, sym.names), sym.code, "hypothetical"))
            )
        elif kind == "procedure":
            code = {"spirometry": "94010", "knee injection": "20610", "ECG": "93000", "flu vaccine": "90686"}[key]
            visit.hypotheticals.append(cue(rng, HYPOTHETICAL_PROCEDURE_CUES, men(key, code, "hypothetical")))
        else:
            visit.hypotheticals.append(
                fill(
                    pick(
                        rng,
                        (
                            "if cough or fever develop, chest x-ray to evaluate for {x}",
                            "call if new cough and fever, to evaluate for {x}",
                        ),
                    ),
                    x=men("pneumonia", "J18.9", "hypothetical"),
                )
            )


def mdm_of(visit: Visit) -> em.MDM:
    tests: list[str] = []
    for p in visit.problems:
        for t in p.reviewed + p.ordered:
            if t not in tests:
                tests.append(t)
    return em.MDM(
        problems=[p.category for p in visit.problems if p.category],
        tests=tests,
        historian=any(p.historian for p in visit.problems),
        interpretation=any(p.interpretation is not None for p in visit.problems),
        discussion=any(p.discussion for p in visit.problems),
        risk=max((p.risk for p in visit.problems), default=em.RISK_MINIMAL),
    )


def em_code(visit: Visit, age: int) -> str:
    if visit.kind == "preventive":
        return em.preventive_em_code(age, visit.new_patient)
    if visit.kind == "nurse":
        return "99211"
    return em.office_em_code(mdm_of(visit), visit.new_patient)


# ---------------------------------------------------------------- writing
def _mdm_statement(rng: random.Random, visit: Visit, code: tuple[str, str], name_problems: bool = True) -> list:
    mdm = mdm_of(visit)
    groups: dict[str, list[Piece]] = {}
    for p in visit.problems:
        if p.category:
            groups.setdefault(p.category, []).append(p.label)
    prob_parts = []
    for category, labels in groups.items():
        what = category if len(labels) == 1 else PLURAL[category]
        prob_parts.append(
            [f"{len(labels)} {what} (", join(labels, ", "), ")"] if name_problems else f"{len(labels)} {what}"
        )
    problems = ev(join(prob_parts, "; "), code)
    data_parts: list = []
    reviewed = [t for p in visit.problems for t in p.reviewed]
    ordered = [t for p in visit.problems for t in p.ordered if t not in reviewed]
    if reviewed:
        data_parts.append("reviewed " + ", ".join(dict.fromkeys(reviewed)))
    if ordered:
        data_parts.append("ordered " + ", ".join(dict.fromkeys(ordered)))
    if mdm.historian:
        data_parts.append("independent historian (parent)")
    if mdm.interpretation:
        data_parts.append("independent interpretation of chest x-ray")
    if mdm.discussion:
        data_parts.append("management discussed with the ED physician")
    data = ev("; ".join(data_parts), code) if data_parts else pick(rng, ("none", "no data reviewed", "minimal"))
    risk_text = max(visit.problems, key=lambda p: p.risk).risk_text or "minimal risk"
    risk = ev(risk_text, code)
    out = [pick(rng, ("Problems: ", "Problems addressed: ")), problems, ". Data: ", data, ". Risk: ", risk, "."]
    if chance(rng, 0.4):
        out += [" ", ev(f"Overall MDM {em.LEVEL_NAMES[em.mdm_level(mdm)]}", code), "."]
    return out


def render(rng: random.Random, style: Style, patient: Patient, enc: Encounter, visit: Visit) -> NoteBuilder:
    if visit.kind in ("chronic", "acute") and chance(rng, BRIEF_NOTE_RATE):
        return render_brief(rng, style, patient, enc, visit)  # the assessment alone, no E/M (brief.py)
    b = NoteBuilder()
    age = enc.age
    code = cpt(em_code(visit, age))
    visit.em_code = code[1]
    pmh_codes = condition_codes(patient.conditions, hyperglycemia=visit.hyperglycemia, copd_code=visit.copd_code)

    # --- title and identification
    b.line(
        pick(rng, ("OFFICE VISIT", "Clinic Note", "Primary Care Progress Note", "Outpatient Visit", "PROGRESS NOTE"))
    )
    if chance(rng, 0.6):
        b.line(f"Date of service: {enc.date.isoformat()}")
    status = ev(
        pick(rng, ("new patient", "new patient visit", "new pt"))
        if visit.new_patient
        else pick(rng, ("established patient", "est. patient", "established pt", "return patient")),
        code,
    )
    b.line(
        "Patient: ",
        patient.name,
        ", ",
        age_phrase(rng, age, patient.infant_months),
        " ",
        sex_word(rng, patient.sex, age),
        ", ",
        status,
        f", {pick(rng, ('insurance', 'payer', 'coverage'))}: {patient.payer.replace('_', ' ')}.",
    )

    if visit.kind == "nurse":
        return _render_nurse(rng, style, b, patient, visit, code)

    main = visit.problems[0]
    # --- chief complaint and HPI
    cc = main.cc if visit.kind != "chronic" else None
    # A terse author names each condition once: no list in the CC or MDM, the problem list only for
    # what the plan does not address, no drug names (so no Z79 code without its drug).
    terse = chance(rng, TERSE_NOTE_RATE)
    addressed = {p.key for p in visit.problems}
    if visit.kind == "chronic" and terse:
        cc_piece = pick(rng, ("Chronic disease follow-up", "Routine follow-up", "Follow-up of chronic conditions"))
    elif visit.kind == "chronic":
        names = [condition(rng, style, k, pmh_codes[k]) for k in visit.documented[:3]]
        cc_piece: Piece = [pick(rng, ("Follow-up of ", "F/u ", "Routine follow-up: ")), join(names, ", ", " and ")]
    elif visit.kind == "preventive":
        cc_piece = ev(cap_first(cc or ""), icd("Z00.129" if age < 18 else "Z00.00"), code)
    else:
        cc_piece = cap_first(cc or "")
    section(b, style, "cc", cc_piece)
    hpi: list = []
    if visit.kind == "chronic" and visit.new_patient:
        hpi.append(
            pick(
                rng,
                (
                    "New to the practice, establishing care for chronic conditions.",
                    "Transferring care; records from prior PCP not available.",
                ),
            )
        )
    elif visit.kind == "chronic":
        hpi.append(
            pick(
                rng,
                (
                    "Here for routine follow-up of chronic conditions.",
                    "Presents for chronic disease management.",
                    "Returns for follow-up.",
                ),
            )
        )
        hpi.append(
            pick(
                rng,
                (
                    "Reports good adherence to medications.",
                    "Taking medications as prescribed, no side effects.",
                    "Occasionally misses doses.",
                ),
            )
        )
    for p in visit.problems:
        if p.historian and not any("historian" in str(x) for x in p.hpi):
            hpi.append(f"History obtained from {pick(rng, ('mother', 'father', 'parent'))} (independent historian).")
        hpi += p.hpi
    if visit.kind == "preventive":
        hpi.append(
            pick(rng, ("No acute concerns today.", "Feeling well, no complaints.", "Here for routine preventive care."))
        )
    section(b, style, "hpi", *join(hpi, " "))

    # --- history sections (order varies by author)
    history_sections = ["pmh", "meds", "allergies"]
    if chance(rng, 0.3):
        rng.shuffle(history_sections)
    for key in history_sections:
        if key == "pmh":
            items = [condition(rng, style, k, pmh_codes[k]) for k in visit.documented if not (terse and k in addressed)]
            items += [history_item(rng, hk, year) for hk, year in patient.history]
            if not items:
                items = (
                    [pick(rng, ("none", "No significant past medical history", "None reported"))]
                    if age >= 2
                    else ["Born full term, no significant history"]
                )
            section(
                b,
                style,
                "pmh",
                *(bullets(style, items) if len(items) > 3 and not style.inline_headers else join(items, ", ")),
                block=len(items) > 3 and not style.inline_headers,
            )
        elif key == "meds":
            meds = [m for k in visit.documented for m in patient.meds.get(k, [])]
            if terse and meds:
                section(
                    b,
                    style,
                    "meds",
                    pick(rng, ("reviewed and reconciled, no changes", "per medication list, reconciled today")),
                )
            else:
                section(b, style, "meds", *(join([drug(m) for m in meds], "; ") if meds else ["none"]))
        else:
            text, z = patient.allergy
            section(b, style, "allergies", ev(text, icd(z)) if z else text)
    blocks = ["social", "family"]
    rng.shuffle(blocks)
    for key in blocks:
        if visit.kind == "acute" and chance(rng, 0.25):
            continue  # busy acute visits skip some history
        if key == "social":
            section(b, style, "social", *social_history(rng, patient, age))
        else:
            section(b, style, "family", *family_history(rng, patient))

    # --- ROS, vitals, exam, results, procedures
    taken = _coded(visit)
    positives = [x for p in visit.problems for x in p.positives]
    negatives = ros_negatives(rng, taken, rng.randint(2, 7), age < 12)
    if chance(rng, 0.93):
        section(b, style, "ros", *ros(rng, positives, negatives))
    bmi = bmi_piece(rng, patient.bmi, coded=visit.obesity) if patient.bmi is not None and age >= 20 else None
    bp = next((p.bp for p in visit.problems if p.bp), None)
    if bp is None and age >= 3:
        bp = (rng.randint(104, 128), rng.randint(62, 79))
    temp = next((p.temp_c for p in visit.problems if p.temp_c), round(rng.uniform(36.4, 37.2), 1))
    spo2 = next((p.spo2 for p in visit.problems if p.spo2), None)
    section(b, style, "vitals", *vitals(rng, age, bp, temp, bmi, spo2))
    findings = {k: v for p in visit.problems for k, v in p.exam.items()}
    section(b, style, "exam", exam(rng, findings, taken, brief=visit.kind == "acute"), block=True)
    labs = [line for p in visit.problems for line in p.labs]
    if labs:
        section(b, style, "labs", join(labs, "; "))
    procedures = [doc for p in visit.problems + visit.extras for doc in p.procedures]
    if procedures:
        section(b, style, "procedures", *bullets(style, procedures), block=True)

    # --- assessment and plan, MDM, follow-up
    entries = [cap_first(p.entry) for p in visit.problems + visit.extras if p.entry]
    section(b, style, "ap", *bullets(style, entries), block=True)
    if visit.kind in ("chronic", "acute"):
        section(b, style, "mdm", *_mdm_statement(rng, visit, code, name_problems=not terse))
    if visit.kind == "preventive":
        follow = [pick(rng, ("Next preventive visit in 1 year", "Return in 12 months for routine exam", "RTC 1 year"))]
    else:
        follow = [
            pick(
                rng,
                (
                    "RTC in 3 months",
                    "Follow up in 4-6 weeks",
                    "Return in 6 months",
                    "Follow up as needed",
                    "Recheck in 2 weeks",
                    "Return in 3 months",
                ),
            )
        ]
    follow += visit.hypotheticals
    section(b, style, "followup", join([cap_first(f) for f in follow], ". "), ".")
    return b


def _render_nurse(
    rng: random.Random, style: Style, b: NoteBuilder, patient: Patient, visit: Visit, code
) -> NoteBuilder:
    p = visit.problems[0]
    b.line(
        ev(
            pick(
                rng,
                (
                    "Nurse visit for blood pressure check",
                    "RN visit: BP check",
                    "Nurse-only visit, blood pressure recheck",
                ),
            ),
            code,
        ),
        ".",
    )
    meds = patient.meds.get("htn", [])
    if meds:
        section(b, style, "meds", join([drug(m) for m in meds], "; "))
    section(b, style, "vitals", *vitals(rng, 30, p.bp, round(rng.uniform(36.4, 37.1), 1), None))
    section(b, style, "ap", *bullets(style, [p.entry]), block=True)
    section(b, style, "followup", pick(rng, ("Recheck in 3 months.", "Next provider visit as scheduled.")))
    return b
