"""How a note is written, as opposed to what it says: author style, names, cue phrases, headers.

Each note gets a `Style` (one simulated author): how often they abbreviate, whether they make
typos, how they write section headers and lists. Keeping all surface variation here means the
clinical planners (`outpatient.py`, `inpatient.py`) decide *what* is documented and never worry
about *how*, and that a model cannot key on one fixed template.

Cue phrases are grouped by the guideline status they express (negated, hypothetical, uncertain,
...). The cue sits outside the annotated span: a mention's span is the condition phrase alone, so
the same words ("pneumonia") are a code's evidence in one note and a distractor in another.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from medcoder.data.synth.builder import Piece, fill
from medcoder.data.synth.sites import SiteDialect

T = TypeVar("T")


def pick(rng: random.Random, options: Sequence[T]) -> T:
    return options[rng.randrange(len(options))]


def weighted(rng: random.Random, options: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(options, weights=weights, k=1)[0]


def chance(rng: random.Random, p: float) -> bool:
    return rng.random() < p


# ---------------------------------------------------------------- author style
SECTION_HEADERS: dict[str, tuple[str, ...]] = {
    "cc": ("Chief Complaint", "CC", "Reason for Visit", "Chief complaint"),
    "hpi": ("History of Present Illness", "HPI", "Subjective", "Interval history"),
    "pmh": ("Past Medical History", "PMH", "Medical History", "Problem List", "PMHx"),
    "meds": ("Medications", "Meds", "Current Medications", "Outpatient Medications"),
    "allergies": ("Allergies", "Drug Allergies", "ALL"),
    "social": ("Social History", "SH", "Social Hx", "Social"),
    "family": ("Family History", "FH", "Family Hx", "FHx"),
    "ros": ("Review of Systems", "ROS", "Systems review"),
    "vitals": ("Vitals", "Vital Signs", "VS"),
    "exam": ("Physical Exam", "Exam", "PE", "Physical Examination", "Objective"),
    "labs": ("Labs", "Results", "Recent Labs", "Data"),
    "procedures": ("Procedures", "In-office Procedures", "Procedure Note", "Procedures Performed"),
    "ap": ("Assessment and Plan", "A/P", "Assessment/Plan", "Assessment & Plan", "Impression and Plan"),
    "mdm": ("Medical Decision Making", "MDM", "Decision Making"),
    "followup": ("Follow-up", "Disposition", "Return to Clinic"),
    # discharge summary
    "adm_dx": ("Admission Diagnosis", "Admitting Diagnosis", "Reason for Admission"),
    "dc_dx": ("Discharge Diagnoses", "Final Diagnoses", "Diagnoses at Discharge"),
    "course": ("Hospital Course", "Brief Hospital Course", "Hospital Course by Problem"),
    "dc_meds": ("Discharge Medications", "Medications at Discharge", "Discharge Med List"),
    "consults": ("Consults", "Consultations"),
    "ip_procedures": ("Procedures", "Procedures Performed", "Procedures This Admission"),
    "dc_followup": ("Follow-up", "Follow-up Appointments", "Disposition and Follow-up"),
    "dc_condition": ("Condition at Discharge", "Discharge Condition"),
}


@dataclass(frozen=True)
class Style:
    """One simulated author: abbreviation habit, typos, header and list formatting."""

    abbreviate: float  # probability of preferring an abbreviation when one exists
    typo: bool  # this author leaves a catalogued misspelling now and then
    upper_headers: bool
    inline_headers: bool  # "HPI: text" on one line, else header on its own line
    numbered: bool  # numbered assessment list, else dashes
    header_choice: tuple[tuple[str, int], ...]  # (section, index into SECTION_HEADERS)
    site: SiteDialect | None = None  # the practice's words for conditions (`sites`), None for the corpus's authors
    site_rng: random.Random | None = None  # the site's own random stream, so its choices move no other draw

    def header(self, section: str) -> str:
        options = SECTION_HEADERS[section]
        index = dict(self.header_choice).get(section, 0) % len(options)
        name = options[index]
        return name.upper() if self.upper_headers else name

    def bullet(self, i: int) -> str:
        return f"{i}. " if self.numbered else "- "


TYPO_NOTE_RATE = 0.12  # share of authors who leave typos
TYPO_NAME_RATE = 0.45  # in such notes, share of misspellable names that come out misspelled


def make_style(rng: random.Random, site: SiteDialect | None = None, site_stream: random.Random | None = None) -> Style:
    """One author's style; with `site`, an author of that practice, whose word choices draw on `site_stream`."""
    choice = tuple((section, rng.randrange(len(opts))) for section, opts in SECTION_HEADERS.items())
    style = Style(
        abbreviate=rng.choice((0.15, 0.4, 0.7)),
        typo=chance(rng, TYPO_NOTE_RATE),
        upper_headers=chance(rng, 0.5),
        inline_headers=chance(rng, 0.55),
        numbered=chance(rng, 0.6),
        header_choice=choice,
    )
    if site is None:
        return style
    if site_stream is None:
        raise ValueError(f"site dialect {site.name!r} needs its own random stream (sites.site_rng)")
    return replace(style, site=site, site_rng=site_stream)


def is_abbreviation(name: str) -> bool:
    letters = [c for c in name if c.isalpha()]
    return bool(letters) and len(name) <= 6 and sum(c.isupper() for c in letters) >= max(2, len(letters) - 1)


def name_of(rng: random.Random, style: Style, names: Sequence[str], misspellings: Sequence[str] = ()) -> str:
    """Choose how to write a condition: abbreviation or full name, rarely a real-world misspelling; an author
    of a site with its own words for the condition uses them at the site's rate. The corpus's choice is drawn
    first either way, so a site changes words and never which encounters a seed makes."""
    name = _corpus_name(rng, style, names, misspellings)
    words = style.site.words_for(names[0]) if style.site is not None and names else ()
    if words and style.site_rng is not None and style.site_rng.random() < style.site.rate:
        return pick(style.site_rng, words)
    return name


def _corpus_name(rng: random.Random, style: Style, names: Sequence[str], misspellings: Sequence[str]) -> str:
    if misspellings and style.typo and chance(rng, TYPO_NAME_RATE):
        return pick(rng, misspellings)
    abbrevs = [n for n in names if is_abbreviation(n)]
    fulls = [n for n in names if not is_abbreviation(n)] or list(names)
    if abbrevs and chance(rng, style.abbreviate):
        return pick(rng, abbrevs)
    # The first full name is the most common way to write it.
    return fulls[0] if chance(rng, 0.5) else pick(rng, fulls)


# ---------------------------------------------------------------- cue phrases
# {x} is the annotated condition phrase.
NEGATION_CUES: tuple[str, ...] = ("denies {x}", "no {x}", "negative for {x}", "without {x}", "no complaints of {x}")
DX_NEGATION_CUES: tuple[str, ...] = (
    "no evidence of {x}",
    "{x} ruled out",
    "negative for {x}",
    "{x} was excluded",
    "no signs of {x}",
)
UNCERTAIN_CUES: tuple[str, ...] = (
    "probable {x}",
    "suspected {x}",
    "likely {x}",
    "possible {x}",
    "rule out {x}",
    "concern for {x}",
    "questionable {x}",
)
# Inpatient: the discharge-diagnosis qualifiers of guideline Section II.H.
INPATIENT_UNCERTAIN_CUES: tuple[str, ...] = ("probable {x}", "suspected {x}", "likely {x}", "possible {x}")
HYPOTHETICAL_SYMPTOM_CUES: tuple[str, ...] = (
    "return if {x} develops",
    "call or return for any {x}",
    "seek care if {x} occurs",
    "return precautions reviewed, including {x}",
    "go to the ED for {x}",
)
HYPOTHETICAL_PROCEDURE_CUES: tuple[str, ...] = (
    "will consider {x} at next visit",
    "may need {x} if symptoms persist",
    "consider {x} in the future",
    "{x} to be scheduled if no improvement",
    "discussed possible {x}",
)


def cue(rng: random.Random, cues: Sequence[str], x: Piece) -> list:
    return fill(pick(rng, cues), x=x)


def sex_word(rng: random.Random, sex: str, age: int) -> str:
    if age < 13:
        return "boy" if sex == "M" else "girl"
    if age < 18:
        return pick(rng, ("male", "adolescent male")) if sex == "M" else pick(rng, ("female", "adolescent female"))
    return pick(rng, ("male", "man", "M")) if sex == "M" else pick(rng, ("female", "woman", "F"))


def age_phrase(rng: random.Random, age: int, months: int | None = None) -> str:
    if age == 0:
        return f"{months or 6}-month-old"
    return pick(rng, (f"{age}-year-old", f"{age} y/o", f"{age} yo", f"{age}-year-old"))
