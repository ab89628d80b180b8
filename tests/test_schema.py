"""The data contract: valid records round-trip; every kind of invalid record names file, line and field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medcoder.codes.formats import CodeFormatError, normalize_code
from medcoder.data.labels import LabelSpace
from medcoder.data.schema import RecordError, load_notes, parse_record, read_notes, records_digest, write_notes

TEXT = "Assessment: type 2 diabetes with hyperglycemia. No evidence of pneumonia."


def good_record(**overrides):
    record = {
        "id": "n1",
        "patient_id": "p1",
        "encounter_date": "2026-03-14",
        "setting": "outpatient",
        "age": 67,
        "sex": "F",
        "payer": "medicare",
        "text": TEXT,
        "codes": [
            {"system": "ICD-10-CM", "code": "E11.65", "evidence": [[12, 46]]},
            {"system": "CPT", "code": "99213", "evidence": []},
        ],
        "mentions": [{"start": 63, "end": 72, "code": "J18.9", "status": "negated"}],
    }
    record.update(overrides)
    return record


def test_valid_record_round_trips_through_jsonl(tmp_path):
    record = parse_record(good_record())
    assert TEXT[12:46] == "type 2 diabetes with hyperglycemia"
    assert record.codes[0].evidence == ((12, 46),)
    assert record.mentions[0].status == "negated" and TEXT[63:72] == "pneumonia"
    path = tmp_path / "notes.jsonl"
    write_notes([record], path)
    assert load_notes(path) == [record]
    assert records_digest([record]) == records_digest(load_notes(path))


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": ""}, "id"),
        ({"text": 5}, "text"),
        ({"setting": "icu"}, "setting"),
        ({"age": -1}, "age"),
        ({"sex": "female"}, "sex"),
        ({"encounter_date": "14/03/2026"}, "encounter_date"),
        ({"codes": [{"system": "ICD-10-CM", "code": "e11.65", "evidence": []}]}, "codes[0].code"),
        ({"codes": [{"system": "ICD-10", "code": "E11.65"}]}, "codes[0].system"),
        ({"codes": [{"system": "ICD-10-CM", "code": "E11.65", "evidence": [[40, 500]]}]}, "codes[0].evidence[0]"),
        ({"codes": [{"system": "ICD-10-CM", "code": "E11.65", "evidence": [[5, 5]]}]}, "codes[0].evidence[0]"),
        ({"codes": [{"system": "CPT", "code": "99213"}, {"system": "CPT", "code": "99213"}]}, "codes[1].code"),
        ({"mentions": [{"start": 1, "end": 3, "code": "J18.9", "status": "maybe"}]}, "mentions[0].status"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_invalid_record_names_file_line_and_field(tmp_path, overrides, field):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(good_record(id="ok1")), json.dumps(good_record(**overrides))]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordError) as err:
        load_notes(path)
    assert err.value.line == 2 and err.value.field == field
    assert f"{path}:2" in str(err.value) and f"'{field}'" in str(err.value)
    assert "diabetes" not in str(err.value)  # no note text in error messages


def test_skip_mode_reports_every_skipped_record(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        (json.dumps(good_record(id="a")) + "\n{not json\n" + json.dumps(good_record(id="a")) + "\n").encode()
        + b"\xff\xfe\n"
        + (json.dumps(good_record(id="b", age=400)) + "\n").encode()
    )
    report = read_notes(path, on_error="skip")
    assert [r.id for r in report.records] == ["a"]
    assert [(e.line, e.field) for e in report.skipped] == [(2, "<line>"), (3, "id"), (4, "<line>"), (5, "age")]
    assert sum(report.skipped_by_reason().values()) == 4


@pytest.mark.parametrize(
    ("system", "raw", "canonical"),
    [
        ("ICD-10-CM", " e11.65 ", "E11.65"),
        ("ICD-10-CM", "E1165", "E11.65"),
        ("ICD-10-CM", "i10", "I10"),
        ("ICD-10-PCS", "0dtj4zz", "0DTJ4ZZ"),
        ("ICD-9-CM", "4280", "428.0"),
        ("ICD-9-CM", "E8801", "E880.1"),
        ("ICD-9-CM", "V1582", "V15.82"),
        ("ICD-9-PCS", "0066", "00.66"),
        ("CPT", "99214", "99214"),
        ("HCPCS", "g0444", "G0444"),
    ],
)
def test_normalize_code_external_forms(system, raw, canonical):
    assert normalize_code(system, raw) == canonical


@pytest.mark.parametrize(
    ("system", "raw"),
    [
        ("ICD-10-CM", "11.65E"),
        ("ICD-10-CM", ""),
        ("ICD-10-CM", "E11.65.1"),
        ("ICD-10-CM", "E1.165"),
        ("ICD-9-CM", "42.80"),
        ("CPT", "992.14"),
        ("CPT", "9921"),
        ("X", "A"),
    ],
)
def test_normalize_code_rejects_malformed(system, raw):
    with pytest.raises(CodeFormatError):
        normalize_code(system, raw)


def test_label_space_orders_by_frequency_and_encodes():
    recs = [parse_record(good_record(id=f"n{i}")) for i in range(3)]
    recs.append(parse_record(good_record(id="x", codes=[{"system": "ICD-10-CM", "code": "I10"}])))
    space = LabelSpace.from_records(recs)
    assert space.labels == (("CPT", "99213"), ("ICD-10-CM", "E11.65"), ("ICD-10-CM", "I10"))
    assert LabelSpace.from_records(recs, systems=["ICD-10-CM"], top_k=1).labels == (("ICD-10-CM", "E11.65"),)
    np.testing.assert_array_equal(space.encode(recs[-1]), [0, 0, 1])
    assert LabelSpace.from_list(space.to_list()) == space
