"""Every import in src/medcoder points down the stack that docs/ARCHITECTURE.md draws.

The layers are read from the ```layers block of the doc, so the doc and the rule cannot drift:
a module may import its own package and packages of lower layers, never one above it nor another
package of its own layer. Imports inside functions count too (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "medcoder"
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def read_layers() -> list[tuple[str, set[str]]]:
    """(layer, its top-level units), bottom layer first."""
    block = re.search(r"```layers\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block, f"{DOC} has no ```layers block"
    rows = [line.split() for line in block.group(1).splitlines() if line.strip()]
    return [(row[0], set(row[1:])) for row in reversed(rows)]


def unit_of(module: str) -> str:
    """`medcoder.data.schema` -> `data`; `medcoder.cli` -> `cli`; `medcoder` -> `paths` (the root package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "paths"


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, name: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute medcoder module) for every import in module `name`'s source, relative ones resolved."""
    package = name.split(".") if is_package else name.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "medcoder"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "medcoder":
                continue
            if base == "medcoder":  # `from medcoder import tracking`: the names are the modules
                found += [(node.lineno, f"medcoder.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, base))
    return found


def violations(source: str, name: str, is_package: bool = False) -> list[str]:
    """Imports of module `name` that point sideways or up, one sentence each."""
    index = {unit: i for i, (_, units) in enumerate(read_layers()) for unit in units}
    mine = unit_of(name)
    wrong = []
    for line, module in imported_modules(source, name, is_package):
        theirs = unit_of(module)
        if theirs == mine:
            continue
        if theirs not in index:
            wrong.append(f"line {line}: {module} is in no layer of docs/ARCHITECTURE.md")
        elif index[theirs] >= index[mine]:
            where = "the same layer as" if index[theirs] == index[mine] else "a higher layer than"
            wrong.append(f"line {line}: imports {module} ({theirs}), {where} {mine}")
    return wrong


def test_the_doc_names_every_top_level_module_and_package_once() -> None:
    units = [u for _, us in read_layers() for u in us]
    assert len(units) == len(set(units)), "a unit is listed in two layers"
    present = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    present |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert present == set(units), (
        f"in the code, not the doc: {sorted(present - set(units))}; "
        f"in the doc, not the code: {sorted(set(units) - present)}"
    )


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    wrong = violations(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert not wrong, f"{path.relative_to(ROOT)}:\n" + "\n".join(wrong)


def test_the_rule_catches_upward_sideways_and_relative_imports() -> None:
    lazy_upward = "def f():\n    from medcoder.models.coder import MedicalCoder\n    return MedicalCoder\n"
    assert violations(lazy_upward, "medcoder.data.datamodule") == [
        "line 2: imports medcoder.models.coder (models), a higher layer than data"
    ]
    assert violations("from ..registry import client\n", "medcoder.evaluation.contract") == [
        "line 1: imports medcoder.registry (registry), a higher layer than evaluation"
    ]
    assert violations("from medcoder import serving\n", "medcoder.cli")[0].endswith("the same layer as cli")
    assert violations(
        "from medcoder.data.schema import NoteRecord\nfrom . import formats\n", "medcoder.codes.icd10cm"
    ) == ["line 1: imports medcoder.data.schema (data), a higher layer than codes"]
