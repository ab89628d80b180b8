"""835 remittance advice read through x12sdk: what the payer did to each claim and line, and which
denials are the coder's to learn from; bad files fail with the file, transaction set, segment and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from medcoder.claims.carc import CarcFileError, carc_category, load_carc_descriptions
from medcoder.claims.remittance import read_remittance
from medcoder.claims.x12 import X12InputError

FIXTURE = Path(__file__).parent / "fixtures" / "x12" / "remittance_example.835"


def test_a_remittance_gives_each_claims_status_and_each_lines_adjudicated_code_date_control_and_reasons():
    claims = {c.claim_id: c for c in read_remittance(FIXTURE).claims}
    assert list(claims) == ["ENC-0001", "ENC-0002", "ENC-0003"]
    first = claims["ENC-0001"]
    assert (first.payer, first.status, first.charge, first.paid) == ("SYNTHETIC HEALTH PLAN", "1", 250, 80)
    denied_line, paid_line = first.lines
    assert (denied_line.procedure, denied_line.line_control, denied_line.service_date) == (
        "G0439", "ENC-0001-1", "20260105",
    )  # fmt: skip
    assert denied_line.remarks == ("N130",) and paid_line.modifiers == ("JW",)
    ((adjustment,),) = [denied_line.adjustments]
    assert (adjustment.group, adjustment.carc, adjustment.amount) == ("CO", "11", Decimal("150.00"))
    assert adjustment.is_coding_denial and adjustment.category == "diagnosis_support"
    # the payer adjudicated G0008 where G0009 was billed (SVC06)
    assert claims["ENC-0002"].lines[0].submitted_procedure == "G0009"


def test_the_patients_share_is_no_denial_and_only_coding_caused_denials_teach_the_coder():
    claims = {c.claim_id: c for c in read_remittance(FIXTURE).claims}
    coinsurance = claims["ENC-0001"].lines[1].adjustments[0]
    assert coinsurance.group == "PR" and not coinsurance.is_denial
    duplicate = claims["ENC-0002"].adjustments[0]  # OA 18: a duplicate is denied, but not for its codes
    assert duplicate.is_denial and not duplicate.is_coding_denial
    ineligible = claims["ENC-0003"]  # denied as a whole (CLP02 = 4) for eligibility (CARC 27)
    assert ineligible.denied and not ineligible.coding_denied
    assert claims["ENC-0002"].coding_denied  # CO 236, a code-pair conflict


def test_a_remittance_x12sdk_writes_reads_back_with_the_amounts_and_reasons_it_was_given(tmp_path):
    from x12sdk.generate import ClaimSpec, ServiceLineSpec, denial, generate_835

    spec = [ClaimSpec(charge="300.00", patient_control_number=f"C{k}", lines=[
        ServiceLineSpec(charge="200.00", procedure="G0439", adjustments=[denial("CO", "97", "200.00")]),
        ServiceLineSpec(charge="100.00", procedure="J1100"),
    ]) for k in range(4)]  # fmt: skip
    path = tmp_path / "generated.835"
    path.write_text(generate_835(seed=11, claims=spec), encoding="utf-8")
    claims = read_remittance(path).claims
    assert [c.claim_id for c in claims] == ["C0", "C1", "C2", "C3"]
    assert all(c.paid == 100 and c.lines[0].adjustments[0].category == "bundled" and c.coding_denied for c in claims)


def _two_sets(tmp_path: Path, second_set_edit: tuple[str, str]) -> Path:
    raw = FIXTURE.read_text(encoding="utf-8")
    start, end = raw.index("ST*835"), raw.index("GE*")
    body = raw[start:end]
    second = body.replace("ST*835*0001", "ST*835*0002").replace("SE*", "SE*", 1).replace("ENC-000", "ENC-100")
    second = second.replace("*0001~", "*0002~").replace(*second_set_edit)
    path = tmp_path / "two.835"
    path.write_text(raw[:end] + second + raw[end:].replace("GE*1*", "GE*2*"), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, where", [
    (("SVC*HC:G0439*150.00", "SVC*HC:G0439*15O.00"), "loop 2110 #1 > SVC > line_item_charge_amount"),
    (("CLP*ENC-1001*", "CLP**"), "loop 2100 #1 > CLP > patient_control_number"),
    (("LX*1~", "LX*1~\nFOO*1~"), "unsupported segment 'FOO'"),
])  # fmt: skip
def test_a_bad_transaction_set_names_file_set_loop_segment_and_field_or_is_skipped_with_its_claims(
    tmp_path, edit, where
):
    path = _two_sets(tmp_path, edit)
    with pytest.raises(X12InputError) as raised:
        read_remittance(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: transaction set 2: ") and where in message
    assert "15O.00" not in message and "ENC" not in message  # no value: it may be a patient's
    report = read_remittance(path, on_error="skip")
    assert [c.claim_id for c in report.claims] == ["ENC-0001", "ENC-0002", "ENC-0003"]
    ((skipped,),) = [report.skipped]
    assert skipped.claims == 3 and where in skipped.reason and skipped.where == f"{path}: transaction set 2"


@pytest.mark.parametrize("content, error", [
    ("CLP*1*1*10*10~", "not an X12 interchange"),
    (None, "is not an 835"),
])  # fmt: skip
def test_a_file_that_is_not_an_835_is_refused_with_its_name(tmp_path, content, error):
    path = tmp_path / "input.x12"
    if content is None:  # a claim submission given where remittance advice was expected
        from x12sdk.generate import generate_837p

        content = generate_837p(seed=1, claims=1)
    path.write_text(content, encoding="utf-8")
    with pytest.raises(X12InputError, match=error) as raised:
        read_remittance(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("carc, category, coding", [
    ("4", "modifier", True), ("11", "diagnosis_support", True), ("50", "diagnosis_support", True),
    ("6", "age", True), ("7", "sex", True), ("16", "missing_information", True), ("97", "bundled", True),
    ("234", "bundled", True),
    ("150", "level_of_service", True), ("151", "units", True), ("236", "code_pair", True), ("27", "eligibility", False),
    ("197", "authorization", False),
    ("18", "duplicate", False), ("29", "timely_filing", False), ("2", "patient_cost_share", False),
    ("999", "uncategorised", False),
])  # fmt: skip
def test_each_carc_falls_in_our_category_and_only_coding_causes_teach(carc, category, coding):
    assert (carc_category(carc).category, carc_category(carc).coding_caused) == (category, coding)


def test_licensed_carc_descriptions_load_from_the_users_file_and_a_bad_line_is_named(tmp_path):
    good = tmp_path / "carc.csv"
    good.write_text("code,description\n11,Licensed text eleven\n97,Licensed text ninety-seven\n", encoding="utf-8")
    assert load_carc_descriptions(good) == {"11": "Licensed text eleven", "97": "Licensed text ninety-seven"}
    bad = tmp_path / "bad.csv"
    bad.write_text("code,description\n11,ok\n97\n", encoding="utf-8")
    with pytest.raises(CarcFileError, match=rf"{bad}:3: expected two columns"):
        load_carc_descriptions(bad)


def test_claims_after_a_skipped_set_keep_their_own_set_number_and_x12sdks_checks_quote_no_value(tmp_path):
    """Skip the FIRST set: the second set's claims still say "transaction set 2". A check x12sdk runs itself
    (here: the claim's payment against its lines) says which field failed, not the value it saw."""
    raw = FIXTURE.read_text(encoding="utf-8")
    path = _two_sets(tmp_path, ("", ""))
    bad_first = path.read_text(encoding="utf-8").replace(
        "CLP*ENC-0001*1*250.00*80.00", "CLP*ENC-0001*1*250.00*81.37", 1
    )
    path.write_text(bad_first, encoding="utf-8")
    assert raw.count("81.37") == 0
    report = read_remittance(path, on_error="skip")
    ((skipped,),) = [report.skipped]
    assert skipped.where.endswith("transaction set 1") and "81.37" not in skipped.reason
    assert {c.source.rsplit(": ", 1)[1] for c in report.claims} == {"transaction set 2"}
