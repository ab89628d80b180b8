"""The registration seal covers the whole model folder (MLmodel, the models-from-code file, the
export, whatever else is there) and is checked BEFORE any of the model's code is imported, in
`medcoder predict`, in promotion's scoring and in `medcoder serve`. A regenerated manifest does
not pass, because the trusted hash lives in the registry. Real tiny model, private sqlite store;
the code-execution cases plant a harmless marker-writing line and check the marker never appears."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mlflow
import pytest
from export_support import TinyCoder, tracking
from mlflow.tracking import MlflowClient

from medcoder.cli import build_parser
from medcoder.export.mlflow_model import log_packaged_model
from medcoder.inference.manifest import MANIFEST_NAME, TamperedArtifactError, write_manifest
from medcoder.registry.client import RegistryError
from medcoder.registry.register import register_run
from medcoder.registry.scoring import evaluate_registered
from medcoder.registry.seal import SEAL_FILES_TAG, SEAL_SHA256_TAG
from medcoder.serving.predict import cmd_predict
from medcoder.tracking import configure_mlflow


class Store:
    def __init__(self, uri: str, tiny: TinyCoder, root: Path) -> None:
        self.uri, self.tiny, self.root = uri, tiny, root
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)

    def register(self, name: str) -> tuple[str, Path]:
        """Log the tiny export as a new run's model, register it; returns (version, its stored folder)."""
        with tracking(self.uri):
            configure_mlflow("seal-tests", self.uri)
            with mlflow.start_run() as run:
                log_packaged_model(self.tiny.export_dir, name="model")
        version = register_run(run.info.run_id, name=name, client=self.client)
        stored = Path(self.client.get_model_version_download_uri(name, version.version).removeprefix("file://"))
        assert (stored / "MLmodel").is_file(), stored
        return str(version.version), stored


@pytest.fixture(scope="module")
def store(tiny: TinyCoder, tmp_path_factory) -> Store:
    root = tmp_path_factory.mktemp("seal")
    return Store(f"sqlite:///{root / 'mlflow.db'}", tiny, root)


@pytest.fixture()
def notes(tiny: TinyCoder, tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text(
        "".join(json.dumps({"id": r.id, "text": r.text}) + "\n" for r in tiny.records[:2]), encoding="utf-8"
    )
    return path


def _predict(store: Store, model: str, notes: Path, out: Path, monkeypatch) -> int:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    with tracking(store.uri):
        args: argparse.Namespace = build_parser().parse_args(
            ["predict", "--input", str(notes), "--output", str(out), "--model", model]
        )
        return cmd_predict(args)


def _plant_marker(code_file: Path, marker: Path) -> None:
    with code_file.open("a", encoding="utf-8") as fh:
        fh.write(f"\nimport pathlib\npathlib.Path({str(marker)!r}).write_text('the model code ran')\n")


def test_registration_seals_every_file_of_the_model_folder(store: Store) -> None:
    version, stored = store.register("seal-tags")
    tags = store.client.get_model_version("seal-tags", version).tags
    listing = json.loads(tags[SEAL_FILES_TAG])
    on_disk = sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file())
    assert sorted(listing) == on_disk
    assert {"MLmodel", f"artifacts/coder/{MANIFEST_NAME}", "artifacts/coder/coder.json"} <= set(listing)
    assert any(path.endswith(".py") for path in listing)  # the models-from-code file MLflow executes on load
    assert len(tags[SEAL_SHA256_TAG]) == 64


def test_predict_refuses_changed_model_code_before_importing_it(
    store: Store, notes: Path, tmp_path: Path, monkeypatch
) -> None:
    version, stored = store.register("seal-code")
    [code_file] = [p for p in stored.glob("*.py")]
    marker = tmp_path / "marker.txt"
    _plant_marker(code_file, marker)
    out = tmp_path / "out.jsonl"
    with pytest.raises(
        TamperedArtifactError, match=rf"{code_file.name}: SHA-256 differs from the model sealed at registration"
    ) as err:
        _predict(store, f"models:/seal-code/{version}", notes, out, monkeypatch)
    assert "\n" not in str(err.value)
    assert not marker.exists() and not out.exists()


def test_an_unregistered_model_folder_runs_no_code_of_its_own(
    store: Store, notes: Path, tmp_path: Path, monkeypatch
) -> None:
    """A folder (or runs:/ URI) has no registered seal: medcoder runs its sealed export itself and
    names it by content, so an edited pyfunc file or a spoofed MLmodel changes nothing."""
    version, stored = store.register("seal-folder")
    folder = tmp_path / "model"
    folder.mkdir()
    for path in stored.rglob("*"):
        if path.is_file():
            target = folder / path.relative_to(stored)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    marker = tmp_path / "marker.txt"
    _plant_marker(next(folder.glob("*.py")), marker)
    out = tmp_path / "out.jsonl"
    assert _predict(store, str(folder), notes, out, monkeypatch) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert not marker.exists()
    assert lines[0]["model"]["version"].startswith("sha256:")


def test_a_regenerated_manifest_or_an_edited_mlmodel_does_not_pass(
    store: Store, notes: Path, tmp_path: Path, monkeypatch
) -> None:
    version, stored = store.register("seal-manifest")
    config = stored / "artifacts" / "coder" / "coder.json"
    data = json.loads(config.read_text(encoding="utf-8"))
    data["threshold"] = 0.01
    config.write_text(json.dumps(data), encoding="utf-8")
    write_manifest(config.parent)  # what an attacker with write access to the store would do
    with pytest.raises(TamperedArtifactError, match=r"(coder\.json|MANIFEST\.sha256\.json): SHA-256 differs"):
        _predict(store, f"models:/seal-manifest/{version}", notes, tmp_path / "out.jsonl", monkeypatch)
    with pytest.raises(TamperedArtifactError, match=r"coder\.json|MANIFEST\.sha256\.json"):  # promotion's scoring too
        evaluate_registered(version, _eval_set(store, tmp_path), name="seal-manifest", client=store.client)

    version, stored = store.register("seal-mlmodel")
    mlmodel = stored / "MLmodel"
    mlmodel.write_text(mlmodel.read_text(encoding="utf-8") + "\n# spoofed\n", encoding="utf-8")
    with pytest.raises(TamperedArtifactError, match=r"MLmodel: SHA-256 differs"):
        _predict(store, f"models:/seal-mlmodel/{version}", notes, tmp_path / "out.jsonl", monkeypatch)


def test_an_added_file_and_a_version_without_a_seal_are_refused(
    store: Store, notes: Path, tmp_path: Path, monkeypatch
) -> None:
    version, stored = store.register("seal-extra")
    (stored / "sitecustomize.py").write_text("print('hello')\n", encoding="utf-8")
    with pytest.raises(TamperedArtifactError, match=r"sitecustomize\.py: not in the model sealed at registration"):
        _predict(store, f"models:/seal-extra/{version}", notes, tmp_path / "out.jsonl", monkeypatch)

    version, _ = store.register("seal-none")
    store.client.delete_model_version_tag("seal-none", version, SEAL_SHA256_TAG)
    with pytest.raises(RegistryError, match=r"has no model seal .* register its run again"):
        _predict(store, f"models:/seal-none/{version}", notes, tmp_path / "out.jsonl", monkeypatch)


def _eval_set(store: Store, tmp_path: Path) -> Path:
    from medcoder.data.schema import write_notes

    path = tmp_path / "eval.jsonl"
    write_notes(store.tiny.records[:4], path)
    return path


def test_serve_checks_the_seal_before_and_again_in_each_worker(store: Store, tmp_path: Path, monkeypatch) -> None:
    """`medcoder serve` (the documented serving entry point): refused before the server starts, and a
    file changed after that check is still caught by the worker before it imports the model's code."""
    from medcoder.serving.app import create_app
    from medcoder.serving.command import prepare

    version, stored = store.register("seal-serve")
    marker = tmp_path / "marker.txt"
    _plant_marker(next(stored.glob("*.py")), marker)
    with pytest.raises(TamperedArtifactError, match=r"\.py: SHA-256 differs"):
        prepare(f"models:/seal-serve/{version}", tmp_path / "work-1", store.uri)
    assert not marker.exists()

    version, _ = store.register("seal-serve-2")
    env = prepare("models:/seal-serve-2@challenger", tmp_path / "work-2", store.uri)
    served = Path(env["MEDCODER_SERVE_MODEL_DIR"])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr("sys.dont_write_bytecode", False)
    create_app()  # the first worker loads the model ...
    create_app()  # ... and leaves nothing behind that the next worker's check would refuse
    assert not list(served.rglob("__pycache__"))
    assert json.loads(env["SERVING_MODEL_CONFIG"]) == {"model_name": "seal-serve-2", "model_version": version}
    assert served not in Path(env["MEDCODER_SERVE_SEAL"]).parents  # the seal lives outside the served folder
    _plant_marker(next(served.glob("*.py")), marker)
    with pytest.raises(TamperedArtifactError, match=r"\.py: SHA-256 differs"):
        create_app()
    assert not marker.exists()


def test_mlflows_own_bookkeeping_file_does_not_break_the_seal(
    store: Store, notes: Path, tmp_path: Path, monkeypatch
) -> None:
    """Loading a version through models:/ makes MLflow write `registered_model_meta` into a local
    store's model folder: that file is MLflow's, never code, and must not make the version unusable."""
    version, stored = store.register("seal-meta")
    with tracking(store.uri):
        mlflow.pyfunc.load_model(f"models:/seal-meta/{version}")
    assert (stored / "registered_model_meta").is_file()  # MLflow wrote into the store
    assert _predict(store, f"models:/seal-meta/{version}", notes, tmp_path / "out.jsonl", monkeypatch) == 0
