"""Score a model on the hallucination stress notes, and optionally write the experiment record.

    .venv/bin/python scripts/score_stress.py --model models:/medcoder@champion [--out experiments/]
    .venv/bin/python scripts/score_stress.py --predictions preds.jsonl   # score an existing `medcoder predict` output

The notes (`medcoder/resources/behaviour/stress.jsonl`, see `medcoder.evaluation.stress`) go to the real
`medcoder predict` in a subprocess with only `{id, text, setting, age, sex}`, and the output is
scored: unsupported codes as a share of the emitted codes (accepted without review vs routed),
unsupported codes grounded above 0.9, and must-code recall. Recall is over the supported codes in
the model's label space, read from its training run in the MLflow store; when the run cannot be
read (a predictions file from elsewhere), the notes' `out_of_label_space` annotation stands in and
the record says so. `--out` is a `.md` path, or a folder where `<today>-stress-notes.md` is written.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from medcoder.data.schema import RecordError
from medcoder.defaults import CHAMPION_URI
from medcoder.evaluation.predict_subprocess import PredictFailed, add_scoring_arguments, experiment_name, scoring_lines
from medcoder.evaluation.records import ExperimentRecord, RunRef, write_record_to
from medcoder.evaluation.stress import (
    CONFIDENT_SCORE,
    DEFAULT_STRESS,
    StressNote,
    StressReport,
    load_stress,
    score_stress,
)
from medcoder.paths import default_tracking_uri

SLUG = "stress-notes"
ACCEPTED_TARGET = 0.02  # issue 12: unsupported codes accepted without review <= 2% of emitted codes
RECALL_TARGET = 0.85


def run_label_codes(model: dict[str, Any] | None, tracking_uri: str) -> tuple[frozenset[str] | None, str]:
    """(the ICD-10-CM codes of the model's training-run label space, where they came from), or
    (None, why not) when the run or its label_space.json cannot be read from the store."""
    run_id = (model or {}).get("run_id")
    if not run_id:
        return None, "the notes' out_of_label_space annotation (the predictions name no training run)"
    try:
        from mlflow import MlflowClient

        from medcoder.evaluation.split import run_label_space

        labels = run_label_space(MlflowClient(tracking_uri=tracking_uri), run_id).labels
    except Exception as err:  # the store is elsewhere, or the run logged no label space
        return None, f"the notes' out_of_label_space annotation (run {run_id}: {type(err).__name__})"
    codes = frozenset(code for system, code in labels if system == "ICD-10-CM")
    return codes, f"run {run_id}'s label_space.json, {len(codes)} ICD-10-CM codes"


def default_decision(report: StressReport) -> str:
    """A decision sentence generated from the numbers against the issue's targets."""
    overall = report.by("style").set_index("style").loc["all"]
    accepted, recall = overall["unsupported accepted rate"], overall["must-code recall (label space)"]
    confident = int(overall[f"unsupported grounded > {CONFIDENT_SCORE}"])
    summary = (
        f"unsupported accepted without review {accepted:.3f} of emitted codes (target <= {ACCEPTED_TARGET}), "
        f"{confident} unsupported codes grounded above {CONFIDENT_SCORE} (target 0), "
        f"must-code recall {recall:.3f} (target >= {RECALL_TARGET})"
    )
    met = accepted <= ACCEPTED_TARGET and confident == 0 and recall >= RECALL_TARGET
    return f"{'Meets' if met else 'Does not meet'} the stress targets: {summary}."


def build_record(
    report: StressReport, notes: list[StressNote], path: Path, command: str, decision: str
) -> ExperimentRecord:
    model = report.model or {}
    name, version, run_id = model.get("name", "unknown"), model.get("version", "unknown"), model.get("run_id")
    tracking_uri = default_tracking_uri()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    codes = report.unsupported_codes()
    failures = report.failures()
    return ExperimentRecord(
        slug=SLUG,
        title=f"Hallucination stress notes: {name} version {version}",
        question=(
            f"On short hand-written notes in plain words, how often does {name} version {version} emit a code the note "
            "does not support, how many of those reach a claim without review or carry a grounded score above "
            f"{CONFIDENT_SCORE}, and how many of the supported codes does it find?"
        ),
        command=command,
        runs=[RunRef(f"{name} version {version}", run_id, experiment_name(run_id, tracking_uri), tracking_uri)],
        table=report.by("style"),
        decision=decision,
        setup=[
            f"Notes: `{path.name}`, {len(notes)} notes (sha256 `{digest[:16]}`), "
            f"{sum(not n.supported for n in notes)} of them supporting no code, written by hand before any tuning, "
            "not from the training-corpus generator.",
            f"Model: {name} version {version}, run through `medcoder predict`, routing as configured in the "
            "packaged model.",
            f"Label space for must-code recall: {report.label_space_source}.",
            "Only ICD-10-CM codes are scored. Unsupported: neither supported by the note nor among its "
            "acceptable codes.",
        ],
        extra_tables=[
            ("By setting", report.by("setting")),
            *([("Unsupported codes emitted", codes)] if len(codes) else []),
            *([("Notes with an unsupported or missed code", failures)] if len(failures) else []),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_scoring_arguments(parser, CHAMPION_URI)
    parser.add_argument(
        "--stress", default=str(DEFAULT_STRESS), help="stress notes JSONL (default: the packaged stress.jsonl)"
    )
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "scripts/score_stress.py", *map(shlex.quote, argv)])

    try:
        path = Path(args.stress)
        notes = load_stress(path)
        lines = scoring_lines(notes, args)
        model = next((dict(line["model"]) for line in lines if isinstance(line.get("model"), dict)), None)
        label_space, source = run_label_codes(model, default_tracking_uri())
        report = score_stress(notes, lines, label_space=label_space, label_space_source=source)
    except (RecordError, FileNotFoundError, ValueError, PredictFailed, subprocess.TimeoutExpired) as err:
        print(f"score_stress: error: {err}", file=sys.stderr)
        return 2
    print(report.to_markdown())
    if args.out:
        record = build_record(report, notes, path, command, args.decision or default_decision(report))
        print(f"wrote {write_record_to(record, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
