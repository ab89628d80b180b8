"""Write the checksum manifests `medcoder data status/fetch` verify against (one per public dataset).

    python scripts/make_data_manifests.py [--data-dir DIR] [NAME ...]

Run once per data release, from copies obtained from the official sources (see `medcoder data
status`); the manifests ship in the package (`src/medcoder/resources/data_manifests/`). Credentialed
datasets (MIMIC) get no manifest: their files are never shipped or fetched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from medcoder.data.reference import REFERENCE_DATASETS, write_manifest
from medcoder.paths import shared_data_dir


def main(argv: list[str] | None = None) -> int:
    public = [d.name for d in REFERENCE_DATASETS if not d.credentialed]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"datasets (default all: {', '.join(public)})")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="reference-data folder (default: medcoder data status's)"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(public))
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}; expected: {', '.join(public)}")
    root = args.data_dir or shared_data_dir()
    for dataset in REFERENCE_DATASETS:
        if dataset.name in (args.names or public):
            n = write_manifest(root / dataset.folder, dataset.manifest_path())
            print(f"{dataset.name}: {n} files -> {dataset.manifest_path()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
