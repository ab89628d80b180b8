"""`medcoder predict --denial-risk models:/...`: the history a version was gated with, fetched through its tag."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from medcoder.claims.risk import DenialRiskModel, load_risk_model, save_risk_model
from medcoder.registry.client import RegistryError
from medcoder.registry.denial_risk import DENIAL_RISK_TAG, fetch_denial_risk


@pytest.fixture()
def store(tmp_path):
    """A tracking store with a run holding a history, and two versions: one tagged with it, one not."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri, uri)
    experiment = client.create_experiment("medcoder", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment)
    model = DenialRiskModel(min_count=7)
    model.seen[("code", "medicare", "93000")] = 9
    history = save_risk_model(model, tmp_path / "risk_model.json")
    client.log_artifact(run.info.run_id, str(history), "denial_risk")
    client.create_registered_model("medcoder")
    source = f"runs:/{run.info.run_id}/model"
    tagged = client.create_model_version("medcoder", source, run.info.run_id)
    client.set_model_version_tag("medcoder", tagged.version, DENIAL_RISK_TAG,
                                 f"runs:/{run.info.run_id}/denial_risk/risk_model.json")  # fmt: skip
    client.set_registered_model_alias("medcoder", "champion", tagged.version)
    client.create_model_version("medcoder", source, run.info.run_id)  # version 2: never compared, no tag
    return uri


def test_a_versions_tag_names_the_history_it_was_gated_with(store, tmp_path):
    for spec in ("models:/medcoder@champion", "models:/medcoder/1"):
        fetched = fetch_denial_risk(spec, tmp_path / spec.replace("/", "_").replace(":", ""), store)
        model = load_risk_model(fetched)
        assert model.min_count == 7 and model.seen[("code", "medicare", "93000")] == 9


def test_a_file_path_is_read_as_given_and_a_version_without_history_says_so(store, tmp_path):
    assert fetch_denial_risk("outputs/denial/world/risk_model.json", tmp_path) == Path(
        "outputs/denial/world/risk_model.json"
    )
    with pytest.raises(RegistryError, match=r"models:/medcoder/2 \(version 2\) has no 'denial_risk' tag"):
        fetch_denial_risk("models:/medcoder/2", tmp_path / "v2", store)
    with pytest.raises(RegistryError, match=r"has no version 9"):
        fetch_denial_risk("models:/medcoder/9", tmp_path / "v9", store)
    run_id = mlflow.MlflowClient(store).get_model_version("medcoder", "1").run_id
    with pytest.raises(RegistryError, match=r"cannot download the denial-risk history runs:/[0-9a-f]{32}/nothing"):
        fetch_denial_risk(f"runs:/{run_id}/nothing.json", tmp_path / "r", store)


def test_medcoder_predict_refuses_a_version_without_history_before_the_model_loads(store, tmp_path, monkeypatch,
                                                                                   capsys):  # fmt: skip
    from medcoder.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    notes = tmp_path / "notes.jsonl"
    notes.write_text('{"id": "n1", "text": "Hypertension.", "payer": "medicare"}\n', encoding="utf-8")
    argv = ["predict", "--input", str(notes), "--output", str(tmp_path / "out.jsonl"), "--model", "models:/medcoder/2",
            "--denial-risk", "models:/medcoder/2"]  # fmt: skip
    assert main(argv) == 2
    assert "has no 'denial_risk' tag" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
