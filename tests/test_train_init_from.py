"""medcoder-train init_from=<model>: a fit that starts from a packaged model's weights.

The source is the suite's tiny exported coder (export_support.tiny_coder: a tiny random BERT with LoRA, trained a
few steps, exported with LoRA merged). The job runs on the real configs with the same corpus (60 notes, seed 3),
label space (top 12 codes of every system) and head sizes, and must start phase 2 from exactly the exported
weights: the heads as exported, the encoder as the exported merged encoder (its fresh LoRA adapters add nothing
yet), with the head warm-up skipped. A training corpus whose labels are not the model's, a net that would build
other head shapes, and a folder without a seal are refused before any compute; registry URIs resolve through the
registration seal (export_support.logged_coder).
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from safetensors.torch import load_file
from test_train import compose_train

import medcoder.jobs.init_from as init_from
import medcoder.jobs.train as train_job
from medcoder.export.artifact import CONFIG_NAME, ENCODER_DIR, HEADS_NAME
from medcoder.inference.manifest import MANIFEST_NAME, verify_manifest, write_manifest
from medcoder.models.coder import MedicalCoder
from medcoder.registry.client import RegistryError
from medcoder.registry.fetch import fetch_export, fetch_sealed_export

# every fit_start snapshot SnapshotAtFitStart took (the callback is built by Hydra from its dotted name)
SNAPSHOTS: list[dict[str, dict[str, torch.Tensor]]] = []


class SnapshotAtFitStart(Callback):
    """Records the net's head weights and its merged encoder when the fit starts, after every earlier callback's
    on_fit_start (the head warm-up's among them): what phase 2 starts from."""

    def on_fit_start(self, trainer, pl_module) -> None:
        net = pl_module.net
        heads = {k: v.detach().clone() for k, v in net.state_dict().items() if not k.startswith("encoder.")}
        merged = copy.deepcopy(net.encoder).merge_and_unload()
        SNAPSHOTS.append({"heads": heads, "encoder": {k: v.detach().clone() for k, v in merged.state_dict().items()}})


def tiny_init_overrides(source: Path | str) -> list[str]:
    """The run that matches the tiny coder (export_support.tiny_coder): its corpus, label space and head sizes."""
    return [
        f"init_from={source}",
        "model.net.encoder=tiny-random-bert",  # replaced by the export's encoder
        "corpus.notes=60",
        "corpus.seed=3",
        "data.label_systems=null",
        "data.top_k=12",
        "data.chunk_size=128",
        "data.chunk_overlap=16",
        "data.max_chunks=3",
        "data.batch_size=8",
        "model.net.lora_r=4",
        "model.net.lora_target_modules=[query,value]",
        "model.net.attention_size=16",
        "model.net.tagger_kernel=1",
        "model.net.tagger_hidden=null",
        "model.net.ngram_kernel=null",
        "threads=1",
        "trainer.max_epochs=1",
        "~callbacks.rich_progress_bar",
        "test=false",
    ]


def test_the_fit_starts_from_the_exported_heads_and_merged_encoder(tiny, tmp_path, monkeypatch, caplog):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    source = tiny.export_dir
    cfg = compose_train(
        tmp_path,
        tiny_init_overrides(source)
        + [
            f"+callbacks.snapshot._target_={__name__}.SnapshotAtFitStart",
            f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}",
            "dataset_tag=denial_feedback",
        ],
    )
    SNAPSHOTS.clear()
    caplog.set_level(logging.INFO, logger=train_job.__name__)
    caplog.set_level(logging.INFO, logger=init_from.__name__)

    train_job.train(cfg)

    (snapshot,) = SNAPSHOTS
    exported_heads = load_file(str(source / HEADS_NAME))
    assert snapshot["heads"].keys() == exported_heads.keys()
    assert all(torch.equal(snapshot["heads"][k], v) for k, v in exported_heads.items())
    # every weight the export's encoder holds (its unused pooler is not saved, so it is random on both sides)
    exported_encoder = load_file(str(source / ENCODER_DIR / "model.safetensors"))
    assert exported_encoder and exported_encoder.keys() <= snapshot["encoder"].keys()
    assert all(torch.equal(snapshot["encoder"][k], v) for k, v in exported_encoder.items())
    # the run trained on the export's encoder and tokenizer, without a head warm-up, and says so
    assert cfg.model.net.encoder == cfg.data.encoder == str(source / ENCODER_DIR)
    assert cfg.callbacks.head_warmup.epochs == 0
    assert any("phase 1, head warm-up: skipped" in r.getMessage() for r in caplog.records)
    manifest = verify_manifest(source)
    assert any(manifest in r.getMessage() and str(source) in r.getMessage() for r in caplog.records)

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["init_from"] == str(source) and run.data.params["init_from"] == str(source)
    assert run.data.tags["init_from.manifest_sha256"] == run.data.params["init_from.manifest_sha256"] == manifest
    assert "init_from.version" not in run.data.tags  # a folder has no registry version
    # tagged by what it trained on, so `medcoder compare --dataset embedded` never takes it for an embedded run
    assert run.data.tags["dataset"] == "denial_feedback"


def test_a_training_corpus_with_other_labels_is_refused_naming_the_difference(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_train(tmp_path, tiny_init_overrides(tiny.export_dir) + ["data.top_k=10", "logger=none"])
    refused = r"\(10 labels\) is not the model's \(12 labels\): 0 only in the data .*2 only in the model \(first: \w"
    with pytest.raises(ValueError, match=refused + r"[^)]*\).*build the training data so its label space"):
        train_job.train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_the_same_labels_in_another_order_train_in_the_models_order(tiny, tmp_path, monkeypatch):
    """A corpus ranks labels by its own code frequencies: the heads' order (the export's) is the one kept."""
    source = tmp_path / "reordered"
    shutil.copytree(tiny.export_dir, source)
    config = json.loads((source / CONFIG_NAME).read_text(encoding="utf-8"))
    config["labels"] = config["labels"][::-1]
    (source / CONFIG_NAME).write_text(json.dumps(config), encoding="utf-8")
    write_manifest(source)
    built = []
    instantiate = train_job.instantiate_model
    monkeypatch.setattr(train_job, "instantiate_model", lambda cfg, dm: built.append(instantiate(cfg, dm)) or built[0])
    cfg = compose_train(tmp_path, tiny_init_overrides(source) + ["logger=none", "train=false"])

    train_job.train(cfg)

    assert built[0].label_space.to_list() == config["labels"]


def test_a_net_with_other_head_sizes_is_refused_before_the_data_is_read(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_train(tmp_path, tiny_init_overrides(tiny.export_dir) + ["model.net.attention_size=32", "logger=none"])
    with pytest.raises(ValueError, match=r"model\.net\.attention_size=32 but the export's is 16"):
        train_job.train(cfg)
    assert not (tmp_path / "data").exists()  # refused before the corpus was generated


def test_heads_that_do_not_fit_the_net_are_refused_naming_the_file_and_keys(tiny):
    net = MedicalCoder(12, encoder=str(tiny.export_dir / ENCODER_DIR), finetune="frozen", attention_size=16,
                       ngram_kernel=3)  # fmt: skip
    with pytest.raises(ValueError, match=rf"{HEADS_NAME}: the head weights do not fit .*missing \['ngram\."):
        init_from.load_export_heads(net, tiny.export_dir / HEADS_NAME)


def test_a_folder_without_a_seal_is_refused(tiny, tmp_path, monkeypatch):
    unsealed = tmp_path / "unsealed"
    shutil.copytree(tiny.export_dir, unsealed)
    (unsealed / MANIFEST_NAME).unlink()
    with pytest.raises(RegistryError, match=rf"has no {MANIFEST_NAME}: it is not a sealed medcoder export"):
        fetch_sealed_export(str(unsealed), tmp_path / "fetched")
    cfg = compose_train(tmp_path, tiny_init_overrides(unsealed) + ["logger=none"])
    with pytest.raises(RegistryError, match=rf"{unsealed}.*has no {MANIFEST_NAME}"):
        train_job.train(cfg)


def test_registry_and_run_uris_resolve_to_the_verified_sealed_export(logged, tiny, tmp_path):
    from export_support import REGISTERED_NAME

    manifest = verify_manifest(tiny.export_dir)
    by_alias = fetch_export(f"models:/{REGISTERED_NAME}@champion", tmp_path / "alias", logged.tracking_uri)
    assert (by_alias.version, by_alias.manifest_sha256) == (logged.version, manifest)
    assert (by_alias.folder / MANIFEST_NAME).is_file() and by_alias.folder.is_relative_to(tmp_path / "alias")
    by_version = fetch_sealed_export(f"models:/{REGISTERED_NAME}/{logged.version}", tmp_path / "v", logged.tracking_uri)
    assert verify_manifest(by_version) == manifest
    by_run = fetch_export(f"runs:/{logged.run_id}/model", tmp_path / "run", logged.tracking_uri)
    assert by_run.manifest_sha256 == manifest and by_run.version is None

    with pytest.raises(RegistryError, match=rf"models:/{REGISTERED_NAME}@nope: .*has no alias @nope"):
        fetch_sealed_export(f"models:/{REGISTERED_NAME}@nope", tmp_path / "nope", logged.tracking_uri)
    with pytest.raises(RegistryError, match=r"has no version 999"):
        fetch_sealed_export(f"models:/{REGISTERED_NAME}/999", tmp_path / "999", logged.tracking_uri)
    with pytest.raises(RegistryError, match=r"no MLflow store at"):
        fetch_sealed_export("models:/medcoder@champion", tmp_path / "x", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(RegistryError, match=r"not an empty folder"):
        fetch_sealed_export(f"models:/{REGISTERED_NAME}@champion", tmp_path / "alias", logged.tracking_uri)


def resealed_copy(tiny, folder: Path, edit: Callable[[dict, Path], None]) -> Path:
    """A copy of the tiny coder in `folder`, its coder.json changed by `edit(config, folder)` and sealed again."""
    shutil.copytree(tiny.export_dir, folder)
    config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    edit(config, folder)
    (folder / CONFIG_NAME).write_text(json.dumps(config), encoding="utf-8")
    write_manifest(folder)
    return folder


def fit_from(source: Path, tmp_path: Path, monkeypatch, extra: list[str]) -> tuple[str, list[str]]:
    """Train from `source` with the full evaluation and packaging, and `extra` overrides; (the run's id in a
    fresh store, the overrides used)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    overrides = [o for o in tiny_init_overrides(source) if o != "test=false"]
    artifacts = f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}"
    train_job.train(compose_train(tmp_path, [*overrides, *extra, artifacts]))
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    return run.info.run_id, overrides


def test_keep_threshold_evaluates_and_packages_at_the_models_own_threshold(tiny, tmp_path, monkeypatch):
    """init_from_threshold=keep: val is not searched, the run is scored and packaged at the model's threshold."""

    def unlikely_threshold(config: dict, folder: Path) -> None:
        config["threshold"] = 0.37  # a point a val search would be unlikely to land on

    source = resealed_copy(tiny, tmp_path / "source", unlikely_threshold)
    run_id, _ = fit_from(source, tmp_path, monkeypatch, ["init_from_threshold=keep"])
    run = mlflow.MlflowClient().get_run(run_id)
    assert float(run.data.params["threshold"]) == pytest.approx(0.37)


def test_keep_blend_packages_the_models_own_tfidf_part_and_weight(tiny, tmp_path, monkeypatch):
    """init_from_blend=keep: the fine-tune ships the source's TF-IDF part (the same file) and weight, not a refit on
    its own training notes (a refit's weight comes from the grid, which 0.33 is not on)."""
    from medcoder.data.labels import LabelSpace
    from medcoder.data.synth import generate_notes
    from medcoder.export.artifact import LEXICAL_NAME
    from medcoder.models.tfidf_baseline import select_model

    def with_blend(config: dict, folder: Path) -> None:
        notes = generate_notes(40, seed=11)
        tfidf, *_ = select_model(notes[:30], notes[30:], LabelSpace.from_list(config["labels"]), c_grid=[1.0],
                                 class_weight="balanced", threshold_grid=np.arange(0.3, 0.6, 0.1), features="hashed",
                                 min_df=1)  # fmt: skip
        config["blend"] = {"weight": 0.33, "lexical": tfidf.linear_scorer().save(folder / LEXICAL_NAME)}

    source = resealed_copy(tiny, tmp_path / "source", with_blend)
    run_id, overrides = fit_from(source, tmp_path, monkeypatch, ["init_from_blend=keep"])

    kept = fetch_export(f"runs:/{run_id}/model", tmp_path / "fetched", None).folder
    packaged = json.loads((kept / CONFIG_NAME).read_text(encoding="utf-8"))["blend"]
    assert packaged["weight"] == pytest.approx(0.33)
    assert (kept / packaged["lexical"]["file"]).read_bytes() == (source / LEXICAL_NAME).read_bytes()

    cfg = compose_train(tmp_path / "bad", [*overrides, "init_from_blend=reuse", "logger=none"])
    with pytest.raises(ValueError, match=r"init_from_blend: 'reuse' is not one of \['refit', 'keep'\]"):
        train_job.train(cfg)


def test_an_unknown_threshold_mode_is_refused_naming_the_choices(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = compose_train(tmp_path, tiny_init_overrides(tiny.export_dir) + ["init_from_threshold=search", "logger=none"])
    with pytest.raises(ValueError, match=r"init_from_threshold: 'search' is not one of \['tune', 'keep'\]"):
        train_job.train(cfg)
