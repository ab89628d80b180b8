"""Each shared default has one source (`medcoder.defaults`); its mirrors and readers agree with it."""

from __future__ import annotations

import re
from pathlib import Path

from hydra import compose, initialize_config_dir

from medcoder import defaults
from medcoder.jobs.config import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]


def makefile_default(name: str) -> str:
    match = re.search(rf"^{name} \?= (\S+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
    assert match, f"the Makefile sets no default for {name}"
    return match.group(1)


def test_the_makefile_corpus_is_the_default_corpus() -> None:
    assert int(makefile_default("NOTES")) == defaults.EMBEDDED_NOTES
    assert int(makefile_default("SEED")) == defaults.EMBEDDED_SEED


def test_the_job_configs_read_the_corpus_default() -> None:
    for job in ("train", "eval"):
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name=job)
        assert (cfg.corpus.notes, cfg.corpus.seed) == (defaults.EMBEDDED_NOTES, defaults.EMBEDDED_SEED)


def test_literal_defaults_appear_only_in_the_defaults_module() -> None:
    """The champion URI is written once in the package (docstrings and help texts may name it)."""
    package = ROOT / "src" / "medcoder"
    assignments = re.compile(r"^\s*\w+\s*(?::[^=]+)?=\s*\"models:/medcoder@champion\"", re.M)
    offenders = [
        str(p.relative_to(ROOT)) for p in package.rglob("*.py") if assignments.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == ["src/medcoder/defaults.py"]


def test_an_unknown_default_is_named() -> None:
    import pytest

    with pytest.raises(KeyError, match="medcoder_default:corpus_size"):
        defaults.config_value("corpus_size")
