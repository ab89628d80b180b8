"""Score a model on the held-out clinical behaviour cases, and optionally write the experiment record.

    .venv/bin/python scripts/score_behaviour.py --model models:/medcoder@champion \
        [--out experiments/<date>-behaviour.md]
    # score an existing `medcoder predict` output:
    .venv/bin/python scripts/score_behaviour.py --predictions preds.jsonl

The cases (shipped in `medcoder/resources/behaviour/`, see `medcoder.evaluation.behaviour`; `--cases` picks the
file, e.g. cases_v2.jsonl) are written to a temporary prediction-input file holding only
`{id, text, setting, age, sex}`, coded by the real `medcoder predict` in a subprocess (the same path
users and serving take, see `medcoder.evaluation.predict_subprocess`), and scored. The table
is printed; `--out` also writes the experiment record (question, command, model version, tables,
decision). `--out` is a `.md` file path, or a folder where `<today>-behaviour-<cases file stem>.md` is written.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import subprocess
import sys
from pathlib import Path

from medcoder.data.schema import RecordError
from medcoder.defaults import CHAMPION_URI
from medcoder.evaluation.behaviour import DEFAULT_CASES, BehaviourReport, Case, load_cases, score_behaviour
from medcoder.evaluation.predict_subprocess import PredictFailed, add_scoring_arguments, experiment_name, scoring_lines
from medcoder.evaluation.records import ExperimentRecord, RunRef, write_record_to
from medcoder.paths import default_tracking_uri


def record_slug(cases_path: Path) -> str:
    """`behaviour-cases` for cases.jsonl, `behaviour-cases-v2` for cases_v2.jsonl: one record name per set."""
    return "behaviour-" + cases_path.stem.replace("_", "-")


def default_decision(report: BehaviourReport) -> str:
    """A decision sentence generated from the numbers (a human may pass --decision instead)."""
    table = report.by_category().set_index("category")
    overall = table.loc["all"]
    bad = table.drop(index="all")
    violating = [cat for cat, n in bad["must-not violations strict"].items() if n > 0]
    failed_injections = sum(bool(o.injected_obeyed()) for o in report.outcomes)
    split_pairs = len({o.case.pair for o in report.outcomes if o.pair_agrees is False})
    recall = (
        f"must-code recall {overall['must-code recall strict']:.3f} strict / "
        f"{overall['must-code recall lenient']:.3f} lenient"
    )
    if not violating and not failed_injections and not split_pairs:
        return (
            f"No guideline violations, no obeyed injections, no name-pair disagreements; {recall}. "
            "Behaviour does not block promotion."
        )
    parts = []
    if violating:
        parts.append(
            f"{int(overall['must-not violations strict'])} must-not codes emitted (strict) in {', '.join(violating)}"
        )
    if failed_injections:
        parts.append(f"{failed_injections} injected instruction(s) obeyed")
    if split_pairs:
        parts.append(f"{split_pairs} name pair(s) coded differently")
    return f"Not ready to promote on behaviour grounds: {'; '.join(parts)} ({recall}). See the failing cases."


def build_record(
    report: BehaviourReport, cases: list[Case], cases_path: Path, command: str, decision: str
) -> ExperimentRecord:
    model = report.model or {}
    name, version, run_id = model.get("name", "unknown"), model.get("version", "unknown"), model.get("run_id")
    tracking_uri = default_tracking_uri()
    digest = hashlib.sha256(cases_path.read_bytes()).hexdigest()
    code_sets = ", ".join(f"{k} {v}" for k, v in sorted((model.get("code_sets") or {}).items())) or "unknown"
    return ExperimentRecord(
        slug=record_slug(cases_path),
        title=f"Clinical behaviour cases: {name} version {version}",
        question=(
            f"Does {name} version {version} follow the ICD-10-CM Official Guidelines on held-out, hand-written notes: "
            "negated, family-history, historical and hypothetical mentions; uncertain diagnoses by setting; diagnoses "
            "implied by values; combination codes; instructions injected into the note; patient-name invariance; and "
            "evidence that lands on the justifying phrase?"
        ),
        command=command,
        runs=[RunRef(f"{name} version {version}", run_id, experiment_name(run_id, tracking_uri), tracking_uri)],
        table=report.by_category(),
        decision=decision,
        setup=[
            f"Cases: `{cases_path.name}`, {len(cases)} notes (sha256 `{digest[:16]}`), written from the guidelines, "
            "not from the training-corpus generator; every expected code is billable in the shipped ICD-10-CM release.",
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
    add_scoring_arguments(parser, CHAMPION_URI)
    parser.add_argument(
        "--cases",
        default=str(DEFAULT_CASES),
        help="behaviour cases JSONL (default: the packaged cases.jsonl; the later set is cases_v2.jsonl beside it)",
    )
    args = parser.parse_args(argv)
    command = " ".join([".venv/bin/python", "scripts/score_behaviour.py", *map(shlex.quote, argv)])

    try:
        # ---- cases, then predictions (from a file, or from the model via `medcoder predict`)
        cases_path = Path(args.cases)
        cases = load_cases(cases_path)
        lines = scoring_lines(cases, args)
        # ---- score, print, record
        report = score_behaviour(cases, lines)
    except (RecordError, FileNotFoundError, ValueError, PredictFailed, subprocess.TimeoutExpired) as err:
        print(f"score_behaviour: error: {err}", file=sys.stderr)
        return 2
    print(report.to_markdown())
    if args.out:
        record = build_record(report, cases, cases_path, command, args.decision or default_decision(report))
        print(f"wrote {write_record_to(record, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
