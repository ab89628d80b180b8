"""Experiment records and the shared markdown table: what a generated record contains."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from medcoder.evaluation.records import ExperimentRecord, RunRef, markdown_table, write_experiment_record


def test_markdown_table_formats_numbers_and_escapes_cells():
    df = pd.DataFrame({"variant": ["a|b", "plain"], "notes": [1234, 5], "f1": [0.12345, float("nan")]})
    assert markdown_table(df) == (
        "| variant | notes | f1 |\n|---|---:|---:|\n| a\\|b | 1,234 | 0.123 |\n| plain | 5 | n/a |\n"
    )
    assert "0.12345" in markdown_table(df, digits=5)


def _record(**overrides) -> ExperimentRecord:
    fields = dict(
        slug="codiesp-tfidf-baseline",
        title="A title",
        question="Does X beat Y?",
        command="python scripts/x.py --flag",
        runs=[RunRef("balanced", "abc123", "exp", "sqlite:///m.db"), RunRef("plain", None, "exp", "sqlite:///m.db")],
        table=pd.DataFrame({"variant": ["balanced"], "test micro_f1": [0.5]}),
        decision="Keep balanced.",
        extra_tables=[("Selection", pd.DataFrame({"C": [1.0, 10.0]}))],
        notes=["a caveat"],
        date=dt.date(2026, 11, 27),
    )
    fields.update(overrides)
    return ExperimentRecord(**fields)


def test_record_has_every_required_section_in_order(tmp_path):
    path = write_experiment_record(_record(), tmp_path)
    assert path == tmp_path / "2026-11-27-codiesp-tfidf-baseline.md"
    text = path.read_text()
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Question", "## Command", "## Runs", "## Results", "## Notes", "## Decision"]
    assert "python scripts/x.py --flag" in text
    assert "MLflow run `abc123`" in text and "MLflow run `not logged`" in text
    assert "| balanced | 0.500 |" in text and "### Selection" in text
    assert text.rstrip().endswith("numbers come from the runs above, not typed.")


def test_record_slug_must_be_a_filename_slug():
    with pytest.raises(ValueError, match="lower-case words joined by '-'"):
        _record(slug="CodiEsp baseline").filename()


def test_portable_drops_this_checkouts_absolute_paths():
    from medcoder.evaluation.records import portable
    from medcoder.paths import project_root

    root = project_root()
    assert portable(f"sqlite:///{root}/mlflow.db") == "sqlite:///mlflow.db"
    assert portable(f"looked for {root.parent}/shared/data/mimic-iv") == "looked for ../shared/data/mimic-iv"
    assert portable("/elsewhere/data") == "/elsewhere/data"
