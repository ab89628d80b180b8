"""Shared by the export, pyfunc, serve and predict tests: one tiny trained coder, built once per session.

A tiny random BERT with LoRA is trained for a few Lightning steps (so the LoRA weights are not
zero and merging them changes the encoder), checkpointed, reloaded with `load_trained`, exported,
and logged into a private sqlite MLflow store. Session fixtures in each test module call these
cached builders with pytest's session temp root, so the work is done once however many modules use it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import torch
from torch.utils.data import DataLoader

from medcoder.data.chunking import chunk_notes
from medcoder.data.datamodule import collate_notes, encode_notes
from medcoder.data.labels import coding_label_space
from medcoder.data.schema import NoteRecord
from medcoder.data.synth import generate_corpus
from medcoder.export.artifact import export_coder
from medcoder.inference.predict import predict_with_scores
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule

MAX_CHARS = 20_000
REGISTERED_NAME = "medcoder-test"


@dataclass(frozen=True)
class TinyCoder:
    checkpoint: Path
    export_dir: Path
    records: list[NoteRecord]  # held-out notes to predict (val + test)
    threshold: float


@functools.cache
def tiny_coder(root: Path) -> TinyCoder:
    """Train (8 steps), checkpoint and export a tiny LoRA coder under `root`."""
    torch.set_num_threads(2)
    L.seed_everything(0, workers=True)
    corpus = generate_corpus(60, seed=3)
    label_space = coding_label_space(corpus["train"], None, top_k=12)
    module = CoderLitModule(
        net=functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="lora", lora_r=4, attention_size=16),
        labels=label_space.to_list(),
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-2),
        chunk_size=128, chunk_overlap=16, max_chunks=3,
    )  # fmt: skip
    tokenizer = module.net.tokenizer
    train = corpus["train"]
    encoded = encode_notes(train, chunk_notes([r.text for r in train], tokenizer, module.chunking), label_space)
    loader = DataLoader(
        encoded, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0),
        collate_fn=functools.partial(collate_notes, pad_token_id=tokenizer.pad_token_id),
    )  # fmt: skip
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_steps=8, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=loader)
    checkpoint = root / "tiny.ckpt"
    trainer.save_checkpoint(checkpoint)

    coder = CoderLitModule.load_trained(str(checkpoint))
    records = list(corpus["val"]) + list(corpus["test"])
    _, scores = predict_with_scores(coder, records)
    # a threshold at which a few codes per note fire, so rendering, grounding and routing all run
    threshold = float(np.clip(np.quantile(scores, 0.8), 0.02, 0.98))
    export_dir = export_coder(coder, root / "export" / "coder", threshold=threshold, routing=RoutingPolicy(),
                              run_id=None, max_chars=MAX_CHARS)  # fmt: skip
    return TinyCoder(checkpoint, export_dir, records, threshold)


@contextlib.contextmanager
def tracking(uri: str) -> Iterator[None]:
    """Use `uri` as MLflow's tracking store inside the block, then restore whatever was set before.

    The active experiment goes back too: `mlflow.set_experiment` also exports MLFLOW_EXPERIMENT_ID, an
    id that means nothing in the store the caller returns to.
    """
    import mlflow.tracking.fluent as fluent
    from mlflow.tracking._tracking_service import utils

    previous, previous_experiment = utils._tracking_uri, fluent._active_experiment_id
    previous_env = os.environ.get("MLFLOW_EXPERIMENT_ID")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)
        fluent._active_experiment_id = previous_experiment
        if previous_env is None:
            os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        else:
            os.environ["MLFLOW_EXPERIMENT_ID"] = previous_env


@dataclass(frozen=True)
class LoggedCoder:
    tracking_uri: str
    run_id: str
    model_uri: str  # models:/<model id>
    version: str  # registered version of REGISTERED_NAME, alias "champion"


@functools.cache
def logged_coder(root: Path) -> LoggedCoder:
    """The tiny coder logged as a pyfunc into a private sqlite store, registered (sealed, `medcoder
    register`'s way) with alias champion."""
    from medcoder.export.mlflow_model import log_packaged_model
    from medcoder.registry.register import register_run
    from medcoder.tracking import configure_mlflow

    tiny = tiny_coder(root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with tracking(uri):
        configure_mlflow("export-tests", uri)
        with mlflow.start_run() as run:
            info = log_packaged_model(tiny.export_dir, name="model")
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        version = str(register_run(run.info.run_id, name=REGISTERED_NAME, client=client).version)
        client.set_registered_model_alias(REGISTERED_NAME, "champion", version)
    return LoggedCoder(uri, run.info.run_id, info.model_uri, version)
