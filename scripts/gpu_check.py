"""One prepared check of a lent GPU machine (scripts/gpu_check.sh runs it; docs/SCALE.md): what training and
inference reach there, measured in one short run with whatever Python and torch the machine has, no network.

1. bf16 training at BERT-base size (BertConfig: hidden 768, 12 layers, 12 heads, random init; AdamW, autocast bf16
   over fp32 weights, as Lightning's bf16-mixed): tokens/s and model FLOPs utilisation (MFU). FLOPs per trained
   token follow PaLM (Chowdhery et al. 2022, appendix B): 6 * N + 12 * L * H * S, N the encoder's non-embedding
   parameters (each weight of a matmul costs 2 FLOPs forward and 4 backward; an embedding lookup is no matmul),
   L layers, H hidden size, S sequence length (QK^T and the attention-weighted sum, forward and backward, over the
   whole sequence: a bidirectional encoder has no causal half). MFU = those FLOPs per second over the GPU's dense
   bf16 peak (PEAK_TFLOPS by device name; MEDCODER_PEAK_TFLOPS overrides, and names the peak where the table
   has none).
2. LoRA on the packaged all-MiniLM-L6-v2 (medcoder.models.encoder, the recipe's adapters on query/value) with a
   linear code head, on synthetic notes (medcoder.data.synth): the same batches repeated, so the loss must fall.
3. Inference: notes/s of that encoder and head in bf16 over the notes, each note's first chunk.

Each measure is one printed line `name: number [unit]` (tests/test_gpu_check.py reads them), written also to
$OUT/gpu_check.json and $OUT/gpu_check.txt when OUT is set, so the run can be recorded in experiments/.
`--smoke` shrinks every size so the check runs on a CPU in seconds (its numbers are then no benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

# dense (not 2:4 sparse) bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s; the first name contained in
# torch.cuda.get_device_name() wins, so the specific names come before the general ones
PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.0),
    ("H100", 989.0),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989.0),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)
PEAK_ENV = "MEDCODER_PEAK_TFLOPS"


@dataclass(frozen=True)
class Sizes:
    """Everything the check's cost depends on; `--smoke` is the CPU-sized variant."""

    hidden: int = 768
    layers: int = 12
    heads: int = 12
    intermediate: int = 3072
    seq_len: int = 512
    batch: int = 32
    warmup_steps: int = 3
    timed_steps: int = 20
    lora_notes: int = 64
    lora_steps: int = 30
    lora_chunk: int = 256
    infer_notes: int = 512


SMOKE = Sizes(
    hidden=64, layers=2, heads=2, intermediate=128, seq_len=64, batch=4, warmup_steps=1, timed_steps=2,
    lora_notes=8, lora_steps=4, lora_chunk=64, infer_notes=8,
)  # fmt: skip


def peak_tflops(device_name: str) -> float | None:
    """The device's dense bf16 peak: MEDCODER_PEAK_TFLOPS if set, else the table's, else None (MFU not computed)."""
    if os.environ.get(PEAK_ENV):
        return float(os.environ[PEAK_ENV])
    return next((peak for name, peak in PEAK_TFLOPS if name in device_name), None)


def train_flops_per_token(non_embedding_params: int, layers: int, hidden: int, seq_len: int) -> float:
    """PaLM's training FLOPs per token (module docstring)."""
    return 6.0 * non_embedding_params + 12.0 * layers * hidden * seq_len


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16(device: torch.device) -> torch.autocast:
    """bf16 autocast on a GPU; off on a CPU (the smoke run): most CPUs emulate bf16, slower than fp32."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def bert_base_throughput(sizes: Sizes, device: torch.device) -> dict[str, float]:
    """Tokens/s of bf16 training steps on a random-init BERT of `sizes`, and their model FLOP/s."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=sizes.hidden,
        num_hidden_layers=sizes.layers,
        num_attention_heads=sizes.heads,
        intermediate_size=sizes.intermediate,
        max_position_embeddings=max(512, sizes.seq_len),
    )
    model = BertModel(config, add_pooling_layer=False).to(device).train()
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embeddings."))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, config.vocab_size, (sizes.batch, sizes.seq_len), device=device)

    def step() -> None:
        with bf16(device):
            hidden = model(input_ids=ids).last_hidden_state
        loss = hidden.float().pow(2).mean()  # any scalar of every output: the backward pass is what is timed
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(sizes.warmup_steps):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(sizes.timed_steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - start
    tokens_per_s = sizes.timed_steps * sizes.batch * sizes.seq_len / seconds
    flops = train_flops_per_token(non_embedding, sizes.layers, sizes.hidden, sizes.seq_len)
    return {"train_tokens_per_s": tokens_per_s, "train_tflops": tokens_per_s * flops / 1e12}


class CodeHead(nn.Module):
    """Mean-pooled encoder states -> one logit per code: the smallest head a LoRA run can learn codes with."""

    def __init__(self, hidden: int, n_codes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(hidden, n_codes)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.linear(pooled.float())


def note_batches(sizes: Sizes, tokenizer, device: torch.device) -> tuple[list[dict], torch.Tensor]:
    """Synthetic notes' first chunks (ids, mask) in batches, and their multi-hot gold codes."""
    from medcoder.data.synth import generate_notes

    notes = generate_notes(max(sizes.lora_notes, sizes.infer_notes), seed=1)
    codes = sorted({c.code for note in notes for c in note.codes})
    index = {code: i for i, code in enumerate(codes)}
    targets = torch.zeros(len(notes), len(codes))
    for row, note in enumerate(notes):
        targets[row, [index[c.code] for c in note.codes]] = 1.0
    encoded = tokenizer(
        [note.text for note in notes],
        truncation=True,
        max_length=sizes.lora_chunk,
        padding="max_length",
        return_tensors="pt",
    )
    batches = [
        {"input_ids": encoded["input_ids"][i : i + sizes.batch].to(device),
         "attention_mask": encoded["attention_mask"][i : i + sizes.batch].to(device), "rows": slice(i, i + sizes.batch)}
        for i in range(0, len(notes), sizes.batch)
    ]  # fmt: skip
    return batches, targets.to(device)


def lora_and_inference(sizes: Sizes, device: torch.device) -> dict[str, float]:
    """LoRA steps on the packaged MiniLM (loss first and last), then bf16 inference notes/s."""
    from medcoder.models.encoder import adapt_encoder, load_encoder

    encoder, tokenizer = load_encoder(None)
    encoder = adapt_encoder(encoder, "lora").to(device)
    batches, targets = note_batches(sizes, tokenizer, device)
    head = CodeHead(encoder.config.hidden_size, targets.shape[1]).to(device)
    trainable = [p for p in encoder.parameters() if p.requires_grad] + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=3e-3)
    train_batches = batches[: max(1, sizes.lora_notes // sizes.batch)]
    losses = []
    for step in range(sizes.lora_steps):
        batch = train_batches[step % len(train_batches)]
        with bf16(device):
            states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        logits = head(states, batch["attention_mask"])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, targets[batch["rows"]])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    # a full pass over the training batches at the start and at the end, so both sides see the same notes
    window = len(train_batches)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window

    encoder.eval()
    infer = batches[: max(1, sizes.infer_notes // sizes.batch)]
    with torch.inference_mode(), bf16(device):
        encoder(input_ids=infer[0]["input_ids"], attention_mask=infer[0]["attention_mask"])  # warm-up
        synchronize(device)
        start = time.perf_counter()
        for batch in infer:
            states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            torch.sigmoid(head(states, batch["attention_mask"]))
        synchronize(device)
    notes = sum(int(b["input_ids"].shape[0]) for b in infer)
    return {
        "lora_loss_first": first,
        "lora_loss_last": last,
        "infer_notes_per_s": notes / (time.perf_counter() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, runs on a CPU in seconds (no benchmark)")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.smoke:
        torch.set_num_threads(1)  # tiny matmuls: more threads only contend with whatever else the CPU runs
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or 'cpu'})"
    torch.manual_seed(0)
    print(f"device: {name}, torch {torch.__version__}, python {platform.python_version()}", flush=True)

    figures = bert_base_throughput(sizes, device)
    peak = peak_tflops(name)
    figures["peak_tflops"] = peak if peak is not None else float("nan")
    figures["mfu"] = figures["train_tflops"] / peak if peak else float("nan")
    figures.update(lora_and_inference(sizes, device))
    figures["lora_loss_fell"] = float(figures["lora_loss_last"] < figures["lora_loss_first"])

    units = {"train_tokens_per_s": "tokens/s", "train_tflops": "TFLOP/s", "peak_tflops": "TFLOP/s",
             "infer_notes_per_s": "notes/s"}  # fmt: skip
    lines = [f"{key}: {value:.4g} {units.get(key, '')}".rstrip() for key, value in figures.items()]
    print("\n".join(lines), flush=True)
    if os.environ.get("OUT"):
        out = Path(os.environ["OUT"])
        out.mkdir(parents=True, exist_ok=True)
        record = {"device": name, "torch": torch.__version__, "smoke": args.smoke, "sizes": vars(sizes), **figures}
        (out / "gpu_check.json").write_text(json.dumps(record, indent=2) + "\n")
        (out / "gpu_check.txt").write_text(f"device: {name}\n" + "\n".join(lines) + "\n")
    if not figures["lora_loss_fell"]:
        raise SystemExit(f"LoRA loss did not fall: {figures['lora_loss_first']:.4f} -> {figures['lora_loss_last']:.4f}")


if __name__ == "__main__":
    main()
