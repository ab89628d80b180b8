"""Writing `Claim` records as a real 005010X222A1 837P, the professional claim a practice submits.

x12sdk's generator builds a valid skeleton from the claims' charges and procedures (with synthetic submitter,
provider and patient: a released claim here carries codes, not demographics); then what the records say is
set on the parsed models: the diagnoses (HI, ABK principal and ABF others, without the decimal point), each
line's procedure with its modifiers (SV101), diagnosis pointers (SV107), units, service date (DTP*472) and
line control number (REF*6R), the payer's name, and an optional claim note (NTE*ADD, at most 80 characters:
review uses it for the attestation and its audit reference). Read back with `submission.read_claims`, the codes,
modifiers, units, dates, diagnoses, pointers and line controls come back equal.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path

from medcoder.claims.submission import Claim
from medcoder.claims.x12 import plain_element

SENDER_ID, RECEIVER_ID = "SYNTHETICPROV", "SYNTHETICPAYER"


def write_submission(
    claims: Sequence[Claim], path: str | Path, *, payer_name: str, notes: Mapping[str, str] | None = None,
    seed: int = 0,
) -> Path:  # fmt: skip
    """Write `claims` (outpatient, one payer) as one 837P at `path`; `notes` maps a claim id to its NTE*ADD."""
    from x12sdk.generate import generate_837p
    from x12sdk.generate._spec import ClaimSpec, ServiceLineSpec
    from x12sdk.io import X12ModelReader, X12ModelWriter
    from x12sdk.support import count_segments
    from x12sdk.v5010.x12_837_005010X222A2.segments import Loop2300NteSegment, Loop2400RefSegment

    if not claims:
        raise ValueError("an 837P needs at least one claim")
    specs = []
    for k, claim in enumerate(claims, 1):
        where = f"claim #{k} ({claim.claim_id})"
        if claim.setting != "outpatient":
            raise ValueError(f"{where}: an 837P carries professional (outpatient) claims, not {claim.setting}")
        if not claim.diagnoses or not claim.lines:
            raise ValueError(f"{where}: a claim needs a diagnosis and a line")
        for text, field in (
            (claim.claim_id, "claim_id"),
            (payer_name, "payer_name"),
            ((notes or {}).get(claim.claim_id, ""), "note"),
        ):
            plain_element(text, where, field)
        lines = [ServiceLineSpec(charge=line.charge, procedure=line.procedure, units=int(line.units))
                 for line in claim.lines]  # fmt: skip
        specs.append(ClaimSpec(charge=sum(line.charge for line in claim.lines), lines=lines,
                               patient_control_number=claim.claim_id))  # fmt: skip
    content = generate_837p(seed=seed, claims=specs, payer_name=payer_name, dependent_rate=0.0,
                            sender_id=SENDER_ID, receiver_id=RECEIVER_ID)  # fmt: skip
    with X12ModelReader(content) as reader:
        (transaction,) = list(reader.models())
    loops = [claim for a in transaction.loop_2000a for b in a.loop_2000b for claim in b.loop_2300 or []]
    for loop, claim in zip(loops, claims, strict=True):
        hi = type(loop.hi_segment[0])
        codes = [["ABK" if i == 0 else "ABF", dx.replace(".", "")] for i, dx in enumerate(claim.diagnoses[:12])]
        loop.hi_segment = [hi(**{f"health_care_code_{i}": code for i, code in enumerate(codes, 1)})]
        note = (notes or {}).get(claim.claim_id)
        if note:
            loop.nte_segment = Loop2300NteSegment(note_reference_code="ADD", description=note[:80])
        for line_loop, line in zip(loop.loop_2400, claim.lines, strict=True):
            sv1 = line_loop.sv1_segment
            sv1.product_service_id_qualifier = ":".join(("HC", line.procedure, *line.modifiers))
            pointers = [str(claim.diagnoses.index(dx) + 1) for dx in line.diagnoses[:4] if dx in claim.diagnoses[:12]]
            sv1.composite_diagnosis_code_pointer = ":".join(pointers or ["1"])
            for dtp in line_loop.dtp_segment:
                if dtp.date_time_qualifier == "472":
                    dtp.date_time_period = datetime.datetime.strptime(line.service_date, "%Y%m%d").date()
            line_loop.ref_segment = [Loop2400RefSegment(reference_identification_qualifier="6R",
                                                        reference_identification=line.line_control)]  # fmt: skip
    transaction.footer.se_segment.transaction_segment_count = count_segments(transaction.__dict__)
    with X12ModelWriter(path, sender_id=SENDER_ID, receiver_id=RECEIVER_ID) as writer:
        writer.write(transaction)
    _check_round_trip(claims, Path(path))
    return Path(path)


def _check_round_trip(claims: Sequence[Claim], path: Path) -> None:
    """Read the file back through the same ingest a payer's copy would go through: every code, modifier, unit,
    date, diagnosis, pointer and line control must come back, else the file is removed and the claim named."""
    from medcoder.claims.submission import read_claims

    back = read_claims(path).claims
    for claim, read in zip(claims, back, strict=True):
        wrote = [(x.line_control, x.procedure, x.modifiers, x.units, x.service_date, x.diagnoses) for x in claim.lines]
        got = [(x.line_control, x.procedure, x.modifiers, x.units, x.service_date, x.diagnoses) for x in read.lines]
        if (read.claim_id, read.diagnoses[: len(claim.diagnoses)], got) != (
            claim.claim_id,
            claim.diagnoses[:12],
            wrote,
        ):
            path.unlink()
            raise ValueError(f"claim {claim.claim_id}: the 837P did not read back as written")
