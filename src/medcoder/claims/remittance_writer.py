"""Writing `ClaimRemittance` records as a real 005010X221A1 835, so the simulated payer's decisions travel
the same path as a payer's: written here, read back with `read_remittance`, every field the 835 carries
coming back equal (the `source` field aside, which says where a record was read from).

x12sdk's generator builds the skeleton from specifications (claim status, charges, claim- and line-level
adjustments) and derives each payment as charge less adjustments, so an 835 that does not balance cannot
be written; the records' own `paid` must agree, else a ValueError names the claim's position. What the
generator does not write is then set on the parsed models: the payer id, CLP05 and CLP07, the claim's
statement date, and per line the adjudicated code with its modifiers (SVC01), the billed code when the
payer changed it (SVC06), units, DTM*472, REF*6R and LQ*HE remark codes. The whole transaction is
validated again before x12sdk's writer adds the envelope.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from medcoder.claims.remittance import Adjustment, ClaimRemittance, RemittanceLine
from medcoder.claims.x12 import plain_element

SENDER_ID, RECEIVER_ID = "SYNTHETICPAYER", "SYNTHETICPROV"
CREATED = datetime.datetime(2026, 1, 1, 12, 0)  # fixed, as x12sdk's generator does: same input, same bytes
CENT = Decimal("0.01")
COMPONENT = ":"  # x12sdk writes ISA16 as ":" and joins composites with it
_DATE = re.compile(r"\d{8}")


def _date(value: str | None, where: str, name: str) -> str | None:
    if value is not None and not _DATE.fullmatch(value):
        raise ValueError(f"{where}: {name} is not a CCYYMMDD date")
    return value


def _adjustment_specs(adjustments: tuple[Adjustment, ...], where: str) -> list[Any]:
    from x12sdk.generate import AdjustmentSpec

    for a in adjustments:
        plain_element(a.carc, where, "an adjustment's CARC")
    try:
        return [AdjustmentSpec(a.group, a.carc, Decimal(a.amount), a.quantity) for a in adjustments]
    except ValueError as exc:  # a group the 835 has no code for at this level: it names the group, no value
        raise ValueError(f"{where}: {exc}") from None


def _balanced(charge: Decimal, paid: Decimal, adjustments: tuple[Adjustment, ...], where: str, what: str) -> None:
    """Amounts in whole cents (an 835 carries no fractions of a cent), and paid = charge less adjustments."""
    for amount in (charge, paid, *(a.amount for a in adjustments)):
        if Decimal(amount) != Decimal(amount).quantize(CENT):
            raise ValueError(f"{where}: an amount has fractions of a cent; round each amount before writing")
    if charge - sum((a.amount for a in adjustments), Decimal("0")) != paid:
        raise ValueError(f"{where}: {what} is not the charge less the adjustments; an 835 must balance")


def _claim_spec(claim: ClaimRemittance, where: str) -> Any:
    """The generator's view of a claim: what it needs to write CLP, CAS and SVC amounts that balance."""
    from x12sdk.generate import ClaimSpec, ServiceLineSpec

    plain_element(claim.claim_id, where, "claim_id")
    _balanced(claim.charge, claim.paid, claim.all_adjustments(), where, "paid (CLP04)")
    if claim.lines and sum((line.charge for line in claim.lines), Decimal("0")) != claim.charge:
        raise ValueError(f"{where}: the lines' charges (SVC02) do not add up to the claim's charge (CLP03)")
    lines = []
    for m, line in enumerate(claim.lines, 1):
        here = f"{where} line {m}"
        _balanced(line.charge, line.paid, line.adjustments, here, "paid (SVC03)")
        lines.append(ServiceLineSpec(charge=line.charge, procedure=line.procedure,
                                     adjustments=_adjustment_specs(line.adjustments, here)))  # fmt: skip
    return ClaimSpec(charge=claim.charge, adjustments=_adjustment_specs(claim.adjustments, where), lines=lines,
                     status=claim.status, patient_control_number=claim.claim_id)  # fmt: skip


def _complete_line(loop_2110: Any, line: RemittanceLine, where: str) -> None:
    """SVC01 with modifiers, SVC06, units, DTM*472, REF*6R, LQ*HE: what the generator leaves out."""
    from x12sdk.v5010.x12_835_005010X221A1.segments import Loop2110DtmSegment, Loop2110LqSegment, Loop2110RefSegment

    codes = [line.qualifier, line.procedure, *line.modifiers]
    for name, value in zip(("qualifier", "procedure", *["a modifier"] * len(line.modifiers)), codes):
        plain_element(value, where, name)
    if line.submitted_procedure is not None and line.submitted_procedure == line.procedure:
        raise ValueError(f"{where}: submitted_procedure equals procedure; set it only when the payer changed the code")
    svc = loop_2110.svc_segment
    svc.composite_medical_procedure_identifier_1 = COMPONENT.join(codes)
    submitted = plain_element(line.submitted_procedure, where, "submitted_procedure")
    svc.composite_medical_procedure_identifier_2 = f"{line.qualifier}{COMPONENT}{submitted}" if submitted else None
    svc.units_of_service_paid_count = line.units
    date = _date(line.service_date, where, "service_date")
    loop_2110.dtm_segment = [Loop2110DtmSegment(date_time_qualifier="472", production_date=date)] if date else None
    control = plain_element(line.line_control, where, "line_control")
    loop_2110.ref_segment = (
        [Loop2110RefSegment(reference_identification_qualifier="6R", reference_identification=control)]
        if control is not None
        else None
    )
    remarks = [plain_element(r, where, "a remark code") for r in line.remarks]
    loop_2110.lq_segment = [
        Loop2110LqSegment(code_list_qualifier_code="HE", form_identifier=r) for r in remarks
    ] or None


def _complete_claim(loop_2100: Any, claim: ClaimRemittance, where: str) -> None:
    """CLP05, CLP07 and the statement date (DTM*232) on a claim, then its lines."""
    from x12sdk.v5010.x12_835_005010X221A1.segments import Loop2100DtmSegment

    clp = loop_2100.clp_segment
    clp.patient_responsibility_amount = claim.patient_responsibility
    clp.payer_claim_control_number = plain_element(claim.payer_claim_id, where, "payer_claim_id")
    date = _date(claim.service_date, where, "service_date")
    loop_2100.dtm_segment = [Loop2100DtmSegment(date_time_qualifier="232", production_date=date)] if date else None
    for m, (loop_2110, line) in enumerate(zip(loop_2100.loop_2110 or [], claim.lines), 1):
        _complete_line(loop_2110, line, f"{where} line {m}")


def write_remittance(
    claims: list[ClaimRemittance],
    path: str | Path,
    *,
    payer_name: str,
    payer_id: str | None = None,
    seed: int = 0,
) -> Path:
    """Write `claims` as one 835 (one payer, one transaction set) at `path`, and return the path.

    `seed` fixes what the records do not say (trace number, payee, patient names, all synthetic), so the
    same call writes the same bytes. A claim whose payer differs from `payer_name`/`payer_id` is refused:
    one 835 is one payer's."""
    from x12sdk.generate import generate_835
    from x12sdk.io import X12ModelReader, X12ModelWriter
    from x12sdk.support import count_segments
    from x12sdk.v5010.x12_835_005010X221A1.segments import Loop1000AN1Segment

    if not claims:
        raise ValueError("an 835 needs at least one claim")
    plain_element(payer_name, "payer", "payer_name")
    plain_element(payer_id, "payer", "payer_id")
    specs = []
    for k, claim in enumerate(claims, 1):
        where = f"claim #{k}"
        if claim.payer not in (None, payer_name) or claim.payer_id not in (None, payer_id):
            raise ValueError(f"{where}: its payer is not payer_name/payer_id; one 835 is one payer's")
        specs.append(_claim_spec(claim, where))
    with X12ModelReader(generate_835(seed=seed, claims=specs, payer_name=payer_name)) as reader:
        (transaction,) = list(reader.models())
    n1 = transaction.loop_1000a.n1_segment
    transaction.loop_1000a.n1_segment = Loop1000AN1Segment(
        entity_identifier_code="PR", name=n1.name, identification_code_qualifier="XV" if payer_id else None,
        identification_code=payer_id,
    )  # fmt: skip
    for k, (loop_2100, claim) in enumerate(zip(transaction.loop_2000[0].loop_2100, claims), 1):
        _complete_claim(loop_2100, claim, f"claim #{k}")
    transaction.footer.se_segment.transaction_segment_count = count_segments(transaction.__dict__)
    transaction = type(transaction).model_validate(transaction.model_dump())  # every x12sdk check, once more
    with X12ModelWriter(path, sender_id=SENDER_ID, receiver_id=RECEIVER_ID, created=CREATED) as writer:
        writer.write(transaction)
    return Path(path)
