"""Site dialects: how the clinicians of one practice name conditions, where the embedded corpus's authors
never do.

A coder trained at one site meets another site's words when it is deployed there: older or regional terms
("NIDDM", "auricular fibrillation", "COAD", "GORD"), each a real synonym that the ICD-10-CM Alphabetic Index
sends to the same code as the corpus's wording. The denial-feedback loop (`medcoder denial-loop simulate
--site`) writes its practice's notes in such a dialect, so that the loop measures what it exists for:
learning a new site's documentation from its denials and coders' corrections.

A dialect changes words only. Its choices are drawn from a random stream of their own (`site_rng`), so
the notes of a seed are the same encounters with the same gold codes whatever the site, and the
embedded corpus (no site) is byte for byte what it was. Keyed by a condition's first name in the
catalog (`Condition.names[0]`, or the first of a name tuple the planners pass to `name_of`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class SiteDialect:
    """One practice's words for conditions, and how often its authors use them instead of the corpus's."""

    name: str
    rate: float  # share of a condition's mentions written in the site's words, when it has some
    terms: tuple[tuple[str, tuple[str, ...]], ...]  # (catalog first name, the site's words for it)

    def words_for(self, first_name: str) -> tuple[str, ...]:
        return dict(self.terms).get(first_name, ())


# Each term with the Alphabetic Index entry that leads to the corpus's code for it.
NEW_PRACTICE = SiteDialect(
    name="new_practice",
    rate=0.6,
    terms=(
        # Diabetes, adult-onset / noninsulin dependent -> see Diabetes, type 2 (E11.9)
        ("type 2 diabetes mellitus", ("NIDDM", "adult-onset diabetes", "non-insulin-dependent diabetes")),
        # Hypertension, benign (essential) I10; Disease, hypertensive -> see Hypertension
        ("hypertension", ("benign essential hypertension", "hypertensive disease", "HBP")),
        # Hyperlipemia -> see Hyperlipidemia (E78.5)
        ("hyperlipidemia", ("hyperlipemia",)),
        # Failure, heart, congestive I50.9 (Failure, cardiac -> see Failure, heart)
        ("congestive heart failure", ("congestive cardiac failure", "CCF")),
        # Fibrillation, auricular I48.91
        ("atrial fibrillation", ("auricular fibrillation", "a fib")),
        # Disease, heart, arteriosclerotic -> see Disease, heart, ischemic, atherosclerotic (I25.10)
        ("coronary artery disease", ("arteriosclerotic heart disease", "ASHD")),
        # J44 inclusion term: chronic obstructive airway disease (J44.9)
        ("COPD", ("chronic obstructive airway disease", "COAD")),
        # Asthma, asthmatic (bronchial) J45.909
        ("asthma", ("bronchial asthma",)),
        # Reflux, gastroesophageal K21.9 (British spelling)
        ("GERD", ("GORD", "gastro-oesophageal reflux disease")),
        # Enlargement, prostate / Hypertrophy, prostate -> N40.0
        ("BPH", ("prostatic hypertrophy", "benign prostatic hypertrophy")),
        # Apnea, sleep, obstructive G47.33 (British spelling)
        ("obstructive sleep apnea", ("obstructive sleep apnoea", "OSAS")),
        # Infection, urinary (tract) N39.0
        ("urinary tract infection", ("urinary infection", "infection of the urinary tract")),
        # Lumbalgia M54.50
        ("low back pain", ("lumbalgia",)),
    ),
)

SITES: dict[str, SiteDialect] = {NEW_PRACTICE.name: NEW_PRACTICE}


def site_dialect(name: str) -> SiteDialect:
    """The dialect called `name`; an unknown name is an error listing the known ones."""
    if name not in SITES:
        raise ValueError(f"unknown site dialect {name!r}; known: {', '.join(sorted(SITES))}")
    return SITES[name]


def site_rng(seed: int, site: SiteDialect) -> random.Random:
    """The random stream of a site's word choices, apart from the generator's (module docstring)."""
    return random.Random(f"{site.name}:{seed}")
