"""The figures of scripts/bench.py: which are printed, their targets (issue 15), and the generated record.

Every sentence of the record that states a number is built here from the measured values: which targets
hold, and for a missed one why (the side figures that explain it) and what would fix it.
"""

from __future__ import annotations

import operator
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnxruntime
import pandas as pd
import torch

from medcoder.evaluation.records import ExperimentRecord, write_record_to
from medcoder.export.fast_path import FAST_PATHS
from medcoder.paths import project_root

AGREEMENT_BAR = 0.99  # a fast path is recommended only where this share of notes gets the float path's code set
MIN_SPEEDUP = 1.1  # ... and where it is faster than torch by more than run-to-run noise
# printed in this order; the fast_path lines are those of the recommended path (Figures.fast_path)
PRINTED: tuple[str, ...] = (
    "train/overhead_vs_bare", "train/tokens_per_s", "train/peak_rss_mb", "train/lora_vs_full_tokens_per_s",
    "train/lora_vs_full_peak_rss", "infer/pyfunc_overhead_vs_bare", "infer/notes_per_s", "infer/p50_ms",
    "infer/p95_ms", "infer/flops_fraction", "infer/fast_path_speedup_vs_bare_fp32", "infer/fast_path_agreement",
    "infer/fast_path_micro_f1_diff", "scale/time_per_chunk_ratio_16_vs_1", "scale/spark_notes_per_s",
)  # fmt: skip
# measured only where it can be: Spark scores a registered model (its seal is checked), with pyspark installed
OPTIONAL: frozenset[str] = frozenset({"scale/spark_notes_per_s"})
TARGETS: dict[str, tuple[str, float]] = {
    "train/overhead_vs_bare": ("<=", 1.10),
    "infer/pyfunc_overhead_vs_bare": ("<=", 1.15),
    "infer/flops_fraction": (">=", 0.6),
    "infer/fast_path_speedup_vs_bare_fp32": (">=", 1.5),
    "infer/fast_path_agreement": (">=", AGREEMENT_BAR),
    "scale/time_per_chunk_ratio_16_vs_1": ("<=", 1.3),
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


class Figures:
    """The measured values (`NAME -> value`, printed ones and the side figures that explain them)."""

    def __init__(self, values: dict[str, float]):
        self.values = dict(values)
        self.fast_path = self._recommended()
        self.shown_path = self.fast_path or "onnx-int8"  # whose figures the fast_path lines print
        for suffix in ("speedup_vs_bare_fp32", "agreement", "micro_f1_diff"):
            self.values[f"infer/fast_path_{suffix}"] = self.values[f"{self.shown_path}/{suffix}"]

    def _recommended(self) -> str | None:
        """The fastest fast path whose code sets agree with the float path's on AGREEMENT_BAR of the notes and
        that is MIN_SPEEDUP times as fast; None when no path is."""
        fit = [p for p in FAST_PATHS if self.values[f"{p}/agreement"] >= AGREEMENT_BAR
               and self.values[f"{p}/speedup_vs_bare_fp32"] >= MIN_SPEEDUP]  # fmt: skip
        return max(fit, key=lambda p: self.values[f"{p}/speedup_vs_bare_fp32"], default=None)

    def printed(self) -> list[tuple[str, float]]:
        return [(name, float(self.values[name])) for name in PRINTED if name in self.values or name not in OPTIONAL]

    def holds(self, name: str) -> bool:
        op, bar = TARGETS[name]
        return _COMPARE[op](self.values[name], bar)


# ---------------------------------------------------------------- why a target was missed, and the fix
def _train_overhead(v: dict[str, float]) -> str:
    return (
        f"Lightning's step took {v['train/ms_per_step_lightning']:.0f} ms against the bare loop's "
        f"{v['train/ms_per_step_bare']:.0f} ms (medians); the per-batch ratios ranged from "
        f"{v['train/overhead_min']:.2f} to {v['train/overhead_max']:.2f}, so the median of "
        f"{v['train/overhead_vs_bare']:.2f} stands on steps that the machine's load moved more than the trainer "
        "did. Fix: rerun on a quiet machine with more steps; if the gap stays, profile one fit with Lightning's "
        "`SimpleProfiler` (its hooks, the six `self.log` calls of `training_step`) and cut the largest part."
    )


def _pyfunc_overhead(v: dict[str, float]) -> str:
    outside = v["infer/pyfunc_ms_per_note"] - v["infer/bare_ms_per_note"]
    return (
        f"of the pyfunc's {v['infer/pyfunc_ms_per_note']:.0f} ms per note, {outside:.0f} ms are outside the "
        f"network's forward ({v['infer/bare_ms_per_note']:.0f} ms), {v['infer/tokenise_ms_per_note']:.0f} ms of "
        "them tokenising and chunking; the rest is grounding, the guideline rules and rendering. Fix: profile "
        "`ExportedCoder.predict_records` on these notes and batch or cache its largest part."
    )


def _flops(v: dict[str, float]) -> str:
    fastest = max(FAST_PATHS, key=lambda p: v[f"{p}/speedup_vs_bare_fp32"])
    speedup = v[f"{fastest}/speedup_vs_bare_fp32"]
    fix = (
        f"{fastest} ran the forward {speedup:.2f}x faster (fused attention and layer norms)"
        if speedup > 1.0
        else f"neither ONNX path ran faster (best: {fastest}, {speedup:.2f}x)"
    )
    return (
        f"the forward ran at {v['infer/model_gflops_per_s']:.1f} GFLOP/s against "
        f"{v['infer/dense_gflops_per_s']:.1f} GFLOP/s for one dense float32 matmul: a chunk's matrices are small "
        "(a few hundred tokens by the hidden size, attention per head), and softmax, layer norms, GELU and the "
        f"heads run below the matmul peak. Fix: fused kernels and int8 do more per FLOP: here {fix}."
    )


def _fast_speed(v: dict[str, float]) -> str:
    return (
        f"float32 ONNX ran {v['onnx-fp32/speedup_vs_bare_fp32']:.2f}x and int8 "
        f"{v['onnx-int8/speedup_vs_bare_fp32']:.2f}x the torch forward. Fix: only the encoder runs in ONNX "
        "Runtime; export the heads too (label attention over every chunk's tokens), or use int8 where it agrees."
    )


def _fast_agreement(v: dict[str, float]) -> str:
    return (
        f"int8 returned the float path's code set on {v['onnx-int8/agreement']:.1%} of the notes, float32 ONNX "
        f"on {v['onnx-fp32/agreement']:.1%}: codes near the threshold flip when the encoder's states move. Fix: "
        "static (calibrated) int8, or keep the layers that move the states most in float (quantize_dynamic's "
        "nodes_to_exclude)."
    )


def _scale(v: dict[str, float]) -> str:
    return (
        f"per chunk, the 16-chunk note cost {v['scale/time_per_chunk_ratio_16_vs_1']:.2f}x the 1-chunk note "
        f"through the pyfunc ({v['scale/pyfunc_ms_per_chunk_16']:.0f} against "
        f"{v['scale/pyfunc_ms_per_chunk_1']:.0f} ms), {v['scale/forward_time_per_chunk_ratio_16_vs_1']:.2f}x in "
        "the network's forward alone (encoder and heads): what grows faster than the note is after the forward "
        "(grounding over the note's sentences and tagged spans, rendering). Fix: profile one long note through "
        "`ExportedCoder.predict_records`."
    )


WHY_MISSED: dict[str, Callable[[dict[str, float]], str]] = {
    "train/overhead_vs_bare": _train_overhead,
    "infer/pyfunc_overhead_vs_bare": _pyfunc_overhead,
    "infer/flops_fraction": _flops,
    "infer/fast_path_speedup_vs_bare_fp32": _fast_speed,
    "infer/fast_path_agreement": _fast_agreement,
    "scale/time_per_chunk_ratio_16_vs_1": _scale,
}


# ---------------------------------------------------------------- the record
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fast_path_table(v: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "path": p,
                "speed-up vs torch fp32": v[f"{p}/speedup_vs_bare_fp32"],
                "code-set agreement": v[f"{p}/agreement"],
                "micro-F1 difference": v[f"{p}/micro_f1_diff"],
            }
            for p in FAST_PATHS
        ]  # fmt: skip
    )


def write_record(figures: Figures, context: dict[str, Any], command: str, out: str | None) -> Path:
    """experiments/<date>-bench.md (or `out`): figures, targets, and why each missed target was missed."""
    v = figures.values
    rows = []
    for name, value in figures.printed():
        target = TARGETS.get(name)
        rows.append({"figure": name, "value": value, "target": f"{target[0]} {target[1]}" if target else "",
                     "holds": ("yes" if figures.holds(name) else "no") if target else ""})  # fmt: skip
    missed = [name for name in TARGETS if not figures.holds(name)]
    sizes = context["sizes"]
    before, after = context["load"]
    recommended = figures.fast_path or "none, the float torch path"
    setup = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}; {context['threads']} threads; 1-minute load average {before[0]:.1f} at the "
        f"start and {after[0]:.1f} at the end (other work on the machine slows both sides of each ratio alike).",
        f"Model: {context['model']}.",
        f"Inference notes: {context['notes']}; {v['infer/chunks_per_note']:.1f} chunks per note; the micro-F1 "
        f"differences on {sizes.test_notes} notes of the embedded test split (torch micro-F1 "
        f"{v['infer/micro_f1_torch']:.3f}).",
        f"Training: the recipe's coder (configs/model/lora.yaml), {sizes.train_steps} timed Lightning steps of 8 "
        f"notes ({v['train/tokens_per_step']:.0f} real tokens per step on average), each followed by a bare step "
        "on the same batch; then a bare LoRA and a bare full fine-tuning step on each of those batches, in ABBA "
        "order; figures are medians of the per-batch values.",
        f"Peak RSS: each setup trains in a child process of its own (the three side by side) and reports its own "
        f"high-water mark (VmHWM): LoRA "
        f"{v['train/peak_rss_mb']:.0f} MB, full {v['train/peak_rss_mb_full']:.0f} MB; a child that only imports "
        f"and loads the batches peaks at {v['train/peak_rss_mb_baseline']:.0f} MB.",
        f"Inference: {sizes.reps} interleaved repetitions of pyfunc, bare forward, tokenising, both ONNX paths "
        f"and a {context['dense_n']}x{context['dense_n']} float32 matmul; one-note requests once per note; whole run "
        f"{context['seconds']:.0f} s.",
    ]
    notes = [f"{name} missed: {WHY_MISSED[name](v)}" for name in missed]
    if context["untrained"]:
        notes.append(
            "The model's heads are untrained (no champion in the tracking store): its code scores crowd the "
            "threshold, so the agreement and micro-F1 figures show how far each fast path moves scores near it, "
            "not what a trained model would return; `make train` then `make bench` measures the served model."
        )
    notes.append(
        f"Fast path recommended: {recommended} (the fastest path whose code sets agree on >= "
        f"{AGREEMENT_BAR:.0%} of the notes and that runs at least {MIN_SPEEDUP}x torch's speed); the printed "
        f"fast_path lines are {figures.shown_path}'s."
    )
    record = ExperimentRecord(
        slug="bench",
        title="Speed and memory of training and serving, side by side (make bench)",
        question="How far is each training and serving path from its target on this machine (issue 15), measured "
        "side by side in one run?",
        command=command,
        runs=[],
        table=pd.DataFrame(rows),
        extra_tables=[("Fast paths (ONNX Runtime encoder, heads in torch)", _fast_path_table(v))],
        setup=setup,
        notes=notes,
        decision=f"{len(TARGETS) - len(missed)} of {len(TARGETS)} targets hold"
        + (f"; missed: {', '.join(missed)} (see Notes)." if missed else ".")
        + f" Serving fast path: {recommended}.",
    )
    return write_record_to(record, out or project_root() / "experiments")
