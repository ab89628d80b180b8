"""Several models on the held-out notes, side by side: stress notes and both sets of behaviour cases.

    .venv/bin/python scripts/compare_heldout.py --model LABEL=MODEL [--model LABEL=MODEL ...]
                                                [--note LABEL=TEXT ...] [--out PATH]

MODEL is anything `medcoder predict --model` takes (a models:/ or runs:/ URI of this store, or a model
folder). Every model goes through the same `medcoder predict` of this environment, so differences in
the table come from the models, not from the grounding and guideline code. One row per model: the
`all` rows of `score_stress.py` (unsupported codes accepted without review, unsupported grounded
above 0.9, must-code recall) and of `score_behaviour.py` on `cases.jsonl` and `cases_v2.jsonl`
(strict and lenient pass rates, must-not violations). Must-code recall on the stress notes uses
each note's `out_of_label_space` annotation, so models with different label spaces compare alike.
Use it to record a lever (a corpus change, a recipe change) against the model it replaces, and
two seeds of one recipe to see how far a single training run moves these numbers.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import pandas as pd

from medcoder.evaluation.behaviour import DEFAULT_CASES, load_cases, score_behaviour
from medcoder.evaluation.predict_subprocess import predict_notes
from medcoder.evaluation.records import ExperimentRecord, write_record_to
from medcoder.evaluation.stress import CONFIDENT_SCORE, load_stress, score_stress

CASES_V2 = DEFAULT_CASES.with_name("cases_v2.jsonl")


def labelled(values: list[str], flag: str) -> dict[str, str]:
    """{"old": "runs:/..."} from ["old=runs:/..."]; a clear error names the bad value."""
    out = {}
    for value in values:
        label, sep, rest = value.partition("=")
        if not sep or not label or not rest:
            raise SystemExit(f"{flag} {value!r}: expected LABEL=VALUE")
        out[label] = rest
    return out


def model_row(label: str, model: str) -> dict[str, object]:
    stress_notes = load_stress()
    stress = score_stress(stress_notes, predict_notes(stress_notes, model)).by("style").iloc[-1]
    row: dict[str, object] = {
        "model": label,
        "stress: unsupported accepted": stress["unsupported accepted rate"],
        f"stress: unsupported grounded > {CONFIDENT_SCORE}": stress[f"unsupported grounded > {CONFIDENT_SCORE}"],
        "stress: must-code recall": stress["must-code recall (label space)"],
    }
    for name, path in (("v1", DEFAULT_CASES), ("v2", CASES_V2)):
        cases = load_cases(path)
        overall = score_behaviour(cases, predict_notes(cases, model)).by_category().iloc[-1]
        row[f"{name}: pass strict"] = overall["pass strict"]
        row[f"{name}: pass lenient"] = overall["pass lenient"]
        row[f"{name}: must-not strict"] = overall["must-not violations strict"]
    return row


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="LABEL=MODEL (repeat for each model)")
    parser.add_argument("--note", action="append", default=[], help="LABEL=TEXT: what the model is (repeatable)")
    parser.add_argument("--slug", default="heldout-comparison", help="record file name: <date>-<slug>.md")
    parser.add_argument("--title", default="Held-out notes: models side by side")
    parser.add_argument("--question", default="How do these models compare on the hand-written held-out notes?")
    parser.add_argument("--decision", default="See the table.")
    parser.add_argument("--out", default=None, help="write the experiment record: a .md path, or a folder")
    args = parser.parse_args(argv)
    models, notes = labelled(args.model, "--model"), labelled(args.note, "--note")
    table = pd.DataFrame([model_row(label, model) for label, model in models.items()])
    print(table.to_string(index=False))
    if args.out:
        command = " ".join([".venv/bin/python", "scripts/compare_heldout.py", *map(shlex.quote, argv)])
        setup = [f"`{label}`: {notes.get(label, 'model')} (`{model}`)" for label, model in models.items()]
        setup.append("Each model coded the notes through this environment's `medcoder predict`, so the grounding "
                     "and guideline code is the same for all; only the models differ.")  # fmt: skip
        record = ExperimentRecord(
            slug=args.slug, title=args.title, question=args.question, command=command, runs=[], table=table,
            decision=args.decision, setup=setup,
        )  # fmt: skip
        print(f"wrote {write_record_to(record, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
