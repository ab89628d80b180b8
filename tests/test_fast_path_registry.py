"""The ONNX fast path as an option of the registered model: `register_run(fast_path=...)` packages the encoder
and tags the version with its measured agreement, the pyfunc predicts through ONNX Runtime when the file is
packaged, and the promotion gate holds a version with a fast path to `min_fast_path_agreement`. The tiny
coder of export_support in a private sqlite store of this module."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import sys
from pathlib import Path

import mlflow
import pytest
from export_support import TinyCoder, tracking
from mlflow.tracking import MlflowClient

pytest.importorskip("onnxruntime", reason="the fast path needs the `fast` extra: pip install -e '.[fast]'")

from medcoder.export.artifact import ArtifactError, load_exported  # noqa: E402
from medcoder.export.fast_packaging import FAST_PATH_FILE, add_fast_path, with_packaged_fast_path  # noqa: E402
from medcoder.export.fast_path import OnnxEncoder, returned_codes  # noqa: E402
from medcoder.export.mlflow_model import log_packaged_model  # noqa: E402
from medcoder.inference.manifest import verify_manifest  # noqa: E402
from medcoder.registry.fetch import fetch_export  # noqa: E402
from medcoder.registry.gates import Gates, check_gates, fast_path_metrics  # noqa: E402
from medcoder.registry.register import register_run  # noqa: E402
from medcoder.registry.seal import SEAL_FILES_TAG  # noqa: E402
from medcoder.tracking import configure_mlflow  # noqa: E402

NAME = "medcoder-fast-path-test"
NOTES = 6  # embedded validation notes the agreement is measured on (cheap)


@dataclasses.dataclass(frozen=True)
class Registered:
    uri: str
    client: MlflowClient
    run_id: str
    float_version: str
    fast_version: str


def _load(registered: Registered, version: str, dst: Path):  # noqa: ANN202 (an MLflow PyFuncModel)
    """The version's pyfunc, loaded from a verified download (as promotion's scoring loads it)."""
    with tracking(registered.uri):
        sealed = fetch_export(f"models:/{NAME}/{version}", dst, registered.uri)
        return mlflow.pyfunc.load_model(str(sealed.folder.parent.parent))


@pytest.fixture(scope="module")
def registered(tiny: TinyCoder, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """One run of the tiny coder registered twice: as logged (float), then with the onnx-fp32 fast path."""
    root = tmp_path_factory.mktemp("fast-path-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with tracking(uri):
        configure_mlflow("fast-path-tests", uri)
        with mlflow.start_run() as run:
            log_packaged_model(tiny.export_dir, name="model")
    float_version = register_run(run.info.run_id, name=NAME, client=client).version
    fast = register_run(run.info.run_id, name=NAME, client=client, fast_path="onnx-fp32", fast_path_notes=NOTES)
    return Registered(uri, client, run.info.run_id, str(float_version), str(fast.version))


def test_register_with_a_fast_path_packages_the_onnx_file_and_tags_its_agreement(registered):
    fast = registered.client.get_model_version(NAME, registered.fast_version).tags
    plain = registered.client.get_model_version(NAME, registered.float_version).tags
    assert fast["fast_path"] == "onnx-fp32" and fast["fast_path_notes"] == str(NOTES)
    assert float(fast["fast_path_agreement"]) == 1.0, "float32 ONNX changed a code set of the tiny coder"
    assert fast["fast_path_sample"].startswith("embedded val split")
    sealed = json.loads(fast[SEAL_FILES_TAG])
    assert {"artifacts/coder/encoder.onnx", f"artifacts/coder/{FAST_PATH_FILE}"} <= set(sealed)
    assert not any(key.startswith("fast_path") for key in plain), "the float version got fast-path tags"
    assert not any(path.endswith(".onnx") for path in json.loads(plain[SEAL_FILES_TAG]))
    assert fast["manifest_sha256"] != plain["manifest_sha256"], "the packaged folder changed but not its identity"


def test_the_fast_version_predicts_through_onnx_and_returns_the_float_versions_codes(registered, tiny, tmp_path):
    fast_model = _load(registered, registered.fast_version, tmp_path / "fast")
    float_model = _load(registered, registered.float_version, tmp_path / "float")
    assert isinstance(fast_model.unwrap_python_model().coder.net.encoder, OnnxEncoder)
    assert not isinstance(float_model.unwrap_python_model().coder.net.encoder, OnnxEncoder)
    records = [{"id": r.id, "text": r.text} for r in tiny.records[:8]]
    expected, got = float_model.predict(records), fast_model.predict(records)
    assert any(line["codes"] for line in expected), "the tiny coder returned no code: nothing is compared"
    assert [returned_codes(line) for line in got] == [returned_codes(line) for line in expected]
    assert {line["model"]["version"] for line in got} != {line["model"]["version"] for line in expected}


def test_int8_packaging_keeps_only_its_file_seals_it_and_loads_it_only_with_onnxruntime(tiny, tmp_path, monkeypatch):
    folder = shutil.copytree(tiny.export_dir, tmp_path / "coder")
    notes = [{"id": r.id, "text": r.text} for r in tiny.records[:4]]
    info = add_fast_path(folder, "onnx-int8", notes, "tiny held-out notes")
    assert (info.fast_path, info.file, info.notes) == ("onnx-int8", "encoder-int8.onnx", 4)
    assert 0.0 <= info.agreement <= 1.0
    assert sorted(p.name for p in folder.glob("*.onnx")) == ["encoder-int8.onnx"]
    verify_manifest(folder)  # the ONNX file and fast_path.json are sealed with the rest
    float_coder = load_exported(folder)
    coder = with_packaged_fast_path(float_coder, folder, threads=1)
    assert coder.net.encoder.path == folder / "encoder-int8.onnx"
    with monkeypatch.context() as without:
        without.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
        with pytest.raises(ImportError, match=r"pip install 'medcoder\[fast\]'"):
            with_packaged_fast_path(float_coder, folder)
    (folder / FAST_PATH_FILE).write_text('{"fast_path": "onnx-int4"}', encoding="utf-8")
    with pytest.raises(ArtifactError, match=f"{FAST_PATH_FILE}: not a fast-path record"):
        with_packaged_fast_path(float_coder, folder)


def test_the_gate_refuses_a_fast_path_below_the_floor_and_ignores_versions_without_one(registered):
    good = {"micro_f1": 0.8, "ungrounded_code_rate": 0.0, "distractor_false_positive_rate": 0.0,
            "invalid_code_rate": 0.0, "contract_violation_rate": 0.0}  # fmt: skip
    fast_tags = registered.client.get_model_version(NAME, registered.fast_version).tags
    accepted = check_gates(good | fast_path_metrics(fast_tags), None, Gates())
    assert accepted.passed and "min_fast_path_agreement" in set(accepted.table["gate"])
    registered.client.set_model_version_tag(NAME, registered.fast_version, "fast_path_agreement", "0.95")
    lowered = registered.client.get_model_version(NAME, registered.fast_version).tags
    refused = check_gates(good | fast_path_metrics(lowered), None, Gates())
    restore = fast_tags["fast_path_agreement"]
    registered.client.set_model_version_tag(NAME, registered.fast_version, "fast_path_agreement", restore)
    assert not refused.passed
    assert refused.reasons == ["fast_path_agreement is 0.9500, below the minimum 0.99 (min_fast_path_agreement)"]
    plain = registered.client.get_model_version(NAME, registered.float_version).tags
    unaffected = check_gates(good | fast_path_metrics(plain), None, Gates())
    assert unaffected.passed and "min_fast_path_agreement" not in set(unaffected.table["gate"])
    assert math.isnan(fast_path_metrics({"fast_path_agreement": "n/a"})["fast_path_agreement"])
