"""Skip markers for tests that need a public reference dataset: the reason names the folder looked in
and the command that provides the data (`medcoder data fetch ...`), so a skipped test says how to run it."""

from __future__ import annotations

from functools import cache

import pytest

from medcoder.data.reference import fetch_command, get_dataset, is_complete
from medcoder.paths import shared_data_dir


@cache
def _present(name: str, folder: str) -> bool:
    return is_complete(name)


def needs_reference(name: str) -> pytest.MarkDecorator:
    """Skip unless dataset `name` is in the reference-data folder and matches its shipped checksums."""
    folder = shared_data_dir() / get_dataset(name).folder
    return pytest.mark.skipif(
        not _present(name, str(folder)), reason=f"{name} not complete in {folder}: run `{fetch_command(name)}`"
    )
