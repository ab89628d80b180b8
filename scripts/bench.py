"""`make bench`: the speed and memory figures of training and serving in one run, side by side.

    .venv/bin/python scripts/bench.py [--smoke] [--notes-file PATH] [--model URI|PATH] [--out PATH]

Prints one `NAME VALUE` line per figure (FIGURES) and writes a generated record,
`experiments/<date>-bench.md` (targets, whether each holds, and for a missed one why and what would fix
it, from the measured numbers). Machines are noisy, so every ratio is measured in this run, its two sides
interleaved repetition by repetition:
- train: the recipe's coder (configs/model/lora.yaml) on batches of the embedded corpus: each step of
  Lightning's `Trainer.fit` is followed (in a callback, `SideBySide`) by one step of a bare PyTorch loop
  (same module, loss and AdamW) on the same batch; then bare LoRA and bare full fine-tuning steps
  alternate on those batches. Ratios are medians of the per-batch ratios. Peak RSS: each setup trains in
  a child process of its own (`--rss-probe`) and reports its own high-water mark (`peak_rss_mb`); a child
  that only imports and loads the batches is the baseline every process pays.
- infer: the packaged model (the champion when the tracking store has one, else the packaged MiniLM
  with untrained heads, built as bench_pyfunc_overhead.py does) on real MTSamples notes
  (`--notes-file`, default `<reference data>/mtsamples/mtsamples.jsonl`; embedded synthetic notes when it is
  absent, and the record says so): the pyfunc against the bare forward on the pyfunc's own batches;
  notes per second of a batched request; p50/p95 of one-note requests; achieved FLOP/s of the forward
  (torch's FlopCounterMode) over a dense float32 matmul's; the ONNX Runtime encoder (medcoder.export.fast_path),
  float32 and int8, against the bare float forward, their code-set agreement with it on the MTSamples
  notes, and their micro-F1 against the torch path's on the embedded test split.
- scale: the pyfunc on a note of 16 chunks against one of 1 chunk (the same text, cut), time per chunk.

Sizes (DEFAULT_SIZES) keep the whole run under 10 minutes on 2 cores; `--smoke` is a tiny random BERT
and a handful of notes, to check the script runs (its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import lightning as L
import mlflow
import numpy as np
import torch
from bench_kit.record import Figures, write_record
from bench_kit.support import (
    RECIPE_NET,
    bare_forward,
    build_on_the_fly,
    champion_uri,
    forward_batches,
    timed,
    train_batches,
)
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from medcoder.data.chunking import chunk_note, chunk_notes, covering
from medcoder.data.synth import generate_corpus, generate_notes
from medcoder.defaults import EMBEDDED_NOTES, EMBEDDED_SEED
from medcoder.evaluation.contract import contract_input, score_contract_lines
from medcoder.export.fast_path import FAST_PATHS, code_set_agreement, export_fast_encoder, with_fast_encoder
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule
from medcoder.paths import shared_data_dir

SCRIPT = "scripts/bench.py"
PROBE_STEPS = 3  # training steps of a peak-RSS probe: AdamW's state exists after the first, activations each step
DENSE_N = 2048  # the dense matmul the machine's float32 FLOP/s is measured with: (N x N) @ (N x N)


class Sizes(NamedTuple):
    """How much of each thing one run times (DEFAULT_SIZES: the whole run fits 10 minutes on 2 cores)."""

    encoder: str | None  # None: the packaged MiniLM (the served size)
    train_steps: int  # timed Lightning steps, each followed by a bare step (after a warm-up)
    notes: int  # MTSamples notes (latency, throughput, agreement)
    test_notes: int  # embedded test notes (micro-F1 of each path)
    reps: int  # interleaved repetitions of each inference path
    label_notes: int  # embedded train notes the model built on the fly takes its labels from


DEFAULT_SIZES = Sizes(None, train_steps=6, notes=16, test_notes=40, reps=3, label_notes=48)
SMOKE_SIZES = Sizes("tiny-random-bert", train_steps=2, notes=4, test_notes=6, reps=1, label_notes=12)


def progress(message: str) -> None:
    """What the run is doing, on stderr (stdout holds only the figures)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- notes
def mtsamples_inputs(path: Path, n: int) -> list[dict]:
    """`n` MTSamples notes (a fixed random sample of those with text) as contract inputs, ids `mtsamples-<note_id>`."""
    rows = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
                text, note_id = row.get("transcription"), row["note_id"]
            except (ValueError, KeyError, AttributeError) as err:
                raise SystemExit(f"{path}, line {number}: not an MTSamples record ({type(err).__name__})") from None
            if isinstance(text, str) and text.strip():
                rows.append({"id": f"mtsamples-{note_id}", "text": text})
    if len(rows) < n:
        raise SystemExit(f"{path}: {len(rows)} notes with text, {n} asked for (--notes)")
    chosen = np.random.default_rng(0).choice(len(rows), size=n, replace=False)
    return [rows[i] for i in sorted(chosen)]


def inference_notes(notes_file: str | None, n: int) -> tuple[list[dict], str]:
    """(contract inputs, where they come from): MTSamples when the file is there, else synthetic notes."""
    path = Path(notes_file) if notes_file else shared_data_dir() / "mtsamples" / "mtsamples.jsonl"
    if path.is_file():
        return mtsamples_inputs(path, n), f"{n} MTSamples notes (fixed random sample, seed 0)"
    notes = generate_notes(n, seed=7)
    return [contract_input(r) for r in notes], f"{n} embedded synthetic notes: MTSamples not found (looked for {path})"


# ---------------------------------------------------------------- train
def bare_step(module: CoderLitModule, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    """One optimiser step of a plain loop: forward, the module's own loss, backward, AdamW."""
    net = module.net.train()
    with torch.enable_grad():
        module.losses(net(batch["input_ids"], batch["attention_mask"], batch["token_mask"]), batch)["loss"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


class SideBySide(L.Callback):
    """Right after each Lightning step, one bare step on the same batch, timed.

    A Lightning step is the time from one batch's start to the next's, less the bare step run in between:
    the trainer's loop, hooks and logging count, and each pair of steps sees the same machine load.
    """

    def __init__(self, bare: Callable[[dict[str, torch.Tensor]], None]):
        self.bare = bare
        self.starts: list[float] = []
        self.bare_seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        self.starts.append(time.perf_counter())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.bare_seconds.append(timed(functools.partial(self.bare, batch)))

    def lightning_seconds(self) -> list[float]:
        return [later - start - bare for start, later, bare in zip(self.starts, self.starts[1:], self.bare_seconds)]


def lora_and_full_seconds(lora: Callable, full: Callable, batches: list) -> tuple[list[float], list[float]]:
    """One bare step of each setup per batch, in ABBA order: a step right after the other setup's (whose memory
    the allocator may have to get back) is LoRA's on one batch and full fine-tuning's on the next."""
    seconds: tuple[list[float], list[float]] = ([], [])
    for i, batch in enumerate(batches):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for which in order:
            seconds[which].append(timed(functools.partial((lora, full)[which], batch)))
    return seconds


def train_module(encoder: str | None, finetune: str, labels: list) -> CoderLitModule:
    """The recipe's coder (LoRA), or the same coder fine-tuned in full (configs/model/full.yaml's encoder_lr)."""
    net = RECIPE_NET if finetune == "lora" else {k: v for k, v in RECIPE_NET.items() if not k.startswith("lora")}
    net = {**net, "finetune": finetune}
    torch.manual_seed(0)
    return CoderLitModule(net=functools.partial(MedicalCoder, encoder=encoder, **net), labels=labels,
                          optimizer=functools.partial(torch.optim.AdamW, lr=5e-4),
                          encoder_lr=5e-5 if finetune == "full" else None)  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, the high-water mark of this process's own memory
    since it started (`ru_maxrss` survives exec: a child of a big process would report its parent's peak)."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text(encoding="utf-8").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_probe(setup: str, encoder: str | None, steps: int, data_dir: Path) -> None:
    """Child process: train `setup` ("lora", "full"; "none" only loads the batches) and print its peak RSS."""
    batches, labels = train_batches(steps, data_dir)
    if setup != "none":
        module = train_module(encoder, setup, labels)
        optimizer = module.configure_optimizers()["optimizer"]
        for batch in batches:
            bare_step(module, optimizer, batch)
    print(json.dumps({"peak_rss_mb": peak_rss_mb()}))


def probe_peak_rss(sizes: Sizes, data_dir: Path, threads: int) -> dict[str, float]:
    """Peak RSS of child processes that each train one setup (rss_probe), run side by side: memory is not time."""
    children = {}
    for setup in ("lora", "full", "none"):
        command = [sys.executable, str(Path(__file__)), "--rss-probe", setup, "--train-steps", str(PROBE_STEPS),
                   "--data-dir", str(data_dir), "--threads", str(threads)]  # fmt: skip
        if sizes.encoder is not None:
            command.append("--smoke")
        children[setup] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks = {}
    for setup, child in children.items():
        out, err = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"the peak-RSS probe of {setup} failed ({child.returncode}): {err[-2000:]}")
        peaks[setup] = float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])
    return peaks


def train_figures(sizes: Sizes, data_dir: Path, threads: int) -> dict[str, float]:
    # batch 0 warms up; Lightning step i is timed up to batch i+1's start, so one more batch than timed steps
    batches, labels = train_batches(sizes.train_steps + 2, data_dir)
    lora, full = train_module(sizes.encoder, "lora", labels), train_module(sizes.encoder, "full", labels)
    lora_step, full_step = (
        functools.partial(bare_step, m, m.configure_optimizers()["optimizer"]) for m in (lora, full)
    )
    clock = SideBySide(lora_step)
    progress(f"train: {len(batches)} Lightning steps, each followed by a bare step")
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=len(batches), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[clock])  # fmt: skip
    trainer.fit(lora, train_dataloaders=DataLoader(batches, batch_size=None))
    torch.set_num_threads(threads)
    timed_steps = slice(1, sizes.train_steps + 1)
    lightning, bare = np.array(clock.lightning_seconds()[timed_steps]), np.array(clock.bare_seconds[timed_steps])
    progress("train: bare LoRA and bare full fine-tuning steps, alternating")
    lora_s, full_s = (np.array(s) for s in lora_and_full_seconds(lora_step, full_step, batches[timed_steps]))
    tokens = np.array([int(b["attention_mask"].sum()) for b in batches[timed_steps]])
    progress("peak RSS probes (child processes)")
    rss = probe_peak_rss(sizes, data_dir, threads)
    overhead = lightning / bare  # each pair ran on the same batch
    return {
        "train/overhead_vs_bare": float(np.median(overhead)),
        "train/tokens_per_s": float(np.median(tokens / lightning)),
        "train/peak_rss_mb": rss["lora"],
        "train/lora_vs_full_tokens_per_s": float(np.median(full_s / lora_s)),
        "train/lora_vs_full_peak_rss": rss["lora"] / rss["full"],
        "train/ms_per_step_lightning": 1000 * float(np.median(lightning)),
        "train/ms_per_step_bare": 1000 * float(np.median(bare)),
        "train/overhead_min": float(overhead.min()),
        "train/overhead_max": float(overhead.max()),
        "train/ms_per_step_bare_full": 1000 * float(np.median(full_s)),
        "train/peak_rss_mb_full": rss["full"],
        "train/peak_rss_mb_baseline": rss["none"],
        "train/tokens_per_step": float(tokens.mean()),
    }


# ---------------------------------------------------------------- infer
def micro_f1(coder, records) -> float:  # noqa: ANN001 (an ExportedCoder with some encoder)
    lines = coder.predict_records([contract_input(r) for r in records])
    return float(score_contract_lines(records, lines).metrics["micro_f1"])


def infer_figures(model, inputs: list[dict], fast_files: dict[str, Path], sizes: Sizes) -> dict[str, float]:  # noqa: ANN001
    coder = model.unwrap_python_model().coder
    net = coder.net
    chunking = covering(coder.chunking, coder.max_chars)  # the pyfunc reads every note to its end
    texts = [i["text"] for i in inputs]
    batches = forward_batches(net, texts, chunking, coder.batch_size)
    fast_nets = {path: with_fast_encoder(net, fast_files[path]) for path in FAST_PATHS}
    dense = torch.randn(DENSE_N, DENSE_N), torch.randn(DENSE_N, DENSE_N)
    ways = {
        "pyfunc": lambda: model.predict(inputs),
        "bare": lambda: bare_forward(net, batches),
        "tokenise": lambda: chunk_notes(texts, net.tokenizer, chunking),
        **{path: functools.partial(bare_forward, fast_net, batches) for path, fast_net in fast_nets.items()},
        "dense_matmul": lambda: torch.mm(*dense),
    }
    reference = model.predict(inputs)  # warms the pyfunc; the float path's answers
    errors = [line["id"] for line in reference if "error" in line]
    if errors:
        raise SystemExit(f"the model returned error entries for {len(errors)} notes (e.g. {errors[0]})")
    for fn in ways.values():
        fn()
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for rep in range(sizes.reps):
        progress(f"inference repetition {rep + 1}/{sizes.reps}")
        for name, fn in ways.items():
            seconds[name].append(timed(fn))
    median = {name: statistics.median(s) for name, s in seconds.items()}
    with FlopCounterMode(display=False) as counter:
        bare_forward(net, batches)
    progress("one-note requests")
    latency_ms = [1000 * timed(lambda one=one: model.predict([one])) for one in inputs]
    progress("fast paths: agreement and micro-F1")
    test = generate_corpus(EMBEDDED_NOTES, EMBEDDED_SEED)["test"][: sizes.test_notes]
    f1_torch = micro_f1(coder, test)
    figures = {
        "infer/pyfunc_overhead_vs_bare": median["pyfunc"] / median["bare"],
        "infer/notes_per_s": len(inputs) / median["pyfunc"],
        "infer/p50_ms": float(np.percentile(latency_ms, 50)),
        "infer/p95_ms": float(np.percentile(latency_ms, 95)),
        "infer/flops_fraction": counter.get_total_flops() / median["bare"] / (2 * DENSE_N**3 / median["dense_matmul"]),
        "infer/pyfunc_ms_per_note": 1000 * median["pyfunc"] / len(inputs),
        "infer/bare_ms_per_note": 1000 * median["bare"] / len(inputs),
        "infer/tokenise_ms_per_note": 1000 * median["tokenise"] / len(inputs),
        "infer/model_gflops_per_s": counter.get_total_flops() / median["bare"] / 1e9,
        "infer/dense_gflops_per_s": 2 * DENSE_N**3 / median["dense_matmul"] / 1e9,
        "infer/chunks_per_note": sum(int(m.any(-1).sum()) for _, m, _ in batches) / len(inputs),
        "infer/micro_f1_torch": f1_torch,
    }
    for path, fast_net in fast_nets.items():
        fast_coder = dataclasses.replace(coder, net=fast_net)
        figures[f"{path}/speedup_vs_bare_fp32"] = median["bare"] / median[path]
        figures[f"{path}/agreement"] = code_set_agreement(reference, fast_coder.predict_records(inputs))
        figures[f"{path}/micro_f1_diff"] = micro_f1(fast_coder, test) - f1_torch
    return figures


def note_of_chunks(text: str, chunks: int, net: MedicalCoder, chunking) -> str:  # noqa: ANN001
    """The longest prefix of `text` (cut at a space) that the pyfunc reads as exactly `chunks` chunks."""
    cuts = [i for i, char in enumerate(text) if char == " "]
    low, high = 0, len(cuts) - 1
    while low < high:  # the last cut whose prefix has at most `chunks` chunks
        middle = (low + high + 1) // 2
        if chunk_note(text[: cuts[middle]], net.tokenizer, chunking).n_chunks <= chunks:
            low = middle
        else:
            high = middle - 1
    prefix = text[: cuts[low]]
    if chunk_note(prefix, net.tokenizer, chunking).n_chunks != chunks:
        raise SystemExit(f"no prefix of the text is read as {chunks} chunks")
    return prefix


def scale_figures(model, inputs: list[dict], sizes: Sizes) -> dict[str, float]:  # noqa: ANN001
    coder = model.unwrap_python_model().coder
    chunking = covering(coder.chunking, coder.max_chars)
    text = " ".join(i["text"] for i in inputs)
    text = " ".join([text] * (1 + 16 // max(1, chunk_note(text, coder.net.tokenizer, chunking).n_chunks)))
    notes = {n: {"id": f"scale-{n}", "text": note_of_chunks(text, n, coder.net, chunking)} for n in (1, 16)}
    batches = {n: forward_batches(coder.net, [note["text"]], chunking, 1) for n, note in notes.items()}
    seconds: dict[tuple[str, int], list[float]] = {}
    for _ in range(sizes.reps + 1):
        for n, note in notes.items():
            seconds.setdefault(("pyfunc", n), []).append(timed(lambda note=note: model.predict([note])))
            seconds.setdefault(("bare", n), []).append(timed(functools.partial(bare_forward, coder.net, batches[n])))
    per_chunk = {key: statistics.median(s[1:]) / key[1] for key, s in seconds.items()}  # the first is a warm-up
    return {
        "scale/time_per_chunk_ratio_16_vs_1": per_chunk[("pyfunc", 16)] / per_chunk[("pyfunc", 1)],
        "scale/forward_time_per_chunk_ratio_16_vs_1": per_chunk[("bare", 16)] / per_chunk[("bare", 1)],
        "scale/pyfunc_ms_per_chunk_1": 1000 * per_chunk[("pyfunc", 1)],
        "scale/pyfunc_ms_per_chunk_16": 1000 * per_chunk[("pyfunc", 16)],
    }


# ---------------------------------------------------------------- main
def spark_figures(model_uri: str, inputs: list[dict]) -> dict[str, float]:
    """Notes/s of `medcoder score-spark`'s scoring job (Spark local[2], the registered model checked against its
    seal, then read, scored and written; Spark's start not counted), or nothing without pyspark."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        progress("scale: no pyspark here, no Spark figure (pip install 'medcoder[spark]')")
        return {}
    from medcoder.serving.spark import score_records, spark_session

    spark, owned = spark_session("local[2]")
    try:
        run = score_records(spark, [{"id": r["id"], "text": r["text"]} for r in inputs], model=model_uri)
    finally:
        if owned:
            spark.stop()
    return {"scale/spark_notes_per_s": run.notes_per_s}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny random BERT, a few notes: checks the script runs")
    parser.add_argument(
        "--notes-file", help="MTSamples JSON lines (default: <reference data>/mtsamples/mtsamples.jsonl)"
    )
    parser.add_argument("--model", help="models:/ or runs:/ URI or model folder (default: champion, else built)")
    parser.add_argument("--out", help="record file or folder (default: experiments/<date>-bench.md)")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--data-dir", default="outputs/data/bench", help="embedded corpus of the training batches")
    parser.add_argument("--rss-probe", choices=("lora", "full", "none"), help=argparse.SUPPRESS)
    parser.add_argument("--train-steps", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def quiet_libraries() -> None:
    """Lightning's start-up lines and the few-workers hint would mix with the figures."""
    for name in ("lightning.pytorch", "lightning.fabric", "onnxruntime"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization warns on the root logger
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*(LoRA|lora).*")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sizes = SMOKE_SIZES if args.smoke else DEFAULT_SIZES
    torch.set_num_threads(args.threads)
    quiet_libraries()
    if args.rss_probe:
        rss_probe(args.rss_probe, sizes.encoder, args.train_steps, Path(args.data_dir))
        return 0
    started, load_before = time.perf_counter(), os.getloadavg()
    inputs, notes_source = inference_notes(args.notes_file, sizes.notes)
    with tempfile.TemporaryDirectory(prefix="medcoder-bench-") as tmp:
        source = args.model or (None if args.smoke else champion_uri())
        if source is None:
            progress("building an untrained coder over the encoder (no champion in the tracking store)")
            labels_from = generate_corpus(EMBEDDED_NOTES, EMBEDDED_SEED)["train"][: sizes.label_notes]
            source = build_on_the_fly(sizes.encoder, labels_from, Path(tmp))
            model_source = f"built on the fly: {sizes.encoder or 'packaged MiniLM'} encoder, untrained heads"
        else:
            model_source = source
        model = mlflow.pyfunc.load_model(source)
        progress("exporting the encoder to ONNX (float32 and int8)")
        int8 = export_fast_encoder(model.unwrap_python_model().coder.net, Path(tmp) / "onnx", "onnx-int8")
        fast_files = {"onnx-fp32": int8.with_name("encoder.onnx"), "onnx-int8": int8}
        values = infer_figures(model, inputs, fast_files, sizes)
        progress("scale: 16 chunks against 1")
        values |= scale_figures(model, inputs, sizes)
        if source.startswith("models:/") and not args.smoke:
            progress("scale: Spark scoring of the same notes (local[2])")
            values |= spark_figures(source, inputs)
    values |= train_figures(sizes, Path(args.data_dir), args.threads)
    figures = Figures(values)
    for name, value in figures.printed():
        print(f"{name} {value:.4g}", flush=True)
    command = shlex.join([".venv/bin/python", SCRIPT, *argv])
    context = {
        "model": model_source, "untrained": model_source.startswith("built on the fly"), "notes": notes_source,
        "sizes": sizes, "threads": args.threads, "seconds": time.perf_counter() - started,
        "load": (load_before, os.getloadavg()), "dense_n": DENSE_N,
    }  # fmt: skip
    path = write_record(figures, context, command, args.out)
    progress(f"record: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
