"""Write the record of every CodiEsp recipe lever tried: one MLflow run per lever, named `lever-<name>`.

Each lever is a `medcoder-train` run on CodiEsp (English, top-50 diagnoses) whose run name starts with
`lever-`; its command is the run's `command` tag. Selection is on dev only: the table shows each run's
per-epoch dev mAP (threshold-free), the seconds each epoch took on the machine it ran on, and the test
metrics only of runs that finished (the recipe's test is scored once, by `make codiesp`). Runs still
going or stopped are listed with the epochs they reached, so a lever that was cut short is visible,
not hidden. Blend probes (`scripts/probe_codiesp_blend.py`) log dev metrics of a checkpoint alone and
blended with TF-IDF as runs named `lever-blend-...`.
Run: .venv/bin/python scripts/record_codiesp_levers.py
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from medcoder.evaluation.records import ExperimentRecord, RunRef, write_experiment_record, write_record_to
from medcoder.paths import default_tracking_uri

# what each lever tests (documentation; every number below comes from the runs)
WHAT = {
    "full-ft-10": "full fine-tuning (encoder lr 5e-5, heads 1e-3), 10 epochs, no head warm-up, no pos_weight",
    "blend-full-ft-10-epoch2-alone": "the full-FT run's checkpoint after epoch 2 of 10, alone (threshold on dev)",
    "blend-full-ft-10-epoch2": "the same checkpoint averaged with hashed TF-IDF (C, weight and threshold on dev)",
    "lora-all-warmup20": "LoRA r16 on all 6 layers after the 20-epoch head warm-up (lr 1e-2), lr 5e-4, pos_weight 3, "
    "up to 7 epochs, blend on",
    "lora-all-plain": "LoRA r16 on all 6 layers, no head warm-up, lr 1e-3, no pos_weight, up to 7 epochs, blend on",
    "lora-all-desc": "LoRA r16 on all 6 layers, label queries and output weights from each code's own words "
    "(label_init descriptions), 3-epoch head warm-up (lr 1e-2), lr 5e-4, pos_weight 3, up to 6 epochs, blend on",
    "lora-all-desc-no-ngram": "as lora-all-desc without the n-gram layer (model.net.ngram_kernel null: its 3-token "
    "full-width convolution fits 500 notes' templates), 10-epoch head warm-up, up to 5 epochs, blend on",
    "warmup-only": "as lora-all-desc-no-ngram but the encoder stays frozen: the 10-epoch head warm-up on cached "
    "states is all the training (model.net.finetune frozen, trainer.max_epochs 0), blend on",
    "warmup-only-20": "as warmup-only with a 20-epoch head warm-up",
    "warmup-only-dropout03": "as warmup-only with head dropout 0.3 (from 0.1)",
    "warmup-then-lora-lr1e-4": "the 10-epoch head warm-up, then 2 epochs of LoRA r16 on all 6 layers at lr 1e-4 "
    "(from 5e-4), blend on",
    "warmup-only-30": "as warmup-only with a 30-epoch head warm-up",
    "warmup-only-20-pw1": "as warmup-only-20 with plain BCE (code_pos_weight null, from 3)",
}


def epoch_curve(client: MlflowClient, run) -> tuple[list[float], list[float]]:
    """(dev mAP per epoch, seconds per epoch) from the metric history; epoch 1 counts from the run start.
    The final evaluation logs val/map too, at the step it logs the test metrics: that one is no epoch."""
    final_steps = {m.step for m in client.get_metric_history(run.info.run_id, "test/micro_f1")}
    history = sorted(
        (m for m in client.get_metric_history(run.info.run_id, "val/map") if m.step not in final_steps),
        key=lambda m: m.timestamp,
    )
    maps = [m.value for m in history]
    stamps = [run.info.start_time] + [m.timestamp for m in history]
    return maps, [(b - a) / 1000.0 for a, b in zip(stamps, stamps[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="medcoder")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument(
        "--out", default=None, help="a .md path or a folder (default experiments/<date>-codiesp-levers.md)"
    )
    args = parser.parse_args()
    uri = args.tracking_uri or default_tracking_uri()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        raise SystemExit(f"no MLflow experiment {args.experiment!r} in {uri}")
    runs = client.search_runs([experiment.experiment_id],
                              "tags.dataset = 'codiesp' and tags.`mlflow.runName` LIKE 'lever-%'",
                              order_by=["attributes.start_time ASC"])  # fmt: skip
    if not runs:
        raise SystemExit("no CodiEsp lever runs (run names lever-...) in the store")
    rows, curves = [], {}
    for run in runs:
        name = run.data.tags["mlflow.runName"].removeprefix("lever-")
        metrics = run.data.metrics
        probe = run.data.tags.get("task") == "probe"  # one dev evaluation of a checkpoint, no training
        maps, seconds = ([], []) if probe else epoch_curve(client, run)
        curves[name] = maps
        # a training run is complete when its final evaluation was logged (its MLflow status alone says FINISHED
        # as soon as the run context is written, while Lightning is still training)
        finished = "test/micro_f1" in metrics
        rows.append({
            "lever": name,
            "what it tests": WHAT.get(name, run.data.tags.get("lever.what", "")),
            # grounding and the guideline rules change between commits, and the test columns include them
            "commit": run.data.tags.get("git.commit", "?")[:7]
                      + ("+" if run.data.tags.get("git.dirty") == "true" else ""),
            "status": "probe" if probe
                      else ("complete" if finished else f"{len(maps)} epoch(s) logged, no final evaluation"),
            "epochs (done / max)": f"{len(maps)} / {run.data.params.get('trainer.max_epochs', '-')}" if maps else "-",
            "s per epoch (median)": float(np.median(seconds)) if seconds else float("nan"),
            "run minutes": (run.info.end_time - run.info.start_time) / 60000.0
                           if finished and run.info.end_time else float("nan"),
            "TF-IDF weight": float(run.data.params["blend.weight"])
                             if "blend.weight" in run.data.params and not name.endswith("-alone") else float("nan"),
            "best dev mAP": max(maps) if maps else metrics.get("val/map", float("nan")),
            "dev micro-F1 (tuned)": metrics.get("val/micro_f1", float("nan")) if finished or probe else float("nan"),
            "dev macro-F1 (tuned)": metrics.get("val/macro_f1", float("nan")) if finished or probe else float("nan"),
            "test micro-F1": metrics.get("test/micro_f1", float("nan")) if finished else float("nan"),
            "test macro-F1": metrics.get("test/macro_f1", float("nan")) if finished else float("nan"),
            "test mAP": metrics.get("test/map", float("nan")) if finished else float("nan"),
            # the guideline layer follows the US Official Guidelines, CodiEsp's gold its own annotation rules
            "test micro-F1 before rules": metrics.get("test/model_only/micro_f1", float("nan"))
                                          if finished else float("nan"),
            "test macro-F1 before rules": metrics.get("test/model_only/macro_f1", float("nan"))
                                          if finished else float("nan"),
        })  # fmt: skip
    baselines = client.search_runs([experiment.experiment_id],
                                   "tags.dataset = 'codiesp' and tags.model_family = 'tfidf_baseline' "
                                   "and tags.`mlflow.runName` LIKE '%balanced%'",
                                   order_by=["attributes.start_time DESC"], max_results=1)  # fmt: skip
    if baselines:  # the reference every lever must beat, on the same dev split
        m = baselines[0].data.metrics
        rows.insert(0, {"lever": "TF-IDF baseline (balanced)",
                        "what it tests": "reference: `medcoder baseline --dataset codiesp --class-weight balanced`",
                        "status": "complete", "best dev mAP": m.get("val/map"),
                        "dev micro-F1 (tuned)": m.get("val/micro_f1"),
                        "dev macro-F1 (tuned)": m.get("val/macro_f1")})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(rows[-1]))  # the lever rows' column order
    width = max((len(c) for c in curves.values()), default=0)
    curve_table = pd.DataFrame({"epoch": list(range(1, width + 1)),
                                **{k: v + [float("nan")] * (width - len(v))
                                   for k, v in curves.items() if v}})  # fmt: skip
    commands = pd.DataFrame([{"lever": r.data.tags["mlflow.runName"].removeprefix("lever-"),
                              "command": r.data.tags.get("command", "(not recorded)")} for r in runs])  # fmt: skip
    record = ExperimentRecord(
        slug="codiesp-levers",
        title="CodiEsp (English, top-50 diagnoses): recipe levers, selected on dev",
        question="Which recipe lever makes the neural coder learn CodiEsp within the CPU budget, "
        "and what does each cost?",
        command=".venv/bin/python scripts/record_codiesp_levers.py",
        runs=[RunRef(r.data.tags["mlflow.runName"], r.info.run_id, args.experiment, uri) for r in runs],
        table=table,
        extra_tables=[("Dev mAP per epoch (threshold-free)", curve_table), ("Commands", commands)],
        setup=[
            "Data: CodiEsp English, diagnoses, top-50 train codes, non-billable codes mapped to their billable "
            "successor on load (medcoder.data.codiesp.ICD10CM_SUCCESSORS); dev is the val split.",
            "Selection on dev only; test metrics are shown only for runs that finished "
            "(make codiesp scores the recipe's test once).",
            "Tuned dev F1 comes from the end-of-run evaluation (threshold tuned on dev, so it is optimistic); "
            "the per-epoch curve is dev mAP, which needs no threshold.",
            "Seconds per epoch include the dev pass and are wall-clock on the machine and load the run had "
            "(see notes).",
            "Test F1 columns score what ships (grounded codes after the context check and the guideline rules) with "
            "the code of the run's commit ('+': uncommitted changes); compare levers on dev, and a lever's test "
            "numbers with those of runs of the same commit.",
        ],
        notes=[r.data.tags["lever.note"] for r in runs if r.data.tags.get("lever.note")],
        decision=(
            "The recipe in configs/experiment/codiesp.yaml is the one `make codiesp` runs; "
            + (
                "its test numbers are in the comparison record that target writes."
                if not any(
                    r["status"] == "complete" and "lever" in r and r["lever"] != "TF-IDF baseline (balanced)"
                    for r in rows
                )
                else "see the complete runs above."
            )
        ),
    )
    print(write_record_to(record, args.out) if args.out else write_experiment_record(record))


if __name__ == "__main__":
    main()
