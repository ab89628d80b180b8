"""Exact resume (issue 3): a run interrupted and resumed with `ckpt_path=last` ends where an
uninterrupted run ends, because everything random is restored, not only the weights.

How the interruption is made: the same `medcoder-train` command gets Ctrl-C (a real SIGINT to its own
process, sent by `CtrlCAt`) in the middle of epoch 2, and is run again with `ckpt_path=last`. Not
`trainer.max_epochs=1` followed by `max_epochs=3`: the warm-up/decay schedule spans
`trainer.estimated_stepping_batches`, which max_epochs sets, so a 1-epoch first leg decays its learning
rate to 0 within that epoch; it is a different run, not an interrupted one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import mlflow
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch
from test_model_training import LossHistory, make_datamodule, make_model, trainer, write_corpus
from test_train import TINY

from medcoder.data.synth import write_corpus as write_corpus_files
from medcoder.models.lit_module import RNG_STATE_KEY, CoderLitModule, capture_rng_state, restore_rng_state

torch.set_num_threads(1)
TESTS_DIR = Path(__file__).resolve().parent
METRICS = ("val/map", "val/micro_f1", "test/micro_f1", "test/macro_f1", "test/map", "threshold")
HISTORIES = ("train/loss", "val/loss", "val/map")


class CtrlCAt(L.Callback):
    """Sends this process SIGINT, as Ctrl-C in a terminal does, before training batch `batch` of
    epoch `epoch` (0-based); Lightning then shuts down and exits with status 1."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # a suite launched in the background
                signal.signal(signal.SIGINT, signal.default_int_handler)  # inherits "ignore Ctrl-C"
            os.kill(os.getpid(), signal.SIGINT)


# ------------------------------------------------------------------ fast: the pieces resume relies on
def draws() -> list[float]:
    """Numbers from every global stream: torch (dropout's), numpy (also its cached Gaussian), random."""
    return (torch.rand(3).tolist() + torch.nn.functional.dropout(torch.ones(6), 0.5).tolist()
            + np.random.randn(3).tolist() + [random.random(), random.gauss(0.0, 1.0)])  # fmt: skip


def test_rng_state_survives_a_weights_only_checkpoint(tmp_path) -> None:
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.randn(1), random.gauss(0.0, 1.0)  # leave a cached Gaussian in numpy's and random's state
    torch.save({"rng": capture_rng_state()}, tmp_path / "state.pt")
    expected = draws()
    torch.manual_seed(2), np.random.seed(2), random.seed(2)
    assert draws() != expected
    restore_rng_state(torch.load(tmp_path / "state.pt", weights_only=True)["rng"])
    assert draws() == expected


def fit_losses(dm, max_epochs: int, ckpt_path: Path | None = None, save_to: Path | None = None) -> list[float]:
    """Training losses of a tiny fit (dropout on, no scheduler: nothing here depends on max_epochs)."""
    history = LossHistory()
    fit = trainer(max_epochs=max_epochs, limit_train_batches=3, limit_val_batches=1, callbacks=[history])
    fit.fit(make_model(dm), datamodule=dm, ckpt_path=ckpt_path)  # make_model seeds torch, as a new process would
    if save_to is not None:
        fit.save_checkpoint(save_to)
    return history.losses


def test_a_resumed_fit_draws_the_dropout_and_batches_of_an_uninterrupted_one(tmp_path) -> None:
    data_dir = write_corpus(tmp_path)
    full = fit_losses(make_datamodule(data_dir), max_epochs=2)
    fit_losses(make_datamodule(data_dir), max_epochs=1, save_to=tmp_path / "epoch1.ckpt")
    resumed = fit_losses(make_datamodule(data_dir), max_epochs=2, ckpt_path=tmp_path / "epoch1.ckpt")
    assert len(full) == 6 and resumed == full[3:]

    # the same checkpoint without its random state, as an older medcoder saved it, resumes differently
    checkpoint = torch.load(tmp_path / "epoch1.ckpt", weights_only=True)
    del checkpoint[RNG_STATE_KEY]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    assert fit_losses(make_datamodule(data_dir), max_epochs=2, ckpt_path=tmp_path / "old.ckpt") != full[3:]

    # loading a checkpoint to predict must not rewind the caller's streams to the saved ones
    torch.manual_seed(3)
    CoderLitModule.load_trained(str(tmp_path / "epoch1.ckpt"))
    saved = torch.load(tmp_path / "epoch1.ckpt", weights_only=True)[RNG_STATE_KEY]
    assert not torch.equal(torch.get_rng_state(), saved["torch"])


def epoch_batches(dm, epoch: int) -> list[list[int]]:
    loader = dm.train_dataloader()
    _set_sampler_epoch(loader, epoch)  # what Lightning's fit loop calls at the start of every epoch
    return [batch["index"].tolist() for batch in loader]


def test_an_epochs_batches_do_not_depend_on_the_epochs_before_it(tmp_path) -> None:
    data_dir = write_corpus(tmp_path)
    uninterrupted = make_datamodule(data_dir)
    first, second = epoch_batches(uninterrupted, 0), epoch_batches(uninterrupted, 1)
    assert first != second  # epochs are shuffled differently
    resumed = make_datamodule(data_dir)  # a fresh process that starts at epoch 1
    assert epoch_batches(resumed, 1) == second


# ------------------------------------------------------------------ slow: the user's commands end to end
def start_train(root: Path, overrides: list[str], log_name: str) -> tuple[subprocess.Popen, Path]:
    """`medcoder-train` with its runs and MLflow store under `root`, as its own process."""
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}", OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS_DIR), os.environ.get("PYTHONPATH")])))  # fmt: skip
    command = [str(Path(sys.executable).parent / "medcoder-train"), f"paths.root_dir={root}", *TINY, *overrides]
    log = root / log_name
    root.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT), log


def finish(process: subprocess.Popen, log: Path) -> tuple[int, str]:
    return process.wait(timeout=900), log.read_text(errors="replace")


def evaluated_run(root: Path) -> tuple[mlflow.MlflowClient, mlflow.entities.Run]:
    """The root's one MLflow run that got through evaluation (the interrupted one never did)."""
    client = mlflow.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    evaluated = [run for run in runs if "threshold" in run.data.metrics]
    assert len(evaluated) == 1, [(run.info.run_id, run.info.status) for run in runs]
    return client, evaluated[0]


def history(client: mlflow.MlflowClient, run_id: str, key: str, from_step: int = 0) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key) if m.step >= from_step)


@pytest.mark.slow
def test_a_run_interrupted_and_resumed_from_last_ends_like_an_uninterrupted_one(tmp_path) -> None:
    """Equal to 1e-6. Both legs run the same float32 CPU kernels on one thread in the same order, so
    the numbers agree to the last bit here; the tolerance only absorbs a change of kernel or platform."""
    full_root, resumed_root = tmp_path / "uninterrupted", tmp_path / "interrupted"
    # one corpus file for all three processes: both runs must see the very same notes
    write_corpus_files(tmp_path / "data", n_notes=160, seed=1)
    data = [f"data.data_dir={tmp_path / 'data'}"]
    # the uninterrupted run and the first leg of the interrupted one share the 2 cores
    full = start_train(full_root, data, "train.log")
    ctrl_c = [
        "+callbacks.ctrl_c._target_=test_resume.CtrlCAt",
        "+callbacks.ctrl_c.epoch=1",
        "+callbacks.ctrl_c.batch=5",
    ]
    first_leg = start_train(resumed_root, data + ctrl_c, "first_leg.log")
    code, output = finish(*first_leg)
    assert code != 0 and "Detected KeyboardInterrupt" in output, output[-3000:]
    (last,) = (resumed_root / "outputs" / "runs" / "train").glob("*/checkpoints/last.ckpt")
    # the resume point is the end of epoch 1: the 5 batches of epoch 2 before Ctrl-C are lost and redone
    assert torch.load(last, weights_only=True)["epoch"] == 0

    code, output = finish(*start_train(resumed_root, data + ["ckpt_path=last"], "second_leg.log"))
    assert code == 0 and f"resuming from {last}" in output, output[-3000:]
    code, output = finish(*full)
    assert code == 0, output[-3000:]

    full_client, full_run = evaluated_run(full_root)
    resumed_client, resumed_run = evaluated_run(resumed_root)
    for key in METRICS:
        assert resumed_run.data.metrics[key] == pytest.approx(full_run.data.metrics[key], abs=1e-6), key
    # every step logged after the resume matches the uninterrupted run's step for step
    first_step = min(step for step, _ in history(resumed_client, resumed_run.info.run_id, "train/loss"))
    for key in HISTORIES:
        after = history(resumed_client, resumed_run.info.run_id, key)
        before = history(full_client, full_run.info.run_id, key, from_step=first_step)
        assert after and [s for s, _ in after] == [s for s, _ in before], key
        assert [v for _, v in after] == pytest.approx([v for _, v in before], abs=1e-6), key
    # and the same epoch's weights were picked as the best checkpoint
    best = {Path(run.data.params["best_checkpoint"]).name for run in (full_run, resumed_run)}
    assert len(best) == 1, best
