"""Where a `medcoder-train` run's time went, phase by phase, from its MLflow metric timestamps.

`make train` must stay under 20 minutes on 2 cores, so each recipe change that moves time is measured
per phase: the run start to the first warm-up epoch's loss (data, model, the frozen-layer cache and the
warm-up's own cache pass), the head warm-up epochs (`warmup/loss` per epoch), the fine-tuning epochs
(`val/map` per epoch, validation included) and the evaluation and packaging after the fit (to the run's
end). Several runs, from one store or several (a fresh clone keeps its own `mlflow.db`), side by side;
the machine's speed varies from hour to hour, so compare runs made close together and say so.

Run: .venv/bin/python scripts/record_train_phases.py --run LABEL=TRACKING_URI#RUN_ID [--run ...] \\
         --slug embedded-train-phases --question "..." --decision "..."
"""

from __future__ import annotations

import argparse

import pandas as pd
from mlflow.tracking import MlflowClient

from medcoder.evaluation.records import ExperimentRecord, RunRef, write_experiment_record, write_record_to


def phases(tracking_uri: str, run_id: str) -> dict[str, float]:
    """Seconds per phase of one finished run (see module docstring), and its commit and test metrics."""
    client = MlflowClient(tracking_uri)
    run = client.get_run(run_id)
    final_steps = {m.step for m in client.get_metric_history(run_id, "test/micro_f1")}
    warmup = sorted(m.timestamp for m in client.get_metric_history(run_id, "warmup/loss"))
    epochs = sorted(m.timestamp for m in client.get_metric_history(run_id, "val/map") if m.step not in final_steps)
    start, end = run.info.start_time, run.info.end_time
    if not epochs or end is None:
        raise SystemExit(f"run {run_id}: no fine-tuning epoch or not finished; this record times finished runs")
    fit_start = warmup[-1] if warmup else start
    out = {
        "setup and caches (s)": ((warmup[0] - start) / 1000.0) if warmup else float("nan"),
        "head warm-up epochs": float(len(warmup)),
        "s per warm-up epoch": ((warmup[-1] - warmup[0]) / 1000.0 / max(len(warmup) - 1, 1))
        if warmup
        else float("nan"),
        "fine-tuning epochs": float(len(epochs)),
        "fine-tuning (s)": (epochs[-1] - fit_start) / 1000.0,
        "evaluation and packaging (s)": (end - epochs[-1]) / 1000.0,
        "run (s)": (end - start) / 1000.0,
    }
    for key in ("test/micro_f1", "test/macro_f1", "test/map", "test/evidence_position_independent_token_f1"):
        out[key] = run.data.metrics.get(key, float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", required=True, help="LABEL=TRACKING_URI#RUN_ID (repeatable)")
    parser.add_argument("--slug", default="embedded-train-phases")
    parser.add_argument("--question", required=True)
    parser.add_argument("--decision", required=True)
    parser.add_argument("--note", action="append", default=[], help="a bullet under Notes (repeatable)")
    parser.add_argument("--out", help="write the record here instead of experiments/<date>-<slug>.md")
    args = parser.parse_args()
    rows, refs = [], []
    for spec in args.run:
        label, _, where = spec.partition("=")
        uri, _, run_id = where.rpartition("#")
        commit = MlflowClient(uri).get_run(run_id).data.tags.get("git.commit", "")[:7]
        rows.append({"run": label, "commit": commit, **phases(uri, run_id)})
        refs.append(RunRef(label, run_id, "medcoder", uri))
    record = ExperimentRecord(
        slug=args.slug,
        title="medcoder-train: time per phase",
        question=args.question,
        command="scripts/record_train_phases.py " + " ".join(f"--run {r}" for r in args.run),
        runs=refs,
        table=pd.DataFrame(rows),
        decision=args.decision,
        setup=["Phases from MLflow metric timestamps of each run (module docstring of the script)."],
        notes=args.note,
    )
    print(write_record_to(record, args.out) if args.out else write_experiment_record(record))


if __name__ == "__main__":
    main()
