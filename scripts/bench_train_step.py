"""Time one training step (forward + backward + AdamW) of the coder under several fine-tuning setups.

Same batches of embedded-corpus notes for every setup (the default one also under bf16 autocast),
repetitions interleaved so machine noise hits all setups alike; prints seconds per step, tokens per
second and the ratio to the first setup.
Run: .venv/bin/python scripts/bench_train_step.py [--notes 8] [--reps 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from medcoder.data.chunking import Chunking, chunk_notes, pad_chunks
from medcoder.data.labels import LabelSpace
from medcoder.data.synth import generate_corpus
from medcoder.models.coder import MedicalCoder

SETUPS: dict[str, dict] = {
    "lora q,k,v,dense all 6 layers": {"finetune": "lora", "lora_target_modules": ["query", "key", "value", "dense"]},
    "lora q,v all 6 layers": {"finetune": "lora", "lora_target_modules": ["query", "value"]},
    "lora q,k,v,dense top 2 layers": {
        "finetune": "lora",
        "lora_target_modules": ["query", "key", "value", "dense"],
        "lora_layers": [-2, -1],
    },
    "frozen encoder (heads only)": {"finetune": "frozen"},
    "full fine-tuning": {"finetune": "full"},
}
# setups timed again under CPU bf16 autocast (what `${medcoder_cpu_precision:}` picks on CPUs with
# native bf16, e.g. AVX512-BF16): the default experiment's configuration, and the CodiEsp recipe's (full)
BF16_SETUPS: tuple[str, ...] = ("lora q,k,v,dense top 2 layers", "lora q,k,v,dense all 6 layers", "full fine-tuning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=8, help="notes per batch")
    parser.add_argument("--reps", type=int, default=4, help="timed steps per setup (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    records = generate_corpus(200, seed=3)["train"][: args.notes]
    labels = LabelSpace.from_records(records)
    nets = {name: MedicalCoder(num_labels=len(labels), **kw) for name, kw in SETUPS.items()}
    for name in BF16_SETUPS:
        nets[f"{name}, bf16"] = MedicalCoder(num_labels=len(labels), **SETUPS[name])
    chunking = Chunking(args.chunk_size, 32, 4)
    batch = pad_chunks(chunk_notes([r.text for r in records], next(iter(nets.values())).tokenizer, chunking), 0)
    mask = batch["token_offsets"][..., 0] >= 0
    target = torch.tensor(labels.encode_many(records))
    n_tokens = int(batch["attention_mask"].sum())
    optims = {
        name: torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4) for name, net in nets.items()
    }

    def step(name: str) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name.endswith(", bf16")):
            out = nets[name](batch["input_ids"], batch["attention_mask"], mask)
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(out.code_logits, target)
                + out.bio_logits.float().mean()
            )
        loss.backward()
        optims[name].step()
        optims[name].zero_grad()
        return time.perf_counter() - start

    for name in nets:
        step(name)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.reps):
        for name in nets:
            times[name].append(step(name))
    print(
        f"batch: {args.notes} notes, {n_tokens} real tokens, chunk_size {args.chunk_size}, "
        f"{args.threads} threads, {args.reps} reps"
    )
    base = None
    for name, ts in times.items():
        median = sorted(ts)[len(ts) // 2]
        base = base or median
        print(f"{name:34s} {median:6.2f} s/step  {n_tokens / median:7.0f} tokens/s  ratio {median / base:.2f}")


if __name__ == "__main__":
    main()
