"""Every repository path the README and docs/ name exists, so the layout table follows the tree."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a backticked path into the repository: src/..., configs/..., scripts/..., tests/..., docs/...
PATH = re.compile(r"`((?:src|configs|scripts|tests|docs)/[\w./{},*-]*)")


def expand(pattern: str) -> list[str]:
    """`a/{b,c}.py` -> [`a/b.py`, `a/c.py`]."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def named_paths(doc: Path) -> list[str]:
    found = []
    for match in PATH.finditer(doc.read_text(encoding="utf-8")):
        found += [p.rstrip(".,") for p in expand(match.group(1))]
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_named_path_exists(doc: Path) -> None:
    missing = [p for p in named_paths(doc) if "*" not in p and "<" not in p and not (ROOT / p).exists()]
    assert not missing, f"{doc.relative_to(ROOT)} names paths that are not in the repository: {missing}"


def test_the_pattern_reads_braces() -> None:
    assert expand("src/medcoder/{paths,defaults}.py") == ["src/medcoder/paths.py", "src/medcoder/defaults.py"]
