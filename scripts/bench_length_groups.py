"""What encoding chunks in groups of similar length saves (MedicalCoder._encode_chunks), side by side.

The same batches of the embedded corpus's train split (bucketed by length as in training) go through the
recipe's coder (packaged all-MiniLM-L6-v2, LoRA on the top 2 layers) with length groups on and off,
repetitions interleaved so machine noise hits both alike:
- `encode`: the encoder pass without gradients (the head warm-up's cache, evaluation, serving);
- `train_step`: forward, loss, backward and AdamW of phase 2.
Prints `NAME VALUE` lines: seconds per batch each way, their ratio (grouped over padded; under 1 is faster),
padded tokens per real token, and the largest difference of a real token's state between the two ways.
Run: .venv/bin/python scripts/bench_length_groups.py [--batches 12] [--reps 2] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from medcoder.data.datamodule import CodingDataModule
from medcoder.data.synth import write_corpus
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule


def batches(n: int, data_dir: Path) -> tuple[list[dict[str, torch.Tensor]], list]:
    """`n` train batches (8 notes, length buckets) of a 400-note embedded corpus, and its labels."""
    if not (data_dir / "train.jsonl").exists():
        write_corpus(data_dir, 400, seed=1)
    datamodule = CodingDataModule(dataset="embedded", data_dir=str(data_dir), batch_size=8, seed=0)
    datamodule.setup("fit")
    out = []
    for batch in datamodule.train_dataloader():
        out.append(batch)
        if len(out) == n:
            break
    return out, datamodule.label_space.to_list()


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--reps", type=int, default=2, help="timed passes over the batches, each way")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default="outputs/data/bench-length-groups")
    parser.add_argument("--out", help="also write the lines into this experiment record (markdown)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data, labels = batches(args.batches, Path(args.data_dir))
    module = CoderLitModule(
        net=functools.partial(MedicalCoder, finetune="lora", lora_r=16, lora_alpha=32,
                              lora_target_modules=["query", "key", "value", "dense"], lora_layers=[-2, -1],
                              tagger_kernel=5, tagger_hidden=128, ngram_kernel=3),
        labels=labels,
    )  # fmt: skip
    net = module.net
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-5)

    def encode_all() -> None:
        with torch.no_grad():
            for b in data:
                net.encode(b["input_ids"], b["attention_mask"])

    def train_all() -> None:
        net.train()
        for b in data:
            loss = module.losses(net(b["input_ids"], b["attention_mask"], b["token_mask"]), b)["loss"]
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        net.eval()

    # same states both ways, on the real tokens (eval mode: no dropout)
    net.eval()
    worst = 0.0
    with torch.no_grad():
        for b in data:
            net.group_lengths = True
            grouped = net.encode(b["input_ids"], b["attention_mask"])
            net.group_lengths = False
            padded = net.encode(b["input_ids"], b["attention_mask"])
            real = b["attention_mask"].reshape(grouped.shape[0], -1).bool()
            worst = max(worst, float((grouped - padded)[real].abs().max()))
    seconds = {("encode", g): 0.0 for g in (True, False)} | {("train_step", g): 0.0 for g in (True, False)}
    for _ in range(args.reps):
        for grouped in (True, False):
            net.group_lengths = grouped
            seconds[("encode", grouped)] += timed(encode_all)
            seconds[("train_step", grouped)] += timed(train_all)
    real_tokens = sum(int(b["attention_mask"].sum()) for b in data)
    padded_tokens = sum(int(b["attention_mask"].any(-1).sum()) * b["input_ids"].shape[-1] for b in data)
    per_batch = args.reps * len(data)
    lines = [f"data/padded_tokens_per_real_token {padded_tokens / real_tokens:.3f}"]
    for step in ("encode", "train_step"):
        lines += [
            f"{step}/s_per_batch_grouped {seconds[(step, True)] / per_batch:.4f}",
            f"{step}/s_per_batch_padded {seconds[(step, False)] / per_batch:.4f}",
            f"{step}/ratio_grouped_vs_padded {seconds[(step, True)] / seconds[(step, False)]:.3f}",
        ]
    lines.append(f"encode/max_abs_state_difference {worst:.2e}")
    print("\n".join(lines))
    if args.out:
        command = shlex.join([".venv/bin/python", "scripts/bench_length_groups.py", *sys.argv[1:]])
        Path(args.out).write_text(
            f"# Encoding chunks in groups of similar length\n\nDate: {date.today().isoformat()}\n\n"
            "## Question\n\nHow much of the encoder's time does padding every chunk to the batch's longest cost, and "
            "does running the encoder per group of similar lengths (each cut to its longest) give the same states?\n\n"
            f"## Command\n\n```bash\n{command}\n```\n\n## Results\n\n```\n" + "\n".join(lines) + "\n```\n\n"
            f"Setup: {len(data)} train batches of 8 notes (length buckets as in training), {args.reps} interleaved "
            f"passes each way, {args.threads} threads; the recipe's coder (LoRA on the top 2 layers).\n\n---\n"
            f"Generated by `{command}`; numbers come from the run above, not typed.\n"
        )


if __name__ == "__main__":
    main()
