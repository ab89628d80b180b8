"""`medcoder score-spark`: the registered tiny coder scores a Parquet table on a local Spark (`local[2]`) through
`mlflow.pyfunc.spark_udf`; every row comes back once with its ids, each good row's contract line equals what the
same pyfunc returns outside Spark, and each bad row carries the error `medcoder predict` gives for it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_support import needs_reference
from export_support import MAX_CHARS, REGISTERED_NAME, LoggedCoder, tracking

from medcoder.cli import main
from medcoder.data.reference import get_dataset
from medcoder.data.synth import generate_corpus
from medcoder.paths import shared_data_dir

pytest.importorskip("pyspark", reason="pyspark is the `spark` extra: pip install -e '.[spark]'")
from medcoder.serving.spark import (  # noqa: E402
    PREDICTION_COLUMN,
    NoteColumns,
    score_parquet,
    score_records,
    spark_session,
)

MODEL = f"models:/{REGISTERED_NAME}@champion"


@pytest.fixture(scope="module")
def spark():
    """One local Spark for the module; its Python workers run this interpreter (the venv's)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYSPARK_PYTHON", sys.executable)
        session, owned = spark_session("local[2]")
        assert owned, "another Spark session was already running in this test process"
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()


@pytest.fixture()
def store(logged: LoggedCoder, monkeypatch: pytest.MonkeyPatch):
    """MLFLOW_TRACKING_URI points at the test store (what `medcoder predict` reads); restored afterwards."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.tracking_uri)
    with tracking(logged.tracking_uri):
        yield logged


def _predict_lines(rows: list[dict[str, Any]], fields: dict[str, str], tmp_path: Path) -> list[dict[str, Any]]:
    """`medcoder predict` on the same rows as JSONL (a null cell is an absent field), one line per row."""
    source, out = tmp_path / "same-notes.jsonl", tmp_path / "same-notes-predicted.jsonl"
    records = [{field: row[column] for field, column in fields.items() if row[column] is not None} for row in rows]
    for record in records:
        if "id" in record:
            record["id"] = str(record["id"])
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert main(["predict", "--input", str(source), "--output", str(out), "--model", MODEL]) == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _scored(output: Path, key: str) -> dict[Any, dict[str, Any]]:
    """The output table by `key` column: its contract lines, checked to hold each key once."""
    table = pq.read_table(output).to_pylist()
    by_key = {row[key]: json.loads(row[PREDICTION_COLUMN]) for row in table}
    assert len(by_key) == len(table), "a row came back more than once"
    return by_key


def _assert_same_as_predict(scored: dict[Any, dict], expected: dict[Any, dict], missing_id_keys: set[Any]) -> None:
    assert scored.keys() == expected.keys()  # every input row, once
    for key, line in scored.items():
        if key in missing_id_keys:  # keyed by its place: its line of the file vs its row of the block
            assert line["error"] == expected[key]["error"] and line["id"].startswith("line:")
        else:
            assert line == expected[key], f"row {key} differs from medcoder predict"


@pytest.mark.slow  # Spark's JVM and two Python workers that import torch: over a minute on 2 cores
def test_synthetic_notes_and_bad_rows_match_predict_and_the_pyfunc(spark, store, tmp_path, capsys) -> None:
    notes = generate_corpus(40, seed=11)["train"][:10]
    good = [{"note_id": n.id, "text": n.text, "setting": n.setting} for n in notes]
    bad = {  # error kind -> a row medcoder predict gives that error for
        "empty_text": {"note_id": "blank", "text": "   ", "setting": None},
        "missing_id": {"note_id": None, "text": notes[0].text, "setting": None},
        "too_long": {
            "note_id": "long",
            "text": (notes[1].text + " ") * (MAX_CHARS // len(notes[1].text) + 1),
            "setting": None,
        },  # fmt: skip
        "not_clinical_text": {"note_id": "emoji", "text": "\U0001f600 \U0001f600 \U0001f600", "setting": None},
        "not_a_string": {"note_id": "no-text", "text": None, "setting": None},
        "invalid_field": {"note_id": "bad-setting", "text": notes[2].text, "setting": "home"},
    }
    rows = [{**row, "row": i} for i, row in enumerate(good[:5] + list(bad.values()) + good[5:])]
    source, output = tmp_path / "notes.parquet", tmp_path / "predictions.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)

    argv = ["score-spark", "--input", str(source), "--output", str(output), "--model", MODEL]
    argv += ["--id-column", "note_id", "row", "--setting-column", "setting", "--tracking-uri", store.tracking_uri]
    assert main(argv) == 0
    printed = capsys.readouterr()
    summary = re.search(
        r"scored (\d+) notes in [\d.]+ s \(([\d.]+) notes/s\): (\d+) coded, (\d+) error entries", printed.err
    )
    assert summary and summary.groups()[0] == str(len(rows)) and float(summary[2]) > 0
    assert (int(summary[3]), int(summary[4])) == (len(good), len(bad))
    assert not [r for r in good if r["text"][:40] in printed.out + printed.err]  # no note text

    table = pq.read_table(output)
    assert table.column_names == ["note_id", "row", PREDICTION_COLUMN]
    assert sorted(zip(table["row"].to_pylist(), table["note_id"].to_pylist())) == [
        (r["row"], r["note_id"]) for r in rows
    ]
    scored = _scored(output, "row")
    expected = dict(enumerate(_predict_lines(rows, {"id": "note_id", "text": "text", "setting": "setting"}, tmp_path)))
    _assert_same_as_predict(scored, expected, {r["row"] for r in rows if r["note_id"] is None})
    kinds = [scored[r["row"]].get("error", {}).get("kind") for r in rows]
    assert kinds == [None] * 5 + list(bad) + [None] * 5

    pyfunc = mlflow.pyfunc.load_model(
        f"models:/{REGISTERED_NAME}/{store.version}",
        model_config={"model_name": REGISTERED_NAME, "model_version": store.version},
    )
    outside = pyfunc.predict([{"id": r["note_id"], "text": r["text"], "setting": r["setting"]} for r in good])
    by_id = {line["id"]: line for line in scored.values()}
    assert [by_id[line["id"]] for line in outside] == outside

    # the benchmark's run (scale/spark_notes_per_s): records in, counts and time out
    records = [{"id": r["note_id"], "text": r["text"]} for r in good] + [{"id": "blank", "text": " "}]
    timed = score_records(spark, records, model=MODEL, tracking_uri=store.tracking_uri)
    assert (timed.notes, timed.outcomes) == (len(records), {"coded": len(good), "empty_text": 1})
    assert timed.notes_per_s == timed.notes / timed.seconds > 0


@pytest.mark.slow
@needs_reference("mtsamples")
def test_mtsamples_notes_score_like_predict(spark, store, tmp_path) -> None:
    path = shared_data_dir() / get_dataset("mtsamples").folder / "mtsamples.jsonl"
    with path.open(encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines]
    no_text = [r for r in records if r.get("transcription") is None][:2]  # MTSamples has rows without a note
    rows = [{"note_id": r["note_id"], "transcription": r.get("transcription")} for r in records[:30] + no_text]
    source, output = tmp_path / "mtsamples.parquet", tmp_path / "scored"
    pq.write_table(pa.Table.from_pylist(rows), source)

    columns = NoteColumns(("note_id",), "transcription")
    run = score_parquet(spark, str(source), str(output), model=MODEL, columns=columns, tracking_uri=store.tracking_uri)
    assert run.notes == len(rows) and run.notes_per_s > 0 and run.outcomes.get("not_a_string") == len(no_text)
    scored = _scored(output, "note_id")
    expected = {
        r["note_id"]: line
        for r, line in zip(rows, _predict_lines(rows, {"id": "note_id", "text": "transcription"}, tmp_path))
    }
    _assert_same_as_predict(scored, expected, set())
    assert sum("error" not in line for line in scored.values()) == run.outcomes["coded"] >= 25


def test_a_wrong_model_input_or_output_fails_in_one_line_before_spark_starts(tmp_path, capsys, monkeypatch) -> None:
    import medcoder.serving.spark as spark_scoring

    monkeypatch.setattr(spark_scoring, "spark_session", lambda master: pytest.fail("Spark was started"))
    notes = tmp_path / "notes.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "a", "text": "Cough for two days."}]), notes)
    taken = tmp_path / "taken"
    taken.mkdir()
    cases = {
        ("--model", "runs:/abc/model"): "registered versions only",
        ("--input", str(tmp_path / "missing.parquet")): "no such file or folder",
        ("--output", str(taken)): "exists: remove it, choose another path, or pass --overwrite",
        ("--output", str(notes)): "is the --input table",
        ("--partitions", "0"): "--partitions must be at least 1",
    }
    for (flag, value), message in cases.items():
        argv = {"--input": str(notes), "--output": str(tmp_path / "out"), "--model": MODEL, flag: value}
        assert main(["score-spark", *[part for item in argv.items() for part in item]]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("medcoder score-spark: error:") and message in error and "\n" not in error


def test_columns_the_input_lacks_are_named() -> None:
    columns = NoteColumns(("note_id", "visit"), "body", setting="care_setting")
    assert columns.fields() == {"id": "note_id", "text": "body", "setting": "care_setting"}
    columns.check(["note_id", "visit", "body", "care_setting", "other"])
    with pytest.raises(ValueError, match=r"no column\(s\) visit, care_setting in the input; it has note_id, body"):
        columns.check(["note_id", "body"])
    with pytest.raises(ValueError, match="name of the output's prediction column"):
        NoteColumns((PREDICTION_COLUMN,), "text").check([PREDICTION_COLUMN, "text"])
