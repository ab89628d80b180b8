"""Defaults that more than one entry point shares, each stated once.

The Hydra configs read these through the `medcoder_default` resolver (`${medcoder_default:embedded_notes}`),
the CLI and the card generators import them, and the Makefile's `NOTES`/`SEED` mirror the corpus
values (tests/test_defaults.py fails when they drift), so `make train`, `medcoder synth` and the data
cards always describe the same corpus.
"""

from __future__ import annotations

import re

# The three splits every dataset is loaded as: fit on train, select (threshold, checkpoint,
# verifier) on val, score once on test.
SPLITS: tuple[str, ...] = ("train", "val", "test")

# The embedded synthetic corpus of the main job (`make train`): size over all splits, and seed.
EMBEDDED_NOTES = 2000
EMBEDDED_SEED = 1

# What serving pulls, and what `medcoder predict`, `medcoder serve` and `medcoder card` use by default.
CHAMPION_URI = "models:/medcoder@champion"
# A registered model version's URI: models:/<name>@<alias> or models:/<name>/<version> (`medcoder predict`,
# `medcoder-train init_from=`)
REGISTRY_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")


def config_value(name: str) -> int | str:
    """The default called `name` (case-insensitive) for the `medcoder_default` config resolver."""
    key = name.upper()
    if key not in {"EMBEDDED_NOTES", "EMBEDDED_SEED", "CHAMPION_URI"}:
        raise KeyError(f"medcoder_default:{name}: no such default (embedded_notes, embedded_seed, champion_uri)")
    return globals()[key]
