"""MLflow helpers shared by the TF-IDF baseline and the training job, so every run logs the same way.

A run that can be compared with another needs the same things logged under the same names:
flattened hyperparameters, `val/...` and `test/...` metrics, the code version and library
versions it ran with, and fingerprints of the data it saw. These helpers are that one place.

Privacy rule (docs/ARCHITECTURE.md, privacy rule): nothing derived from note TEXT may reach MLflow:
not params, tags, run names, dataset schemas or artifacts. Datasets are logged as note ids, codes
and sha256 digests only. A fitted TF-IDF vectorizer holds note words, so it is never logged.

Where things go (docs/STACK.md, mlflow-store): MLflow 3.17 refuses the `./mlruns` file store, and an
experiment created without `artifact_location` puts artifacts in a CWD-relative `./mlruns`.
`configure_mlflow` therefore creates experiments with an explicit artifact folder next to the
sqlite database (`<project root>/mlartifacts/<experiment>` for the default store).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import re
import secrets
import subprocess
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from medcoder.data.labels import LabelSpace
from medcoder.data.schema import NoteRecord, records_digest, text_fingerprint
from medcoder.paths import default_tracking_uri, project_root

# Libraries whose versions change results; logged as tags on every run.
KEY_LIBRARIES: tuple[str, ...] = (
    "medcoder",
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "peft",
    "scikit-learn",
    "numpy",
    "pandas",
    "mlflow",
    "hydra-core",
    "simple-icd-10-cm",
)
# MLflow's dataset table stores digests in a 36-character column (and recommends short digests),
# so the dataset entity carries a prefix and the full sha256 goes into the input's tags.
DATASET_DIGEST_CHARS = 16
FINGERPRINTS_ARTIFACT = "dataset/fingerprints.json"
FINGERPRINTS_FORMAT = "medcoder-fingerprints/1"
MAX_PARAM_VALUE_CHARS = 6000  # MLflow's limit for a param value


# ---------------------------------------------------------------- store and experiment
def artifact_root_for(tracking_uri: str) -> Path | None:
    """The folder that holds artifacts for a sqlite store: `mlartifacts/` beside the database file.

    Returns None for other stores (an MLflow server decides its own artifact location).
    """
    parsed = urlparse(tracking_uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = unquote(tracking_uri[len("sqlite:///") :])
    if not db_path or db_path == ":memory:":
        return None
    return Path(db_path).resolve().parent / "mlartifacts"


def _folder_name(experiment_name: str) -> str:
    """A filesystem-safe folder name for an experiment (names may contain '/' or spaces)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", experiment_name).strip("-") or "experiment"


def configure_mlflow(experiment_name: str, tracking_uri: str | None = None) -> str:
    """Point MLflow at the store and experiment every later `mlflow.*` call should use.

    `tracking_uri` defaults to `paths.default_tracking_uri()` (`MLFLOW_TRACKING_URI` or the
    project's `mlflow.db`). A missing experiment is created with an explicit artifact location
    (see module docstring). Returns the experiment id. The training job should call this before
    building Lightning's `MLFlowLogger(experiment_name=..., tracking_uri=...)` so both agree.
    """
    if not experiment_name or not experiment_name.strip():
        raise ValueError("experiment_name must be a non-empty string")
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(unquote(uri[len("sqlite:///") :])).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        root = artifact_root_for(uri)
        location = (root / _folder_name(experiment_name)).as_uri() if root is not None else None
        try:
            experiment_id = client.create_experiment(experiment_name, artifact_location=location)
        except MlflowException:
            # Another process created it between our lookup and create: use theirs.
            experiment = client.get_experiment_by_name(experiment_name)
            if experiment is None:
                raise
            experiment_id = experiment.experiment_id
    else:
        if experiment.lifecycle_stage == "deleted":
            raise ValueError(
                f"MLflow experiment {experiment_name!r} (id {experiment.experiment_id}) is deleted in {uri}; "
                "restore it (`mlflow experiments restore`) or choose another experiment name"
            )
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


# ---------------------------------------------------------------- params and metrics
def mark_running(tracking_uri: str, run_id: str) -> None:
    """Put a run back to RUNNING. A `with mlflow.start_run(...)` block and Lightning's logger (at the
    end of fit and of test) both mark the run FINISHED while the job still has its evaluation and
    packaging ahead; a comparison or a promotion reading "finished runs" must not take it yet."""
    from mlflow import MlflowClient

    MlflowClient(tracking_uri=tracking_uri).update_run(run_id, status="RUNNING")


def flatten_params(nested: Mapping[str, Any], *, sep: str = ".") -> dict[str, str]:
    """Flatten a nested config into MLflow params: `{"model": {"lr": 1e-3}}` -> `{"model.lr": "0.001"}`.

    Lists of plain values become one JSON string (a list of target modules is one setting); lists
    that hold mappings are indexed (`callbacks.0.monitor`). Values are `str()`-ed except lists, so
    `None` reads "None". A value longer than MLflow's limit is an error, not a silent truncation.
    """
    out: dict[str, str] = {}

    def visit(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if not value and prefix:
                out[prefix] = "{}"
            for key, sub in value.items():
                visit(f"{prefix}{sep}{key}" if prefix else str(key), sub)
        elif isinstance(value, (list, tuple)) and any(isinstance(v, Mapping) for v in value):
            for i, sub in enumerate(value):
                visit(f"{prefix}{sep}{i}", sub)
        elif isinstance(value, (list, tuple)):
            out[prefix] = json.dumps(list(value), default=str)
        else:
            out[prefix] = str(value)

    visit("", nested)
    for key, value in out.items():
        if len(value) > MAX_PARAM_VALUE_CHARS:
            raise ValueError(f"param {key!r} is {len(value)} characters; MLflow allows {MAX_PARAM_VALUE_CHARS}")
    return out


def log_params(nested: Mapping[str, Any]) -> dict[str, str]:
    """Flatten and log a (nested) config as params of the active run; returns what was logged."""
    flat = flatten_params(nested)
    if flat:
        mlflow.log_params(flat)
    return flat


def label_space_params(label_space: LabelSpace, top_k: int | None) -> dict[str, str]:
    """The label space as run params the model card reads: its code systems (JSON, in label order), how many most
    frequent training codes were kept ("all" without a top k) and how many codes it holds."""
    systems = list(dict.fromkeys(system for system, _ in label_space.labels))
    return {"labels.systems": json.dumps(systems), "labels.top_k": "all" if top_k is None else str(top_k),
            "labels.n_labels": str(len(label_space))}  # fmt: skip


def log_metrics(metrics: Mapping[str, float], prefix: str, step: int | None = None) -> dict[str, float]:
    """Log `{name: value}` as `<prefix>/<name>` (e.g. `val/micro_f1`); returns the logged dict.

    Non-finite values (an AUC undefined on a split) are logged as NaN rather than dropped, so a
    missing metric is visible in the UI instead of silently absent.
    """
    prefix = prefix.strip("/")
    logged = {f"{prefix}/{name}" if prefix else name: float(value) for name, value in metrics.items()}
    if logged:
        mlflow.log_metrics(logged, step=step)
    return logged


# ---------------------------------------------------------------- run context
def _git(args: Sequence[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_context(repo: Path | None = None) -> dict[str, str]:
    """Git commit and dirty flag of the checkout, Python and key library versions, as tag values.

    The commit is "none" outside a checkout or before the first commit; "dirty" says whether
    tracked or untracked files differ from it (the commit alone would then not reproduce the run).
    """
    repo = repo or project_root()
    commit = _git(["rev-parse", "HEAD"], repo)
    status = _git(["status", "--porcelain"], repo)
    context = {
        "git.commit": commit or "none",
        "git.dirty": "unknown" if status is None else str(bool(status)).lower(),
        "python.version": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    for name in KEY_LIBRARIES:
        try:
            context[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            context[f"version.{name}"] = "not installed"
    return context


def log_run_context(repo: Path | None = None) -> dict[str, str]:
    """Tag the active run with `run_context()`; also MLflow's own commit tag so the UI shows it."""
    context = run_context(repo)
    tags = dict(context)
    if context["git.commit"] != "none":
        tags["mlflow.source.git.commit"] = context["git.commit"]
    mlflow.set_tags(tags)
    return context


# ---------------------------------------------------------------- datasets
def dataset_frame(records: Sequence[NoteRecord]) -> pd.DataFrame:
    """The text-free view of a split that MLflow may see: note id and its codes (both strings).

    MLflow stores only this frame's schema and row count, never its rows; it carries no text anyway.
    """
    return pd.DataFrame(
        {
            "id": [r.id for r in records],
            "codes": [" ".join(f"{c.system}:{c.code}" for c in r.codes) for r in records],
        }
    )


def log_dataset_digests(
    splits: Mapping[str, Sequence[NoteRecord]], name: str, source: str | None = None
) -> dict[str, str]:
    """Log each split as an MLflow dataset input (context = split name) and return its sha256.

    The sha256 is `schema.records_digest` of the split (ids, codes, text and all): two runs saw the
    same data if and only if the digests match. `source` is where the data came from (a folder or
    URI; None means built in memory by code). Also logs `dataset.name` and `dataset.<split>.notes` params and the
    full digests as `dataset.<split>.sha256` tags, so runs can be filtered and compared on them, and
    the per-note fingerprints (`log_dataset_fingerprints`) that promotion checks evaluation sets against.
    """
    from mlflow.data.code_dataset_source import CodeDatasetSource

    digests: dict[str, str] = {}
    # A folder resolves to MLflow's local source; data built in memory is attributed to the code.
    data_source = str(source) if source is not None else CodeDatasetSource(tags={"medcoder.dataset": name})
    for split, records in splits.items():
        sha = records_digest(records)
        digests[split] = sha
        with warnings.catch_warnings():
            # A local path matches MLflow's "" and "file" artifact sources alike; either is right.
            warnings.filterwarnings(
                "ignore", message="The specified dataset source can be interpreted in multiple ways"
            )
            dataset = mlflow.data.from_pandas(
                dataset_frame(records), source=data_source, name=f"{name}-{split}", digest=sha[:DATASET_DIGEST_CHARS]
            )
        mlflow.log_input(dataset, context=split, tags={"sha256": sha, "notes": str(len(records))})
    mlflow.log_params({"dataset.name": name, **{f"dataset.{s}.notes": str(len(r)) for s, r in splits.items()}})
    mlflow.set_tags({f"dataset.{s}.sha256": d for s, d in digests.items()})
    log_dataset_fingerprints(splits)
    return digests


def dataset_fingerprints(splits: Mapping[str, Sequence[NoteRecord]], salt: str) -> dict[str, Any]:
    """Per split, every note's id and `text_fingerprint` (never its text), in split order."""
    return {
        "format": FINGERPRINTS_FORMAT,
        "salt": salt,
        "splits": {
            split: {"ids": [r.id for r in records], "text_sha256": [text_fingerprint(r.text, salt) for r in records]}
            for split, records in splits.items()
        },
    }


def log_dataset_fingerprints(splits: Mapping[str, Sequence[NoteRecord]]) -> None:
    """Log `dataset/fingerprints.json` (a fresh random salt per run): what the run learned from, note by
    note, so `medcoder promote` can refuse an evaluation set that holds the model's own training notes."""
    mlflow.log_dict(dataset_fingerprints(splits, secrets.token_hex(16)), FINGERPRINTS_ARTIFACT)


# ---------------------------------------------------------------- artifacts
def log_dataframe(df: pd.DataFrame, artifact_file: str) -> None:
    """Log a table as an artifact; the format follows the extension (`.csv` or `.json` records)."""
    suffix = Path(artifact_file).suffix.lower()
    if suffix == ".csv":
        text = df.to_csv(index=False)
    elif suffix == ".json":
        text = df.to_json(orient="records", indent=1)
    else:
        raise ValueError(
            f"log_dataframe: unsupported artifact extension {suffix!r} in {artifact_file!r}; use .csv or .json"
        )
    mlflow.log_text(text, artifact_file)


def log_figure(fig: Any, artifact_file: str) -> None:
    """Log a matplotlib figure as an image artifact (e.g. `plots/test_pr_curve.png`).

    A figure made through pyplot is closed afterwards (pyplot keeps every open figure alive);
    figures built directly as `matplotlib.figure.Figure` (as `medcoder.metrics.plots` does) are
    freed with their last reference and never touch pyplot.
    """
    try:
        mlflow.log_figure(fig, artifact_file)
    finally:
        if getattr(fig.canvas, "manager", None) is not None:
            import matplotlib.pyplot as plt

            plt.close(fig)
