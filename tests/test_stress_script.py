"""scripts/score_stress.py end to end on hand-built predictions: the table, the record, the label
space read from the model's training run (or the annotation when the run cannot be read)."""

from __future__ import annotations

import importlib.util

import pytest
from behaviour_support import MODEL, contract_line, write_cases, write_lines

from medcoder.evaluation.stress import load_stress
from medcoder.paths import project_root

SCRIPT = project_root() / "scripts" / "score_stress.py"
NOTES = [
    {
        "id": "s-htn",
        "setting": "outpatient",
        "age": 58,
        "sex": "M",
        "style": "one_line",
        "text": "Assessment: essential hypertension, stable. Continue lisinopril.",
        "supported": ["I10"],
        "may_code": [],
        "out_of_label_space": [],
    },
    {
        "id": "s-gerd",
        "setting": "emergency",
        "age": 51,
        "sex": "M",
        "style": "ed",
        "text": "ED: epigastric burning, known GERD. Dx: GERD flare.",
        "supported": ["K21.9"],
        "may_code": [],
        "out_of_label_space": [],
    },
]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("score_stress", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def notes_file(tmp_path):
    return write_cases(NOTES, tmp_path / "stress.jsonl")


def predictions(notes_file, tmp_path, *, hallucinate: bool, run_id: str | None = None):
    htn, gerd = load_stress(notes_file)
    at = htn.text.index("essential hypertension")
    codes = {"I10": [(at, at + 22)], **({"I50.23": [(0, 10)]} if hallucinate else {})}
    flare = gerd.text.index("GERD flare")
    lines = [contract_line(htn, codes), contract_line(gerd, {"K21.9": [(flare, flare + 10)]})]
    for line in lines:
        line["model"] = {**MODEL, "run_id": run_id}
        for entry in line["codes"]:
            entry["score"] = 0.9995 if entry["code"] == "I50.23" else 0.9
    return write_lines(lines, tmp_path / "preds.jsonl")


def test_scores_a_predictions_file_and_writes_the_record(script, notes_file, tmp_path, capsys):
    preds = predictions(notes_file, tmp_path, hallucinate=True)
    out = tmp_path / "records" / "stress.md"
    assert script.main(["--stress", str(notes_file), "--predictions", str(preds), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| all | 2 | 3 |" in printed and f"wrote {out}" in printed
    record = out.read_text(encoding="utf-8")
    for part in (
        "## Question",
        "## Command",
        "scripts/score_stress.py",
        "medcoder version 7",
        "### By setting",
        "| emergency | 1 |",
        "### Unsupported codes emitted",
        "| I50.23 | 1 | 1 |",
        "## Decision",
    ):
        assert part in record, part
    assert "Does not meet the stress targets" in record and "1 unsupported codes grounded above 0.9" in record
    assert "out_of_label_space annotation (the predictions name no training run)" in record
    assert "hypertension" not in record and "epigastric" not in record  # no note text


def test_clean_output_meets_the_targets(script, notes_file, tmp_path):
    preds = predictions(notes_file, tmp_path, hallucinate=False)
    assert script.main(["--stress", str(notes_file), "--predictions", str(preds), "--out", str(tmp_path)]) == 0
    record = next(tmp_path.glob("*-stress-notes.md")).read_text(encoding="utf-8")
    assert "Meets the stress targets" in record


def test_label_space_comes_from_the_training_run_when_the_store_has_it(script, notes_file, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("stress-test")
    with mlflow.start_run() as run:
        mlflow.log_dict({"labels": [["ICD-10-CM", "I10"], ["CPT", "99213"]]}, "label_space.json")
    codes, source = script.run_label_codes({"run_id": run.info.run_id}, uri)
    assert codes == frozenset({"I10"}) and f"run {run.info.run_id}" in source
    missing, why = script.run_label_codes({"run_id": "0" * 32}, uri)
    assert missing is None and "annotation" in why


def test_bad_predictions_file_is_one_error_line(script, notes_file, tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "s-htn"\n', encoding="utf-8")
    assert script.main(["--stress", str(notes_file), "--predictions", str(preds)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("score_stress: error:") and "preds.jsonl:1" in err and "Traceback" not in err
