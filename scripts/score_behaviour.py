"""Score a model on the held-out clinical behaviour cases, and optionally write the experiment record.

    .venv/bin/python scripts/score_behaviour.py --model models:/medcoder@champion [--out experiments/<date>-behaviour.md]
    .venv/bin/python scripts/score_behaviour.py --predictions preds.jsonl   # score an existing `medcoder predict` output

The cases (shipped in `medcoder/resources/behaviour/`, see `medcoder.behaviour`; `--cases` picks the file) are written to a temporary
prediction-input file holding only `{id, text, setting, age, sex}`, coded by the real
`medcoder predict` in a subprocess (the same path users and serving take), and scored. The table
is printed; `--out` also writes the experiment record (question, command, model version, tables,
decision). `--out` is a `.md` file path, or a folder where `<today>-behaviour-cases.md` is written.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from medcoder.behaviour import DEFAULT_CASES, BehaviourReport, Case, load_cases, read_contract_lines, score_behaviour, write_case_inputs
from medcoder.data.schema import RecordError
from medcoder.experiments import ExperimentRecord, RunRef, write_experiment_record
from medcoder.paths import default_tracking_uri

DEFAULT_MODEL = "models:/medcoder@champion"
SLUG = "behaviour-cases"


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


def run_predict(model: str, input_path: Path, output_path: Path, *, medcoder: str, timeout_s: float | None = None) -> None:
    """Run `medcoder predict` on `input_path`; raise PredictFailed (with its stderr tail) if it fails."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    cmd = [medcoder, "predict", "--input", str(input_path), "--output", str(output_path), "--model", model]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout_s)
    if proc.returncode != 0 or not output_path.is_file():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:]) or "(no error output)"
        raise PredictFailed(f"`medcoder predict --model {model}` exited with status {proc.returncode}:\n{tail}")


def _experiment_name(run_id: str | None, tracking_uri: str) -> str:
    """The MLflow experiment of the model's training run, or 'unknown' when the store cannot say."""
    if not run_id:
        return "unknown"
    try:
        import mlflow

        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        return client.get_experiment(client.get_run(run_id).info.experiment_id).name
    except Exception:  # a record is still worth writing when the store is elsewhere
        return "unknown"


def default_decision(report: BehaviourReport) -> str:
    """A decision sentence generated from the numbers (a human may pass --decision instead)."""
    table = report.by_category().set_index("category")
    overall = table.loc["all"]
    bad = table.drop(index="all")
    violating = [cat for cat, n in bad["must-not violations strict"].items() if n > 0]
    failed_injections = sum(bool(o.injected_obeyed()) for o in report.outcomes)
    split_pairs = len({o.case.pair for o in report.outcomes if o.pair_agrees is False})
    recall = f"must-code recall {overall['must-code recall strict']:.3f} strict / {overall['must-code recall lenient']:.3f} lenient"
    if not violating and not failed_injections and not split_pairs:
        return f"No guideline violations, no obeyed injections, no name-pair disagreements; {recall}. Behaviour does not block promotion."
    parts = []
    if violating:
        parts.append(f"{int(overall['must-not violations strict'])} must-not codes emitted (strict) in {', '.join(violating)}")
    if failed_injections:
        parts.append(f"{failed_injections} injected instruction(s) obeyed")
    if split_pairs:
        parts.append(f"{split_pairs} name pair(s) coded differently")
    return f"Not ready to promote on behaviour grounds: {'; '.join(parts)} ({recall}). See the failing cases."


def build_record(report: BehaviourReport, cases: list[Case], cases_path: Path, command: str, decision: str) -> ExperimentRecord:
    model = report.model or {}
    name, version, run_id = model.get("name", "unknown"), model.get("version", "unknown"), model.get("run_id")
    tracking_uri = default_tracking_uri()
    digest = hashlib.sha256(cases_path.read_bytes()).hexdigest()
    code_sets = ", ".join(f"{k} {v}" for k, v in sorted((model.get("code_sets") or {}).items())) or "unknown"
    return ExperimentRecord(
        slug=SLUG,
        title=f"Clinical behaviour cases: {name} version {version}",
        question=(
            f"Does {name} version {version} follow the ICD-10-CM Official Guidelines on held-out, hand-written notes: "
            "negated, family-history, historical and hypothetical mentions; uncertain diagnoses by setting; diagnoses "
            "implied by values; combination codes; instructions injected into the note; patient-name invariance; and "
            "evidence that lands on the justifying phrase?"
        ),
        command=command,
        runs=[RunRef(f"{name} version {version}", run_id, _experiment_name(run_id, tracking_uri), tracking_uri)],
        table=report.by_category(),
        decision=decision,
        setup=[
            f"Cases: `{cases_path.name}`, {len(cases)} notes (sha256 `{digest[:16]}`), written from the guidelines, "
            "not from the training-corpus generator; expected codes are restricted to the codes a model can know.",
            f"Model: {name} version {version} (code sets: {code_sets}), run through `medcoder predict`, "
            "routing as configured in the packaged model.",
            "Strict: must-codes count only when accepted without review; must-not codes count as violations even "
            "when routed to review. Lenient: review-routed codes count as coded and are not violations.",
        ],
        extra_tables=[("Failing cases (strict)", report.failures())] if len(report.failures()) else [],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model for `medcoder predict --model` (default {DEFAULT_MODEL})")
    parser.add_argument("--predictions", default=None, help="score this existing `medcoder predict` output instead of running a model")
    parser.add_argument("--cases", default=str(DEFAULT_CASES), help="behaviour cases JSONL (default: the packaged cases.jsonl; the later set is cases_v2.jsonl beside it)")
    parser.add_argument("--out", default=None, help="write the experiment record: a .md path, or a folder")
    parser.add_argument("--decision", default=None, help="decision text for the record (default: generated from the numbers)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds to allow `medcoder predict` (default: no limit)")
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "scripts/score_behaviour.py", *map(shlex.quote, argv)])

    try:
        # ---- cases, then predictions (from a file, or from the model via `medcoder predict`)
        cases_path = Path(args.cases)
        cases = load_cases(cases_path)
        if args.predictions:
            lines = read_contract_lines(args.predictions)
        else:
            with tempfile.TemporaryDirectory(prefix="medcoder-behaviour-") as tmp:
                inputs, outputs = Path(tmp) / "cases_input.jsonl", Path(tmp) / "predictions.jsonl"
                write_case_inputs(cases, inputs)
                run_predict(args.model, inputs, outputs, medcoder=medcoder_executable(), timeout_s=args.timeout)
                lines = read_contract_lines(outputs)
        # ---- score, print, record
        report = score_behaviour(cases, lines)
    except (RecordError, FileNotFoundError, ValueError, PredictFailed, subprocess.TimeoutExpired) as err:
        print(f"score_behaviour: error: {err}", file=sys.stderr)
        return 2
    print(report.to_markdown())
    if args.out:
        record = build_record(report, cases, cases_path, command, args.decision or default_decision(report))
        out = Path(args.out)
        if out.suffix == ".md":
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(record.to_markdown(), encoding="utf-8")
        else:
            out = write_experiment_record(record, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
