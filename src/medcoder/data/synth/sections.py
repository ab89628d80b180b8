"""Pieces shared by office notes and discharge summaries: headers, history sections, ROS, vitals, exam.

Each function returns pieces (see builder.py) and annotates exactly what the corpus-wide rule
asks for: every affirmative mention of a coded condition is evidence for its codes, every
negated / family / historical mention of a catalogued condition is a mention with its status.
Callers pass in the codes already decided (`cond_codes` from coding.condition_codes), so a
section never decides what is coded.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from medcoder.data.synth.builder import Ann, NoteBuilder, Piece, ev, fill, join, men
from medcoder.data.synth.catalog import CHRONIC, HISTORY, SYMPTOMS, Med, icd
from medcoder.data.synth.coding import Code, med_codes
from medcoder.data.synth.patients import Patient
from medcoder.data.synth.phrasing import NEGATION_CUES, Style, chance, name_of, pick

# ---------------------------------------------------------------- layout


def section(b: NoteBuilder, style: Style, key: str, *pieces: Piece, block: bool = False) -> None:
    """One section: "Header: text" inline, or the header on its own line (always for blocks)."""
    header = style.header(key)
    if style.inline_headers and not block:
        b.add(f"{header}: ", *pieces, "\n")
    else:
        b.add(f"{header}:\n", *pieces, "\n")


def bullets(style: Style, entries: Sequence[Piece]) -> list:
    out: list = []
    for i, entry in enumerate(entries, start=1):
        out += [style.bullet(i), entry, "\n"]
    if out:
        out.pop()  # the section adds the final newline
    return out


# ---------------------------------------------------------------- conditions and drugs


def condition(rng: random.Random, style: Style, key: str, codes: tuple[Code, ...]) -> Piece:
    """A chronic condition's name, as evidence for `codes`."""
    cond = CHRONIC[key]
    name = name_of(rng, style, cond.names, cond.misspellings)
    return ev(name, *codes) if codes else name


_DOSE = re.compile(r"\s(\d|as needed|inhaled|inhaler)")


def drug_short(med: Med) -> str:
    """'apixaban 5 mg twice daily' -> 'apixaban' (the name as written in a plan line)."""
    m = _DOSE.search(med.name)
    return med.name[: m.start()] if m else med.name


def drug(med: Med, full: bool = True) -> Piece:
    """A drug mention; drugs with a long-term-use Z79 code are evidence for it wherever named."""
    text = med.name if full else drug_short(med)
    codes = med_codes(med.z_code)
    return ev(text, *codes) if codes else text


def history_item(rng: random.Random, key: str, year: int) -> Piece:
    """'history of colon cancer, treated 2015...' -> evidence for Z85.038, inner 'colon cancer' historical."""
    item = HISTORY[key]
    dx = men(pick(rng, item.names), item.mention_code, "historical")
    return ev(fill(pick(rng, item.templates), dx=dx, year=str(year)), icd(item.code))


def family_item(rng: random.Random, relation: str, name: str, z_code: str, mention_code: str) -> Piece:
    dx = men(name, mention_code, "family")
    template = pick(rng, ("{rel} with {dx}", "{rel}: {dx}", "{dx} in {rel}", "{rel} had {dx}"))
    return ev(fill(template, rel=relation, dx=dx), icd(z_code))


def smoking(rng: random.Random, patient: Patient) -> Piece:
    """Tobacco status: F17.210 (cigarette dependence), Z87.891 (former), Z72.0 (use, no dependence)."""
    if patient.smoking == "current":
        phrase = pick(
            rng,
            (
                "current cigarette smoker",
                "smokes cigarettes daily",
                "cigarette smoker",
                "nicotine dependence, cigarettes",
                "smokes about 1 pack of cigarettes per day",
            ),
        )
        return [ev(phrase, icd("F17.210")), f", {patient.pack_years} pack-years"]
    if patient.smoking == "former":
        if chance(rng, 0.3):
            inner = men(pick(rng, ("nicotine dependence", "tobacco dependence")), "F17.210", "historical")
            return ev(fill("history of {x}, quit {y}", x=inner, y=str(patient.quit_year)), icd("Z87.891"))
        return [
            ev(pick(rng, ("former smoker", "ex-smoker", "former cigarette smoker")), icd("Z87.891")),
            f", quit in {patient.quit_year}",
        ]
    if patient.smoking == "tobacco_use":
        return [
            ev("tobacco use", icd("Z72.0")),
            pick(rng, (": occasional, not daily; no dependence", " (occasional, non-daily, not dependent)")),
        ]
    return pick(rng, ("never smoker", "lifetime non-smoker", "has never smoked"))


def social_history(rng: random.Random, patient: Patient, age: int) -> list:
    if age < 18:
        home = pick(rng, ("Lives with parents", "Lives with mother and siblings", "Lives with both parents"))
        school = "attends daycare" if age < 5 else pick(rng, ("in school, doing well", "attends public school"))
        return [home, "; ", school, "."]
    alcohol = pick(
        rng,
        (
            "occasional alcohol",
            "drinks 1-2 glasses of wine per week",
            "no alcohol use",
            "social alcohol use",
            "rare alcohol",
        ),
    )
    work = (
        pick(
            rng,
            (
                "works as a teacher",
                "retired",
                "works in construction",
                "office job",
                "works as a nurse",
                "unemployed",
                "works in retail",
                "truck driver",
            ),
        )
        if age < 70
        else "retired"
    )
    parts: list = [cap_first(smoking(rng, patient)), "; ", alcohol, "; ", work, "."]
    if chance(rng, 0.4):
        parts.append(" No illicit drug use.")
    return parts


def cap_first(piece: Piece) -> Piece:
    """Capitalise the first letter of a piece, keeping annotations."""
    if isinstance(piece, str):
        return piece[:1].upper() + piece[1:]
    if isinstance(piece, list) and piece:
        return [cap_first(piece[0])] + piece[1:]
    if isinstance(piece, Ann):
        return Ann(cap_first(piece.body), piece.codes, piece.mention)
    return piece


def family_history(rng: random.Random, patient: Patient) -> list:
    if not patient.family:
        return [
            pick(
                rng,
                (
                    "Noncontributory.",
                    "Non-contributory.",
                    "Reviewed, noncontributory.",
                    "Unknown (adopted).",
                    "No pertinent family history.",
                ),
            )
        ]
    items = [family_item(rng, rel, name, item.code, item.mention_code) for item, rel, name in patient.family]
    return [cap_first(join(items, "; ")), "."]


# ---------------------------------------------------------------- review of systems
_ROS_SYSTEM = {
    "fever": "Constitutional",
    "fatigue": "Constitutional",
    "weight_loss": "Constitutional",
    "chest_pain": "CV",
    "palpitations": "CV",
    "edema": "CV",
    "sob": "Resp",
    "cough": "Resp",
    "wheezing": "Resp",
    "abd_pain": "GI",
    "nv": "GI",
    "diarrhea": "GI",
    "dysuria": "GU",
    "frequency": "GU",
    "headache": "Neuro",
    "dizziness": "Neuro",
    "rash": "Skin",
    "sore_throat": "HEENT",
    "ear_pain": "HEENT",
    "congestion": "HEENT",
}


def symptom(rng: random.Random, key: str, codes: tuple[Code, ...] = ()) -> Piece:
    name = pick(rng, SYMPTOMS[key].names)
    return ev(name, *codes) if codes else name


def neg_symptom(rng: random.Random, key: str) -> Piece:
    return men(pick(rng, SYMPTOMS[key].names), SYMPTOMS[key].code, "negated")


def ros(rng: random.Random, positives: list[Piece], negatives: list[str]) -> list:
    """Review of systems: positives (already annotated by the caller) then negated mentions."""
    out: list = []
    if positives:
        out += ["Positive for ", join(positives, ", ", " and "), ". "]
    if not negatives:
        out.append("All other systems reviewed and negative." if positives else "Negative except as in HPI.")
        return out
    form = rng.randrange(3)
    if form == 0:
        out += [
            pick(rng, ("Negative for ", "Denies ")),
            join([neg_symptom(rng, k) for k in negatives], ", ", " or "),
            ".",
        ]
    elif form == 1:
        groups: dict[str, list[str]] = {}
        for k in negatives:
            groups.setdefault(_ROS_SYSTEM.get(k, "Other"), []).append(k)
        lines = []
        for system, keys in groups.items():
            negs = [neg_symptom(rng, k) for k in keys]
            lead = pick(rng, ("denies ", "no ", "negative for "))
            lines.append([f"{system}: {lead}", join(negs, ", ", " or ")])
        out += [join(lines, ". "), "."]
    else:
        negs = [fill(pick(rng, NEGATION_CUES), x=neg_symptom(rng, k)) for k in negatives]
        out += [cap_first(join(negs, ", ")), "."]
    if chance(rng, 0.4):
        out.append(" All other systems negative.")
    return out


PEDIATRIC_ROS = ("fever", "cough", "rash", "diarrhea", "nv", "congestion", "ear_pain", "sore_throat", "wheezing")


def ros_negatives(rng: random.Random, avoid_codes: Sequence[str], k: int, young_child: bool) -> list[str]:
    """k symptoms to deny; none may name a code the note codes or otherwise involves."""
    pool = [s.key for s in SYMPTOMS.values() if s.ros and s.code not in avoid_codes]
    pool = [p for p in pool if p in PEDIATRIC_ROS] if young_child else [p for p in pool if p != "ear_pain"]
    k = min(k, len(pool))
    return rng.sample(pool, k)


# ---------------------------------------------------------------- vitals and exam


def vitals(
    rng: random.Random, age: int, bp: tuple[int, int] | None, temp_c: float, bmi: Piece | None, spo2: int | None = None
) -> list:
    parts: list = []
    if bp:
        parts.append(f"BP {bp[0]}/{bp[1]}")
    hr = rng.randint(100, 150) if age < 2 else rng.randint(80, 115) if age < 12 else rng.randint(60, 96)
    parts.append(f"HR {hr}")
    parts.append(f"RR {rng.randint(24, 36) if age < 2 else rng.randint(14, 20)}")
    parts.append(pick(rng, (f"T {temp_c:.1f} C", f"Temp {temp_c * 9 / 5 + 32:.1f} F")))
    parts.append(f"SpO2 {spo2 or rng.randint(95, 99)}%{pick(rng, ('', ' RA', ' on room air'))}")
    if bmi is not None:
        parts.append(bmi)
    return [join(parts, ", ")]


NORMAL_EXAM: dict[str, tuple[str, ...]] = {
    "General": ("alert, in no acute distress", "well-appearing, NAD", "pleasant, no distress"),
    "HEENT": (
        "normocephalic, oropharynx clear",
        "PERRL, TMs clear, oropharynx without erythema",
        "atraumatic, mucous membranes moist",
    ),
    "Neck": ("supple", "supple, no JVD"),
    "CV": ("regular rate and rhythm", "RRR, S1 S2 normal", "regular rhythm"),
    "Lungs": ("clear to auscultation bilaterally", "CTAB, good air movement", "clear bilaterally"),
    "Abdomen": ("soft, nontender, nondistended", "soft, NT/ND, normal bowel sounds"),
    "Extremities": ("warm and well perfused", "full range of motion"),
    "Skin": ("warm and dry", "intact"),
    "Neuro": ("alert and oriented, nonfocal", "grossly intact, normal gait"),
}
# Normal findings that negate a catalogued sign (recorded as negated mentions).
EXAM_NEGATIONS: dict[str, str] = {
    "CV": "murmur",
    "Lungs": "wheezing",
    "Extremities": "edema",
    "Skin": "rash",
    "Neck": "lymphadenopathy",
}


def exam(rng: random.Random, findings: dict[str, Piece], avoid_codes: Sequence[str], brief: bool) -> list:
    """Exam lines by system; `findings` replace the normal text of their system."""
    systems = list(NORMAL_EXAM)
    if brief:
        keep = {"General", "CV", "Lungs"} | set(findings)
        systems = [s for s in systems if s in keep]
    lines: list = []
    for system in systems:
        if system in findings:
            lines.append([f"{system}: ", findings[system]])
            continue
        text: list = [pick(rng, NORMAL_EXAM[system])]
        neg = EXAM_NEGATIONS.get(system)
        if neg and SYMPTOMS[neg].code not in avoid_codes and chance(rng, 0.6):
            name = {
                "murmur": "murmurs",
                "wheezing": "wheezes",
                "edema": "edema",
                "rash": "rash",
                "lymphadenopathy": "lymphadenopathy",
            }[neg]
            text += [", no ", men(name, SYMPTOMS[neg].code, "negated")]
        lines.append([f"{system}: ", *text])
    return join(lines, ". " if chance(rng, 0.5) else "\n")
