"""How much the packaged model costs over the bare network: pyfunc predict vs MedicalCoder forward, per note.

    .venv/bin/python scripts/bench_pyfunc_overhead.py [--model URI|PATH] [--encoder tiny-random-bert]
                                                      [--notes 24] [--reps 5] [--threads 2]

On the same synthetic notes, in one process, repetitions interleaved (pyfunc, forward, pyfunc, ...)
so machine noise hits both alike:
- pyfunc: the loaded MLflow model's `predict` on contract input records: per-record validation,
  tokenisation and chunking, forward, grounding, routing and contract rendering;
- forward: `MedicalCoder.forward` alone on the same notes, tokenised and batched beforehand exactly
  as the pyfunc batches them (length-sorted, the model's batch size).
The ratio of the medians is the overhead (target <= 1.15x).

Model: `--model` (a models:/ or runs:/ URI, or a model folder); by default the registered champion
(`models:/medcoder@champion`) when the tracking store has one, else a model built on the fly from
`--encoder` (default: the packaged MiniLM, the size that is served) with untrained heads and a
threshold at which about four codes per note fire, as after training; it is exported and saved as a
pyfunc in a temporary folder. `--encoder tiny-random-bert` is a fast smoke run; its forward is so
cheap that the ratio says nothing about a real model.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import mlflow
import torch
from bench_kit.support import bare_forward, build_on_the_fly, champion_uri, forward_batches, timed

from medcoder.data.synth import generate_notes


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="models:/ or runs:/ URI or model folder (default: champion, else built)"
    )
    parser.add_argument(
        "--encoder", default=None, help="encoder of the model built on the fly (default: packaged MiniLM)"
    )
    parser.add_argument("--notes", type=int, default=24, help="synthetic notes per repetition (default 24)")
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions of each path (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    print("command:", " ".join([".venv/bin/python", "scripts/bench_pyfunc_overhead.py", *map(shlex.quote, argv)]))
    torch.set_num_threads(args.threads)
    notes = generate_notes(args.notes, seed=7)
    inputs = [{"id": r.id, "text": r.text, "setting": r.setting} for r in notes]

    with tempfile.TemporaryDirectory(prefix="medcoder-bench-") as tmp:
        source = args.model or champion_uri()
        if source is None:
            source = build_on_the_fly(args.encoder, notes, Path(tmp))
            described = f"built on the fly (encoder {args.encoder or 'packaged MiniLM'}, untrained heads)"
        else:
            described = source
        model = mlflow.pyfunc.load_model(source)
        coder = model.unwrap_python_model().coder
        net = coder.net

        # The forward path's input: the pyfunc's own batches (length-sorted, same batch size), made once.
        batches = forward_batches(net, [r.text for r in notes], coder.chunking, coder.batch_size)

        def forward() -> None:
            bare_forward(net, batches)

        outputs = model.predict(inputs)  # warm-up of both paths, and a check that every note was coded
        forward()
        errors = [o["id"] for o in outputs if "error" in o]
        if errors:
            raise SystemExit(
                f"the model returned error entries for {len(errors)} notes (e.g. {errors[0]}): fix that first"
            )
        pyfunc_times, forward_times = [], []
        for _ in range(args.reps):
            pyfunc_times.append(timed(lambda: model.predict(inputs)) / len(notes))
            forward_times.append(timed(forward) / len(notes))

    codes = sum(len(o["codes"]) for o in outputs) / len(outputs)
    tokens = sum(int(mask.sum()) for _, mask, _ in batches) / len(notes)
    pyfunc_ms, forward_ms = 1000 * statistics.median(pyfunc_times), 1000 * statistics.median(forward_times)
    print(
        f"model: {described}; {net.config['num_labels']} labels, threshold {coder.threshold:.3f}, "
        f"batch size {coder.batch_size}"
    )
    print(f"notes: {len(notes)} (mean {tokens:.0f} tokens, {codes:.1f} codes predicted per note); "
          f"reps: {args.reps} interleaved; torch threads: {args.threads}")  # fmt: skip
    print(f"pyfunc predict : {pyfunc_ms:8.2f} ms/note median (min {1000 * min(pyfunc_times):.2f})")
    print(f"bare forward   : {forward_ms:8.2f} ms/note median (min {1000 * min(forward_times):.2f})")
    print(f"overhead ratio : {pyfunc_ms / forward_ms:8.3f}x (target <= 1.15x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
