"""Where things live: the project root, the reference-data folder, the configs and the MLflow store.

One place for these defaults so that every entry point (Hydra jobs, the `medcoder` CLI, tests)
resolves the same locations. Each can be overridden by an environment variable, because users
run from other working directories and CI runs from a fresh clone in another folder.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The checkout that holds `pyproject.toml` (editable install), else the working directory.

    `MEDCODER_ROOT` overrides it.
    """
    env = os.environ.get("MEDCODER_ROOT")
    if env:
        return Path(env).resolve()
    for parent in _PACKAGE_DIR.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "medcoder").is_dir():
            return parent
    return Path.cwd().resolve()


def data_dir_candidates() -> list[Path]:
    """Where the reference-data folder is looked for, in order: `MEDCODER_DATA_DIR` alone when set;
    else `<project root>/data` (where `medcoder data fetch` writes), then `<project root>/../shared/data`
    (a folder shared by several checkouts side by side, as on the project's CI machines)."""
    env = os.environ.get("MEDCODER_DATA_DIR")
    if env:
        return [Path(env).expanduser().resolve()]
    root = project_root()
    return [(root / "data").resolve(), (root.parent / "shared" / "data").resolve()]


def shared_data_dir() -> Path:
    """The folder of public reference data (CodiEsp, WHO ICD-11 tables, MDACE, MTSamples, and a
    user's MIMIC copies): the first of `data_dir_candidates()` that exists, else the first one.

    Why a search and not one default: a user's clone has no shared folder beside it, so the
    default must be inside the checkout, while machines that keep one copy for several checkouts
    should not need a variable. `medcoder data status` prints the folder this returns.
    """
    candidates = data_dir_candidates()
    return next((path for path in candidates if path.is_dir()), candidates[0])


def config_dir() -> Path:
    """The Hydra config folder of `medcoder-train` / `medcoder-eval`.

    `MEDCODER_CONFIG_DIR` if set; else the copy a wheel carries in the package (`medcoder/configs`,
    written by setup.py; an editable checkout has none); else the checkout's `configs/`. The packaged
    copy wins over `<cwd>/configs` so that an installed medcoder never picks up an unrelated folder.
    """
    env = os.environ.get("MEDCODER_CONFIG_DIR")
    if env:
        return Path(env).expanduser().resolve()
    packaged = _PACKAGE_DIR / "configs"
    return packaged if packaged.is_dir() else project_root() / "configs"


def resources_dir() -> Path:
    """Small files shipped inside the package (derived code tables)."""
    return _PACKAGE_DIR / "resources"


def default_tracking_uri() -> str:
    """`MLFLOW_TRACKING_URI` if set, else `sqlite:///<project root>/mlflow.db`.

    MLflow 3.17 refuses the plain `./mlruns` file store, and the registry needs a database anyway.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"
