"""Code held-out hand-written notes with the real `medcoder predict`, in a subprocess.

The behaviour cases and the hallucination stress notes are scored on what a user gets: the notes
(only `{id, text, setting, age, sex}`) go through the `medcoder` console script of this environment,
the same path users and serving take, not through an in-process shortcut that could differ.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from medcoder.evaluation.behaviour import HeldOutNote, read_contract_lines, write_case_inputs


class PredictFailed(RuntimeError):
    """`medcoder predict` exited with an error; the message carries its exit status and last stderr lines."""


def medcoder_executable() -> str:
    """The `medcoder` console script of this interpreter's environment (the venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("medcoder")
    if beside.is_file():
        return str(beside)
    found = shutil.which("medcoder")
    if found is None:
        raise PredictFailed("no `medcoder` command next to this Python or on PATH; install the package (make install)")
    return found


def run_predict(
    model: str, input_path: Path, output_path: Path, *, medcoder: str, timeout_s: float | None = None
) -> None:
    """Run `medcoder predict` on `input_path`; raise PredictFailed (with its stderr tail) if it fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    cmd = [medcoder, "predict", "--input", str(input_path), "--output", str(output_path), "--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    if proc.returncode != 0 or not output_path.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:]) or "(no error output)"
        raise PredictFailed(f"`medcoder predict --model {model}` exited with status {proc.returncode}:\n{tail}")


def predict_notes(notes: Iterable[HeldOutNote], model: str, *, timeout_s: float | None = None) -> list[dict[str, Any]]:
    """The prediction lines `medcoder predict --model model` writes for `notes` (temporary files only)."""
    with tempfile.TemporaryDirectory(prefix="medcoder-heldout-") as tmp:
        inputs, outputs = Path(tmp) / "inputs.jsonl", Path(tmp) / "predictions.jsonl"
        write_case_inputs(notes, inputs)
        run_predict(model, inputs, outputs, medcoder=medcoder_executable(), timeout_s=timeout_s)
        return read_contract_lines(outputs)


def experiment_name(run_id: str | None, tracking_uri: str) -> str:
    """The MLflow experiment of the model's training run, or 'unknown' when the store cannot say."""
    if not run_id:
        return "unknown"
    try:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        return client.get_experiment(client.get_run(run_id).info.experiment_id).name
    except Exception:  # a record is still worth writing when the store is elsewhere
        return "unknown"


def add_scoring_arguments(parser: argparse.ArgumentParser, default_model: str) -> None:
    """The options every held-out scoring script takes: which model (or which predictions file), where
    the record goes, its decision text, and the time `medcoder predict` may take."""
    parser.add_argument(
        "--model", default=default_model, help=f"model for `medcoder predict --model` (default {default_model})"
    )
    parser.add_argument(
        "--predictions", default=None, help="score this existing `medcoder predict` output instead of running a model"
    )
    parser.add_argument("--out", default=None, help="write the experiment record: a .md path, or a folder")
    parser.add_argument(
        "--decision", default=None, help="decision text for the record (default: generated from the numbers)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds to allow `medcoder predict` (default: no limit)"
    )


def scoring_lines(notes: Iterable[HeldOutNote], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The prediction lines to score: `--predictions` read as given, else `--model` run on the notes."""
    if args.predictions:
        return read_contract_lines(args.predictions)
    return predict_notes(notes, args.model, timeout_s=args.timeout)
