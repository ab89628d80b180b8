"""NCCI PTP and MUE edits a user supplies: read from CSV or TSV (our column names or CMS's long headers),
looked up by date of service, with bad rows named by file, line and column. Fixtures use HCPCS Level II
codes only (CPT is AMA-licensed) and are written here."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from medcoder.claims.edits import NCCI_PTP_MODIFIERS, PtpEdit, read_mue_edits, read_ptp_edits, service_day
from medcoder.data.schema import RecordError


def write(tmp_path: Path, name: str, *rows: str, delimiter: str = ",") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r.replace("|", delimiter) for r in rows) + "\n", encoding="utf-8")
    return path


PTP_HEADER = "column_1|column_2|effective_date|deletion_date|modifier_indicator"


def ptp(tmp_path: Path, *rows: str, delimiter: str = ",") -> Path:
    return write(tmp_path, "ptp.csv", PTP_HEADER, *rows, delimiter=delimiter)


def test_a_ptp_edit_is_found_in_either_order_of_its_codes(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "G0439|G0444|20250101||1"))
    edit = edits.conflict("G0444", "g0439", "20260105")
    assert edit == PtpEdit("G0439", "G0444", date(2025, 1, 1), None, 1)
    assert edits.conflict("G0439", "G0444", date(2026, 1, 5)) == edit
    assert edits.conflict("G0439", "G0008", "2026-01-05") is None and len(edits) == 1


def test_a_ptp_edit_applies_from_its_effective_date_through_its_deletion_date(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "J1100|Q2035|20250401|20250930|0"))
    assert edits.conflict("J1100", "Q2035", "20250331") is None  # before it took effect
    assert edits.conflict("J1100", "Q2035", "20250401") is not None  # its first day
    assert edits.conflict("J1100", "Q2035", "20250930") is not None  # the deletion date is its last day
    assert edits.conflict("J1100", "Q2035", "20251001") is None  # the next quarter's release dropped it


def test_a_deletion_date_of_star_or_empty_means_the_edit_is_not_deleted(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "J1100|Q2035|20250101|*|1", "G0439|G0444|2025-01-01||1"))
    assert edits.conflict("Q2035", "J1100", "20991231").deletion is None
    assert edits.conflict("G0444", "G0439", "20991231") is not None


def test_a_deletion_before_the_effective_date_means_the_edit_never_applied(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "J1100|Q2035|20250401|20250331|1"))
    assert edits.conflict("J1100", "Q2035", "20250401") is None


def test_an_edit_re_added_after_a_deletion_is_found_by_the_date_of_service(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "J1100|Q2035|20240101|20241231|0", "Q2035|J1100|20250101|*|1"))
    assert edits.conflict("J1100", "Q2035", "20240615").modifier_indicator == 0
    assert edits.conflict("J1100", "Q2035", "20250615").column_1 == "Q2035"


def test_modifier_indicator_1_is_bypassed_by_59_but_0_never_is(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "G0439|G0444|20250101||1", "J1100|Q2035|20250101||0"))
    allowed, never = edits.conflict("G0439", "G0444", "20260105"), edits.conflict("J1100", "Q2035", "20260105")
    assert allowed.bypassed_by(["59"]) and allowed.bypassed_by(["xs"]) and allowed.bypassed_by(["JW", "25"])
    assert not allowed.bypassed_by([]) and not allowed.bypassed_by(["JW"])  # JW is no NCCI PTP-associated modifier
    assert not never.bypassed_by(["59"]) and not never.bypassed_by(NCCI_PTP_MODIFIERS)


def test_an_indicator_9_edit_is_no_conflict(tmp_path):
    edits = read_ptp_edits(ptp(tmp_path, "G0439|G0444|20250101|20250101|9"))
    assert edits.conflict("G0439", "G0444", "20250101") is None
    assert PtpEdit("G0439", "G0444", date(2025, 1, 1), None, 9).bypassed_by([])


def test_the_ncci_modifier_list_holds_the_documented_modifiers_once_each():
    assert {"59", "XE", "XS", "XP", "XU", "25", "91", "LT", "RT", "E1", "F9", "T9", "79"} <= set(NCCI_PTP_MODIFIERS)
    assert len(set(NCCI_PTP_MODIFIERS)) == len(NCCI_PTP_MODIFIERS)
    assert all(len(m) == 2 for m in NCCI_PTP_MODIFIERS)


def test_cms_long_headers_in_a_tsv_after_a_copyright_notice_are_recognised(tmp_path):
    path = write(
        tmp_path,
        "ccipra-v321r0-f1.txt",
        "CPT only copyright 2025 American Medical Association. All rights reserved.",
        "",
        "Column 1|Column 2|*=in existence prior to 1996|Effective Date|Deletion Date *=no data|"
        "Modifier 0=not allowed 1=allowed 9=not applicable|PTP Edit Rationale",
        "G0439|G0444|*|19960101|*|1|Misuse of column two code with column one code",
        delimiter="\t",
    )
    edit = read_ptp_edits(path).conflict("G0444", "G0439", "20260105")
    assert edit == PtpEdit("G0439", "G0444", date(1996, 1, 1), None, 1)


def test_headers_match_case_insensitively_in_any_column_order(tmp_path):
    path = write(tmp_path, "ptp.csv", "MODIFIER_INDICATOR,Effective_Date,COLUMN_2,Column1", "0,20250101,Q2035,J1100")
    edit = read_ptp_edits(path).conflict("J1100", "Q2035", "20250102")
    assert (edit.column_1, edit.column_2, edit.deletion, edit.modifier_indicator) == ("J1100", "Q2035", None, 0)


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("99-SECRET|G0444|20250101||1", "column_1", "not a CPT or HCPCS code"),
        ("G0439||20250101||1", "column_2", "not a CPT or HCPCS code"),
        ("G0439|G0444|2025-13-01||1", "effective_date", "must be a date"),
        ("G0439|G0444|||1", "effective_date", "must be a date"),
        ("G0439|G0444|20250101|someday|1", "deletion_date", "must be a date"),
        ("G0439|G0444|20250101||2", "modifier_indicator", "must be 0, 1 or 9"),
        ("G0439|G0444|20250101", "modifier_indicator", "must be 0, 1 or 9"),
    ],
)
def test_a_bad_ptp_row_is_an_error_naming_file_line_and_column(tmp_path, row, column, reason):
    with pytest.raises(RecordError) as info:
        read_ptp_edits(ptp(tmp_path, "J1100|Q2035|20250101||0", row))
    assert f"ptp.csv:3: field '{column}': {reason}" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_a_file_without_the_required_columns_says_which_are_expected(tmp_path):
    with pytest.raises(RecordError, match="no header row with the columns column_1, column_2, effective_date"):
        read_ptp_edits(write(tmp_path, "ptp.csv", "code_a,code_b,from,indicator", "G0439,G0444,20250101,1"))


def test_two_header_cells_that_read_as_one_column_are_an_error(tmp_path):
    path = write(tmp_path, "ptp.csv", "column_1,column_2,effective_date,modifier_indicator,modifier_2", "J1100")
    with pytest.raises(RecordError, match="ptp.csv:1: field 'modifier_indicator': columns 4 and 5"):
        read_ptp_edits(path)


MUE_HEADER = "code|max_units|adjudication_indicator|effective_date|deletion_date"


def test_an_mue_limit_is_found_by_code_and_date_of_service(tmp_path):
    path = write(tmp_path, "mue.csv", MUE_HEADER, "J1100|40|3|20250101|20250630", "J1100|60|3|20250701|", "g0008|1|2||")
    edits = read_mue_edits(path)
    assert edits.limit("J1100", "20250630").max_units == 40  # the deletion date is the old limit's last day
    assert edits.limit("J1100", "20250701").max_units == 60
    assert edits.limit("J1100", "20241231") is None  # before any row applied
    flu = edits.limit("G0008", date(2030, 1, 1))
    assert (flu.code, flu.max_units, flu.adjudication_indicator) == ("G0008", 1, 2)
    assert flu.effective is None and flu.deletion is None
    assert edits.limit("Q2035", "20250701") is None and len(edits) == 3


def test_cms_mue_headers_and_indicator_texts_are_recognised(tmp_path):
    path = write(
        tmp_path,
        "MCR_MUE_PractitionerServices.csv",
        "CPT codes and descriptions only are copyright 2025 American Medical Association",
        '"HCPCS/CPT Code","Practitioner Services MUE Values","MUE Adjudication Indicator","MUE Rationale"',
        'G0439,1,"2 Date of Service Edit: Policy","Code Descriptor / CPT Instruction"',
        'J1100,40,"3 Date of Service Edit: Clinical","Clinical: Data"',
        'Q2035,1,"1 Line Edit","Nature of Service/Procedure"',
    )
    edits = read_mue_edits(path)
    found = [edits.limit(code, "20260105") for code in ("G0439", "J1100", "Q2035")]
    assert [(e.max_units, e.adjudication_indicator) for e in found] == [(1, 2), (40, 3), (1, 1)]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("SECRET|1|2||", "code", "not a CPT or HCPCS code"),
        ("G0439|-1|2||", "max_units", "must be a whole number"),
        ("G0439|1.5|2||", "max_units", "must be a whole number"),
        ("G0439|1|4||", "adjudication_indicator", "must be 1 (line), 2"),
        ("G0439|1|2|2025-02-30|", "effective_date", "must be a date"),
        ("J1100|10|3|20250601|", "code", "applies on days the row on line 2 also covers"),
    ],
)
def test_a_bad_mue_row_is_an_error_naming_file_line_and_column(tmp_path, row, column, reason):
    with pytest.raises(RecordError) as info:
        read_mue_edits(write(tmp_path, "mue.tsv", MUE_HEADER, "J1100|40|3|20250101|20250630", row, delimiter="\t"))
    assert f"mue.tsv:3: field '{column}': {reason}" in str(info.value)
    assert "SECRET" not in str(info.value)


def test_a_service_date_is_a_date_or_an_x12_or_iso_date_string():
    assert service_day("20260105") == service_day("2026-01-05") == service_day(date(2026, 1, 5)) == date(2026, 1, 5)
    with pytest.raises(ValueError, match="service_date"):
        service_day("01/05/2026")


def test_a_claim_breaks_the_ptp_pair_on_its_column_2_line_and_the_mue_limit_of_its_date(tmp_path):
    from decimal import Decimal

    from medcoder.claims.edit_check import edit_hits
    from medcoder.claims.submission import Claim, ClaimLine

    pairs = read_ptp_edits(ptp(tmp_path, "G0439|G0444|20250101||1", "G0008|Q2035|20250101||0"))
    limits = read_mue_edits(write(tmp_path, "mue.csv", "code|max_units|adjudication_indicator", "J1100|2|2"))

    def line(k: int, code: str, units: int = 1, modifiers: tuple[str, ...] = ()) -> ClaimLine:
        return ClaimLine(f"c-{k}", code, modifiers, Decimal(units), Decimal(10), "20260105", ("E11.9",))

    lines = (line(1, "G0439"), line(2, "G0444"), line(3, "G0008"), line(4, "Q2035", modifiers=("59",)),
             line(5, "J1100", 2), line(6, "J1100", 1))  # fmt: skip
    claim = Claim("c", "p", "outpatient", 50, "F", "20260105", ("E11.9",), lines)
    hits = {(h.line_control, h.rule) for h in edit_hits(claim, pairs, limits)}
    # G0444 is column 2 of an indicator-1 pair without a modifier; Q2035's 59 cannot bypass indicator 0;
    # J1100: 3 units on the date against a date-of-service limit of 2 (indicator 2), reported once
    assert hits == {("c-2", "NCCI PTP"), ("c-4", "NCCI PTP"), ("c-6", "MUE")}
    bypassed = Claim("c", "p", "outpatient", 50, "F", "20260105", ("E11.9",),
                     (line(1, "G0439"), line(2, "G0444", modifiers=("59",))))  # fmt: skip
    assert edit_hits(bypassed, pairs, limits) == [] and edit_hits(claim) == []
