"""837 claims read through x12sdk (what was billed, for whom, against which diagnoses) and joined to the
payer's 835 line by line; bad files fail with the file, set, claim, loop, segment and field, never a value.

The fixtures were generated with x12sdk's generate_837p / generate_837i (HCPCS Level II codes, synthetic
names) and edited by hand: HI with ABK/ABF (ABJ/APR on the 837I), modifiers, REF*6R, DTP*472 (D8 and
RD8), SV107 pointers, a dependent patient, and the SE counts recomputed.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from medcoder.claims.carc import carc_category
from medcoder.claims.join import join_remittance
from medcoder.claims.remittance import Adjustment, ClaimRemittance, RemittanceLine
from medcoder.claims.submission import read_claims
from medcoder.claims.x12 import X12InputError

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
PROFESSIONAL = FIXTURES / "claims_professional.837"
INSTITUTIONAL = FIXTURES / "claims_institutional.837"


def test_a_professional_claim_gives_its_id_payer_diagnoses_and_lines_with_pointers_resolved():
    first, _ = read_claims(PROFESSIONAL).claims
    assert (first.claim_id, first.payer, first.setting) == ("ENC-0001", "SYNTHETIC HEALTH PLAN", "outpatient")
    assert first.diagnoses == ("E11.22", "I10", "Z23")  # ABK first, then ABF, each with its dot
    wellness, drug = first.lines
    assert (wellness.procedure, wellness.modifiers, wellness.charge, wellness.units) == ("G0439", (), 150, 1)
    assert (wellness.line_control, wellness.service_date, wellness.qualifier) == ("ENC-0001-1", "20260105", "HC")
    assert wellness.diagnoses == ("E11.22", "I10")  # SV107 1:2
    assert (drug.procedure, drug.modifiers, drug.units, drug.diagnoses) == ("J1100", ("JW",), Decimal(2), ("Z23",))
    assert (first.age, first.sex) == (74, "F")  # born in late January 1951, seen 5 January 2026


def test_a_dependents_age_and_sex_come_from_the_patient_loop_not_the_subscribers():
    _, child = read_claims(PROFESSIONAL).claims
    # the subscriber (loop 2010BA) is a woman born in 1975; the patient (loop 2010CA) a boy born 11 January 2016
    assert (child.age, child.sex) == (9, "M")  # seen on 10 January 2026, the day before his tenth birthday
    assert child.service_date == "20260110"  # the earliest line's, though it is the second line


def test_a_line_without_ref_6r_gets_a_control_number_and_a_date_range_gives_its_start():
    _, child = read_claims(PROFESSIONAL).claims
    ranged, dated = child.lines
    assert (ranged.line_control, dated.line_control) == ("ENC-0002-1", "ENC-0002-2")
    assert ranged.service_date == "20260112"  # DTP*472*RD8*20260112-20260113
    assert ranged.modifiers == ("XU", "GA") and ranged.diagnoses == ("Z23", "J06.9")  # pointers 2:1, in that order


def test_the_birth_date_is_read_for_the_age_but_never_kept():
    claims = read_claims(PROFESSIONAL).claims
    for birth in ("19510122", "20160111", "1951", "2016"):
        assert birth not in repr(claims)


def test_an_institutional_claim_is_inpatient_with_revenue_codes_and_undated_lines_take_the_statement_start():
    (claim,) = read_claims(INSTITUTIONAL).claims
    assert (claim.claim_id, claim.setting, claim.age, claim.sex) == ("ENC-0101", "inpatient", 88, "F")
    assert claim.diagnoses == ("I21.4", "E78.5", "I10")
    assert (claim.admitting_diagnosis, claim.visit_reasons) == ("R07.9", ("R07.89",))  # kept apart from the coded
    drug, observation, room = claim.lines
    assert (drug.revenue_code, drug.procedure, drug.units, drug.service_date) == ("0250", "J1100", 2, "20260202")
    assert (observation.procedure, observation.modifiers, observation.line_control) == ("G0378", ("GA",), "ENC-0101-2")
    assert observation.service_date == "20260201"  # no DTP*472: the statement period's start (DTP*434)
    assert (room.revenue_code, room.procedure, room.qualifier) == ("0120", "", "")  # a revenue code alone
    assert all(line.diagnoses == claim.diagnoses for line in claim.lines)  # 837I lines carry no pointers
    assert claim.service_date == "20260201"


def test_an_837p_declared_as_005010X222A1_reads_as_outpatient(tmp_path):
    path = tmp_path / "a1.837"
    path.write_text(PROFESSIONAL.read_text(encoding="utf-8").replace("005010X222A2", "005010X222A1"), encoding="utf-8")
    assert [c.setting for c in read_claims(path).claims] == ["outpatient", "outpatient"]


def _two_sets(tmp_path: Path, second_set_edit: tuple[str, str]) -> Path:
    """The professional fixture with a second transaction set (claims ENC-1001, ENC-1002) edited."""
    raw = PROFESSIONAL.read_text(encoding="utf-8")
    start, end = raw.index("ST*837"), raw.index("GE*")
    second = raw[start:end].replace("*0001", "*0002").replace("ENC-000", "ENC-100")
    assert second_set_edit[0] in second
    second = second.replace(*second_set_edit)
    path = tmp_path / "two.837"
    path.write_text(raw[:end] + second + raw[end:].replace("GE*1*", "GE*2*"), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, where, value", [
    (("HI*ABK:E1122*ABF:I10", "HI*BK:E1122*BF:I10"),
     "claim #1: loop 2000a #1 > loop 2000b #1 > loop 2300 #1 > HI #1 > health_care_code_1: an ICD-9-CM qualifier",
     "E1122"),
    (("HI*ABK:E1122", "HI*ABK:E11.22"), "HI #1 > health_care_code_1 (HI01-2): not an ICD-10-CM code", "E11.22"),
    (("SV1*HC:G0008:XU:GA*120.00*UN*1***2:1", "SV1*HC:G0008:XU:GA*120.00*UN*1***2:5"),
     "claim #2 line 1: SV107 points at diagnosis 5 of 2 (loop 2000a #1 > loop 2000b #2 > loop 2000c #1 > loop 2300 #1"
     " > loop 2400 #1 > SV1 > composite_diagnosis_code_pointer)", "G0008"),
    (("SV1*HC:Q2035*60.00", "SV1*HC:Q2035*6O.00"),
     "loop 2000c #1 > loop 2300 #1 > loop 2400 #2 > SV1 > line_item_charge_amount", "6O.00"),
])  # fmt: skip
def test_a_bad_transaction_set_names_file_set_loop_segment_and_field_or_is_skipped_with_its_claims(
    tmp_path, edit, where, value
):
    path = _two_sets(tmp_path, edit)
    with pytest.raises(X12InputError) as raised:
        read_claims(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: transaction set 2: ") and where in message
    assert value not in message and "ENC" not in message  # no value: it may be a patient's
    report = read_claims(path, on_error="skip")
    assert [c.claim_id for c in report.claims] == ["ENC-0001", "ENC-0002"]
    ((skipped,),) = [report.skipped]
    assert skipped.where == f"{path}: transaction set 2" and skipped.claims == 2 and where in skipped.reason


def test_a_remittance_given_where_claims_were_expected_is_refused_with_its_name():
    path = FIXTURES / "remittance_example.835"
    with pytest.raises(X12InputError, match="is not an 837") as raised:
        read_claims(path)
    assert str(path) in str(raised.value)


def _paid(line_control: str | None, procedure: str, submitted: str | None = None) -> RemittanceLine:
    adjustment = Adjustment("CO", "45", Decimal(10), None, carc_category("45").category, False)
    return RemittanceLine(line_control, "HC", procedure, (), submitted, Decimal(10), Decimal(0), Decimal(1),
                          "20260105", (adjustment,), ())  # fmt: skip


def _remittance(claim_id: str, *lines: RemittanceLine) -> ClaimRemittance:
    return ClaimRemittance("test", "SYNTHETIC HEALTH PLAN", None, claim_id, "1", Decimal(10) * len(lines), Decimal(0),
                           None, None, None, (), lines)  # fmt: skip


def test_the_join_pairs_lines_by_their_control_number_and_reports_what_does_not_pair():
    claims = read_claims([PROFESSIONAL, INSTITUTIONAL]).claims  # ENC-0001, ENC-0002, ENC-0101
    remittances = [
        _remittance("ENC-0001", _paid("ENC-0001-2", "J1100"), _paid("ENC-0001-1", "G0439")),  # the payer's order
        _remittance("ENC-0002", _paid(None, "G0009", submitted="G0008"), _paid("ENC-0002-9", "Q2035")),
        _remittance("ENC-9999", _paid("ENC-9999-1", "G0439")),
    ]
    report = join_remittance(claims, remittances)
    first, second = report.joined
    assert [(j.submitted.line_control, j.remitted.procedure, j.by) for j in first.lines] == [
        ("ENC-0001-2", "J1100", "line_control"), ("ENC-0001-1", "G0439", "line_control"),
    ]  # fmt: skip
    # no REF*6R: the same position billing the same code (SVC06, since the payer adjudicated another)
    ((fallback,),) = [second.lines]
    assert (fallback.submitted.line_control, fallback.by) == ("ENC-0002-1", "position")
    assert second.unmatched_remittance_lines == (1,) and second.unremitted_lines == (1,)  # REF*6R no line has
    assert report.unmatched_remittances == [2] and report.unremitted_claims == [2]  # ENC-9999; ENC-0101
    assert report.counts == {
        "joined_claims": 2, "joined_lines": 3, "unmatched_remittances": 1,
        "unmatched_remittance_lines": 1, "unremitted_claims": 1, "unremitted_lines": 1,
    }  # fmt: skip


def test_a_line_without_a_control_number_does_not_pair_with_another_code_at_its_position():
    claims = read_claims(PROFESSIONAL).claims
    (joined,) = join_remittance(claims, [_remittance("ENC-0002", _paid(None, "J1100"))]).joined
    assert joined.lines == () and joined.unmatched_remittance_lines == (0,) and joined.unremitted_lines == (0, 1)


def test_claim_ids_must_be_unique_in_one_join():
    claims = read_claims(PROFESSIONAL).claims
    with pytest.raises(ValueError, match="positions 0 and 2 share a claim id"):
        join_remittance([*claims, claims[0]], [])


def test_a_claim_written_as_an_837p_reads_back_as_written(tmp_path):
    from medcoder.claims.submission import Claim, ClaimLine
    from medcoder.claims.submission_writer import write_submission

    lines = (ClaimLine("enc-1-1", "G0439", ("XU",), Decimal(1), Decimal("120.00"), "20261015", ("E11.22", "N18.30")),
             ClaimLine("enc-1-2", "G0008", (), Decimal(1), Decimal("30.00"), "20261016", ("Z23",)))  # fmt: skip
    claim = Claim("enc-1", "MEDICARE", "outpatient", None, None, "20261015", ("E11.22", "N18.30", "Z23"), lines)
    path = write_submission([claim], tmp_path / "out.837", payer_name="MEDICARE", notes={"enc-1": "ATTESTED a 1 ff"})
    (back,) = read_claims(path).claims
    assert (back.claim_id, back.payer, back.diagnoses) == ("enc-1", "MEDICARE", claim.diagnoses)
    keys = [(x.line_control, x.procedure, x.modifiers, x.units, x.charge, x.service_date, x.diagnoses) for x in lines]
    assert [(x.line_control, x.procedure, x.modifiers, x.units, x.charge, x.service_date, x.diagnoses)
            for x in back.lines] == keys  # fmt: skip
    assert "NTE*ADD*ATTESTED a 1 ff~" in path.read_text()
    with pytest.raises(ValueError, match="note holds an X12 separator"):
        write_submission([claim], tmp_path / "bad.837", payer_name="MEDICARE", notes={"enc-1": "a*b"})
    with pytest.raises(ValueError, match="professional"):
        write_submission([dataclasses.replace(claim, setting="inpatient")], tmp_path / "i.837", payer_name="X")
