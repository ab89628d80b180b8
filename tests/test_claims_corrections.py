"""Coder corrections and appeal outcomes: every field is checked, a bad line names file, line and field but
never its value, skip mode counts what it left out, and overturned denials are kept out of the negatives."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from medcoder.claims.corrections import (
    AppealOutcome,
    Correction,
    CorrectionReport,
    overturned_keys,
    read_appeals,
    read_corrections,
)
from medcoder.codes import icd10cm
from medcoder.data.schema import RecordError

SECRET = "PATIENT-JANE-DOE-MRN-4471"  # a value that must never appear in an error message


def correction(**changes: Any) -> dict[str, Any]:
    record = {
        "encounter_id": "ENC-0001",
        "note_id": "NOTE-0001",
        "model_version": "7",
        "system": "ICD-10-CM",
        "code": "E11.65",
        "action": "add",
        "coder_id": "CODER-3",
        "timestamp": "2026-01-05T14:30:00+01:00",
    }
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def write_jsonl(tmp_path: Path, name: str, *records: dict[str, Any] | str) -> Path:
    path = tmp_path / name
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def error_of(tmp_path: Path, record: dict[str, Any] | str, name: str = "corrections.jsonl") -> str:
    """The error for a file whose line 2 is `record` (line 1 is good)."""
    path = write_jsonl(tmp_path, name, correction(), record)
    reader = read_appeals if name.startswith("appeals") else read_corrections
    with pytest.raises(RecordError) as info:
        reader(path)
    return str(info.value)


def test_every_field_of_a_correction_is_parsed_into_its_type(tmp_path):
    path = write_jsonl(
        tmp_path,
        "corrections.jsonl",
        correction(
            system="HCPCS", code="g0439", action="replace", replaced_code="G0438", modifiers=["25", "XS"],
            reason="documentation supports the subsequent visit", evidence={"start": 10, "end": 42},
        ),
    )  # fmt: skip
    (record,) = read_corrections(path).records
    assert (record.encounter_id, record.note_id, record.model_version, record.coder_id) == (
        "ENC-0001", "NOTE-0001", "7", "CODER-3",
    )  # fmt: skip
    assert (record.system, record.code, record.action, record.replaced_code) == ("HCPCS", "G0439", "replace", "G0438")
    assert record.modifiers == ("25", "XS") and record.reason.startswith("documentation")
    assert (record.evidence.start, record.evidence.end) == (10, 42)
    assert record.timestamp == datetime(2026, 1, 5, 13, 30, tzinfo=UTC)
    assert record.timestamp.utcoffset() == timedelta(hours=1)


def test_an_icd_10_cm_code_is_put_in_its_canonical_dotted_form_and_optional_fields_default_to_none(tmp_path):
    path = write_jsonl(tmp_path, "corrections.jsonl", correction(code="e1165", action="delete"))
    (record,) = read_corrections(path).records
    assert record.code == "E11.65" and record.replaced_code is None and record.modifiers == ()
    assert record.reason is None and record.evidence is None


def test_a_replace_without_the_replaced_code_is_an_error_naming_file_line_and_field(tmp_path):
    message = error_of(tmp_path, correction(action="replace"))
    assert message.endswith("corrections.jsonl:2: field 'replaced_code': required for action 'replace'")


def test_a_replaced_code_on_another_action_is_an_error_without_the_value(tmp_path):
    message = error_of(tmp_path, correction(action="add", replaced_code=SECRET))
    assert "corrections.jsonl:2: field 'replaced_code': only allowed for action 'replace'" in message
    assert SECRET not in message


def test_a_replace_by_the_same_code_is_an_error(tmp_path):
    message = error_of(tmp_path, correction(action="replace", replaced_code="e11.65"))
    assert "field 'replaced_code': must differ from code" in message


def test_a_modifier_correction_without_modifiers_is_an_error(tmp_path):
    message = error_of(tmp_path, correction(system="HCPCS", code="G0008", action="modifier"))
    assert "corrections.jsonl:2: field 'modifiers': required for action 'modifier'" in message


def test_a_modifier_that_is_not_two_characters_is_an_error_naming_its_position(tmp_path):
    message = error_of(tmp_path, correction(system="HCPCS", code="G0008", action="modifier", modifiers=["25", SECRET]))
    assert "corrections.jsonl:2: field 'modifiers[1]':" in message and SECRET not in message


def test_an_icd_10_cm_code_takes_no_modifiers(tmp_path):
    message = error_of(tmp_path, correction(modifiers=["25"]))
    assert "field 'modifiers': ICD-10-CM codes take no modifiers" in message


def test_an_icd_10_cm_code_that_does_not_exist_is_an_error_without_the_code(tmp_path):
    message = error_of(tmp_path, correction(code="E11.6599"))
    assert f"field 'code': not an ICD-10-CM code in {icd10cm.CODE_SET_VERSION}" in message
    assert "6599" not in message


@pytest.mark.parametrize(
    ("system", "code"), [("ICD-10-CM", SECRET), ("CPT", "G0439"), ("HCPCS", "99213"), ("HCPCS", SECRET)]
)
def test_a_code_not_in_its_systems_form_is_an_error_without_the_code(tmp_path, system, code):
    message = error_of(tmp_path, correction(system=system, code=code))
    assert f"corrections.jsonl:2: field 'code': not a well-formed {system} code" in message
    assert code not in message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"encounter_id": None}, "encounter_id"),
        ({"note_id": ""}, "note_id"),
        ({"model_version": 7}, "model_version"),
        ({"system": SECRET}, "system"),
        ({"action": SECRET}, "action"),
        ({"reason": 12}, "reason"),
        ({"evidence": {"start": -1, "end": 4}}, "evidence.start"),
        ({"evidence": {"start": 9, "end": 9}}, "evidence.end"),
        ({"evidence": {"start": "3", "end": 9}}, "evidence.start"),
        ({"evidence": {"start": 3, "end": 9, "text": SECRET}}, "evidence.text"),
        ({"coder_id": None}, "coder_id"),
        ({"timestamp": "2026-01-05T14:30:00"}, "timestamp"),
        ({"timestamp": "2026-01-05"}, "timestamp"),
        ({"timestamp": SECRET}, "timestamp"),
        ({"patient_name": SECRET}, "patient_name"),
    ],
)
def test_each_invalid_field_is_an_error_naming_file_line_and_field_but_not_the_value(tmp_path, changes, field):
    message = error_of(tmp_path, correction(**changes))
    assert f"corrections.jsonl:2: field '{field}': " in message
    assert SECRET not in message


def test_the_quoted_evidence_text_is_not_a_field_so_no_correction_file_holds_note_text(tmp_path):
    message = error_of(tmp_path, correction(evidence={"start": 3, "end": 9, "text": SECRET}))
    assert message.endswith("field 'evidence.text': not a field of the contract")


def test_a_line_that_is_not_a_json_object_is_an_error_naming_its_line(tmp_path):
    assert "corrections.jsonl:2: field '<line>': not valid JSON" in error_of(tmp_path, '{"code": "' + SECRET)
    assert "corrections.jsonl:2: field '<record>': must be a JSON object" in error_of(tmp_path, f'["{SECRET}"]')


def test_skip_mode_keeps_the_good_records_and_counts_the_skipped_ones_by_reason(tmp_path, caplog):
    path = write_jsonl(
        tmp_path,
        "corrections.jsonl",
        correction(),
        correction(action="replace"),
        "",
        correction(code="G0439", system="HCPCS", action="delete"),
        correction(action="replace", note_id="NOTE-2"),
        "not json",
    )
    report = read_corrections(path, on_error="skip")
    assert isinstance(report, CorrectionReport)
    assert [r.system for r in report.records] == ["ICD-10-CM", "HCPCS"]
    assert [(e.line, e.field) for e in report.skipped] == [(2, "replaced_code"), (5, "replaced_code"), (6, "<line>")]
    assert report.skipped_by_reason()["replaced_code: required for action 'replace'"] == 2
    assert "skipped 3 record(s)" in caplog.text


def test_on_error_accepts_only_raise_or_skip(tmp_path):
    with pytest.raises(ValueError, match="on_error"):
        read_corrections(write_jsonl(tmp_path, "corrections.jsonl", correction()), on_error="ignore")  # type: ignore[arg-type]


def appeal(**changes: Any) -> dict[str, Any]:
    record = {"claim_id": "ENC-0001", "line_control": "ENC-0001-1", "carc": "11", "outcome": "overturned"}
    record["decided_at"] = "2026-02-01"
    record.update(changes)
    return {k: v for k, v in record.items() if v is not None}


def test_every_field_of_an_appeal_outcome_is_parsed(tmp_path):
    path = write_jsonl(
        tmp_path, "appeals.jsonl", appeal(), appeal(line_control=None, carc="B7", decided_at="2026-02-03T09:00:00Z")
    )
    line, claim = read_appeals(path).records
    assert (line.claim_id, line.line_control, line.carc, line.outcome) == ("ENC-0001", "ENC-0001-1", "11", "overturned")
    assert line.decided_at == date(2026, 2, 1)
    assert claim.line_control is None and claim.decided_at == datetime(2026, 2, 3, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"claim_id": None}, "claim_id"),
        ({"line_control": ""}, "line_control"),
        ({"carc": SECRET}, "carc"),
        ({"outcome": SECRET}, "outcome"),
        ({"decided_at": SECRET}, "decided_at"),
        ({"decided_at": "2026-02-01T09:00:00"}, "decided_at"),
        ({"payer_note": SECRET}, "payer_note"),
    ],
)
def test_each_invalid_appeal_field_is_an_error_naming_file_line_and_field_but_not_the_value(tmp_path, changes, field):
    path = write_jsonl(tmp_path, "appeals.jsonl", appeal(), appeal(**changes))
    with pytest.raises(RecordError) as info:
        read_appeals(path)
    assert f"appeals.jsonl:2: field '{field}': " in str(info.value) and SECRET not in str(info.value)


def test_appeals_in_skip_mode_keep_the_good_ones_and_list_the_bad_ones(tmp_path):
    path = write_jsonl(tmp_path, "appeals.jsonl", appeal(), appeal(outcome="won"), appeal(claim_id="ENC-0002"))
    report = read_appeals(path, on_error="skip")
    assert [a.claim_id for a in report.records] == ["ENC-0001", "ENC-0002"]
    assert [(e.line, e.field) for e in report.skipped] == [(2, "outcome")]


def test_overturned_keys_are_the_denials_an_appeal_overturned_at_any_level():
    def outcome(claim: str, line: str | None, result: str, carc: str = "11") -> AppealOutcome:
        return AppealOutcome(claim_id=claim, line_control=line, carc=carc, outcome=result, decided_at=date(2026, 2, 1))

    appeals = [
        outcome("C1", "C1-1", "overturned"),
        outcome("C1", "C1-2", "upheld"),
        outcome("C2", None, "overturned", carc="16"),  # a claim-level denial
        outcome("C3", "C3-1", "upheld"),  # first level upheld, second level overturned
        outcome("C3", "C3-1", "overturned"),
        outcome("C4", "C4-1", "upheld", carc="97"),
    ]
    assert overturned_keys(appeals) == {("C1", "C1-1"), ("C2", None), ("C3", "C3-1")}
    assert overturned_keys([]) == set()


def test_the_models_are_frozen_so_a_read_record_cannot_be_changed_in_place(tmp_path):
    (record,) = read_corrections(write_jsonl(tmp_path, "corrections.jsonl", correction())).records
    with pytest.raises(Exception, match="frozen"):
        record.code = "I10"  # type: ignore[misc]
    assert isinstance(record, Correction)
