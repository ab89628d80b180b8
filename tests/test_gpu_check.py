"""scripts/gpu_check.sh, the prepared GPU check, run as a user runs it but `--smoke` (CPU-sized): every line it must
print is there with a number, the LoRA loss fell, and the same figures land in $OUT for the experiment record.
On a CPU the dense bf16 peak is unknown, so MEDCODER_PEAK_TFLOPS names one, as it would for a GPU the table lacks."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from gpu_check import peak_tflops  # noqa: E402

LINES = ("train_tokens_per_s", "train_tflops", "peak_tflops", "mfu", "lora_loss_first", "lora_loss_last",
         "infer_notes_per_s", "lora_loss_fell")  # fmt: skip


def test_smoke_run_prints_every_figure_and_writes_them_to_out(tmp_path: Path) -> None:
    env = dict(os.environ, OUT=str(tmp_path / "out"), PYTHON=sys.executable, MEDCODER_PEAK_TFLOPS="2.5")
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--smoke"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-3000:]
    printed = {
        m.group(1): float(m.group(2)) for m in re.finditer(r"^(\w+): ([-+0-9.eE]+|nan)\b", run.stdout, flags=re.M)
    }
    for name in LINES:
        assert name in printed and math.isfinite(printed[name]), (name, run.stdout)
    assert printed["train_tokens_per_s"] > 0 and printed["infer_notes_per_s"] > 0
    assert printed["peak_tflops"] == 2.5
    assert printed["mfu"] == pytest.approx(printed["train_tflops"] / 2.5, rel=1e-3)
    assert printed["lora_loss_last"] < printed["lora_loss_first"] and printed["lora_loss_fell"] == 1
    record = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert record["smoke"] is True
    for name in LINES:
        assert record[name] == pytest.approx(printed[name], rel=1e-3), name
    assert (tmp_path / "out" / "gpu_check.txt").read_text().splitlines()[1:] == [
        line for line in run.stdout.splitlines() if line.split(":")[0] in LINES
    ]


@pytest.mark.parametrize(
    ("device", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),  # SXM
        ("NVIDIA H100 PCIe", 756.0),  # not the SXM figure, though the name contains "H100"
        ("NVIDIA H200", 989.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA L40S", 362.0),  # not L4's, though the name contains "L4"
        ("Tesla T4", None),  # no bf16 tensor cores: no MFU rather than a wrong one
    ],
)
def test_peak_is_the_most_specific_known_device(device: str, peak: float | None, monkeypatch) -> None:
    monkeypatch.delenv("MEDCODER_PEAK_TFLOPS", raising=False)
    assert peak_tflops(device) == peak
    monkeypatch.setenv("MEDCODER_PEAK_TFLOPS", "100")
    assert peak_tflops(device) == 100.0
