"""X12 837 claims (837P 005010X222A1/A2, 837I 005010X223A3) as records the denial loop reads and the
simulated payer adjudicates: the claim's id (CLM01, which the 835's CLP01 echoes), payer, patient age
and sex at the date of service, diagnoses in order, and its service lines with their control numbers
(REF*6R, which the 835 echoes per line).

The reader is `read_claims`; `Claim` and `ClaimLine` are also built directly from a coder's predictions
(the simulated payer's claims), so the two paths give the same records.

Errors follow `claims.x12`: they name the file, the transaction set, the claim's position, the loop path,
the segment and the field, never a value (a value may be a patient's name, id or diagnosis). The birth
date is read only to compute the age and is never kept.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from medcoder.claims.x12 import OnError, Skipped, X12InputError, read_interchange

PRINCIPAL, OTHER, EXTERNAL_CAUSE = "ABK", "ABF", "ABN"  # ICD-10-CM diagnosis qualifiers (HI0n-1)
ADMITTING, VISIT_REASON = "ABJ", "APR"  # 837I only: kept apart from the coded diagnoses
ICD9_QUALIFIERS = ("BK", "BF", "BJ", "PR", "BN")  # the same roles under ICD-9-CM, which we do not read
STATEMENT_PERIOD = "434"  # 837I claim-level DTP: the fallback service date of a line without DTP*472
_ICD10_CM = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")  # sent without its decimal point


@dataclass(frozen=True)
class ClaimLine:
    """One service line: the billed code with its modifiers, units, charge, date, and the diagnoses it
    points at (SV107 pointers resolved to codes)."""

    line_control: str  # REF*6R, else "<claim_id>-<line number>"
    procedure: str  # CPT/HCPCS (SV101-2; SV202-2 on an 837I, "" when an 837I line bills only a revenue code)
    modifiers: tuple[str, ...]
    units: Decimal
    charge: Decimal
    service_date: str  # CCYYMMDD
    diagnoses: tuple[str, ...]  # ICD-10-CM with the dot ("E11.22"), in pointer order; 837I: the claim's
    revenue_code: str | None = None  # SV201 on an 837I
    qualifier: str = "HC"  # SV101-1 / SV202-1: HC (CPT/HCPCS), ... ("" when an 837I line has no SV202)


@dataclass(frozen=True)
class Claim:
    """One claim (loop 2300). Age and sex are what edits need; the birth date itself is not kept."""

    claim_id: str  # CLM01
    payer: str
    setting: str  # "outpatient" (837P) or "inpatient" (837I)
    age: int | None  # at the first service date
    sex: str | None  # "M", "F", "U"
    service_date: str  # CCYYMMDD, the earliest line's
    diagnoses: tuple[str, ...]  # HI: principal first
    lines: tuple[ClaimLine, ...]
    encounter_id: str | None = None  # the note the claim was coded from, when the platform built it
    admitting_diagnosis: str | None = None  # 837I HI*ABJ
    visit_reasons: tuple[str, ...] = ()  # 837I HI*APR: the patient's reason for the visit


@dataclass
class SubmissionReport:
    """The claims read from 837 files, and the transaction sets skipped (skip mode) with their reasons."""

    claims: list[Claim]
    skipped: list[Skipped]


@dataclass(frozen=True)
class _Diagnoses:
    coded: tuple[str, ...]  # principal, others, external causes: what SV107 points into
    admitting: str | None
    visit_reasons: tuple[str, ...]


def _setting(transaction: Any, where: str) -> str:
    """x12sdk picks the model package from GS08 (ST03 when GS08 is absent), A1 mapped to A2."""
    module = type(transaction).__module__
    if "005010X222" in module:
        return "outpatient"
    if "005010X223" in module:
        return "inpatient"
    raise X12InputError(f"{where}: not an 837P (005010X222) or 837I (005010X223) transaction set")


def _claim_loops(transaction: Any) -> Iterator[tuple[str, Any, Any, Any]]:
    """(loop path, loop 2300, the patient's loop, the payer's loop 2010BB) per claim, in file order.

    A claim sits under the subscriber (2000B) when the subscriber is the patient, else under a dependent
    (2000C); the patient's loop is 2010BA or 2010CA accordingly. Walked here rather than through
    `x12sdk.access` so that errors can name the loop path."""
    for a, loop_a in enumerate(transaction.loop_2000a, 1):
        for b, loop_b in enumerate(loop_a.loop_2000b, 1):
            path, payer = f"loop 2000a #{a} > loop 2000b #{b}", loop_b.loop_2010bb
            subscriber = (f"{path} > loop 2010ba", loop_b.loop_2010ba)
            for k, claim in enumerate(loop_b.loop_2300 or [], 1):
                yield f"{path} > loop 2300 #{k}", claim, subscriber, payer
            for c, loop_c in enumerate(loop_b.loop_2000c or [], 1):
                patient = (f"{path} > loop 2000c #{c} > loop 2010ca", loop_c.loop_2010ca)
                for k, claim in enumerate(loop_c.loop_2300 or [], 1):
                    yield f"{path} > loop 2000c #{c} > loop 2300 #{k}", claim, patient, payer


def _date(value: Any) -> str:
    """A DTP date as CCYYMMDD: x12sdk gives a D8 as a date, an RD8 as "CCYYMMDD-CCYYMMDD" (its start)."""
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    return str(value).split("-", 1)[0]


def _icd10(value: str | None, where: str) -> str:
    """ "E1122" -> "E11.22": X12 sends ICD-10-CM without the dot, our records carry it."""
    code = (value or "").strip().upper()
    if not _ICD10_CM.fullmatch(code):
        raise X12InputError(f"{where}: not an ICD-10-CM code without its decimal point")
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def _diagnoses(hi_segments: list[Any] | None, where: str) -> _Diagnoses:
    principal: list[str] = []
    others: list[str] = []
    causes: list[str] = []
    admitting: list[str] = []
    reasons: list[str] = []
    by_qualifier = {
        PRINCIPAL: principal,
        OTHER: others,
        EXTERNAL_CAUSE: causes,
        ADMITTING: admitting,
        VISIT_REASON: reasons,
    }
    for h, hi in enumerate(hi_segments or [], 1):
        for i in range(1, 13):
            element = getattr(hi, f"health_care_code_{i}", None)
            if not element:
                continue
            field = f"{where} > HI #{h} > health_care_code_{i}"
            qualifier = element[0].strip().upper()
            if qualifier in ICD9_QUALIFIERS:
                raise X12InputError(f"{field}: an ICD-9-CM qualifier in HI{i:02d}-1; only ICD-10-CM is supported")
            target = by_qualifier.get(qualifier)
            if target is not None:  # value, condition, occurrence and procedure codes are not diagnoses
                target.append(_icd10(element[1] if len(element) > 1 else None, f"{field} (HI{i:02d}-2)"))
    if len(principal) != 1:
        raise X12InputError(f"{where} > HI: {len(principal)} principal diagnoses (ABK); a claim has one")
    if len(admitting) > 1:
        raise X12InputError(f"{where} > HI: {len(admitting)} admitting diagnoses (ABJ); a claim has at most one")
    return _Diagnoses((*principal, *others, *causes), admitting[0] if admitting else None, tuple(reasons))


def _procedure(value: str | None, component: str) -> tuple[str, str, tuple[str, ...]]:
    """SV101/SV202 "HC:G0439:XU" -> ("HC", "G0439", ("XU",))."""
    parts = (value or "").split(component)
    return parts[0], parts[1] if len(parts) > 1 else "", tuple(p for p in parts[2:6] if p)


def _pointed(pointers: str | None, component: str, diagnoses: tuple[str, ...], where: str) -> tuple[str, ...]:
    """SV107 "2:1" -> the claim's 2nd and 1st diagnosis codes, in that order."""
    out = []
    for piece in (pointers or "").split(component):
        if not piece.strip():
            continue
        if not piece.strip().isdigit():
            raise X12InputError(f"{where}: SV107 is not a list of diagnosis pointers")
        pointer = int(piece)
        if not 1 <= pointer <= len(diagnoses):
            raise X12InputError(f"{where}: SV107 points at diagnosis {pointer} of {len(diagnoses)}")
        out.append(diagnoses[pointer - 1])
    return tuple(out)


def _dtp_list(value: Any) -> list[Any]:
    """The 837P models a line's DTP as a list, the 837I as one segment."""
    return value if isinstance(value, list) else [value] if value is not None else []


def _line(loop: Any, number: int, claim_id: str, diagnoses: tuple[str, ...], fallback_date: str | None,
          component: str, here: str, path: str) -> ClaimLine:  # fmt: skip
    """Loop 2400: SV1 on an 837P (pointers resolved), SV2 on an 837I (no pointers: the claim's diagnoses)."""
    path = f"{path} > loop 2400 #{number}"
    control = next((str(r.reference_identification) for r in loop.ref_segment or []
                    if r.reference_identification_qualifier == "6R"), f"{claim_id}-{number}")  # fmt: skip
    dates = [_date(d.date_time_period) for d in _dtp_list(loop.dtp_segment) if d.date_time_qualifier == "472"]
    service_date = dates[0] if dates else fallback_date
    if service_date is None:
        raise X12InputError(f"{here} line {number}: no service date ({path} > DTP*472 date_time_period)")
    sv1 = getattr(loop, "sv1_segment", None)
    if sv1 is not None:
        qualifier, procedure, modifiers = _procedure(sv1.product_service_id_qualifier, component)
        pointer_where = f"{here} line {number}"
        try:
            pointed = _pointed(sv1.composite_diagnosis_code_pointer, component, diagnoses, pointer_where)
        except X12InputError as exc:
            raise X12InputError(f"{exc} ({path} > SV1 > composite_diagnosis_code_pointer)") from None
        return ClaimLine(control, procedure, modifiers, Decimal(sv1.service_unit_count),
                         Decimal(sv1.line_item_charge_amount), service_date, pointed, qualifier=qualifier)  # fmt: skip
    sv2 = loop.sv2_segment
    qualifier, procedure, modifiers = _procedure(sv2.composite_medical_procedure_identifier, component)
    return ClaimLine(control, procedure, modifiers, Decimal(sv2.service_unit_count),
                     Decimal(sv2.line_item_charge_amount), service_date, diagnoses,
                     revenue_code=str(sv2.service_line_revenue_code), qualifier=qualifier)  # fmt: skip


def _age_and_sex(patient: tuple[str, Any], first_service: str, where: str) -> tuple[int | None, str | None]:
    """Whole years at the first service date, from DMG02; DMG03 as given. The birth date goes no further."""
    path, loop = patient
    dmg = getattr(loop, "dmg_segment", None)
    if dmg is None:
        return None, None
    sex = str(dmg.gender_code) if dmg.gender_code else None
    born = dmg.date_time_period
    if not isinstance(born, datetime.date):
        return None, sex
    seen = datetime.datetime.strptime(first_service, "%Y%m%d").date()
    age = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    if age < 0:
        raise X12InputError(f"{where}: {path} > DMG > date_time_period: the birth date is after the first service")
    return age, sex


def _claims(transaction: Any, where: str, component: str) -> list[Claim]:
    setting = _setting(transaction, where)
    out = []
    for number, (path, loop, patient, payer_loop) in enumerate(_claim_loops(transaction), 1):
        here = f"{where}: claim #{number}"
        claim_id = str(loop.clm_segment.patient_control_number)
        found = _diagnoses(loop.hi_segment, f"{here}: {path}")
        statement = [_date(d.date_time_period) for d in _dtp_list(loop.dtp_segment)
                     if d.date_time_qualifier == STATEMENT_PERIOD]  # fmt: skip
        lines = tuple(
            _line(line, k, claim_id, found.coded, statement[0] if statement else None, component, here, path)
            for k, line in enumerate(loop.loop_2400, 1)
        )
        first = min(line.service_date for line in lines)
        age, sex = _age_and_sex(patient, first, here)
        payer = str(payer_loop.nm1_segment.name_last_or_organization_name)
        out.append(Claim(claim_id, payer, setting, age, sex, first, found.coded, lines,
                         admitting_diagnosis=found.admitting, visit_reasons=found.visit_reasons))  # fmt: skip
    return out


def read_claims(paths: list[str | Path] | str | Path, on_error: OnError = "raise") -> SubmissionReport:
    """Every claim in one or more 837P/837I files (x12sdk parses and validates each transaction set).

    With on_error="raise" the first bad transaction set stops the read with an error naming the file,
    set, claim position, loop, segment and field; with "skip" it is left out and listed in `skipped`
    with its reason and the number of claims it held, and the rest is read."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    claims: list[Claim] = []
    skipped: list[Skipped] = []
    for path in files:
        report = read_interchange(path, "837", on_error)
        skipped += report.skipped
        component = report.delimiters.component
        for number, transaction in zip(report.numbers, report.transactions):
            where = f"{path}: transaction set {number}"
            try:
                claims += _claims(transaction, where, component)
            except X12InputError as exc:
                if on_error == "raise":
                    raise
                held = sum(1 for _ in _claim_loops(transaction))
                skipped.append(Skipped(where, str(exc).removeprefix(f"{where}: "), held))
    return SubmissionReport(claims, skipped)
