"""The simulated payer's decisions written as a real 835 through x12sdk and read back unchanged: every field
the 835 carries round-trips, the file is one x12sdk reads, and an 835 that would not balance is refused."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from medcoder.claims.carc import carc_category
from medcoder.claims.join import join_remittance
from medcoder.claims.remittance import Adjustment, ClaimRemittance, RemittanceLine, read_remittance
from medcoder.claims.remittance_writer import write_remittance
from medcoder.claims.submission import read_claims

PAYER = "SYNTHETIC HEALTH PLAN"
PROFESSIONAL = Path(__file__).parent / "fixtures" / "x12" / "claims_professional.837"


def _adjustment(group: str, carc: str, amount: str, quantity: str | None = None) -> Adjustment:
    category = carc_category(carc)
    units = Decimal(quantity) if quantity else None
    return Adjustment(group, carc, Decimal(amount), units, category.category, category.coding_caused)


def _line(control: str | None, procedure: str, charge: str, paid: str, *adjustments: Adjustment,
          modifiers: tuple[str, ...] = (), submitted: str | None = None, units: str | None = "1",
          date: str | None = "20260105", remarks: tuple[str, ...] = ()) -> RemittanceLine:  # fmt: skip
    return RemittanceLine(control, "HC", procedure, modifiers, submitted, Decimal(charge), Decimal(paid),
                          Decimal(units) if units else None, date, adjustments, remarks)  # fmt: skip


def _claims() -> list[ClaimRemittance]:
    """A partly paid claim (a coding denial, a patient's share), a recoded and duplicate-reduced one, a denial."""
    first = ClaimRemittance(
        "written", PAYER, "SYNPAYER01", "ENC-0001", "1", Decimal("250.00"), Decimal("80.00"), Decimal("20.00"),
        "PCN-0001", None, (), (
            _line("ENC-0001-1", "G0439", "150.00", "0.00", _adjustment("CO", "11", "150.00"), remarks=("N130", "M76")),
            _line("ENC-0001-2", "J1100", "100.00", "80.00", _adjustment("PR", "2", "20.00"), modifiers=("JW", "XU"),
                  units="2"),
        ),
    )  # fmt: skip
    second = ClaimRemittance(
        "written", PAYER, "SYNPAYER01", "ENC-0002", "1", Decimal("180.00"), Decimal("90.00"), None, None, None,
        (_adjustment("OA", "18", "30.00"),), (
            _line(None, "G0008", "120.00", "60.00", _adjustment("CO", "236", "60.00", quantity="1"),
                  submitted="G0009", modifiers=("GA",), date=None),
            _line("ENC-0002-2", "Q2035", "60.00", "60.00", units=None),
        ),
    )  # fmt: skip
    denied = ClaimRemittance(
        "written", PAYER, "SYNPAYER01", "ENC-0003", "4", Decimal("90.00"), Decimal("0.00"), None, "PCN-0003",
        "20260120", (_adjustment("CO", "27", "90.00"),), (),
    )  # fmt: skip
    return [first, second, denied]


def _unsourced(claims: list[ClaimRemittance]) -> list[ClaimRemittance]:
    return [replace(c, source="") for c in claims]


def test_every_field_the_835_carries_reads_back_equal(tmp_path):
    claims = _claims()
    path = write_remittance(claims, tmp_path / "payer.835", payer_name=PAYER, payer_id="SYNPAYER01", seed=7)
    read = read_remittance(path).claims
    assert _unsourced(read) == _unsourced(claims)
    first, second, denied = read  # the same, spelled out for what matters most
    assert first.lines[1].modifiers == ("JW", "XU") and first.lines[0].remarks == ("N130", "M76")
    assert (second.lines[0].procedure, second.lines[0].submitted_procedure) == ("G0008", "G0009")
    assert [a.group for a in first.all_adjustments()] == ["CO", "PR"] and first.coding_denied
    assert denied.status == "4" and denied.denied and not denied.coding_denied and denied.service_date == "20260120"


def test_the_written_file_is_one_x12sdk_reads_and_the_same_records_write_the_same_bytes(tmp_path):
    from x12sdk.io import X12ModelReader

    path = write_remittance(_claims(), tmp_path / "a.835", payer_name=PAYER, payer_id="SYNPAYER01", seed=7)
    with X12ModelReader(str(path)) as reader:
        (transaction,) = list(reader.models())
    assert [c.patient_control_number for c in transaction.claims()] == ["ENC-0001", "ENC-0002", "ENC-0003"]
    again = write_remittance(_claims(), tmp_path / "b.835", payer_name=PAYER, payer_id="SYNPAYER01", seed=7)
    assert path.read_bytes() == again.read_bytes()


def test_a_written_remittance_joins_back_to_the_submitted_claims_line_by_line(tmp_path):
    submitted = read_claims(PROFESSIONAL).claims  # ENC-0002's first line billed G0008, with no REF*6R
    first, second, _ = _claims()
    recoded = replace(second.lines[0], procedure="G0009", submitted_procedure="G0008")
    second = replace(second, lines=(recoded, second.lines[1]))
    path = write_remittance([first, second], tmp_path / "payer.835", payer_name=PAYER, payer_id="SYNPAYER01", seed=1)
    report = join_remittance(submitted, read_remittance(path).claims)
    pairs = [(j.submitted.line_control, j.by) for joined in report.joined for j in joined.lines]
    assert pairs == [("ENC-0001-1", "line_control"), ("ENC-0001-2", "line_control"),
                     ("ENC-0002-1", "position"), ("ENC-0002-2", "line_control")]  # fmt: skip
    assert report.unmatched_remittances == [] and report.unremitted_claims == []


def _unbalanced_claim(claims: list[ClaimRemittance]) -> None:
    claims[1] = replace(claims[1], paid=Decimal("95.00"))


def _unbalanced_line(claims: list[ClaimRemittance]) -> None:
    lines = claims[0].lines
    claims[0] = replace(claims[0], lines=(lines[0], replace(lines[1], paid=Decimal("70.00"))))


def _fraction_of_a_cent(claims: list[ClaimRemittance]) -> None:
    third = Decimal("100.00") / 3
    lines = claims[0].lines
    cut = replace(lines[1].adjustments[0], amount=third)
    claims[0] = replace(claims[0], paid=Decimal("100.00") - third, lines=(lines[0], replace(lines[1],
                        paid=Decimal("100.00") - third, adjustments=(cut,))))  # fmt: skip


def _another_payer(claims: list[ClaimRemittance]) -> None:
    claims[2] = replace(claims[2], payer="ANOTHER PLAN")


def _separator_in_control(claims: list[ClaimRemittance]) -> None:
    lines = claims[0].lines
    claims[0] = replace(claims[0], lines=(replace(lines[0], line_control="ENC*1"), lines[1]))


def _unchanged_code_as_submitted(claims: list[ClaimRemittance]) -> None:
    lines = claims[1].lines
    claims[1] = replace(claims[1], lines=(replace(lines[0], submitted_procedure="G0008"), lines[1]))


@pytest.mark.parametrize("spoil, error", [
    (_unbalanced_claim, r"claim #2: paid \(CLP04\) is not the charge less the adjustments"),
    (_unbalanced_line, r"claim #1 line 2: paid \(SVC03\) is not the charge less the adjustments"),
    (_fraction_of_a_cent, r"claim #1: an amount has fractions of a cent"),
    (_another_payer, r"claim #3: its payer is not payer_name"),
    (_separator_in_control, r"claim #1 line 1: line_control holds an X12 separator"),
    (_unchanged_code_as_submitted, r"claim #2 line 1: submitted_procedure equals procedure"),
])  # fmt: skip
def test_a_remittance_that_an_835_cannot_carry_is_refused_naming_the_claims_position(tmp_path, spoil, error):
    claims = _claims()
    spoil(claims)
    with pytest.raises(ValueError, match=error) as raised:
        write_remittance(claims, tmp_path / "bad.835", payer_name=PAYER, payer_id="SYNPAYER01")
    assert "ENC" not in str(raised.value) and not (tmp_path / "bad.835").exists()
