"""Installing outside this workplace: pyproject accepts a torch range, `make install` puts the exact torch
build (TORCH_SPEC, optionally from TORCH_INDEX) in the same pip call as medcoder, and PYTHON picks the
interpreter. `make -n` prints the commands without running them, so this costs no download."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make_n(tmp_path: Path, *overrides: str) -> list[str]:
    # --no-print-directory and a clean MAKEFLAGS: under `make test` this make is nested, and would
    # otherwise print "make[1]: Entering directory" among the commands
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "install", f"VENV={tmp_path / 'venv'}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    return out.splitlines()


def _torch_requirement() -> Requirement:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(Requirement(d) for d in deps if Requirement(d).name == "torch")


def test_torch_is_a_range_that_holds_the_default_and_the_documented_gpu_override():
    spec = _torch_requirement().specifier
    assert not any(s.operator == "==" for s in spec), "an exact torch pin makes TORCH_SPEC overrides unsatisfiable"
    default = re.search(r"^TORCH_SPEC \?= torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    gpu = re.search(r'TORCH_SPEC="torch==([\d.]+)"', (ROOT / "README.md").read_text()).group(1)
    assert default in spec and gpu in spec


@pytest.mark.parametrize("overrides, torch", [((), "torch==2.13.0"), (("TORCH_SPEC=torch==2.11.0",), "torch==2.11.0")])
def test_make_install_puts_the_torch_build_in_the_same_pip_call_as_medcoder(tmp_path: Path, overrides, torch):
    installs = [line for line in _make_n(tmp_path, *overrides) if " install " in line and "-e " in line]
    assert len(installs) == 1 and f'"{torch}"' in installs[0] and "--index-url" not in installs[0]


def test_the_test_tools_install_on_top_with_the_same_torch_build_and_the_main_job_does_not_wait_for_them(
    tmp_path: Path,
):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "install-dev", f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT, capture_output=True, text=True, check=True, env=env,
    ).stdout.splitlines()  # fmt: skip
    editable = [line for line in dry if " install " in line and "-e " in line]
    assert len(editable) == 2 and "'.[dev]'" in editable[1] and "'.[dev]'" not in editable[0]
    assert all('"torch==2.13.0"' in line for line in editable)
    assert not any("[dev]" in line for line in _make_n(tmp_path))


def test_torch_index_adds_pytorchs_cpu_wheels_without_replacing_the_package_index(tmp_path: Path):
    (line,) = [ln for ln in _make_n(tmp_path, "TORCH_INDEX=https://download.pytorch.org/whl/cpu") if "-e " in ln]
    assert line.endswith("--extra-index-url https://download.pytorch.org/whl/cpu")


def test_python_chooses_the_interpreter_of_the_venv(tmp_path: Path):
    assert (
        _make_n(tmp_path, "PYTHON=/opt/python3.12/bin/python3.12")[0]
        == f"/opt/python3.12/bin/python3.12 -m venv {tmp_path / 'venv'}"
    )
