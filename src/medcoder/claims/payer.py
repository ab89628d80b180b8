"""A simulated payer with known rules, for developing and testing the denial loop: it adjudicates claims
into the same remittance records (and, through `remittance_writer`, the same 835 files) a real payer's
would be read into, while its rules stay hidden from the learner.

Each payer (configs/payer/simulated.yaml) has code-pair edits with modifier indicators (CARC 236), unit
limits (151), covered-diagnosis lists for procedures (11), age (6) and sex (7) edits (with `age_sex_edits`,
those of `codes.age_sex`, the same rules review routing and the claim check apply, plus the payer's own
`age_ranges` and `sex_codes`), a medical review
that denies a share of the lines whose service the record does not support (50) or whose every diagnosis
it does not support (11), prior authorisation
(197) and non-coding noise: eligibility (27), duplicates (18), timely filing (29). Paid lines carry the
patient's coinsurance (PR 2), which is never a denial. Randomness is drawn per claim from the seed and
the claim id, so a claim's fate does not depend on which others are adjudicated with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from medcoder.claims.carc import carc_category
from medcoder.claims.remittance import Adjustment, ClaimRemittance, RemittanceLine
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.codes.age_sex import SEX_CONFLICT, line_edits
from medcoder.codes.em import VISIT_EM_CODES

# modifiers that bypass a code-pair edit of indicator 1 (a distinct procedural service, a separate encounter)
BYPASS_MODIFIERS = ("25", "59", "XE", "XS", "XP", "XU", "91", "LT", "RT")
CENT = Decimal("0.01")


class PayerConfigError(ValueError):
    """A payer definition that is not the expected shape: names the file and the field."""


@dataclass(frozen=True)
class PayerRules:
    """One payer's hidden rules (see the module docstring and configs/payer/simulated.yaml)."""

    name: str
    code_pairs: tuple[tuple[str, str, int], ...]
    covered_diagnoses: dict[str, tuple[str, ...]]
    age_ranges: dict[str, tuple[int, int]]
    sex_codes: dict[str, str]
    age_sex_edits: bool  # deny what codes.age_sex rules out (CARC 6 age, 7 sex), before its own ranges
    unit_limits: dict[str, int]
    prior_authorization: tuple[str, ...]
    review_rate: float
    eligibility_rate: float
    duplicate_rate: float
    timely_filing_rate: float
    coinsurance: float


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise PayerConfigError(f"{where}: must be a number between 0 and 1")
    return float(value)


def _rules(name: str, spec: Any, where: str) -> PayerRules:
    if not isinstance(spec, dict):
        raise PayerConfigError(f"{where}: must be a mapping of rules")
    known = set(PayerRules.__dataclass_fields__) - {"name"}
    if unknown := sorted(set(spec) - known):
        raise PayerConfigError(f"{where}: unknown field(s) {unknown}; expected {sorted(known)}")
    pairs = []
    for k, pair in enumerate(spec.get("code_pairs") or []):
        if not (isinstance(pair, list) and len(pair) == 3 and pair[2] in (0, 1, 9)):
            raise PayerConfigError(f"{where}.code_pairs[{k}]: expected [column 1, column 2, indicator 0|1|9]")
        pairs.append((str(pair[0]), str(pair[1]), int(pair[2])))
    ages = {}
    for code, band in (spec.get("age_ranges") or {}).items():
        if not (isinstance(band, list) and len(band) == 2 and all(isinstance(a, int) for a in band)):
            raise PayerConfigError(f"{where}.age_ranges.{code}: expected [youngest, oldest]")
        ages[str(code)] = (band[0], band[1])
    for code, sex in (spec.get("sex_codes") or {}).items():
        if sex not in ("M", "F"):
            raise PayerConfigError(f"{where}.sex_codes.{code}: expected M or F")
    if not isinstance(spec.get("age_sex_edits", False), bool):
        raise PayerConfigError(f"{where}.age_sex_edits: expected true or false")
    return PayerRules(
        name=name,
        code_pairs=tuple(pairs),
        covered_diagnoses={str(p): tuple(map(str, dx)) for p, dx in (spec.get("covered_diagnoses") or {}).items()},
        age_ranges=ages,
        sex_codes={str(c): str(s) for c, s in (spec.get("sex_codes") or {}).items()},
        age_sex_edits=spec.get("age_sex_edits", False),
        unit_limits={str(c): int(n) for c, n in (spec.get("unit_limits") or {}).items()},
        prior_authorization=tuple(map(str, spec.get("prior_authorization") or ())),
        **{f: _rate(spec.get(f, 0.0), f"{where}.{f}") for f in
           ("review_rate", "eligibility_rate", "duplicate_rate", "timely_filing_rate", "coinsurance")},
    )  # fmt: skip


def load_payers(path: str | Path) -> tuple[int, dict[str, PayerRules]]:
    """(seed, payer name -> rules) from a payer YAML file; a bad field is an error naming file and field."""
    source = Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PayerConfigError(f"{source}: cannot be read as YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("payers"), dict) or not data["payers"]:
        raise PayerConfigError(f"{source}: expected a mapping with 'seed' and a non-empty 'payers' mapping")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise PayerConfigError(f"{source}: seed: must be an integer")
    return seed, {name: _rules(name, spec, f"{source}: payers.{name}") for name, spec in data["payers"].items()}


def fee(code: str) -> Decimal:
    """A made-up fee per code, stable across runs (the simulation needs amounts, not real prices)."""
    return Decimal(40 + int(hashlib.sha256(code.encode()).hexdigest(), 16) % 160).quantize(CENT)


def keyed_rng(seed: int, key: str) -> np.random.Generator:
    """Draws that depend on the seed and one key (a claim id) only, not on what else is drawn before them."""
    return np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:12], 16)])


def _adjustment(group: str, carc: str, amount: Decimal, quantity: Decimal | None = None) -> Adjustment:
    category = carc_category(carc)
    return Adjustment(group, carc, amount.quantize(CENT), quantity, category.category, category.coding_caused)


def _line_denial(claim: Claim, line: ClaimLine, rules: PayerRules, supported: Collection[str], seed: int) -> str | None:
    """The CARC the payer denies a whole line for, or None. Edits in a fixed order, the first that applies.
    Whether the medical review picks the line is drawn from the claim id and the line's code alone, so two
    codings of one encounter (champion and challenger) meet the same review of each code they share: a line
    added or dropped elsewhere on the claim does not move which lines are reviewed."""
    codes_on_claim = {other.procedure: other for other in claim.lines if other is not line}
    for first, second, indicator in rules.code_pairs:
        if line.procedure == second and first in codes_on_claim and indicator != 9:
            if not (indicator == 1 and set(line.modifiers) & set(BYPASS_MODIFIERS)):
                return "236"
    if rules.age_sex_edits and (edits := line_edits(line.procedure, line.diagnoses, claim.age, claim.sex)):
        return "7" if edits[0].rule == SEX_CONFLICT else "6"
    band = rules.age_ranges.get(line.procedure)
    if band is not None and claim.age is not None and not band[0] <= claim.age <= band[1]:
        return "6"
    if claim.sex in ("M", "F") and any(
        dx.startswith(prefix) and sex != claim.sex for dx in line.diagnoses for prefix, sex in rules.sex_codes.items()
    ):
        return "7"
    covering = rules.covered_diagnoses.get(line.procedure)
    if covering is not None and not any(dx.startswith(covering) for dx in claim.diagnoses):
        return "11"
    if line.procedure in rules.prior_authorization:
        return "197"
    # the payer's medical review: a service the record does not support is not medically necessary (50; a visit
    # level it does not support, 150); one
    # whose every diagnosis the record does not support has no diagnosis that justifies it (11)
    reviewed = keyed_rng(seed, f"review:{claim.claim_id}:{line.procedure}").random() < rules.review_rate
    if reviewed and line.procedure not in supported:
        return "150" if line.procedure in VISIT_EM_CODES else "50"  # a visit level the record does not support
    if reviewed and not any(dx in supported for dx in line.diagnoses):
        return "11"
    return None


def adjudicate(claim: Claim, rules: PayerRules, supported: Collection[str], seed: int) -> ClaimRemittance:
    """The payer's remittance for one claim. `supported`: the codes the medical record supports (the
    simulation's gold), which the payer's review sees and the learner does not."""
    rng = keyed_rng(seed, claim.claim_id)
    charge = sum((line.charge for line in claim.lines), Decimal("0.00"))
    noise = rng.random()
    claim_carc = None
    if noise < rules.eligibility_rate:
        claim_carc = ("CO", "27")
    elif noise < rules.eligibility_rate + rules.duplicate_rate:
        claim_carc = ("OA", "18")
    elif noise < rules.eligibility_rate + rules.duplicate_rate + rules.timely_filing_rate:
        claim_carc = ("CO", "29")
    if claim_carc is not None:  # denied as a whole before any line is looked at
        return _remittance(claim, rules, "4", (_adjustment(*claim_carc, charge),), ())
    lines = []
    for line in claim.lines:
        adjustments: list[Adjustment] = []
        carc = _line_denial(claim, line, rules, supported, seed)
        limit = rules.unit_limits.get(line.procedure)
        if carc is not None:
            adjustments.append(_adjustment("CO", carc, line.charge))
        elif limit is not None and line.units > limit:  # the units above the limit
            excess = line.units - limit
            adjustments.append(_adjustment("CO", "151", (line.charge * excess / line.units).quantize(CENT), excess))
        paid = line.charge - sum((a.amount for a in adjustments), Decimal("0.00"))
        if paid > 0 and rules.coinsurance > 0:
            share = (paid * Decimal(str(rules.coinsurance))).quantize(CENT, ROUND_HALF_UP)
            adjustments.append(_adjustment("PR", "2", share))
            paid -= share
        lines.append(RemittanceLine(
            line_control=line.line_control, qualifier="HC", procedure=line.procedure, modifiers=line.modifiers,
            submitted_procedure=None, charge=line.charge, paid=paid.quantize(CENT), units=line.units,
            service_date=line.service_date, adjustments=tuple(adjustments), remarks=(),
        ))  # fmt: skip
    status = "4" if lines and all(line.paid == 0 for line in lines) else "1"
    return _remittance(claim, rules, status, (), tuple(lines))


def _remittance(
    claim: Claim, rules: PayerRules, status: str, adjustments: tuple[Adjustment, ...], lines: tuple[RemittanceLine, ...]
) -> ClaimRemittance:
    charge = sum((line.charge for line in claim.lines), Decimal("0.00"))
    owed = sum((a.amount for a in adjustments), Decimal("0.00")) + sum(
        (a.amount for line in lines for a in line.adjustments), Decimal("0.00")
    )
    patient = sum((a.amount for line in lines for a in line.adjustments if a.group == "PR"), Decimal("0.00"))
    return ClaimRemittance(
        source=f"simulated payer {rules.name}", payer=rules.name, payer_id=None, claim_id=claim.claim_id,
        status=status, charge=charge, paid=(charge - owed).quantize(CENT),
        patient_responsibility=patient.quantize(CENT) if patient else None, payer_claim_id=None,
        service_date=claim.service_date, adjustments=adjustments, lines=lines,
    )  # fmt: skip
