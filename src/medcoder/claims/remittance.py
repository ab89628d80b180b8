"""X12 835 (005010X221A1) remittance advice as records the denial loop reads: per claim, its status and
claim-level adjustments; per service line, the procedure and modifiers the payer adjudicated, the code
the provider had billed when the payer changed it (SVC06), units, service date, the provider's line
control number (REF*6R, which joins the line to the 837's), adjustments and remark codes (LQ*HE).

Each adjustment carries its group (CO contractual, OA other, PI payer-initiated, PR patient
responsibility), CARC, amount and units, and our category of the CARC (`claims.carc`). PR is the
patient's share, never a denial; a CO/OA/PI adjustment of a reason we categorise as coding-caused is a
coding denial, the only kind that teaches the coder.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from medcoder.claims.carc import carc_category
from medcoder.claims.x12 import OnError, ReadReport, Skipped, read_interchange

DENIAL_GROUPS = ("CO", "OA", "PI")  # payer-side; PR is the patient's cost share, CR a correction
SERVICE_DATE_QUALIFIERS = ("472", "150")  # service date; service period start
CLAIM_STATUS_DENIED = "4"


@dataclass(frozen=True)
class Adjustment:
    """One CAS reason: group, CARC, amount (positive reduces payment), units, and our category of the CARC."""

    group: str
    carc: str
    amount: Decimal
    quantity: Decimal | None
    category: str
    coding_caused: bool

    @property
    def is_denial(self) -> bool:
        """Payer-side (CO/OA/PI) and reducing payment; the patient's share (PR) never is."""
        return self.group in DENIAL_GROUPS and self.amount > 0

    @property
    def is_coding_denial(self) -> bool:
        return self.is_denial and self.coding_caused


@dataclass(frozen=True)
class RemittanceLine:
    """One service line (loop 2110) as adjudicated."""

    line_control: str | None  # REF*6R: the provider's line item control number from the 837
    qualifier: str  # SVC01-1: HC (CPT/HCPCS), NU (revenue code), ...
    procedure: str  # SVC01-2 as adjudicated
    modifiers: tuple[str, ...]  # SVC01-3..6
    submitted_procedure: str | None  # SVC06-2: the billed code, when the payer adjudicated another
    charge: Decimal
    paid: Decimal
    units: Decimal | None
    service_date: str | None  # CCYYMMDD (DTM*472 or DTM*150)
    adjustments: tuple[Adjustment, ...]
    remarks: tuple[str, ...]  # RARC (LQ*HE)


@dataclass(frozen=True)
class ClaimRemittance:
    """One claim payment (loop 2100): CLP01 is the provider's claim id (the 837's CLM01), the join key."""

    source: str  # file and transaction set number
    payer: str | None
    payer_id: str | None
    claim_id: str
    status: str  # CLP02: 1 primary, 2 secondary, 3 tertiary, 4 denied, 22 reversal, ...
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal | None
    payer_claim_id: str | None
    service_date: str | None  # claim-level DTM*232 (statement period start), when the lines carry none
    adjustments: tuple[Adjustment, ...]
    lines: tuple[RemittanceLine, ...]

    def all_adjustments(self) -> tuple[Adjustment, ...]:
        return self.adjustments + tuple(a for line in self.lines for a in line.adjustments)

    @property
    def denied(self) -> bool:
        """Denied as a whole (CLP02 = 4) or any payer-side adjustment on it."""
        return self.status == CLAIM_STATUS_DENIED or any(a.is_denial for a in self.all_adjustments())

    @property
    def coding_denied(self) -> bool:
        return any(a.is_coding_denial for a in self.all_adjustments())


@dataclass
class RemittanceReport:
    """The claims read from 835 files, and the transaction sets skipped (skip mode) with their reasons."""

    claims: list[ClaimRemittance]
    skipped: list[Skipped]


def _adjustments(cas_segments: list[Any] | None) -> tuple[Adjustment, ...]:
    out = []
    for cas in cas_segments or []:
        for k in range(1, 7):
            reason = getattr(cas, f"adjustment_reason_code_{k}", None)
            amount = getattr(cas, f"monetary_amount_{k}", None)
            if reason is None and amount is None:
                continue
            carc = str(reason or "")
            category = carc_category(carc)
            quantity = getattr(cas, f"quantity_{k}", None)
            group = str(cas.adjustment_group_code)
            caused = category.coding_caused
            out.append(Adjustment(group, carc, Decimal(amount or 0), quantity, category.category, caused))
    return tuple(out)


def _composite(value: str | None, component: str) -> tuple[str, str, tuple[str, ...]]:
    """SVC01/SVC06 "HC:G0439:25" -> ("HC", "G0439", ("25",))."""
    parts = (value or "").split(component)
    return parts[0], parts[1] if len(parts) > 1 else "", tuple(p for p in parts[2:6] if p)


def _date(segments: list[Any] | None, qualifiers: tuple[str, ...]) -> str | None:
    for qualifier in qualifiers:
        for dtm in segments or []:
            if dtm.date_time_qualifier == qualifier:
                return str(dtm.production_date)
    return None


def _line(loop_2110: Any, component: str) -> RemittanceLine:
    svc = loop_2110.svc_segment
    qualifier, procedure, modifiers = _composite(svc.composite_medical_procedure_identifier_1, component)
    submitted = _composite(svc.composite_medical_procedure_identifier_2, component)[1] or None
    control = next((r.reference_identification for r in loop_2110.ref_segment or []
                    if r.reference_identification_qualifier == "6R"), None)  # fmt: skip
    remarks = tuple(str(lq.form_identifier) for lq in loop_2110.lq_segment or []
                    if str(lq.code_list_qualifier_code).upper() == "HE")  # fmt: skip
    return RemittanceLine(
        line_control=control, qualifier=qualifier, procedure=procedure, modifiers=modifiers,
        submitted_procedure=submitted if submitted != procedure else None,
        charge=Decimal(svc.line_item_charge_amount), paid=Decimal(svc.line_item_provider_payment_amount),
        units=svc.units_of_service_paid_count, service_date=_date(loop_2110.dtm_segment, SERVICE_DATE_QUALIFIERS),
        adjustments=_adjustments(loop_2110.cas_segment), remarks=remarks,
    )  # fmt: skip


def read_remittance(paths: list[str | Path] | str | Path, on_error: OnError = "raise") -> RemittanceReport:
    """Every claim payment in one or more 835 files (x12sdk parses and validates each transaction set).

    With on_error="raise" the first bad transaction set stops the read with an error naming the file,
    set, loop, segment and field; with "skip" it is left out and listed in `skipped` with its reason and
    the number of claims it held, and the rest is read."""
    files = [paths] if isinstance(paths, str | Path) else list(paths)
    claims: list[ClaimRemittance] = []
    skipped: list[Skipped] = []
    for path in files:
        report: ReadReport = read_interchange(path, "835", on_error)
        skipped += report.skipped
        component = report.delimiters.component
        for number, transaction in zip(report.numbers, report.transactions):
            for paid in transaction.claims():
                clp = paid.claim.clp_segment
                payer_n1 = getattr(paid.payer, "n1_segment", None)
                lines = tuple(_line(loop, component) for loop in paid.service_lines)
                claims.append(ClaimRemittance(
                    source=f"{path}: transaction set {number}", payer=paid.payer_name,
                    payer_id=getattr(payer_n1, "identification_code", None), claim_id=str(clp.patient_control_number),
                    status=str(clp.claim_status_code), charge=Decimal(clp.total_claim_charge_amount),
                    paid=Decimal(clp.claim_payment_amount),
                    patient_responsibility=clp.patient_responsibility_amount,
                    payer_claim_id=clp.payer_claim_control_number,
                    service_date=_date(paid.claim.dtm_segment, ("232",)),
                    adjustments=_adjustments(paid.adjustments), lines=lines,
                ))  # fmt: skip
    return RemittanceReport(claims, skipped)
