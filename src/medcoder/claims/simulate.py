"""The denial loop's world for development and tests: claims built from a coder's codes for the embedded
corpus's notes, adjudicated month by month by the simulated payers (`claims.payer`), a simulated coder
who fixes a share of the model's errors (correction records), and appeals that overturn a share of the
coding denials the record supports.

A note's gold codes are what its record supports: the payer's medical review and the simulated coder see
them, the learner never does (it sees the 835s, the corrections and the appeal outcomes). A note billed
to no payer (self-pay) or with no procedure or visit code to bill gives no claim.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from medcoder.claims.payer import PayerRules, adjudicate, fee, keyed_rng
from medcoder.claims.remittance import ClaimRemittance
from medcoder.claims.risk import LineRisk
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.codes.formats import CPT, HCPCS, ICD10CM
from medcoder.data.labels import Label
from medcoder.data.schema import NoteRecord

MAX_POINTERS = 4  # an 837P service line points at up to four of the claim's diagnoses (SV107)


def month_of(record: NoteRecord) -> str:
    """ "2026-03" of an encounter dated 2026-03-14: the unit of the loop's time order."""
    if not record.encounter_date:
        raise ValueError(f"note {record.id}: no encounter_date, so it has no place in the claims' time order")
    return record.encounter_date[:7]


def billed_claim(
    claim_id: str, payer: str, setting: str | None, age: int | None, sex: str | None, service_date: str,
    diagnoses: Sequence[str], billed: Sequence[str], encounter_id: str | None = None,
) -> Claim | None:  # fmt: skip
    """The claim a practice files for a note's codes: diagnoses in the given order, one line per billed
    (procedure, service or visit-level) code, one unit, pointing at the first four diagnoses; None when there
    is nothing to bill. `service_date` is CCYYMMDD."""
    diagnoses, billed = tuple(dict.fromkeys(diagnoses)), list(dict.fromkeys(billed))
    if not billed:
        return None
    lines = tuple(
        ClaimLine(line_control=f"{claim_id}-{k}", procedure=code, modifiers=(), units=Decimal(1), charge=fee(code),
                  service_date=service_date, diagnoses=diagnoses[:MAX_POINTERS])
        for k, code in enumerate(billed, 1)
    )  # fmt: skip
    return Claim(claim_id=claim_id, payer=payer, setting=setting or "outpatient", age=age, sex=sex,
                 service_date=service_date, diagnoses=diagnoses, lines=lines, encounter_id=encounter_id)  # fmt: skip


def claim_for(record: NoteRecord, codes: Sequence[Label], claim_id: str | None = None) -> Claim | None:
    """The claim a practice would file for `record` coded with `codes` (`billed_claim`); None when it has no
    payer or nothing to bill."""
    if record.payer in (None, "", "self_pay"):
        return None
    month_of(record)  # a claim needs its date of service
    return billed_claim(
        claim_id or record.id, record.payer, record.setting, record.age, record.sex,
        record.encounter_date.replace("-", ""), [code for system, code in codes if system == ICD10CM],
        [code for system, code in codes if system in (CPT, HCPCS)], record.id,
    )  # fmt: skip


DISTINCT_SERVICE_MODIFIER = "59"  # a distinct procedural service: what a coder appends when a pair edit allows it


def reviewed_before_submission(
    claim: Claim, record: NoteRecord, risks: Callable[[Claim], Sequence[LineRisk]], flag: float
) -> Claim | None:
    """The claim that goes out when the routing policy sends it to a coder first (a line's risk at or above
    `flag`, `risks` being the pre-submission check): the coder codes the encounter from the record (the
    simulation's gold codes, as the feedback months' coder does) and appends modifier 59 to each line the
    check still flags for a code pair, the record supporting both services (a payer's indicator-1 edit
    accepts it, an indicator-0 edit does not). A claim no line of which reaches `flag` goes out as built;
    None when the record leaves nothing to bill."""
    if not any(r.risk >= flag for r in risks(claim)):
        return claim
    fixed = claim_for(record, [(c.system, c.code) for c in record.codes], claim.claim_id)
    if fixed is None:
        return None
    distinct = {r.line_control for r in risks(fixed) if r.risk >= flag and r.kind == "pair"}
    lines = tuple(
        replace(line, modifiers=(*line.modifiers, DISTINCT_SERVICE_MODIFIER)) if line.line_control in distinct else line
        for line in fixed.lines
    )
    return replace(fixed, lines=lines)


def supported_codes(record: NoteRecord) -> frozenset[str]:
    """The codes the note's record supports: its gold codes (the simulation's medical record review)."""
    return frozenset(c.code for c in record.codes)


def adjudicate_claims(
    records: Sequence[NoteRecord], claims: Sequence[Claim], payers: Mapping[str, PayerRules], seed: int
) -> list[ClaimRemittance]:
    """Each claim adjudicated by its payer's rules; a claim for a payer without rules is an error."""
    by_id = {r.id: r for r in records}
    out = []
    for claim in claims:
        if claim.payer not in payers:
            raise ValueError(f"claim of note {claim.encounter_id}: no simulated payer named {claim.payer!r}")
        out.append(adjudicate(claim, payers[claim.payer], supported_codes(by_id[claim.encounter_id]), seed))
    return out


def _draw(seed: int, key: str) -> float:
    return float(keyed_rng(seed, key).random())


def simulate_corrections(
    records: Sequence[NoteRecord], predicted: Mapping[str, Sequence[Label]], model_version: str, share: float,
    seed: int, timestamp: str = "2026-01-01T12:00:00+00:00",
) -> list[dict[str, Any]]:  # fmt: skip
    """Correction records (docs/DENIALS.md contract) of a coder who reviews `share` of the encounters and
    fixes every error there: deletes each predicted code the record does not support, adds each supported
    code the model missed, quoting the gold evidence's offsets (never the text)."""
    out = []
    for record in records:
        if record.id not in predicted or _draw(seed, f"review:{record.id}") >= share:
            continue
        emitted = set(predicted[record.id])
        gold = {(c.system, c.code): c for c in record.codes}
        for system, code in sorted(emitted - set(gold)):
            out.append(_correction(record, model_version, system, code, "delete", None, timestamp))
        for label in sorted(set(gold) - emitted):
            evidence = gold[label].evidence[0] if gold[label].evidence else None
            out.append(_correction(record, model_version, *label, "add", evidence, timestamp))
    return out


def _correction(record: NoteRecord, model_version: str, system: str, code: str, action: str,
                evidence: tuple[int, int] | None, timestamp: str) -> dict[str, Any]:  # fmt: skip
    entry: dict[str, Any] = {"encounter_id": record.id, "note_id": record.id, "model_version": model_version,
                             "system": system, "code": code, "action": action, "coder_id": "simulated-coder",
                             "timestamp": timestamp, "reason": "simulated review"}  # fmt: skip
    if evidence is not None:
        entry["evidence"] = {"start": int(evidence[0]), "end": int(evidence[1])}
    return entry


def simulate_appeals(
    claims: Sequence[Claim], remittances: Sequence[ClaimRemittance], records: Sequence[NoteRecord],
    overturn_rate: float, seed: int, decided_at: str = "2026-01-15T12:00:00+00:00",
) -> list[dict[str, Any]]:  # fmt: skip
    """Appeal outcomes for every coding denial of a line: overturned with probability `overturn_rate` when the
    record supports the line's code and one of its diagnoses (the payer was wrong), upheld otherwise."""
    by_claim = {c.claim_id: c for c in claims}
    by_note = {r.id: r for r in records}
    out = []
    for remittance in remittances:
        claim = by_claim[remittance.claim_id]
        supported = supported_codes(by_note[claim.encounter_id])
        submitted = {line.line_control: line for line in claim.lines}
        for line in remittance.lines:
            for adjustment in line.adjustments:
                if not adjustment.is_coding_denial:
                    continue
                billed = submitted[line.line_control]
                right = billed.procedure in supported and any(dx in supported for dx in billed.diagnoses)
                won = right and _draw(seed, f"appeal:{line.line_control}:{adjustment.carc}") < overturn_rate
                out.append({"claim_id": remittance.claim_id, "line_control": line.line_control,
                            "carc": adjustment.carc, "outcome": "overturned" if won else "upheld",
                            "decided_at": decided_at})  # fmt: skip
    return out


@dataclass(frozen=True)
class DenialRates:
    """Rates over claims: any denial, a coding-caused denial, and clean (no payer-side adjustment at all)."""

    claims: int
    denial_rate: float
    coding_denial_rate: float
    clean_claim_rate: float
    coding_denied: int  # claims a coding-caused CARC denied: what coding_denial_rate is the share of


def denial_rates(remittances: Iterable[ClaimRemittance]) -> DenialRates:
    items = list(remittances)
    n = len(items)
    denied = sum(r.denied for r in items)
    coding = sum(r.coding_denied for r in items)
    return DenialRates(n, denied / n if n else 0.0, coding / n if n else 0.0, (n - denied) / n if n else 0.0, coding)


def denials_by(remittances: Iterable[ClaimRemittance], key: str) -> dict[str, Counter[str]]:
    """Denied claims and adjustments counted by payer ("payer") or CARC category ("category")."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in remittances:
        if key == "payer":
            out[r.payer or "?"]["claims"] += 1
            out[r.payer or "?"]["denied"] += r.denied
            out[r.payer or "?"]["coding_denied"] += r.coding_denied
        else:
            for a in r.all_adjustments():
                if a.is_denial:
                    out[a.category]["adjustments"] += 1
                    out[a.category]["coding_caused"] += a.coding_caused
    return dict(out)
