"""The ONNX Runtime encoder (medcoder.export.fast_path) against the torch encoder it was exported from, and
scripts/bench.py's smoke run. The exporter traces one example shape (2 chunks of 16 tokens): every shape
below differs from it, so batch and sequence are dynamic in the exported graph, not frozen."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the fast path needs the `fast` extra: pip install -e '.[fast]'")

from medcoder.export.artifact import load_exported  # noqa: E402
from medcoder.export.fast_path import (  # noqa: E402
    OnnxEncoder,
    code_set_agreement,
    export_fast_encoder,
    with_fast_encoder,
)

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(1, 5), (3, 37), (5, 128)]  # (chunks, tokens)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    """The tiny coder loaded from its export, and its encoder as ONNX files (float32 and int8)."""
    coder = load_exported(tiny.export_dir)
    int8 = export_fast_encoder(coder.net, tmp_path_factory.mktemp("onnx"), "onnx-int8")
    return coder, {"onnx-fp32": int8.with_name("encoder.onnx"), "onnx-int8": int8}


def _chunks(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids with the last chunk padded from its middle on (a note's last chunk is short)."""
    generator = torch.Generator().manual_seed(batch * 1000 + length)
    ids = torch.randint(1000, 20000, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, max(1, length // 2) :] = 0
    return ids * mask, mask


def _states(encoder: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return encoder(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize(("batch", "length"), SHAPES)
def test_float_onnx_states_match_torch_at_every_real_token(exported, batch, length):
    coder, files = exported
    ids, mask = _chunks(batch, length)
    expected = _states(coder.net.encoder, ids, mask)
    got = _states(OnnxEncoder(files["onnx-fp32"], threads=1), ids, mask)
    assert got.shape == expected.shape
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("batch", "length"), SHAPES)
def test_int8_onnx_runs_and_stays_close_to_the_float_states(exported, batch, length):
    coder, files = exported
    ids, mask = _chunks(batch, length)
    expected = _states(coder.net.encoder, ids, mask)[mask.bool()]
    got = _states(OnnxEncoder(files["onnx-int8"], threads=1), ids, mask)[mask.bool()]
    assert torch.isfinite(got).all()
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    assert cosine.min() > 0.99, f"int8 states drifted: least cosine similarity {cosine.min():.4f}"
    assert not torch.allclose(got, expected, atol=1e-6), "the int8 file computed float32 states: not quantised"


def test_the_coder_over_the_onnx_encoder_gives_the_same_logits_for_multi_chunk_notes(exported):
    coder, files = exported
    fast = with_fast_encoder(coder.net, files["onnx-fp32"], threads=1)
    for notes, chunks, length in [(1, 1, 9), (2, 3, 64), (4, 2, 128)]:
        ids, mask = _chunks(notes * chunks, length)
        ids, mask = ids.reshape(notes, chunks, length), mask.reshape(notes, chunks, length)
        token_mask = mask.bool()
        with torch.no_grad():
            expected, got = coder.net(ids, mask, token_mask), fast(ids, mask, token_mask)
        torch.testing.assert_close(got.code_logits, expected.code_logits, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got.em_logits, expected.em_logits, atol=1e-4, rtol=1e-4)


def test_the_fast_coder_returns_the_float_paths_code_sets_and_leaves_the_net_alone(exported, tiny):
    coder, files = exported
    fast_coder = dataclasses.replace(coder, net=with_fast_encoder(coder.net, files["onnx-fp32"]))
    records = [{"id": r.id, "text": r.text} for r in tiny.records]
    reference = coder.predict_records(records)
    assert any(line["codes"] for line in reference), "the tiny coder returned no code: nothing is compared"
    assert code_set_agreement(reference, fast_coder.predict_records(records)) == 1.0
    assert not isinstance(coder.net.encoder, OnnxEncoder)
    assert isinstance(fast_coder.net.encoder, OnnxEncoder)


def test_code_set_agreement_is_the_share_of_notes_with_identical_code_sets():
    def line(codes: list[str], em: str | None) -> dict:
        return {"codes": [{"system": "ICD-10-CM", "code": c} for c in codes], "em": em and {"code": em}}

    reference = [line(["E11.9", "I10"], "99213"), line(["J45.909"], None), line([], None), line(["I10"], "99214")]
    candidate = [line(["I10", "E11.9"], "99213"), line(["J45.909", "R05.9"], None), line([], None), line(["I10"], None)]
    assert code_set_agreement(reference, candidate) == 0.5
    with pytest.raises(ValueError, match="same non-zero number of lines"):
        code_set_agreement(reference, candidate[:3])


def test_an_unknown_fast_path_is_refused(exported, tmp_path):
    coder, _ = exported
    with pytest.raises(ValueError, match="onnx-fp32, onnx-int8"):
        export_fast_encoder(coder.net, tmp_path, "onnx-int4")


BENCH_FIGURES = (
    "train/overhead_vs_bare", "train/tokens_per_s", "train/peak_rss_mb", "train/lora_vs_full_tokens_per_s",
    "train/lora_vs_full_peak_rss", "infer/pyfunc_overhead_vs_bare", "infer/notes_per_s", "infer/p50_ms",
    "infer/p95_ms", "infer/flops_fraction", "infer/fast_path_speedup_vs_bare_fp32", "infer/fast_path_agreement",
    "infer/fast_path_micro_f1_diff", "scale/time_per_chunk_ratio_16_vs_1",
)  # fmt: skip


@pytest.mark.slow  # about two minutes on 2 cores: a model built, exported, trained and served
def test_bench_smoke_prints_every_figure_and_writes_its_record(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDCODER_ROOT")}
    missing_notes = tmp_path / "no-mtsamples.jsonl"
    command = [sys.executable, "scripts/bench.py", "--smoke", "--out", str(tmp_path / "record.md"),
               "--data-dir", str(tmp_path / "data"), "--notes-file", str(missing_notes)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(line.split(" ", 1) for line in done.stdout.strip().splitlines())
    assert tuple(printed) == BENCH_FIGURES
    for name, value in printed.items():
        assert math.isfinite(float(value)), f"{name} printed {value!r}"
    assert 0.0 <= float(printed["infer/fast_path_agreement"]) <= 1.0
    record = (tmp_path / "record.md").read_text(encoding="utf-8")
    assert "embedded synthetic notes: MTSamples not found" in record  # the fallback is said, not silent
    assert all(f"| {name} |" in record for name in BENCH_FIGURES)
