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
import functools
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medcoder.data.chunking import chunk_notes, pad_chunks  # noqa: E402
from medcoder.data.labels import coding_label_space  # noqa: E402
from medcoder.data.synth import generate_notes  # noqa: E402
from medcoder.defaults import CHAMPION_URI  # noqa: E402
from medcoder.export.artifact import export_coder  # noqa: E402
from medcoder.export.mlflow_model import save_packaged_model  # noqa: E402
from medcoder.inference.predict import predict_with_scores  # noqa: E402
from medcoder.inference.routing import RoutingPolicy  # noqa: E402
from medcoder.models.coder import MedicalCoder  # noqa: E402
from medcoder.models.lit_module import CoderLitModule  # noqa: E402
from medcoder.paths import default_tracking_uri  # noqa: E402
from medcoder.serving.predict import ModelNotFoundError, check_store, registered_version  # noqa: E402

CODES_PER_NOTE = 4  # about what a trained coder predicts on the synthetic notes


def champion_uri() -> str | None:
    """`models:/medcoder@champion` when the default tracking store has it, else None."""
    uri = default_tracking_uri()
    try:
        check_store(uri)
        mlflow.set_tracking_uri(uri)
        registered_version(CHAMPION_URI, uri)
    except ModelNotFoundError:
        return None
    return CHAMPION_URI


def build_on_the_fly(encoder: str | None, notes: list, workdir: Path) -> str:
    """Export an untrained coder over `encoder` and save it as a pyfunc folder; returns that folder."""
    labels = coding_label_space(notes, None, top_k=50)
    torch.manual_seed(0)
    net = MedicalCoder(num_labels=len(labels), encoder=encoder, finetune="lora")
    coder = CoderLitModule(net=net, labels=labels.to_list(), optimizer=functools.partial(torch.optim.AdamW, lr=1e-3))
    _, scores = predict_with_scores(coder, notes)
    threshold = float(np.clip(np.quantile(scores, 1 - CODES_PER_NOTE / len(labels)), 0.01, 0.99))
    folder = export_coder(coder, workdir / "coder", threshold=threshold, routing=RoutingPolicy())
    return str(save_packaged_model(folder, workdir / "pyfunc"))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


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
        chunks = chunk_notes([r.text for r in notes], net.tokenizer, coder.chunking)
        order = sorted(range(len(notes)), key=lambda i: chunks[i].n_tokens)
        batches = []
        for first in range(0, len(order), coder.batch_size):
            batch = pad_chunks([chunks[i] for i in order[first : first + coder.batch_size]], net.tokenizer.pad_token_id)
            batches.append((batch["input_ids"], batch["attention_mask"], batch["token_offsets"][..., 0] >= 0))

        @torch.no_grad()
        def forward() -> None:
            for input_ids, attention_mask, token_mask in batches:
                net(input_ids, attention_mask, token_mask)

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
    tokens = sum(c.n_tokens for c in chunks) / len(chunks)
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
