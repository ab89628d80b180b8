"""Every config medcoder-train can be pointed at composes and instantiates (lightning-hydra-template's
tests/test_configs.py): train.yaml alone (the recommended recipe), and with each file of
configs/experiment/, configs/debug/ and configs/hparams_search/, found by globbing so a new file is
covered without editing this test. The encoder is shrunk to the tiny random BERT and the embedded
corpus to a few notes; nothing is fitted.

Also: the sweep's parameters name keys the composed config has (a renamed key would make every trial
a new, unused key), and no experiment repeats a value the base it builds on already has (the base is
the recipe; an experiment holds only what differs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

import medcoder.jobs.train as train_job

CONFIGS = Path(train_job.CONFIG_DIR)
FIXTURE_CODIESP = Path(__file__).parent / "fixtures" / "codiesp"
NOTES = 40  # the embedded corpus of these tests
TINY = ["model.net.encoder=tiny-random-bert", f"corpus.notes={NOTES}", "corpus.seed=1"]


def group_files(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


CASES = [pytest.param([], id="train.yaml")] + [
    pytest.param([f"{group}={name}"], id=f"{group}={name}")
    for group in ("experiment", "debug", "hparams_search")
    for name in group_files(group)
]


def compose_train(overrides: list[str], tmp_path: Path | None = None) -> DictConfig:
    """train.yaml as medcoder-train composes it (hydra config included), paths moved under tmp_path."""
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    if tmp_path is not None:
        HydraConfig().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / "run")
            cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """paths.data_dir holding the small embedded corpus, generated once for the module."""
    root = tmp_path_factory.mktemp("data")
    cfg = compose_train(TINY)
    with open_dict(cfg):
        cfg.paths.data_dir = str(root)
    train_job.ensure_embedded_corpus(cfg.data, cfg.corpus)
    return root


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One MLflow store for the module: creating a sqlite store costs seconds, once."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.mark.parametrize("overrides", CASES)
def test_config_composes_and_instantiates(
    overrides: list[str], data_dir: Path, tracking_uri: str, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    cfg = compose_train(overrides + TINY, tmp_path)
    with open_dict(cfg):
        cfg.paths.data_dir = str(data_dir)
        if cfg.data.dataset == "codiesp":
            cfg.data.data_dir = str(FIXTURE_CODIESP)
        elif not cfg.corpus.generate:  # a corpus another tool writes (the denial loop's): the generated one stands in
            cfg.data.data_dir = str(data_dir / f"embedded-n{NOTES}-s1")
        if cfg.get("logger") and "mlflow" in cfg.logger:
            cfg.logger.mlflow.artifact_location = str(tmp_path / "artifacts")
    OmegaConf.resolve(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]))  # every interpolation resolves

    # what medcoder.jobs.train.train instantiates, in its order, without fitting
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    model = train_job.instantiate_model(cfg.model, datamodule)
    assert model.chunking == datamodule.chunking  # chunking is set once, in the data config
    callbacks = train_job.instantiate_group(cfg.get("callbacks"))
    loggers = train_job.instantiate_group(cfg.get("logger"))
    gpu_only = cfg.trainer.accelerator in ("gpu", "cuda") and not torch.cuda.is_available()
    # a GPU trainer cannot be built on a CPU machine: its other arguments are still checked, on the CPU
    cpu = {"accelerator": "cpu", "devices": 1} if gpu_only else {}
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **cpu)

    assert len(datamodule.label_space) > 0 and model.net is not None
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert len(train_job.fit_phases(cfg, None)) == 2
    if "_target_" in (cfg.get("callbacks") or {}).get("head_warmup", {}):
        from medcoder.models.head_warmup import HeadWarmup

        (warmup,) = [c for c in trainer.callbacks if isinstance(c, HeadWarmup)]
        assert warmup.epochs == cfg.callbacks.head_warmup.epochs


@pytest.mark.parametrize("name", group_files("hparams_search"))
def test_every_swept_parameter_is_a_key_of_the_composed_config(name: str):
    cfg = compose_train([f"hparams_search={name}"])
    params = cfg.hydra.sweeper.get("params") or {}
    assert params, f"hparams_search/{name}.yaml sweeps nothing"
    missing = object()
    for key in params:
        if key.startswith("+"):  # a key the sweep adds must not exist yet
            assert OmegaConf.select(cfg, key[1:], default=missing) is missing, key
        else:
            assert OmegaConf.select(cfg, key, default=missing) is not missing, f"swept key {key!r} is not in the config"
    assert cfg.hydra.sweeper.direction in ("maximize", "minimize")


def leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of every leaf (a list is one leaf)."""
    if isinstance(node, dict) and node:
        return {k: v for key, value in node.items() for k, v in leaves(value, f"{prefix}{key}.").items()}
    return {prefix[:-1]: node}


@pytest.mark.parametrize("name", group_files("experiment"))
def test_an_experiment_holds_only_what_differs_from_the_base(name: str):
    """An experiment that sets a key (or picks a config group) to what its base already has repeats the
    recipe, and the repetition drifts when the recipe changes. Its base: train.yaml with the groups the
    experiment overrides (e.g. data=codiesp model=full)."""
    raw = OmegaConf.to_container(OmegaConf.load(CONFIGS / "experiment" / f"{name}.yaml"), resolve=False)
    base_defaults = {
        group: option
        for entry in OmegaConf.to_container(OmegaConf.load(CONFIGS / "train.yaml"))["defaults"]
        if isinstance(entry, dict)
        for group, option in entry.items()
    }
    groups = {}
    for entry in raw.pop("defaults", []):
        ((key, option),) = entry.items()
        assert key.startswith("override /"), f"experiment/{name}.yaml: unexpected defaults entry {entry}"
        groups[key.removeprefix("override /")] = option
    repeated = [f"override /{g}: {o}" for g, o in groups.items() if base_defaults.get(g) == o]
    base = compose_train([f"{g}={o}" for g, o in groups.items()])
    base_values = leaves(
        OmegaConf.to_container(OmegaConf.masked_copy(base, [k for k in base if k != "hydra"]), resolve=False)
    )
    repeated += [
        f"{key}: {value!r}" for key, value in leaves(raw).items() if key in base_values and base_values[key] == value
    ]
    assert not repeated, f"experiment/{name}.yaml repeats what its base already has: {repeated}"


def test_the_denial_feedback_fine_tune_holds_every_part_the_em_level_reads():
    from medcoder.models.coder import EM_LEVEL_PARTS

    cfg = compose_train(["experiment=denial_feedback"])
    assert sorted(cfg.model.frozen_parts) == sorted(EM_LEVEL_PARTS)
    phase2 = train_job.fit_phases(cfg, None)[1]
    assert "heads only" in phase2 and "frozen: encoder, ngram, em_pool, em_classifier" in phase2
    assert "encoder (lora) and heads together" in train_job.fit_phases(compose_train([]), None)[1]
