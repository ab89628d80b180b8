"""Write docs/schemas/<name>.schema.json from the serving types in `medcoder.inference.schema`.

    python scripts/write_schemas.py [--check]

`--check` writes nothing and exits 1 when a file differs (what the test suite runs).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcoder.inference.schema import json_schemas
from medcoder.paths import project_root

SCHEMA_DIR = Path("docs") / "schemas"


def rendered() -> dict[Path, str]:
    """file (relative to the project root) -> its content."""
    return {
        SCHEMA_DIR / f"{name}.schema.json": json.dumps(schema, indent=2, sort_keys=True) + "\n"
        for name, schema in json_schemas().items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    root = project_root()
    stale = [
        rel
        for rel, text in rendered().items()
        if not (root / rel).is_file() or (root / rel).read_text(encoding="utf-8") != text
    ]
    if args.check:
        for rel in stale:
            print(f"stale: {rel} (run python scripts/write_schemas.py)", file=sys.stderr)
        return 1 if stale else 0
    for rel, text in rendered().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
