"""Registry operations that fail before any model is involved: each gives one clear RegistryError
(no stack trace from MLflow) and leaves the registry untouched. Real MLflow, private sqlite store."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from medcoder.data.schema import CodeAssignment, NoteRecord, write_notes
from medcoder.registry.client import RegistryError, alias_version, resolve_version
from medcoder.registry.promote import promote
from medcoder.registry.register import register_run


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> MlflowClient:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        root = tmp_path_factory.mktemp("registry-store")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        c = MlflowClient(tracking_uri=uri, registry_uri=uri)
        c.create_experiment("store-tests", artifact_location=(root / "artifacts").as_uri())
        yield c


@pytest.fixture
def eval_set(tmp_path):
    path = tmp_path / "eval.jsonl"
    write_notes(
        [NoteRecord(id="n1", text="Essential hypertension.", codes=(CodeAssignment("ICD-10-CM", "I10"),))], path
    )
    return path


def _run(client: MlflowClient) -> str:
    experiment = client.get_experiment_by_name("store-tests")
    run = client.create_run(experiment.experiment_id)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_register_names_a_missing_or_deleted_run(client):
    with pytest.raises(RegistryError, match=r"run 'f00' does not exist in sqlite:///"):
        register_run("f00", name="store", client=client)
    deleted = _run(client)
    client.delete_run(deleted)
    with pytest.raises(RegistryError, match=f"run {deleted} is deleted; restore it"):
        register_run(deleted, name="store", client=client)


def test_register_refuses_a_run_without_a_packaged_model(client):
    bare = _run(client)
    with pytest.raises(RegistryError, match=f"run {bare} has no packaged model named 'model'"):
        register_run(bare, name="store", client=client)
    assert not client.search_registered_models("name = 'store'")


def test_promote_without_challenger_or_eval_set_is_a_clear_error(client, eval_set):
    with pytest.raises(RegistryError, match="registered model 'store' has no @challenger: register a run first"):
        promote("store", eval_set, client=client)
    with pytest.raises(ValueError, match="promote needs a pinned evaluation set"):
        promote("store", None, client=client)


def test_versions_resolve_by_alias_or_number_with_clear_errors(client):
    client.create_registered_model("empty-model")
    assert alias_version(client, "empty-model", "champion") is None
    assert alias_version(client, "never-created", "champion") is None
    with pytest.raises(RegistryError, match=r"'empty-model' has no alias @champion"):
        resolve_version(client, "empty-model", "champion")
    with pytest.raises(RegistryError, match="'empty-model' has no version 3"):
        resolve_version(client, "empty-model", 3)
