"""Every dependency pyproject.toml declares is used: imported by the package or its scripts, or listed
below with the reason it is declared without being imported (a plugin, an engine, a resolution pin)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# declared but never imported by name, and why
NOT_IMPORTED = {
    "pyarrow": "pandas' engine for the Edin et al. split files (pandas.read_feather)",
    "hydra-optuna-sweeper": "Hydra plugin behind configs/hparams_search/ (hydra/sweeper=optuna)",
    "tokenizers": "pinned: transformers 5.23 needs exactly this release (docs/STACK.md)",
    "huggingface-hub": "pinned: transformers 5.23 needs exactly this release (docs/STACK.md)",
    "accelerate": "pinned: peft 0.21 imports it (docs/STACK.md)",
    "python-multipart": "FastAPI's form parser behind the review app's form posts (medcoder.review.app)",
    "itsdangerous": "Starlette's SessionMiddleware signs the review app's session cookie with it",
}


def _distribution(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("src").rglob("*.py"), *ROOT.joinpath("scripts").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_declared_dependency_is_imported_or_has_a_reason():
    declared = [
        _distribution(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ]
    provides: dict[str, set[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            provides.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    imported = _imported_top_levels()
    unused = [
        d for d in declared if d not in NOT_IMPORTED and not (provides.get(d.replace("_", "-"), set()) & imported)
    ]
    assert unused == [], f"declared in pyproject.toml but never imported: {unused}"
    assert set(NOT_IMPORTED) <= set(declared), "NOT_IMPORTED lists a dependency that is no longer declared"


def test_the_serving_path_does_not_import_the_training_stack() -> None:
    """A packaged model predicts with torch and transformers only: its requirements carry no Lightning,
    so nothing the pyfunc imports may pull it in (a type-only import must stay under TYPE_CHECKING)."""
    import subprocess
    import sys

    probe = (
        "import sys, medcoder.export.mlflow_model, medcoder.export.artifact, medcoder.inference.predict; "
        "print(sorted(m for m in ('lightning', 'medcoder.models.lit_module', 'hydra') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
