"""Registry round trips on a real tiny model in a private sqlite store (no mocks):
register tags the version and sets @challenger; the first promotion installs a champion; a worse
challenger is refused and the champion stays; an equal one is promoted; decisions are recorded as
version tags and alias moves in the alias history; and (slow) a registered model scored from the
registry reproduces the test metrics its training run logged.

The training run is logged the way `medcoder-train` logs one (run context, dataset digests, val/test
metrics, `log_evaluation`, `export_and_log`), so these tests read what real runs write. Each test
registers under its own model name, so tests do not depend on each other's aliases.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lightning as L
import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from test_model_corpus import make_corpus

from medcoder import tracking
from medcoder.codes import code_set_versions, validator_for
from medcoder.data.datamodule import CodingDataModule
from medcoder.data.schema import records_digest, write_notes
from medcoder.evaluation.contract import load_eval_set
from medcoder.evaluation.split import evaluate_coder, log_evaluation, run_label_space
from medcoder.export.mlflow_model import export_and_log
from medcoder.inference.manifest import MANIFEST_NAME, TamperedArtifactError
from medcoder.inference.predict import predict_with_scores
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule
from medcoder.registry.alias_history import read_alias_history
from medcoder.registry.client import RegistryError
from medcoder.registry.gates import Gates
from medcoder.registry.promote import promote
from medcoder.registry.register import KEY_METRICS, register_run
from medcoder.registry.scoring import evaluate_registered

pytestmark = pytest.mark.slow  # a tiny model is trained, exported and loaded: ~30 s of CPU in all (`make test-slow`)
torch.set_num_threads(2)
CHUNKING = dict(chunk_size=32, chunk_overlap=8, max_chunks=4)
FLOOD_THRESHOLD = 0.01  # the "worse" export: nearly every label is emitted


class Env:
    """What the module fixture built: the store, the corpus folder and the runs."""

    def __init__(
        self, client: MlflowClient, data_dir: Path, good_run: str, worse_run: str, bare_run: str, tampered_run: str
    ):
        self.client, self.data_dir = client, data_dir
        self.good_run, self.worse_run, self.bare_run, self.tampered_run = good_run, worse_run, bare_run, tampered_run
        self.eval_set = load_eval_set(data_dir / "test.jsonl")


def _train_tiny_coder(data_dir: Path) -> tuple[CodingDataModule, CoderLitModule]:
    dm = CodingDataModule(dataset="embedded", data_dir=str(data_dir), encoder="tiny-random-bert", batch_size=8,
                          label_systems=["ICD-10-CM"], **CHUNKING)  # fmt: skip
    dm.setup("fit")
    torch.manual_seed(0)
    coder = CoderLitModule(
        net=functools.partial(
            MedicalCoder, encoder="tiny-random-bert", finetune="full", attention_size=32, head_dropout=0.0
        ),
        labels=dm.label_space.to_list(),
        optimizer=functools.partial(torch.optim.AdamW, lr=5e-3),
        encoder_lr=5e-3,
        attention_loss_weight=1.0,
        **CHUNKING,
    )
    L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, num_sanity_val_steps=0, max_epochs=5).fit(coder, datamodule=dm)  # fmt: skip
    return dm, coder


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("registry")
    data_dir = root / "corpus"
    for split, n, seed in (("train", 32, 0), ("val", 12, 1), ("test", 16, 2)):
        write_notes(make_corpus(n, seed), data_dir / f"{split}.jsonl")
    dm, coder = _train_tiny_coder(data_dir)
    label_space = dm.label_space
    evaluation = evaluate_coder(
        lambda records, t: predict_with_scores(coder, records, t),
        dm.records,
        label_space,
        is_valid=validator_for(system for system, _ in label_space.labels),
    )

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        uri = f"sqlite:///{root / 'mlflow.db'}"
        tracking.configure_mlflow("registry-tests", uri)

        def training_run(threshold: float | None) -> str:
            """A run logged like medcoder-train's; `threshold=None` logs no packaged model."""
            with mlflow.start_run() as run:
                mlflow.set_tags({"model_family": "neural_coder", "dataset": "embedded"})
                tracking.log_run_context()
                tracking.log_dataset_digests(dm.records, "embedded", source=str(data_dir))
                for split, result in evaluation.results.items():
                    tracking.log_metrics(result.metrics, split)
                log_evaluation(evaluation, label_space, log_metrics=False)
                if threshold is not None:
                    export_and_log(coder, threshold=threshold, routing=RoutingPolicy())
            return run.info.run_id

        good, worse, bare, tampered = (
            training_run(evaluation.threshold),
            training_run(FLOOD_THRESHOLD),
            training_run(None),
            training_run(evaluation.threshold),
        )
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        # Change one byte of the sealed folder of the last run's logged model, as an attacker would.
        [model] = [
            m
            for m in client.search_logged_models([client.get_run(tampered).info.experiment_id])
            if m.source_run_id == tampered
        ]
        folder = next(Path(model.artifact_location.removeprefix("file://")).rglob(MANIFEST_NAME)).parent
        heads = folder / "heads.safetensors"
        data = bytearray(heads.read_bytes())
        data[-1] ^= 0x01
        heads.write_bytes(bytes(data))
        yield Env(client, data_dir, good, worse, bare, tampered)


# ---------------------------------------------------------------- register
def test_register_creates_a_tagged_version_with_alias_challenger(env):
    version = register_run(env.good_run, name="reg-tags", client=env.client)
    run = env.client.get_run(env.good_run)
    assert str(version.version) == "1" and version.aliases == ["challenger"] and version.run_id == env.good_run
    tags = version.tags
    assert tags["git_commit"] == run.data.tags["git.commit"]
    for split in ("train", "val", "test"):
        assert tags[f"dataset.{split}.sha256"] == run.data.tags[f"dataset.{split}.sha256"]
    assert tags["dataset.test.sha256"] == records_digest(env.eval_set.records)
    assert json.loads(tags["code_sets"]) == code_set_versions()
    for key in KEY_METRICS:
        assert float(tags[key]) == run.data.metrics[key], key
    assert "metrics_missing" not in tags
    model = mlflow.models.get_model_info(f"runs:/{env.good_run}/model")
    assert tags["manifest_sha256"] == model.metadata["medcoder_manifest_sha256"]
    assert len(tags["manifest_sha256"]) == 64
    history = read_alias_history(env.client, "reg-tags")
    assert [(h["alias"], h["version"]) for h in history] == [("challenger", "1")]
    assert env.good_run in history[0]["reason"]


def test_register_refuses_unpackaged_runs_and_tampered_artifacts(env):
    with pytest.raises(RegistryError, match=f"run {env.bare_run} has no packaged model named 'model'"):
        register_run(env.bare_run, name="reg-bad", client=env.client)
    with pytest.raises(TamperedArtifactError, match="heads.safetensors: SHA-256 differs"):
        register_run(env.tampered_run, name="reg-bad", client=env.client)
    assert not env.client.search_registered_models("name = 'reg-bad'")  # nothing half-registered


def test_evaluation_refuses_a_package_that_is_not_the_registered_one(env):
    """A version whose stored, validly sealed content differs from the registered manifest hash
    (files swapped and re-sealed after registration) is never scored or promoted."""
    version = register_run(env.good_run, name="swapped", client=env.client)
    env.client.set_model_version_tag("swapped", version.version, "manifest_sha256", "0" * 64)
    with pytest.raises(RegistryError, match="the artifact changed after registration"):
        evaluate_registered("challenger", env.eval_set, name="swapped", client=env.client)


# ---------------------------------------------------------------- promote
def test_first_promotion_then_a_worse_challenger_is_refused_and_the_champion_stays(env):
    name = "promote-flow"
    first = register_run(env.good_run, name=name, client=env.client)
    decision = promote(name, env.eval_set, Gates(), client=env.client)
    assert decision.passed and "first promotion" in decision.reasons[0]
    assert str(env.client.get_model_version_by_alias(name, "champion").version) == str(first.version)
    tags = env.client.get_model_version(name, first.version).tags
    assert tags["promotion.decision"] == "promoted"
    assert tags["promotion.champion_version"] == "none"
    assert tags["promotion.eval_set_sha256"] == records_digest(env.eval_set.records)
    assert (
        float(tags["promotion.challenger.micro_f1"])
        == decision.table.set_index("gate").loc["max_micro_f1_drop", "challenger"]
    )

    worse = register_run(env.worse_run, name=name, client=env.client)
    refused = promote(name, env.eval_set, Gates(), client=env.client)
    assert not refused.passed
    assert str(env.client.get_model_version_by_alias(name, "champion").version) == str(first.version)  # never moved
    table = refused.table.set_index("gate")
    assert (
        table.loc["max_distractor_fp_rate_increase", "challenger"]
        > table.loc["max_distractor_fp_rate_increase", "champion"]
    )
    assert any(r.startswith("distractor_false_positive_rate rose") for r in refused.reasons)
    tags = env.client.get_model_version(name, worse.version).tags
    assert tags["promotion.decision"] == "refused"
    assert tags["promotion.reason"] == "; ".join(refused.reasons)
    assert tags["promotion.champion_version"] == str(first.version)
    assert float(tags["promotion.champion.micro_f1"]) == table.loc["max_micro_f1_drop", "champion"]
    assert json.loads(tags["promotion.table"])[0]["gate"] == "max_micro_f1_drop"
    everything = json.loads(tags["promotion.challenger.metrics"])
    assert (
        everything["micro_f1"] == table.loc["max_micro_f1_drop", "challenger"]
        and "evidence_exact_span_f1" in everything
    )

    history = [(h["alias"], h["version"]) for h in read_alias_history(env.client, name)]
    assert history == [
        ("challenger", str(first.version)),
        ("champion", str(first.version)),
        ("challenger", str(worse.version)),
    ]

    # the same package again is no worse than the champion: promoted, and the move is recorded
    again = register_run(env.good_run, name=name, client=env.client)
    assert promote(name, env.eval_set, Gates(), client=env.client).passed
    assert str(env.client.get_model_version_by_alias(name, "champion").version) == str(again.version)
    last = read_alias_history(env.client, name)[-1]
    assert (last["alias"], last["version"]) == ("champion", str(again.version))
    assert f"promoted over v{first.version}" in last["reason"]
    with pytest.raises(RegistryError, match=f"v{again.version} is already @champion"):
        promote(name, env.eval_set, Gates(), client=env.client)


def test_cli_register_and_promote_use_the_default_store(env, monkeypatch, capsys):
    """`medcoder register|promote` read MLFLOW_TRACKING_URI; promote exits 0 when promoted."""
    from medcoder.cli import main as medcoder_main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", env.client.tracking_uri)
    assert medcoder_main(["register", "--run-id", env.good_run, "--name", "cli"]) == 0
    assert "registered run" in capsys.readouterr().out
    assert medcoder_main(["promote", "--eval-set", str(env.data_dir / "test.jsonl"), "--name", "cli"]) == 0
    captured = capsys.readouterr()
    assert "PROMOTED: first promotion" in captured.out and "max_invalid_code_rate" in captured.out
    # its progress shows while it runs (the CLI configures logging): each scoring, then the move
    assert "medcoder.registry.scoring: scored cli v1 on" in captured.err
    assert "medcoder.registry.promote: cli v1 is now @champion" in captured.err
    assert {k: str(v) for k, v in env.client.get_registered_model("cli").aliases.items()} == {
        "challenger": "1",
        "champion": "1",
    }


# ---------------------------------------------------------------- reproduction
@pytest.mark.slow
def test_registered_model_reproduces_its_logged_test_metrics(env):
    """Scored from the registry, through the contract, within the run's own label space, the
    decision-based test metrics equal what training logged: the packaged model thresholds, grounds
    and routes exactly as the training-time coder did (routing "review" keeps ungrounded codes, and
    every label is a valid code, so the contract drops nothing). Ranking metrics cannot be checked:
    the contract has no scores for codes it does not return."""
    name = "reproduce"
    version = register_run(env.good_run, name=name, client=env.client)
    logged = env.client.get_run(env.good_run).data.metrics
    result = evaluate_registered(
        version.version,
        env.eval_set,
        name=name,
        client=env.client,
        label_space=run_label_space(env.client, env.good_run),
    )
    assert result.eval_set_sha256 == env.client.get_run(env.good_run).data.tags["dataset.test.sha256"]
    assert result.threshold == logged["threshold"]  # the package serves the val-tuned threshold
    assert result.manifest_sha256 == version.tags["manifest_sha256"]
    for key in (
        "micro_f1",
        "macro_f1",
        "micro_precision",
        "micro_recall",
        "exact_match",
        "ungrounded_code_rate",
        "distractor_false_positive_rate",
        "invalid_code_rate",
        "evidence_exact_span_f1",
        "over_generation_ratio",
    ):
        assert result.metrics[key] == pytest.approx(logged[f"test/{key}"], abs=1e-6), key
    assert result.metrics["contract_violation_rate"] == 0.0
    assert "map" not in result.metrics
