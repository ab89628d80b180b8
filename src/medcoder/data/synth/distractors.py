"""Distractors of core diagnoses: the same words a coded diagnosis uses, in the same sections, not coded.

A bag-of-words coder learns "hypothyroidism" -> E03.9. The Official Guidelines code a condition
only when it is current and affirmed, so the corpus must also say "hypothyroidism" where E03.9 is
NOT coded, with the surface phrase a positive note uses (catalog names via `name_of`), and in the
assessment and plan or discharge diagnoses where positives live:
- negated by a result ("TSH 2.14, no evidence of hypothyroidism"), often decided by a value whose
  words match a positive note's ("A1c 5.3%" here, "A1c 9.8%" with E11.65 elsewhere);
- historical and resolved with no history code ("pneumonia in March, resolved": Z87.01 is only for
  recurrent pneumonia, so nothing is coded);
- family history restated in the plan (the Z80-Z84 code is coded, the disease is a family mention);
- hypothetical ("if A1c reaches 6.5%, will treat as type 2 diabetes", "call 911 for signs of stroke").
Every rule states who may get it (the patient must not have the condition, and the note must not
code or otherwise involve the code), so a distractor never contradicts a gold label.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from medcoder.data.synth.builder import ev, fill, men
from medcoder.data.synth.catalog import CHRONIC, icd
from medcoder.data.synth.patients import Patient
from medcoder.data.synth.phrasing import DX_NEGATION_CUES, Style, chance, cue, name_of, pick

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _name(rng: random.Random, style: Style, key: str) -> str:
    cond = CHRONIC[key]
    return name_of(rng, style, cond.names, cond.misspellings)


def _negated(rng: random.Random, style: Style, key: str) -> list:
    return cue(rng, DX_NEGATION_CUES, men(_name(rng, style, key), CHRONIC[key].code, "negated"))


@dataclass(frozen=True)
class Rule:
    """One kind of distractor: the code it names, who may get it, and how it is written."""

    key: str
    code: str
    eligible: Callable[[Patient, int], bool]
    write: Callable[[random.Random, Style, Patient, int], list]
    needs_free: tuple[str, ...] = ()  # codes (or test names) the note must not already involve


def _none_of(*keys: str) -> Callable[[Patient], bool]:
    return lambda p: not any(p.has(k) for k in keys)


def _a1c_normal(rng, style, pt, age) -> list:
    value = round(rng.uniform(4.8, 5.6), 1)
    lead = pick(rng, ("Recent labs: A1c {v}%", "A1c {v}% on recent labs", "HbA1c {v}%")).format(v=f"{value:.1f}")
    return [lead, "; ", _negated(rng, style, "t2dm"), "."]


def _tsh_normal(rng, style, pt, age) -> list:
    return [f"TSH {rng.uniform(0.9, 3.4):.2f}; ", _negated(rng, style, "hypothyroid"), "."]


def _hgb_normal(rng, style, pt, age) -> list:
    return [f"Hgb {rng.uniform(12.8, 15.6):.1f}; ", _negated(rng, style, "anemia"), "."]


def _holter(rng, style, pt, age) -> list:
    return [
        pick(rng, ("Holter monitor last month: sinus rhythm throughout; ", "Event monitor reviewed, sinus rhythm; ")),
        _negated(rng, style, "afib"),
        ".",
    ]


def _echo(rng, style, pt, age) -> list:
    return [
        f"Echo {pick(rng, ('last year', 'in the spring', 'recently'))}: EF {rng.randint(55, 65)}%, "
        "normal diastolic function; ",
        _negated(rng, style, "chf"),
        ".",
    ]


def _stress(rng, style, pt, age) -> list:
    return [
        pick(rng, ("Stress test without ischemia; ", "Coronary calcium score 0; ", "Negative nuclear stress test; ")),
        _negated(rng, style, "cad"),
        ".",
    ]


def _spirometry(rng, style, pt, age) -> list:
    ratio = round(rng.uniform(0.74, 0.84), 2)
    form = pick(rng, ("FEV1/FVC {r}", "FEV1/FVC ratio {r}", "FEV1/FVC of {r}")).format(r=f"{ratio:.2f}")
    return [f"Spirometry from {rng.randint(2019, 2024)}: ", form, "; ", _negated(rng, style, "copd"), "."]


def _sleep_study(rng, style, pt, age) -> list:
    return [f"Home sleep study: AHI {rng.randint(1, 4)}; ", _negated(rng, style, "osa"), "."]


def _home_bp(rng, style, pt, age) -> list:
    return [f"Home BP log averages {rng.randint(112, 128)}/{rng.randint(68, 78)}; ", _negated(rng, style, "htn"), "."]


def _lipids(rng, style, pt, age) -> list:
    return [f"Lipid panel: LDL {rng.randint(70, 118)}, HDL {rng.randint(45, 70)}; ", _negated(rng, style, "hld"), "."]


def _mammogram(rng, style, pt, age) -> list:
    return [f"Screening mammogram {rng.randint(2023, 2025)}: BI-RADS 1; ", _negated(rng, style, "breast_ca"), "."]


def _colonoscopy(rng, style, pt, age) -> list:
    return [f"Colonoscopy in {rng.randint(2017, 2024)} normal; ", _negated(rng, style, "colon_ca"), "."]


def _phq2(rng, style, pt, age) -> list:
    return [f"PHQ-2 score {rng.randint(0, 1)}; ", _negated(rng, style, "depression"), "."]


def _pneumonia_resolved(rng, style, pt, age) -> list:
    name = name_of(rng, style, ("community-acquired pneumonia", "pneumonia", "CAP"))
    return fill(
        pick(
            rng,
            (
                "{x} in {m}, treated with antibiotics and resolved; follow-up chest x-ray clear.",
                "Had {x} in {m}, completed antibiotics, now resolved.",
            ),
        ),
        x=men(name, "J18.9", "historical"),
        m=pick(rng, MONTHS),
    )


def _uti_resolved(rng, style, pt, age) -> list:
    name = pick(rng, ("UTI", "urinary tract infection"))
    return fill(
        "{x} in {m}, treated and resolved; no recurrence.", x=men(name, "N39.0", "historical"), m=pick(rng, MONTHS)
    )


def _prediabetes_threshold(rng, style, pt, age) -> list:
    dm = men(_name(rng, style, "t2dm"), "E11.9", "hypothetical")
    return fill(
        pick(
            rng,
            (
                "If A1c reaches 6.5% or higher, will treat as {x} and start metformin.",
                "Discussed that an A1c of 6.5% or above would mean {x}.",
            ),
        ),
        x=dm,
    )


def _stroke_signs(rng, style, pt, age) -> list:
    stroke = men(pick(rng, ("stroke", "CVA", "ischemic stroke")), "I63.9", "hypothetical")
    return fill(
        pick(rng, ("Reviewed warning signs of {x}; call 911 if they occur.", "Call 911 for any signs of {x}.")),
        x=stroke,
    )


NO_DM = _none_of("t2dm", "prediabetes")
RULES: tuple[Rule, ...] = (
    Rule(
        "t2dm", "E11.9", lambda p, a: a >= 25 and NO_DM(p), _a1c_normal, ("E11.9", "E11.65", "E11.22", "R73.03", "A1c")
    ),
    Rule("hypothyroid", "E03.9", lambda p, a: a >= 18 and not p.has("hypothyroid"), _tsh_normal, ("E03.9", "TSH")),
    Rule("anemia", "D64.9", lambda p, a: a >= 18 and not p.has("anemia"), _hgb_normal, ("D64.9", "CBC")),
    Rule("afib", "I48.91", lambda p, a: a >= 40 and not p.has("afib"), _holter, ("I48.91",)),
    Rule("chf", "I50.9", lambda p, a: a >= 45 and _none_of("chf", "hfref")(p), _echo, ("I50.9", "I50.22", "I50.23")),
    Rule(
        "cad",
        "I25.10",
        lambda p, a: a >= 40 and not p.has("cad") and not any(k == "old_mi" for k, _ in p.history),
        _stress,
        ("I25.10", "I21.4", "I24.9"),
    ),
    Rule(
        "copd",
        "J44.9",
        lambda p, a: a >= 40 and _none_of("copd", "asthma")(p),
        _spirometry,
        ("J44.9", "J44.1", "J44.0", "94010"),
    ),
    Rule("osa", "G47.33", lambda p, a: a >= 30 and not p.has("osa"), _sleep_study, ("G47.33",)),
    Rule("htn", "I10", lambda p, a: a >= 25 and not p.has("htn"), _home_bp, ("I10", "I11.0", "I12.9")),
    Rule("hld", "E78.5", lambda p, a: a >= 25 and not p.has("hld"), _lipids, ("E78.5", "lipid panel")),
    Rule(
        "breast_ca",
        "C50.919",
        lambda p, a: a >= 40 and p.sex == "F" and not p.has("breast_ca"),
        _mammogram,
        ("C50.919",),
    ),
    Rule("colon_ca", "C18.9", lambda p, a: a >= 45 and not p.has("colon_ca"), _colonoscopy, ("C18.9",)),
    Rule(
        "depression",
        "F32.A",
        lambda p, a: a >= 18 and _none_of("depression", "mdd", "gad")(p),
        _phq2,
        ("F32.A", "F32.9", "Z13.31"),
    ),
    Rule("pneumonia", "J18.9", lambda p, a: a >= 18, _pneumonia_resolved, ("J18.9", "J12.82", "J44.0")),
    Rule("uti", "N39.0", lambda p, a: a >= 18 and p.sex == "F", _uti_resolved, ("N39.0",)),
    Rule("dm_threshold", "E11.9", lambda p, a: p.has("prediabetes"), _prediabetes_threshold, ("E11.9",)),
    Rule("stroke_signs", "I63.9", lambda p, a: p.has("afib") or p.has("htn"), _stroke_signs, ("I63.9",)),
)


def family_restated(rng: random.Random, patient: Patient) -> list | None:
    """The patient's own family history, restated in the plan: its Z code coded, the disease a family mention."""
    if not patient.family:
        return None
    item, relation, name = pick(rng, patient.family)
    body = fill(
        pick(rng, ("Family history of {dx} ({rel})", "{dx} in {rel}", "{rel} with {dx}")),
        dx=men(name, item.mention_code, "family"),
        rel=relation,
    )
    plan = pick(rng, ("screening per guidelines.", "risk reviewed with the patient.", "noted for screening intervals."))
    return [ev(body, icd(item.code)), ": ", plan]


def core_distractors(
    rng: random.Random, style: Style, patient: Patient, age: int, involved: set[str], rate: float, family_rate: float
) -> list[list]:
    """Plan entries that name core diagnoses without coding them.

    `involved`: every code (and test name) the note already codes, mentions or reviews; a rule whose
    code or test is involved is skipped, so a distractor never sits beside its own positive.
    `rate`: chance of at least one value/history/hypothetical distractor (then a second one at 30%).
    """
    entries: list[list] = []
    if chance(rng, rate):
        options = [
            r
            for r in RULES
            if r.eligible(patient, age) and r.code not in involved and not any(x in involved for x in r.needs_free)
        ]
        n = 2 if len(options) > 1 and chance(rng, 0.3) else 1
        for rule in rng.sample(options, min(n, len(options))):
            entries.append(rule.write(rng, style, patient, age))
    if chance(rng, family_rate):
        restated = family_restated(rng, patient)
        if restated is not None:
            entries.append(restated)
    return entries
