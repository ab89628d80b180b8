"""Shared by the tests that need a real medcoder-train run: the training job composed from the real configs,
shrunk to a tiny random BERT and a small generated corpus (about 1-2 minutes on two CPU cores).

test_train checks the job itself; test_model_card reads the run it logs, so the card is tested against the
parameter, metric and artifact names the job really writes, not against a hand-made imitation of them.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import medcoder.jobs.train as train_job

# the corpus folder the job generates under <tmp>/data from corpus.notes=160 (corpus.seed 1)
CORPUS_FOLDER = "embedded-n160-s1"
TINY_DATA = [
    "model.net.encoder=tiny-random-bert",
    "corpus.notes=160",
    "data.chunk_size=128",
    "data.chunk_overlap=16",
    "data.max_chunks=4",
    "data.batch_size=8",
    "threads=1",
]
TINY = TINY_DATA + [
    "model.net.lora_target_modules=[query,value]",
    "model.optimizer.lr=3e-3",
    "trainer.max_epochs=3",
    "callbacks.early_stopping.patience=5",
    "~callbacks.rich_progress_bar",
]


def compose_train(tmp_path: Path, overrides: list[str], config_name: str = "train") -> DictConfig:
    """configs/<config_name>.yaml composed as a user's command line would, with every output under `tmp_path`."""
    with initialize_config_dir(config_dir=train_job.CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, return_hydra_config=True, overrides=overrides)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(tmp_path / "data")
        cfg.paths.log_dir = str(tmp_path / "logs")
    return cfg


def corpus_dir(tmp_path: Path) -> Path:
    """Where the tiny job generated its corpus (train.jsonl, val.jsonl, test.jsonl)."""
    return tmp_path / "data" / CORPUS_FOLDER
