"""The MLflow pyfunc: logged from code with the exported folder as an artifact, loadable offline in a
fresh process, one contract line per record for list and DataFrame input, and the training-job hook."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from export_support import REGISTERED_NAME, LoggedCoder, TinyCoder, tracking
from packaging.version import Version

from medcoder.codes import is_valid_code
from medcoder.export.mlflow_model import INPUT_EXAMPLE, export_and_log, rows_from_input
from medcoder.inference.contract import validate_contract_line
from medcoder.inference.manifest import verify_manifest
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.lit_module import CoderLitModule

torch.set_num_threads(2)


def test_logged_model_is_code_plus_artifacts_with_a_type_hint_signature(
    logged: LoggedCoder, tiny: TinyCoder, tmp_path
) -> None:
    with tracking(logged.tracking_uri):
        model_dir = Path(mlflow.artifacts.download_artifacts(logged.model_uri, dst_path=str(tmp_path)))
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    flavor = mlmodel["flavors"]["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"  # models-from-code, not a pickle
    assert not list(model_dir.rglob("*.pkl"))
    assert mlmodel["is_signature_from_type_hint"] is True
    # the signature names the input fields (a dict hint gave only map<any>)
    properties = json.loads(mlmodel["signature"]["inputs"])[0]["properties"]
    fields = {name: (spec["type"], spec["required"]) for name, spec in properties.items()}
    assert fields == {
        "id": ("string", True),
        "text": ("string", True),
        "setting": ("string", False),
        "age": ("long", False),
        "sex": ("string", False),
        "payer": ("string", False),  # read by the claim check (medcoder predict --denial-risk), not by the model
        "encounter_date": ("string", False),
        "prior_visit_date": ("string", False),  # read by the E/M patient-status edit (codes.age_sex), not the model
        # read by risk adjustment (medcoder predict --risk-adjustment), not by the model
        "dual_status": ("string", False),
        "new_enrollee": ("boolean", False),
        "institutional": ("boolean", False),
        "pregnant": ("boolean", False),
        "submitted_codes": ("array", False),
    }
    assert mlmodel["metadata"]["medcoder_manifest_sha256"] == verify_manifest(tiny.export_dir)
    assert verify_manifest(model_dir / flavor["artifacts"]["coder"]["path"]) == verify_manifest(tiny.export_dir)

    # public-index requirements only: no medcoder (it travels as code), no local build labels (+cpu)
    requirements = (model_dir / "requirements.txt").read_text().split()
    assert not [r for r in requirements if r.startswith("medcoder") or "+" in r]
    for name in ("torch", "transformers", "mlflow", "pydantic"):
        assert f"{name}=={Version(importlib.metadata.version(name)).public}" in requirements
    code = model_dir / flavor["code"]
    assert (code / "medcoder" / "export" / "mlflow_model.py").is_file() and (code / "medcoder" / "resources").is_dir()
    serving_example = json.loads((model_dir / "serving_input_example.json").read_text())
    assert serving_example == {"inputs": INPUT_EXAMPLE}


FRESH_PROCESS = """
import json, sys
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
records = json.loads(sys.stdin.read())
from_list = model.predict(records)
good = [r for r in records if isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"].strip()]
from_frame = model.predict(pd.DataFrame(good))
print(json.dumps({"list": from_list, "frame": from_frame}))
"""


def test_loads_offline_in_a_fresh_process_and_codes_list_and_dataframe_input(
    logged: LoggedCoder, tiny: TinyCoder, tmp_path
) -> None:
    notes = tiny.records[:3]
    records = [
        {"id": notes[0].id, "text": notes[0].text, "setting": notes[0].setting, "age": notes[0].age},
        {"id": "empty", "text": ""},
        {"id": notes[1].id, "text": notes[1].text},  # no setting, no age: NaN cells in the DataFrame
        {"id": "number", "text": 7},
        {"id": notes[2].id, "text": notes[2].text, "sex": notes[2].sex, "age": notes[2].age},
    ]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": logged.tracking_uri,
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "empty-hf-home"),  # no cache to fall back on: the artifact must be enough
        "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",  # any network use fails
    }  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, f"models:/{REGISTERED_NAME}@champion"],
        input=json.dumps(records), capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    from_list, from_frame = result["list"], result["frame"]
    texts = {r.id: r.text for r in notes}
    assert [line["id"] for line in from_list] == [r["id"] for r in records]
    assert [line.get("error", {}).get("kind") for line in from_list] == [None, "empty_text", None, "not_a_string", None]
    for line in from_list:
        validate_contract_line(line, note_text=texts.get(line["id"]), is_valid=is_valid_code)
    assert from_frame == [line for line in from_list if "error" not in line]  # a DataFrame row is its record
    # loaded by URI without a registry lookup (as a server is): the version written at registration
    assert from_list[0]["model"]["version"] == logged.version
    assert from_list[0]["model"]["run_id"] is None  # exported outside a run


def test_dataframe_rows_become_the_records_they_came_from() -> None:
    frame = pd.DataFrame([{"id": "a", "text": "x", "age": 70}, {"id": "b", "text": "y", "setting": "inpatient"}])
    assert frame["age"].dtype == np.float64  # the gap made the int column float
    assert rows_from_input(frame) == [
        {"id": "a", "text": "x", "age": 70},
        {"id": "b", "text": "y", "setting": "inpatient"},
    ]
    assert isinstance(rows_from_input(frame)[0]["age"], int)
    assert rows_from_input({"id": "a", "text": "x"}) == [{"id": "a", "text": "x"}]
    with pytest.raises(TypeError, match="list of records"):
        rows_from_input("just a string")


def test_export_and_log_puts_a_servable_model_in_the_active_run(logged: LoggedCoder, tiny: TinyCoder) -> None:
    coder = CoderLitModule.load_trained(str(tiny.checkpoint))
    with tracking(logged.tracking_uri):
        with pytest.raises(RuntimeError, match="active MLflow run"):
            export_and_log(coder, threshold=tiny.threshold, routing=RoutingPolicy())
        with mlflow.start_run() as run:
            export_and_log(coder, threshold=tiny.threshold, routing=RoutingPolicy(ungrounded="drop"), max_chars=5000)
        model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    exported = model.unwrap_python_model().coder
    assert exported.max_chars == 5000 and exported.routing.ungrounded == "drop"
    [line] = model.predict([{"id": tiny.records[0].id, "text": tiny.records[0].text}])
    assert line["model"]["run_id"] == run.info.run_id
    assert all(code["grounded"] for code in line["codes"])  # ungrounded codes dropped, as configured
