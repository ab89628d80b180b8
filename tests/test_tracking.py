"""MLflow helpers: where experiments and artifacts go, param flattening, metrics, dataset inputs.

Every test uses a private sqlite store under a temporary folder, never the project's mlflow.db.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from medcoder import tracking
from medcoder.data.schema import CodeAssignment, NoteRecord, records_digest, text_fingerprint


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """One sqlite store for the module (creating the schema takes a few seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def _records(n: int, *, text: str = "Assessment: hypertension.") -> list[NoteRecord]:
    return [NoteRecord(id=f"n{i}", text=f"{text} {i}", codes=(CodeAssignment("ICD-10-CM", "I10"),)) for i in range(n)]


# ---------------------------------------------------------------- flatten_params
def test_flatten_params_nests_with_dots_and_stringifies():
    flat = tracking.flatten_params(
        {
            "model": {"lr": 1e-3, "lora": {"r": 8, "targets": ["query", "value"]}, "head": None},
            "callbacks": [{"monitor": "val/map"}, {"patience": 3}],
            "seed": 1,
            "empty": {},
        }
    )
    assert flat == {
        "model.lr": "0.001",
        "model.lora.r": "8",
        "model.lora.targets": '["query", "value"]',  # one setting, one param
        "model.head": "None",
        "callbacks.0.monitor": "val/map",
        "callbacks.1.patience": "3",
        "seed": "1",
        "empty": "{}",  # an empty group stays visible instead of vanishing
    }
    assert all(isinstance(v, str) for v in flat.values())


def test_flatten_params_refuses_values_mlflow_would_truncate():
    with pytest.raises(ValueError, match="'notes.blob' is 6001 characters"):
        tracking.flatten_params({"notes": {"blob": "x" * 6001}})


# ---------------------------------------------------------------- configure_mlflow
def test_artifact_root_sits_beside_the_sqlite_file(tmp_path):
    assert tracking.artifact_root_for(f"sqlite:///{tmp_path}/db/mlflow.db") == tmp_path / "db" / "mlartifacts"
    assert tracking.artifact_root_for("http://mlflow.example:5000") is None


def test_configure_mlflow_creates_experiment_with_explicit_artifact_location(store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a CWD-relative ./mlruns would land here
    experiment_id = tracking.configure_mlflow("unit/configure test", store)
    experiment = MlflowClient(store).get_experiment(experiment_id)
    expected = Path(store[len("sqlite:///") :]).parent / "mlartifacts" / "unit-configure-test"
    assert experiment.artifact_location == expected.as_uri()
    # idempotent: a second call finds the same experiment, and runs go into it
    assert tracking.configure_mlflow("unit/configure test", store) == experiment_id
    with mlflow.start_run() as run:
        mlflow.log_text("hello", "a.txt")
    assert run.info.experiment_id == experiment_id
    assert (expected / run.info.run_id / "artifacts" / "a.txt").read_text() == "hello"
    assert not (tmp_path / "mlruns").exists()


def test_configure_mlflow_says_what_to_do_with_a_deleted_experiment(store):
    client = MlflowClient(store)
    experiment_id = tracking.configure_mlflow("unit-deleted", store)
    client.delete_experiment(experiment_id)
    with pytest.raises(ValueError, match="is deleted .* restore it"):
        tracking.configure_mlflow("unit-deleted", store)


def test_configure_mlflow_rejects_empty_name(store):
    with pytest.raises(ValueError, match="non-empty"):
        tracking.configure_mlflow("  ", store)


# ---------------------------------------------------------------- logging in a run
def test_log_metrics_prefixes_and_keeps_nan(store):
    tracking.configure_mlflow("unit-metrics", store)
    with mlflow.start_run() as run:
        logged = tracking.log_metrics({"micro_f1": 0.5, "auc_macro": float("nan")}, "val")
    assert set(logged) == {"val/micro_f1", "val/auc_macro"}
    metrics = MlflowClient(store).get_run(run.info.run_id).data.metrics
    assert metrics["val/micro_f1"] == 0.5
    assert "val/auc_macro" in metrics  # undefined, but visible rather than silently missing


def test_log_dataset_digests_logs_text_free_inputs_with_sha256(store):
    tracking.configure_mlflow("unit-datasets", store)
    splits = {"train": _records(3), "val": _records(2, text="Plan: recheck")}
    with mlflow.start_run() as run:
        digests = tracking.log_dataset_digests(splits, "tiny")
    assert digests == {s: records_digest(r) for s, r in splits.items()}
    data = MlflowClient(store).get_run(run.info.run_id)
    inputs = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i for i in data.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val"}
    for split, dataset_input in inputs.items():
        tags = {t.key: t.value for t in dataset_input.tags}
        assert tags["sha256"] == digests[split]
        assert dataset_input.dataset.digest == digests[split][: tracking.DATASET_DIGEST_CHARS]
        assert dataset_input.dataset.name == f"tiny-{split}"
        assert "hypertension" not in dataset_input.dataset.schema and "Plan" not in dataset_input.dataset.schema
    assert data.data.params["dataset.train.notes"] == "3"
    assert data.data.tags["dataset.val.sha256"] == digests["val"]


def test_log_dataset_digests_logs_salted_note_fingerprints_without_text(store, tmp_path):
    """What promotion checks evaluation sets against: ids and salted text fingerprints, never text."""
    tracking.configure_mlflow("unit-fingerprints", store)
    splits = {"train": _records(3), "val": _records(2, text="Plan: recheck")}
    salts = []
    for _ in range(2):
        with mlflow.start_run() as run:
            tracking.log_dataset_digests(splits, "tiny")
        path = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id,
            artifact_path=tracking.FINGERPRINTS_ARTIFACT,
            dst_path=str(tmp_path / run.info.run_id),
        )
        raw = Path(path).read_text(encoding="utf-8")
        assert "hypertension" not in raw and "recheck" not in raw
        logged = json.loads(raw)
        salts.append(logged["salt"])
        for split, records in splits.items():
            assert logged["splits"][split]["ids"] == [r.id for r in records]
            assert logged["splits"][split]["text_sha256"] == [text_fingerprint(r.text, logged["salt"]) for r in records]
    assert salts[0] != salts[1]  # one run's fingerprints cannot be joined with another's
    assert text_fingerprint(" Assessment:\n HYPERTENSION. 0", "s") == text_fingerprint(
        "Assessment: hypertension. 0", "s"
    )


def test_log_dataframe_by_extension_and_rejects_unknown(store, tmp_path):
    tracking.configure_mlflow("unit-tables", store)
    df = pd.DataFrame({"code": ["I10", "E11.9"], "f1": [0.5, 0.25]})
    with mlflow.start_run() as run:
        tracking.log_dataframe(df, "tables/per_code.csv")
        tracking.log_dataframe(df, "tables/per_code.json")
        with pytest.raises(ValueError, match="unsupported artifact extension '.parquet'"):
            tracking.log_dataframe(df, "tables/per_code.parquet")
    local = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="tables", dst_path=str(tmp_path))
    )
    pd.testing.assert_frame_equal(pd.read_csv(local / "per_code.csv"), df)
    pd.testing.assert_frame_equal(pd.read_json(local / "per_code.json", orient="records"), df)


def test_log_figure_stores_png(store):
    from matplotlib.figure import Figure

    tracking.configure_mlflow("unit-figures", store)
    fig = Figure()
    fig.add_subplot().plot([0, 1], [0, 1])
    with mlflow.start_run() as run:
        tracking.log_figure(fig, "plots/line.png")
    artifacts = [a.path for a in MlflowClient(store).list_artifacts(run.info.run_id, "plots")]
    assert artifacts == ["plots/line.png"]


def test_run_context_records_commit_and_versions(store, tmp_path):
    context = tracking.run_context()
    assert context["git.commit"] == "none" or len(context["git.commit"]) == 40
    assert context["git.dirty"] in {"true", "false", "unknown"}
    assert context["version.mlflow"] == mlflow.__version__
    assert context["version.scikit-learn"] != "not installed"
    # outside a checkout there is no commit, and that is said, not guessed
    assert tracking.run_context(tmp_path)["git.commit"] == "none"
    tracking.configure_mlflow("unit-context", store)
    with mlflow.start_run() as run:
        tracking.log_run_context()
    tags = MlflowClient(store).get_run(run.info.run_id).data.tags
    assert tags["python.version"] == context["python.version"]
    assert tags["version.numpy"] == context["version.numpy"]
