"""`medcoder baseline`: train, tune and score the TF-IDF baseline, logged like a model run.

Protocol (the same one the neural models follow, so the numbers are comparable):
1. label space from TRAIN (`labels.coding_label_space`, the one the neural model uses);
2. fit on train; for each candidate C, tune ONE global threshold on VAL (micro-F1);
3. keep the (C, threshold) with the best val micro-F1 (ties: the smaller C, more regularised);
4. score val and test once, with the code every model is scored by (`medcoder.evaluation.split`).
The test split never influences C or the threshold.

Why a C grid: with a few hundred train notes and rare codes, scikit-learn's default C=1 shrinks
probabilities towards each code's prior so far that one global threshold cannot serve both frequent
and rare codes (the CodiEsp experiment record's selection table shows it). Choosing C on val is the
usual fix and keeps test untouched.

Scored and logged through `medcoder.evaluation.split` (`evaluate_coder`, `log_evaluation`), the code the
neural coder uses, so runs compare column for column: `val/...` and `test/...` metrics, per-code /
frequency / length tables, plots; plus params, dataset digests, git commit and library versions
(`medcoder.tracking`) and the C selection table. The fitted model is NOT logged: its TF-IDF
vocabulary is made of note words.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from medcoder.codes import validator_for
from medcoder.data.labels import coding_label_space
from medcoder.data.schema import NoteRecord
from medcoder.defaults import SPLITS
from medcoder.evaluation.split import evaluate_coder, log_evaluation
from medcoder.metrics import EvaluationResult
from medcoder.metrics.classification import DEFAULT_THRESHOLD_GRID
from medcoder.models.tfidf_baseline import predictions_from_scores, select_model

log = logging.getLogger(__name__)

DEFAULT_C_GRID: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
# the same experiment as medcoder-train, so baseline and model runs compare side by side
DEFAULT_EXPERIMENT = "medcoder"
# The label space each dataset's models train on (configs/data/<name>.yaml: label_systems, top_k), so
# `medcoder baseline` scores the same task as `medcoder-train` unless told otherwise. None = all.
DATASET_LABEL_DEFAULTS: dict[str, tuple[tuple[str, ...] | None, int | None]] = {
    "embedded": (("ICD-10-CM", "CPT", "HCPCS"), None),
    "codiesp": (("ICD-10-CM",), 50),
}
# The metrics printed by the CLI and written to experiment records and data cards.
HEADLINE_METRICS: tuple[str, ...] = (
    "micro_f1",
    "micro_precision",
    "micro_recall",
    "macro_f1",
    "map",
    "precision_at_5",
    "auc_macro",
    "ungrounded_code_rate",
    "invalid_code_rate",
    "distractor_false_positive_rate",
)


# ---------------------------------------------------------------- pieces
# ---------------------------------------------------------------- the run
def run_baseline(
    splits: Mapping[str, Sequence[NoteRecord]],
    *,
    systems: Sequence[str] | None = ("ICD-10-CM",),
    top_k: int | None = 50,
    threshold_grid: Sequence[float] | None = None,
    dataset_name: str = "embedded",
    log_to_mlflow: bool = True,
    experiment: str = DEFAULT_EXPERIMENT,
    C: float | Sequence[float] = DEFAULT_C_GRID,
    class_weight: str | None = None,
    tracking_uri: str | None = None,
    dataset_source: str | None = None,
    run_name: str | None = None,
) -> dict[str, Any]:
    """Train, tune on val and score val and test (see module docstring); optionally log to MLflow.

    Returns a dict: run_id (None without MLflow), experiment_id, threshold, C, label_space, val and
    test (`EvaluationResult`s), selection (DataFrame of the C grid), params, digests.
    """
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise ValueError(f"run_baseline needs splits {', '.join(SPLITS)}; missing: {', '.join(missing)}")
    for split in SPLITS:
        if not splits[split]:
            raise ValueError(f"run_baseline: the {split} split of dataset {dataset_name!r} is empty")
    train, val, test = (list(splits[s]) for s in SPLITS)
    c_grid = [float(C)] if isinstance(C, (int, float)) else [float(c) for c in C]
    if not c_grid:
        raise ValueError("run_baseline: C grid is empty")
    grid = DEFAULT_THRESHOLD_GRID if threshold_grid is None else np.asarray(threshold_grid, dtype=np.float64)

    # ---- label space from train
    label_space = coding_label_space(train, systems, top_k)
    if len(label_space) == 0:
        raise ValueError(f"no codes of systems {list(systems or [])} in the train split of {dataset_name!r}")

    # ---- fit, select C and threshold on val
    model, threshold, val_scores, selection = select_model(
        train, val, label_space, c_grid=c_grid, class_weight=class_weight, threshold_grid=grid
    )

    # ---- score val and test the way every coder is scored (medcoder.evaluation.split)
    def predict(records: Sequence[NoteRecord], at: float) -> tuple[list, np.ndarray]:
        scores = model.predict_scores(records)
        return predictions_from_scores(records, label_space, scores, at), scores

    evaluation = evaluate_coder(
        predict,
        {"train": train, "val": val, "test": test},
        label_space,
        grid=grid,
        is_valid=validator_for(system for system, _ in label_space.labels),
    )
    if evaluation.threshold != threshold:  # same scores, same grid, same tuning function
        raise RuntimeError(f"threshold re-tuned to {evaluation.threshold}, selection chose {threshold}")

    params: dict[str, Any] = {
        "model": model.params(),
        "selection": {
            "C_grid": c_grid,
            "threshold_grid": f"{grid.min():.2f}..{grid.max():.2f} ({grid.size} values)",
            "metric": "val/micro_f1",
        },
        "labels": {
            "systems": list(systems) if systems is not None else "all",
            "top_k": top_k,
            "n_labels": len(label_space),
        },
        "threshold": threshold,  # also a metric (log_evaluation); the model card reads the param
    }
    out: dict[str, Any] = {
        "run_id": None,
        "experiment_id": None,
        "threshold": threshold,
        "C": model.C,
        "label_space": label_space,
        "val": evaluation.results["val"],
        "test": evaluation.results["test"],
        "evaluation": evaluation,
        "selection": selection,
        "params": params,
        "digests": {},
    }
    if log_to_mlflow:
        out.update(
            _log_run(
                out,
                splits={"train": train, "val": val, "test": test},
                dataset_name=dataset_name,
                dataset_source=dataset_source,
                experiment=experiment,
                tracking_uri=tracking_uri,
                run_name=run_name or f"tfidf-{dataset_name}-{class_weight or 'unweighted'}",
            )
        )
    return out


def _log_run(
    result: dict[str, Any],
    *,
    splits: dict[str, list[NoteRecord]],
    dataset_name: str,
    dataset_source: str | None,
    experiment: str,
    tracking_uri: str | None,
    run_name: str,
) -> dict[str, Any]:
    """Log one finished baseline run like a model run; returns {"run_id", "experiment_id", "digests"}."""
    import mlflow

    from medcoder import tracking

    experiment_id = tracking.configure_mlflow(experiment, tracking_uri)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.set_tags({"model_family": "tfidf_baseline", "dataset": dataset_name})
        tracking.log_run_context()
        tracking.log_params(result["params"])
        digests = tracking.log_dataset_digests(splits, dataset_name, source=dataset_source)
        log_evaluation(result["evaluation"], result["label_space"])
        tracking.log_dataframe(result["selection"], "tables/selection.csv")
    return {"run_id": run.info.run_id, "experiment_id": experiment_id, "digests": digests}


def metrics_table(results: Mapping[str, EvaluationResult], keys: Sequence[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """One row per metric, one column per split (only metrics that every split has).

    A distractor rate over zero distractor pairs (a dataset without recorded mentions) is shown as
    NaN, not as a reassuring 0.
    """
    keys = [k for k in keys if all(k in r.metrics for r in results.values())]

    def value(metrics: dict[str, float], key: str) -> float:
        if key.startswith("distractor_false_positive_rate") and metrics.get("distractor_pairs", 1.0) == 0:
            return float("nan")
        return metrics[key]

    return pd.DataFrame(
        {"metric": keys, **{split: [value(r.metrics, k) for k in keys] for split, r in results.items()}}
    )


# ---------------------------------------------------------------- command line
def label_setup(args: argparse.Namespace) -> tuple[list[str] | None, int | None]:
    """(systems, top_k) from the command line, falling back to the dataset's training setup."""
    default_systems, default_top_k = DATASET_LABEL_DEFAULTS.get(args.dataset, (None, None))
    if args.systems is None:
        systems = list(default_systems) if default_systems is not None else None
    elif [s.lower() for s in args.systems] == ["all"]:
        systems = None
    else:
        systems = list(args.systems)
    top_k = default_top_k if args.top_k is None else (args.top_k or None)
    return systems, top_k


def dataset_options(args: argparse.Namespace, systems: Sequence[str] | None) -> dict[str, Any]:
    """Loader options for `sources.load_dataset` from the command line."""
    data_dir = args.codiesp_dir if args.dataset == "codiesp" and args.codiesp_dir else args.data_dir
    if args.codiesp_dir and args.dataset != "codiesp":
        raise ValueError(f"--codiesp-dir applies to --dataset codiesp, not {args.dataset}; use --data-dir")
    options: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    if args.dataset == "codiesp":
        # Procedure rows hold many 4-character PCS prefixes that are not codes: only read them
        # when asked for, and then report (not fail on) the malformed rows.
        wants_procedures = systems is None or "ICD-10-PCS" in systems
        options["include_procedures"] = wants_procedures
        options["on_error"] = "skip" if wants_procedures else "raise"
    return options


def cmd_baseline(args: argparse.Namespace) -> int:
    """Run the baseline from parsed arguments and print a metrics table; returns the exit status."""
    from rich.console import Console
    from rich.table import Table

    from medcoder.data.sources import load_dataset

    systems, top_k = label_setup(args)
    options = dataset_options(args, systems)
    splits = load_dataset(args.dataset, **options)
    result = run_baseline(
        splits,
        systems=systems,
        top_k=top_k,
        dataset_name=args.dataset,
        log_to_mlflow=not args.no_mlflow,
        experiment=args.experiment,
        C=args.C,
        class_weight=None if args.class_weight == "none" else args.class_weight,
        tracking_uri=args.tracking_uri,
        dataset_source=options.get("data_dir"),
    )

    table = Table(
        title=f"TF-IDF baseline on {args.dataset}: {len(result['label_space'])} codes, "
        f"C={result['C']:g}, threshold={result['threshold']:.2f}"
    )
    table.add_column("metric")
    table.add_column("val", justify="right")
    table.add_column("test", justify="right")
    for row in metrics_table({"val": result["val"], "test": result["test"]}).itertuples(index=False):
        table.add_row(row.metric, *("n/a" if np.isnan(v) else f"{v:.3f}" for v in (row.val, row.test)))
    console = Console()
    console.print(table)
    if result["run_id"]:
        console.print(f"MLflow run {result['run_id']} (experiment {args.experiment!r})")
    return 0
