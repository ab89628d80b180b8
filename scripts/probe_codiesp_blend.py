"""Dev-only lever probe: a CodiEsp checkpoint's scores alone and blended with hashed TF-IDF.

Loads a `medcoder-train` checkpoint (any epoch), scores CodiEsp dev, fits the blend as `medcoder-train
blend.enabled=true` does (TF-IDF C on dev, weight and threshold on dev: medcoder.models.blend) and logs
two runs, `lever-<name>-alone` and `lever-<name>`, with dev metrics at their dev-tuned thresholds
(optimistic for both in the same way; test is never read). scripts/record_codiesp_levers.py lists them.
Run: .venv/bin/python scripts/probe_codiesp_blend.py --checkpoint outputs/runs/.../epoch_004.ckpt --name blend-full-ft
"""

from __future__ import annotations

import argparse
import shlex
import sys

import mlflow
import torch

from medcoder import tracking
from medcoder.data.labels import coding_label_space
from medcoder.data.sources import load_dataset
from medcoder.inference.predict import predict_with_scores
from medcoder.metrics import tune_threshold
from medcoder.metrics.classification import classification_metrics
from medcoder.models.blend import fit_blend
from medcoder.models.lit_module import CoderLitModule
from medcoder.paths import default_tracking_uri

HEADLINE = ("micro_f1", "macro_f1", "map", "precision_at_5")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--name", required=True, help="lever name; runs are lever-<name> and lever-<name>-alone")
    parser.add_argument("--experiment", default="medcoder")
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    splits = load_dataset("codiesp", include_procedures=False)
    coder = CoderLitModule.load_trained(args.checkpoint)
    space = coding_label_space(splits["train"], ["ICD-10-CM"], 50)
    if space.labels != coder.label_space.labels:
        raise SystemExit(
            f"{args.checkpoint}: its label space is not CodiEsp's top-50 as loaded now (reload with the same loader)"
        )
    _, neural = predict_with_scores(coder, splits["val"], batch_size=args.batch_size)
    blend, tables = fit_blend(splits["train"], splits["val"], space, neural)
    y = space.encode_many(splits["val"])
    mixed = blend.mix(neural, blend.lexical_scores([r.text for r in splits["val"]]))
    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment(args.experiment)
    command = shlex.join(["python", "scripts/probe_codiesp_blend.py", *sys.argv[1:]])
    for suffix, scores, what in (
        ("-alone", neural, "the checkpoint alone"),
        ("", mixed, f"blended, TF-IDF weight {blend.weight:.1f}"),
    ):
        threshold = tune_threshold(y, scores)
        metrics = classification_metrics(y, scores, threshold)
        with mlflow.start_run(run_name=f"lever-{args.name}{suffix}"):
            mlflow.set_tags({"dataset": "codiesp", "task": "probe", "command": command, "lever.what": what})
            tracking.log_metrics({k: metrics[k] for k in HEADLINE}, "val")
            mlflow.log_params({"checkpoint": args.checkpoint, "threshold": threshold, "blend.weight": blend.weight})
            if suffix == "":
                for name, table in tables.items():
                    tracking.log_dataframe(table, f"tables/blend_{name}_selection.csv")
        print(
            f"{args.name}{suffix}: "
            + ", ".join(f"val/{k} {metrics[k]:.3f}" for k in HEADLINE)
            + f" (threshold {threshold:.2f})"
        )


if __name__ == "__main__":
    main()
