"""The serving types: the generated JSON Schemas are current, real output lines are instances of them,
and a rejected record's error never carries its values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from export_support import TinyCoder
from pydantic import TypeAdapter, ValidationError

from medcoder.export.artifact import load_exported
from medcoder.inference.inputs import validate_input
from medcoder.inference.schema import ErrorEntry, OutputLine, Prediction, PredictionInput

ROOT = Path(__file__).resolve().parents[1]
CANARY = "Patient CANARY-7731 reports"


def test_the_schema_files_in_docs_are_generated_from_the_types():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "write_schemas.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    schema = json.loads((ROOT / "docs" / "schemas" / "prediction_input.schema.json").read_text())
    assert schema["required"] == ["id", "text"] and set(schema["properties"]) == {
        "id",
        "text",
        "setting",
        "age",
        "sex",
        "payer",
        "encounter_date",
        "prior_visit_date",  # the E/M patient-status edit (medcoder.codes.age_sex)
        "dual_status",  # the enrollment fields risk adjustment reads (medcoder predict --risk-adjustment)
        "new_enrollee",
        "institutional",
        "pregnant",
        "submitted_codes",
    }


def test_real_output_lines_are_instances_of_the_types(tiny: TinyCoder):
    coder = load_exported(tiny.export_dir)
    records = [{"id": r.id, "text": r.text, "setting": r.setting} for r in tiny.records[:3]] + [{"id": "e", "text": ""}]
    lines = coder.predict_records(records)
    parsed = [TypeAdapter(OutputLine).validate_python(line) for line in lines]
    assert [type(p) for p in parsed] == [Prediction, Prediction, Prediction, ErrorEntry]
    assert [p.model_dump(exclude_none=False)["id"] for p in parsed] == [r["id"] for r in records]


@pytest.mark.parametrize("field, value", [("setting", "ICU"), ("age", 200), ("sex", "female"), ("age", "67")])
def test_a_rejected_field_names_the_rule_not_the_value(field: str, value):
    record = {"id": "n1", "text": CANARY, field: value}
    with pytest.raises(ValidationError) as info:
        PredictionInput.model_validate(record)
    assert CANARY not in str(info.value) and str(value) not in str(info.value)
    error = validate_input(record, 1000)
    assert error.kind == "invalid_field" and f"'{field}'" in error.message and CANARY not in error.message
