"""Build hook only (the project's metadata is in pyproject.toml): the wheel carries `configs/` as
`medcoder/configs`, so an installed `medcoder-train` finds its Hydra configs without a checkout.

Why a copy at build time rather than moving the folder: the repository keeps one `configs/` at the top
level (docs/ARCHITECTURE.md, Layout), where users edit it; `medcoder.paths.config_dir` prefers the
checkout's folder and falls back to this packaged copy.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithConfigs(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "configs"
        shutil.copytree(source, Path(self.build_lib) / "medcoder" / "configs", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithConfigs})
