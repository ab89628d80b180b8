"""Brief office notes: the assessment lines alone, as busy clinicians write them.

Held-out notes are often a few lines ("Assessment: essential hypertension, stable. Continue
lisinopril."), while a full office note carries a title, an identification line, HPI, ROS, exam
and MDM around its assessment. A model that only saw full notes learns that layout and, on a
three-line note, fires codes from its boilerplate priors (the issue's I50.23 on "essential
hypertension"). A brief note is the same planned visit (outpatient.plan_visit) written with only
what a terse author keeps:
- an optional opening (identification without visit type, or a one-phrase reason for the visit);
- the other documented conditions on one line, so a combination code (I12.9 on "HTN" and "CKD 3a")
  keeps every mention its evidence needs;
- the assessment entries, under one of several headers, as a list or on one line;
- the medication list sometimes, procedures done (their CPT evidence), return precautions sometimes.

Labels stay right by construction: each entry carries its own evidence (confirmed diagnoses with
their integral symptoms as plain text, uncertain ones with their coded symptoms), and a code is
gold only where its evidence is written. A brief note documents neither the visit type nor the
MDM, so it has no E/M code: a coder cannot level a visit from an assessment alone.
"""

from __future__ import annotations

import random

from medcoder.data.synth.builder import NoteBuilder, Piece, join
from medcoder.data.synth.coding import condition_codes
from medcoder.data.synth.patients import Encounter, Patient
from medcoder.data.synth.phrasing import Style, age_phrase, chance, pick, sex_word
from medcoder.data.synth.sections import cap_first, condition, drug, history_item
from medcoder.data.synth.visit import Visit

BRIEF_NOTE_RATE = 0.2  # share of chronic and acute office visits written as brief notes
ASSESSMENT_HEADERS = ("Assessment", "A", "A/P", "Impression", "Assessment and plan", "Dx", "Problems addressed today")
OTHER_PROBLEM_HEADERS = ("PMH", "Problem list", "Other problems", "Chronic problems", "Also followed for")


def render_brief(rng: random.Random, style: Style, patient: Patient, enc: Encounter, visit: Visit) -> NoteBuilder:
    """The visit written as a brief note (see the module docstring); no E/M code."""
    b = NoteBuilder()
    _opening(rng, b, patient, enc, visit)
    pmh_codes = condition_codes(patient.conditions, hyperglycemia=visit.hyperglycemia, copd_code=visit.copd_code)
    addressed = {p.key for p in visit.problems}
    others: list[Piece] = [condition(rng, style, k, pmh_codes[k]) for k in visit.documented if k not in addressed]
    if chance(rng, 0.4):
        others += [history_item(rng, key, year) for key, year in patient.history]
    if others:
        b.line(f"{pick(rng, OTHER_PROBLEM_HEADERS)}: ", *join(others, ", "))
    if chance(rng, 0.35):
        meds = [m for k in visit.documented for m in patient.meds.get(k, [])]
        if meds:
            b.line("Meds: ", *join([drug(m) for m in meds], "; "))
    entries = [cap_first(p.entry) for p in visit.problems + visit.extras if p.entry]
    header = pick(rng, ASSESSMENT_HEADERS)
    if chance(rng, 0.5):  # one line: "A: HTN: stable. ... DM2 - A1c 6.8%, at goal."
        b.line(f"{header}: ", *join(entries, " "))
    else:
        b.line(f"{header}:")
        for i, entry in enumerate(entries, start=1):
            b.line(style.bullet(i), entry)
    procedures = [doc for p in visit.problems + visit.extras for doc in p.procedures]
    if procedures:
        b.line(pick(rng, ("Done today: ", "Procedures: ", "In office: ")), *join(procedures, " "))
    if visit.hypotheticals and chance(rng, 0.5):
        b.line(*join([cap_first(h) for h in visit.hypotheticals], ". "), ".")
    return b


def _opening(rng: random.Random, b: NoteBuilder, patient: Patient, enc: Encounter, visit: Visit) -> None:
    """Nothing, the patient's name and age (never the visit type: that would document an E/M), or a
    reason for the visit that names no condition (a named one would be evidence written twice)."""
    roll = rng.random()
    if roll < 0.35:
        return
    if roll < 0.7:
        age = age_phrase(rng, enc.age, patient.infant_months)
        b.line(f"Patient: {patient.name}, {age} {sex_word(rng, patient.sex, enc.age)}")
        return
    reason = "Follow-up visit." if visit.kind == "chronic" else "Same-day visit."
    b.line(pick(rng, (reason, "Seen today.", "Office visit, brief note.")))
