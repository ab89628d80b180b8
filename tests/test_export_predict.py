"""`medcoder predict`: one contract line per input line in input order, from a registry alias, a run
URI or a folder; models that cannot be used are one clear error (exit 2 through `medcoder`)."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from export_support import REGISTERED_NAME, LoggedCoder, TinyCoder, tracking

from medcoder.cli import build_parser
from medcoder.codes import is_valid_code
from medcoder.export.mlflow_model import save_packaged_model
from medcoder.inference.contract import validate_contract_line
from medcoder.inference.manifest import TamperedArtifactError
from medcoder.serving.predict import ModelNotFoundError, cmd_predict

torch.set_num_threads(2)


@pytest.fixture()
def store(logged: LoggedCoder, monkeypatch: pytest.MonkeyPatch):
    """MLFLOW_TRACKING_URI points at the test store; MLflow's global URI is restored afterwards."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", logged.tracking_uri)
    with tracking(logged.tracking_uri):
        yield logged


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["predict", *argv])


def _input_file(tiny: TinyCoder, path: Path) -> tuple[Path, list[str], dict[str, str]]:
    """A JSONL file mixing good notes and malformed lines; returns it, the expected ids, and texts by id."""
    notes = tiny.records[:3]
    lines = [
        json.dumps({"id": notes[0].id, "text": notes[0].text, "setting": notes[0].setting}).encode(),
        b'{"id": "broken", "text": ',
        json.dumps({"id": "empty", "text": "   "}).encode(),
        json.dumps({"id": notes[1].id, "text": notes[1].text, "age": notes[1].age}).encode(),
        b'{"id": "latin1", "text": "caf\xe9"}',
        b"",  # a blank line: it keeps its place as an error entry
        json.dumps({"id": notes[2].id, "text": notes[2].text}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    ids = [notes[0].id, "line:2", "empty", notes[1].id, "line:5", "line:6", notes[2].id]
    return path, ids, {r.id: r.text for r in notes}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_predict_from_the_registry_alias_writes_one_line_per_input_line(
    store: LoggedCoder, tiny: TinyCoder, tmp_path
) -> None:
    source, ids, texts = _input_file(tiny, tmp_path / "in.jsonl")
    out = tmp_path / "out" / "predictions.jsonl"
    assert (
        cmd_predict(
            _args("--input", str(source), "--output", str(out), "--model", f"models:/{REGISTERED_NAME}@champion")
        )
        == 0
    )
    lines = _read(out)
    assert [line["id"] for line in lines] == ids
    assert [line.get("error", {}).get("kind") for line in lines] == [
        None,
        "invalid_json",
        "empty_text",
        None,
        "invalid_utf8",
        "empty_line",
        None,
    ]
    for line in lines:
        validate_contract_line(line, note_text=texts.get(line["id"]), is_valid=is_valid_code)
    model = lines[0]["model"]
    assert (model["name"], model["version"]) == (REGISTERED_NAME, store.version)  # from the registry, not the folder
    assert not list(out.parent.glob(".*.tmp"))


def test_run_uri_and_folders_give_the_same_codes(store: LoggedCoder, tiny: TinyCoder, tmp_path) -> None:
    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    outputs = {}
    for name, model in {"alias": f"models:/{REGISTERED_NAME}@champion",
                        "version": f"models:/{REGISTERED_NAME}/{store.version}",
                        "run": f"runs:/{store.run_id}/model", "folder": str(tiny.export_dir)}.items():  # fmt: skip
        out = tmp_path / f"{name}.jsonl"
        cmd_predict(_args("--input", str(source), "--output", str(out), "--model", model))
        outputs[name] = [{k: v for k, v in line.items() if k != "model"} for line in _read(out)]
    assert outputs["alias"] == outputs["version"] == outputs["run"] == outputs["folder"]


def test_max_chars_option_overrides_the_models_limit(store: LoggedCoder, tiny: TinyCoder, tmp_path) -> None:
    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    cmd_predict(
        _args("--input", str(source), "--output", str(out), "--model", str(tiny.export_dir), "--max-chars", "20")
    )
    kinds = [line.get("error", {}).get("kind") for line in _read(out)]
    assert kinds == ["too_long", "invalid_json", "empty_text", "too_long", "invalid_utf8", "empty_line", "too_long"]


def test_unknown_alias_version_or_store_is_one_clear_error(
    store: LoggedCoder, tiny: TinyCoder, tmp_path, monkeypatch
) -> None:
    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    for model, expected in [(f"models:/{REGISTERED_NAME}@nope", "no alias 'nope'"),
                            (f"models:/{REGISTERED_NAME}/99", "no version 99"),
                            ("models:/no-such-model@champion", "'no-such-model' has no alias"),
                            (str(tmp_path / "missing-folder"), "no such folder")]:  # fmt: skip
        with pytest.raises(ModelNotFoundError, match=expected) as err:
            cmd_predict(_args("--input", str(source), "--output", str(out), "--model", model))
        assert "\n" not in str(err.value)
    assert not out.exists()
    missing_db = tmp_path / "nowhere" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing_db}")
    with pytest.raises(ModelNotFoundError, match="no MLflow store"):
        cmd_predict(_args("--input", str(source), "--output", str(out)))
    assert not missing_db.exists()  # not silently created empty
    with pytest.raises(FileNotFoundError, match="--input"):
        cmd_predict(
            _args("--input", str(tmp_path / "none.jsonl"), "--output", str(out), "--model", str(tiny.export_dir))
        )


def test_a_tampered_mlflow_model_folder_is_refused_naming_the_file(tiny: TinyCoder, tmp_path) -> None:
    model_dir = save_packaged_model(tiny.export_dir, tmp_path / "pyfunc")
    [heads] = list(model_dir.rglob("heads.safetensors"))
    data = bytearray(heads.read_bytes())
    data[-1] ^= 0x01
    heads.write_bytes(bytes(data))
    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    with pytest.raises(TamperedArtifactError, match=r"heads\.safetensors: SHA-256 differs") as err:
        cmd_predict(_args("--input", str(source), "--output", str(tmp_path / "out.jsonl"), "--model", str(model_dir)))
    assert isinstance(err.value, ValueError) and "\n" not in str(err.value)


def test_medcoder_predict_exits_2_with_one_line(store: LoggedCoder, tiny: TinyCoder, tmp_path, capsys) -> None:
    from medcoder import cli

    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    rc = cli.main(
        [
            "predict",
            "--input",
            str(source),
            "--output",
            str(tmp_path / "o.jsonl"),
            "--model",
            f"models:/{REGISTERED_NAME}@nope",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "alias 'nope'" in err[0]
    assert os.environ["MLFLOW_TRACKING_URI"] == store.tracking_uri


def test_output_that_is_the_input_or_a_folder_is_refused_before_the_model_loads(tiny: TinyCoder, tmp_path) -> None:
    source, _, _ = _input_file(tiny, tmp_path / "in.jsonl")
    before = source.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(source)
    for output in (source, tmp_path / "." / "in.jsonl", link):
        with pytest.raises(ValueError, match="is the --input file") as err:
            cmd_predict(_args("--input", str(source), "--output", str(output), "--model", str(tmp_path / "no-model")))
        assert "\n" not in str(err.value)
    assert source.read_bytes() == before
    with pytest.raises(ValueError, match="is a folder") as err:
        cmd_predict(_args("--input", str(source), "--output", str(tmp_path), "--model", str(tmp_path / "no-model")))
    assert "\n" not in str(err.value)


def test_a_second_run_to_the_same_output_is_refused_and_temp_files_are_unique(tiny: TinyCoder, tmp_path) -> None:
    import fcntl

    from medcoder.serving.predict import exclusive_output

    source, ids, _ = _input_file(tiny, tmp_path / "in.jsonl")
    out = tmp_path / "out.jsonl"
    with open(tmp_path / ".out.jsonl.lock", "a") as held:  # another run holds the output
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ValueError, match="another medcoder predict is writing it"):
            cmd_predict(_args("--input", str(source), "--output", str(out), "--model", str(tiny.export_dir)))
    assert not out.exists()
    cmd_predict(_args("--input", str(source), "--output", str(out), "--model", str(tiny.export_dir)))  # lock released
    assert [line["id"] for line in _read(out)] == ids
    with exclusive_output(tmp_path / "a.jsonl") as first, exclusive_output(tmp_path / "b.jsonl") as second:
        assert first.name != second.name
    assert not list(tmp_path.glob(".*.tmp"))


class _Terminal(io.StringIO):
    """stderr as an interactive terminal would be."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True])
def test_progress_on_a_terminal_and_a_summary_line_always(
    store: LoggedCoder, tiny: TinyCoder, tmp_path, monkeypatch, terminal: bool
) -> None:
    source, ids, _ = _input_file(tiny, tmp_path / "in.jsonl")
    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    assert (
        cmd_predict(
            _args(
                "--input",
                str(source),
                "--output",
                str(tmp_path / "out.jsonl"),
                "--model",
                f"models:/{REGISTERED_NAME}@champion",
            )
        )
        == 0
    )
    err = stream.getvalue()
    assert f"{len(ids)} input lines: 3 notes coded, 4 error entries (" in err.strip().splitlines()[-1]
    assert ("notes/s" in err and f"{len(ids) - 3} errors so far" in err) == terminal
