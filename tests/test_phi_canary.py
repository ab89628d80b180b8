"""PHI canary: identifiers seeded into notes must come out of the whole pipeline only where the contract allows.

Notes carry a synthetic patient name, an SSN-shaped number, an MRN and a phone number. They go
through what a user runs, against a private project in tmp: `medcoder-train` and `medcoder-eval`
(real Hydra entry points in subprocesses, with `hydra.verbose=true` so every logger is at DEBUG),
then `medcoder register`, `promote`, `card`, `predict` and the TF-IDF baseline (in this process,
with every Python logger captured at DEBUG). Afterwards none of the canaries may occur in the
MLflow database, in any artifact, checkpoint, card, Hydra output or log, or in anything printed.

The only files exempt are the inputs (the corpus and the predict input) and the predict OUTPUT,
whose evidence spans quote note text by contract. There every span must quote its own note exactly
(no text from another note), no evidence span of any code or of the E/M level, grounded or not,
touches the identification line (`medcoder.inference.grounding.identification`: a window never quotes who the
patient is), and error entries must not echo the text of the line they reject.
A positive control runs the same scanner over the seeded corpus, so a scanner that finds nothing
cannot make the test pass.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from medcoder.data.schema import load_notes, write_notes
from medcoder.data.synth import SPLITS, generate_corpus

pytestmark = pytest.mark.slow

CANARY_LINE = "Patient: Zyxwv Quortlebaum, SSN 987-65-4329, MRN 55501234, phone (555) 013-9876"
# Each form a leak could take: the name's parts, the numbers as written and as bare digits.
TEXT_CANARIES: tuple[str, ...] = ("Zyxwv", "Quortlebaum", "987-65-4329", "(555) 013-9876", "555-013-9876", "013-9876")
# Bare digit runs are matched only between non-digits, so a float such as 0.5550123412 is not a hit.
DIGIT_CANARIES: tuple[str, ...] = ("987654329", "55501234", "5550139876")

BIN = Path(sys.executable).parent
NOTES = 160
TINY_DATA = [
    "corpus.generate=false",  # train and evaluate on the seeded notes (the generator would refuse to replace them)
    "model.net.encoder=tiny-random-bert",
    "data.chunk_size=128",
    "data.chunk_overlap=16",
    "data.max_chunks=4",
    "data.batch_size=8",
    "threads=1",
]
TINY_TRAIN = TINY_DATA + [
    "model.net.lora_target_modules=[query,value]",
    "model.optimizer.lr=3e-3",
    "trainer.max_epochs=2",
    "~callbacks.rich_progress_bar",
]


def find_canaries(blob: bytes) -> set[str]:
    """The canary forms that occur in `blob` (case-insensitive: an uncased tokenizer lowercases)."""
    text = blob.decode("utf-8", errors="replace").lower()
    found = {c for c in TEXT_CANARIES if c.lower() in text}
    found |= {c for c in DIGIT_CANARIES if re.search(rf"(?<!\d){c}(?!\d)", text)}
    return found


def file_bytes(path: Path) -> bytes:
    """A file's bytes, plus the uncompressed members of a zip (torch checkpoints are zip archives)."""
    data = path.read_bytes()
    if zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    return data


def seed_corpus(data_dir: Path) -> None:
    """The embedded corpus with the canary line appended to EVERY note (existing spans stay valid)."""
    corpus = generate_corpus(NOTES, seed=1)
    for split in SPLITS:
        seeded = [dataclasses.replace(r, text=f"{r.text}\n{CANARY_LINE}") for r in corpus[split]]
        write_notes(seeded, data_dir / f"{split}.jsonl")
        assert len(load_notes(data_dir / f"{split}.jsonl")) == len(seeded)  # offsets still valid


def run_entry_point(script: str, overrides: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a Hydra console script as a user would; returns its stdout and stderr together."""
    done = subprocess.run(
        [str(BIN / script), *overrides, "hydra.verbose=true"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{script} failed (exit {done.returncode}):\n{output[-4000:]}"
    return output


def run_medcoder(argv: list[str]) -> None:
    """`medcoder <argv>` in this process (caplog and capfd see everything it logs and prints)."""
    from medcoder.cli import main

    assert main(argv) == 0, f"medcoder {' '.join(argv)} failed"


def test_phi_canaries_never_leave_the_notes(tmp_path, monkeypatch, caplog, capfd):
    import torch

    root = tmp_path / "project"  # paths.root_dir: outputs/, mlartifacts/ and mlflow.db all land here
    data_dir, card_dir = tmp_path / "data", tmp_path / "card"
    predict_in, predict_out = tmp_path / "predict_in.jsonl", tmp_path / "predict_out.jsonl"
    scratch = tmp_path / "tmpdir"  # temporary files a step leaves behind are scanned too
    root.mkdir()
    scratch.mkdir()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TMPDIR": str(scratch),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.chdir(root)  # anything written relative to the CWD is scanned too
    caplog.set_level(logging.DEBUG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    printed: dict[str, str] = {}

    # ---- 1. seeded corpus; positive control: the scanner sees every canary in it
    seed_corpus(data_dir)
    assert find_canaries((data_dir / "train.jsonl").read_bytes()) >= {
        "Zyxwv",
        "Quortlebaum",
        "987-65-4329",
        "55501234",
        "(555) 013-9876",
        "013-9876",
    }
    assert find_canaries(b"ssn987654329;phone 5550139876") == {"987654329", "5550139876"}
    assert not find_canaries(b"0.9876543291 0.155501234 15550139876")

    try:
        # ---- 2. train and eval: the Hydra entry points, every logger at DEBUG
        paths = [f"paths.root_dir={root}", f"data.data_dir={data_dir}"]
        printed["medcoder-train output"] = run_entry_point("medcoder-train", paths + TINY_TRAIN, root, env)
        (ckpt,) = root.glob("outputs/runs/train/*/checkpoints/epoch_*.ckpt")
        printed["medcoder-eval output"] = run_entry_point(
            "medcoder-eval", paths + TINY_DATA + [f"ckpt_path={ckpt}"], root, env
        )

        # the runs read the seeded notes: the files still hold the canaries, and no generator wrote over them
        assert find_canaries((data_dir / "train.jsonl").read_bytes()) and not (data_dir / "corpus.json").exists()

        # ---- 3. registry, card, prediction and the baseline, as `medcoder ...` commands
        run_medcoder(["register", "--run-id", "latest"])
        run_medcoder(["promote", "--eval-set", str(data_dir / "test.jsonl")])
        run_medcoder(["card", "--out", str(card_dir)])
        test_notes = load_notes(data_dir / "test.jsonl")[:6]
        assert all(r.text.endswith(CANARY_LINE) for r in test_notes)
        lines = [json.dumps({"id": r.id, "text": r.text, "setting": r.setting}) for r in test_notes]
        lines += [
            json.dumps({"id": "not-a-string", "text": [CANARY_LINE]}),  # error entry: must not echo the value
            '{"id": "broken", "text": "' + CANARY_LINE,  # bad JSON: must not echo the line
        ]
        predict_in.write_text("\n".join(lines) + "\n", encoding="utf-8")
        run_medcoder(["predict", "--input", str(predict_in), "--output", str(predict_out)])
        run_medcoder(["baseline", "--dataset", "embedded", "--data-dir", str(data_dir)])
    finally:
        torch.set_num_threads(threads)
    captured = capfd.readouterr()
    printed.update(
        {"medcoder stdout": captured.out, "medcoder stderr": captured.err, "Python logging (DEBUG)": caplog.text}
    )

    # ---- 4. the predict output: evidence quotes its own note; grounded evidence never the identification line
    from medcoder.inference.contract import validate_contract_line

    texts = {r.id: r.text for r in test_notes}
    out = [json.loads(line) for line in predict_out.read_text(encoding="utf-8").splitlines()]
    assert [o["id"] for o in out[: len(test_notes)]] == list(texts)
    assert [o["error"]["kind"] for o in out[len(test_notes) :]] == ["not_a_string", "invalid_json"]
    for line in out:
        if "error" in line:
            assert not find_canaries(json.dumps(line).encode()), f"error entry of {line['id']} echoes note text"
            continue
        validate_contract_line(line)
        text = texts[line["id"]]
        id_line_start = len(text) - len(CANARY_LINE)
        for code in line["codes"] + ([line["em"]] if line.get("em") else []):
            for span in code["evidence"]:
                assert span["text"] == text[span["start"] : span["end"]], (
                    f"{line['id']}: evidence is not its own note's text"
                )
                assert span["end"] <= id_line_start, (
                    f"{line['id']}: {code['code']} evidence is on the identification line"
                )

    # ---- 5. the haystack: every file the pipeline wrote, and everything it printed or logged
    exempt = {predict_in, predict_out}
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p not in exempt and data_dir not in p.parents]
    names = {p.name for p in written}
    # the haystack holds what it must (else a leak could hide in a file never written)
    assert "mlflow.db" in names and "MLmodel" in names and "config.yaml" in names
    assert any(p.suffix == ".ckpt" for p in written) and any(p.suffix == ".safetensors" for p in written)
    assert any(p.suffix == ".log" for p in written) and any(p.parent == card_dir for p in written)
    assert (
        all(printed.values())
        and "DEBUG" in printed["medcoder-train output"]
        and "DEBUG" in printed["Python logging (DEBUG)"]
    )
    leaks = {str(p.relative_to(tmp_path)): sorted(hits) for p in written if (hits := find_canaries(file_bytes(p)))}
    leaks.update({name: sorted(hits) for name, text in printed.items() if (hits := find_canaries(text.encode()))})
    assert not leaks, f"PHI canaries leaked: {leaks}"
