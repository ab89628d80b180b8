"""A packaged model and a built wheel work where this repository is not installed.

A fresh virtualenv (not `--system-site-packages`) sees the installed third-party stack through a
`.pth` PATH line. A path added that way is not a site directory, so the `.pth` files inside it are not
run, and the editable install's import hook for medcoder stays off. The test checks that
`import medcoder` fails there first. Then:
- the model loads and predicts using only the medcoder copy it carries (`code_paths`), and every
  distribution imported on the way is a requirement in its `requirements.txt` or a dependency of one;
- the wheel carries the Hydra configs: `medcoder-train --cfg job` composes them from the unpacked
  wheel, run from a folder outside the checkout.
Offline: nothing is downloaded (`HTTPS_PROXY` points at a closed port).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from export_support import TinyCoder
from packaging.requirements import Requirement

from medcoder.export.mlflow_model import save_packaged_model
from medcoder.inference.contract import validate_contract_line

pytestmark = pytest.mark.slow  # builds a venv and loads torch + MLflow in a fresh process: ~1 min
ROOT = Path(__file__).resolve().parents[1]
LOAD_AND_PREDICT = """
import importlib.metadata, json, sys
import mlflow
model = mlflow.pyfunc.load_model(sys.argv[1])
lines = model.predict(json.loads(sys.argv[2]))
import medcoder
owners = importlib.metadata.packages_distributions()
imported = sorted({d for m in list(sys.modules) for d in owners.get(m.split(".")[0], [])})
print(json.dumps({"lines": lines, "medcoder": medcoder.__file__, "imported": imported}))
"""


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A new venv's python that sees the stack but not the editable medcoder, and its environment."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MEDCODER_ROOT", "MEDCODER_CONFIG_DIR")}
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9"
    )
    probe = subprocess.run(
        [str(python), "-c", "import importlib.util; print(importlib.util.find_spec('medcoder'))"],
        capture_output=True,
        text=True,
        env=env,
        cwd=venv,
        check=True,
    )
    assert probe.stdout.strip() == "None", "the fresh venv must not see the editable medcoder"
    return python, env


# Imported on the load path only because the venv running the suite has them (the dev extra): MLflow itself tries
# `import pyspark` (mlflow/types/schema.py, inside try/except ImportError), which brings py4j. A serving
# environment installed from the model's requirements.txt has neither, and the model loads there all the same.
IMPORTED_WHEN_INSTALLED = frozenset({"pyspark", "py4j"})


def _closure(requirements: list[str]) -> set[str]:
    """The distributions the requirements bring, transitively (extras not taken), by normalised name."""
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    todo, seen = [Requirement(r) for r in requirements], set()
    while todo:
        req = todo.pop()
        if norm(req.name) in seen:
            continue
        seen.add(norm(req.name))
        for sub in importlib.metadata.requires(req.name) or []:
            sub_req = Requirement(sub)
            if sub_req.marker is None or sub_req.marker.evaluate({"extra": ""}):
                todo.append(sub_req)
    return seen


def test_a_packaged_model_loads_and_predicts_without_the_repository(fresh_python, tiny: TinyCoder, tmp_path: Path):
    python, env = fresh_python
    model_dir = save_packaged_model(tiny.export_dir, tmp_path / "model")
    records = [{"id": r.id, "text": r.text} for r in tiny.records[:2]] + [{"id": "empty", "text": " "}]
    proc = subprocess.run(
        [str(python), "-c", LOAD_AND_PREDICT, str(model_dir), json.dumps(records)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(result["medcoder"]).is_relative_to(model_dir / "code")  # the copy the model carries
    assert [line["id"] for line in result["lines"]] == [r["id"] for r in records]
    assert result["lines"][2]["error"]["kind"] == "empty_text"
    for line, record in zip(result["lines"][:2], records, strict=False):
        validate_contract_line(line, note_text=record["text"])
    requirements = (model_dir / "requirements.txt").read_text().split()
    allowed = _closure(requirements) | {"medcoder"} | IMPORTED_WHEN_INSTALLED
    norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    assert sorted(d for d in map(norm, result["imported"]) if d not in allowed) == []


def test_the_wheel_carries_the_configs_medcoder_train_needs(fresh_python, tmp_path: Path):
    python, env = fresh_python
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("medcoder-*.whl")
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run(
        [str(python), "-m", "medcoder.jobs.train", "--cfg", "job"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(unpacked)},
        cwd=elsewhere,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "_target_: medcoder.data.datamodule.CodingDataModule" in proc.stdout
