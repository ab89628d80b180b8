"""The baseline run: protocol (tuned on val only), MLflow logging without note text, CLI, comparisons."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from medcoder.cli import build_parser
from medcoder.data.loading import DatasetNotFoundError
from medcoder.data.schema import CodeAssignment, NoteRecord, records_digest, write_notes
from medcoder.evaluation.baseline import cmd_baseline, dataset_options, label_setup, metrics_table, run_baseline
from medcoder.metrics import classification_metrics

CANARY = "ZQXCANARYWORD"

# code -> ways a note names it; prevalences make a small long tail
CONDITIONS = {
    "I10": (0.45, ["hypertension", "HTN", "high blood pressure"]),
    "E78.5": (0.35, ["hyperlipidemia", "HLD", "dyslipidemia"]),
    "E11.9": (0.25, ["type 2 diabetes", "T2DM", "DM2"]),
    "J18.9": (0.15, ["pneumonia", "community-acquired pneumonia"]),
    "N39.0": (0.10, ["urinary tract infection", "UTI"]),
    "K21.9": (0.08, ["GERD", "acid reflux"]),
}
FILLER = [
    "Patient seen in clinic today.",
    "Vitals reviewed.",
    "Lungs clear to auscultation.",
    "Heart regular rate and rhythm.",
    "Abdomen soft and nontender.",
    "Medications reconciled.",
    "Follow up in three months.",
    "Labs ordered.",
    "No acute distress.",
]


def make_notes(n: int, seed: int, prefix: str, extra: str = "") -> list[NoteRecord]:
    """Notes naming their coded conditions, with negated distractors ("denies X") that are NOT coded."""
    rng = random.Random(seed)
    notes = []
    for i in range(n):
        codes = [code for code, (p, _) in CONDITIONS.items() if rng.random() < p]
        sentences = rng.sample(FILLER, 4)
        sentences += [f"Assessment: {rng.choice(CONDITIONS[c][1])}." for c in codes]
        absent = [c for c in CONDITIONS if c not in codes]
        if absent and rng.random() < 0.3:
            sentences.append(f"Denies {rng.choice(CONDITIONS[rng.choice(absent)][1])}.")
        rng.shuffle(sentences)
        text = " ".join(sentences) + (f" {extra}" if extra else "")
        notes.append(
            NoteRecord(id=f"{prefix}{i:04d}", text=text, codes=tuple(CodeAssignment("ICD-10-CM", c) for c in codes))
        )
    return notes


def make_splits(extra: str = "", sizes: tuple[int, int, int] = (160, 60, 60)) -> dict[str, list[NoteRecord]]:
    return {
        split: make_notes(n, seed, split[:2], extra)
        for (split, n, seed) in zip(("train", "val", "test"), sizes, (1, 2, 3))
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        yield f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


# ---------------------------------------------------------------- protocol
def test_label_space_comes_from_train_and_selection_is_by_val():
    splits = make_splits()
    splits["test"] = splits["test"] + [
        NoteRecord(id="te-only", text="Assessment: gout.", codes=(CodeAssignment("ICD-10-CM", "M10.9"),))
    ]
    result = run_baseline(splits, top_k=None, C=(0.1, 10.0), log_to_mlflow=False)
    assert ("ICD-10-CM", "M10.9") not in result["label_space"]
    assert len(result["label_space"]) == len(CONDITIONS)
    selection = result["selection"]
    assert list(selection["C"]) == [0.1, 10.0] and selection["selected"].sum() == 1
    best = selection.loc[selection["val_micro_f1"].idxmax()]
    assert result["C"] == best["C"] and result["threshold"] == best["threshold"]
    assert result["val"].metrics["micro_f1"] == pytest.approx(best["val_micro_f1"])
    for split in ("val", "test"):
        metrics = result[split].metrics
        assert all(isinstance(v, float) for v in metrics.values())
        assert metrics["ungrounded_code_rate"] == 1.0  # the baseline has no evidence: measured, not hidden


def test_test_split_moves_neither_threshold_nor_C():
    splits = make_splits()
    first = run_baseline(splits, top_k=None, log_to_mlflow=False)
    # same train and val, a very different test split (codes dropped): nothing chosen may change
    altered = dict(
        splits, test=[NoteRecord(id=r.id, text=r.text) for r in splits["test"]][:30] + make_notes(40, 9, "x")
    )
    second = run_baseline(altered, top_k=None, log_to_mlflow=False)
    assert (second["threshold"], second["C"]) == (first["threshold"], first["C"])
    assert second["val"].metrics == pytest.approx(first["val"].metrics, nan_ok=True, rel=0, abs=0)
    assert second["test"].metrics["micro_f1"] != first["test"].metrics["micro_f1"]


def test_baseline_beats_always_predicting_the_top_code():
    splits = make_splits()
    result = run_baseline(splits, top_k=None, log_to_mlflow=False)
    space = result["label_space"]
    y_test = space.encode_many(splits["test"])
    top_code_only = np.zeros_like(y_test)
    top_code_only[:, 0] = 1.0  # label 0 is the most frequent train code
    trivial = classification_metrics(y_test, top_code_only, 0.5)
    metrics = result["test"].metrics
    assert metrics["micro_f1"] > trivial["micro_f1"] + 0.3
    assert metrics["macro_f1"] > trivial["macro_f1"] + 0.3
    assert 0.0 <= metrics["distractor_false_positive_rate"] <= 1.0


def test_missing_or_empty_split_is_a_clear_error():
    splits = make_splits(sizes=(20, 10, 10))
    with pytest.raises(ValueError, match="missing: test"):
        run_baseline({"train": splits["train"], "val": splits["val"]}, log_to_mlflow=False)
    with pytest.raises(ValueError, match="the val split of dataset 'embedded' is empty"):
        run_baseline(dict(splits, val=[]), log_to_mlflow=False)
    with pytest.raises(ValueError, match=r"no codes of systems \['CPT'\]"):
        run_baseline(splits, systems=["CPT"], log_to_mlflow=False)


# ---------------------------------------------------------------- MLflow
def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_no_note_text_reaches_mlflow(store, caplog):
    splits = make_splits(extra=f"Patient phrase {CANARY}.", sizes=(80, 30, 30))
    result = run_baseline(splits, top_k=None, C=10.0, experiment="canary", tracking_uri=store, log_to_mlflow=True)
    run = MlflowClient(store).get_run(result["run_id"])
    assert "test/micro_f1" in run.data.metrics and run.data.params["dataset.train.notes"] == "80"

    db_file = Path(store[len("sqlite:///") :])
    artifact_dir = db_file.parent / "mlartifacts" / "canary"
    files = _files_under(artifact_dir)
    assert len(files) >= 10  # tables, plots, label space: the check below looks at real content
    for path in [db_file, *files]:
        assert CANARY.encode() not in path.read_bytes(), f"note text leaked into {path}"
        assert CANARY.lower().encode() not in path.read_bytes(), f"note text leaked into {path}"
    assert CANARY not in caplog.text
    assert CANARY not in (run.info.run_name or "")


def test_two_class_weight_variants_land_in_one_experiment_and_compare(store):
    splits = make_splits(sizes=(100, 40, 40))
    plain = run_baseline(splits, top_k=None, C=10.0, experiment="compare", tracking_uri=store)
    balanced = run_baseline(
        splits, top_k=None, C=10.0, class_weight="balanced", experiment="compare", tracking_uri=store
    )
    assert plain["experiment_id"] == balanced["experiment_id"]
    runs = mlflow.search_runs(experiment_ids=[plain["experiment_id"]], order_by=["attributes.start_time ASC"])
    assert list(runs["run_id"]) == [plain["run_id"], balanced["run_id"]]
    assert list(runs["params.model.class_weight"]) == ["None", "balanced"]
    assert list(runs["tags.model_family"]) == ["tfidf_baseline"] * 2
    # same data (digests), same metric names: the two runs can be compared column by column
    assert set(runs["tags.dataset.test.sha256"]) == {records_digest(splits["test"])}
    for key in ("test/micro_f1", "test/macro_f1", "test/map", "val/micro_f1"):
        assert runs[f"metrics.{key}"].notna().all()
    assert runs.loc[0, "metrics.test/macro_f1"] == pytest.approx(plain["test"].metrics["macro_f1"])
    artifacts = {a.path for a in MlflowClient(store).list_artifacts(balanced["run_id"], "tables")}
    assert {"tables/test_per_code.csv", "tables/val_per_code.csv", "tables/selection.csv"} <= artifacts


# ---------------------------------------------------------------- command line
def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(["baseline", *argv])


def test_cli_runs_on_an_embedded_folder_and_prints_a_table(tmp_path, capsys):
    for split, records in make_splits(sizes=(60, 30, 30)).items():
        write_notes(records, tmp_path / f"{split}.jsonl")
    status = cmd_baseline(_parse(["--dataset", "embedded", "--data-dir", str(tmp_path), "--C", "10", "--no-mlflow"]))
    out = capsys.readouterr().out
    assert status == 0
    assert "micro_f1" in out and "macro_f1" in out and "threshold=" in out
    assert "MLflow run" not in out


def test_cli_codiesp_reads_diagnoses_only_unless_procedures_are_asked_for(capsys):
    fixture = Path(__file__).parent / "fixtures" / "codiesp"
    # the fixture holds a malformed 4-character procedure row: diagnoses-only runs never read it
    status = cmd_baseline(_parse(["--dataset", "codiesp", "--codiesp-dir", str(fixture), "--C", "1", "--no-mlflow"]))
    assert status == 0 and "micro_f1" in capsys.readouterr().out
    assert dataset_options(_parse(["--dataset", "codiesp"]), ["ICD-10-CM"]) == {
        "include_procedures": False,
        "on_error": "raise",
    }
    assert dataset_options(_parse(["--dataset", "codiesp"]), None) == {"include_procedures": True, "on_error": "skip"}


def test_cli_label_space_defaults_follow_each_dataset_training_setup():
    assert label_setup(_parse(["--dataset", "embedded"])) == (["ICD-10-CM", "CPT", "HCPCS"], None)
    assert label_setup(_parse(["--dataset", "codiesp"])) == (["ICD-10-CM"], 50)
    assert label_setup(_parse(["--dataset", "codiesp", "--systems", "all", "--top-k", "0"])) == (None, None)
    assert label_setup(_parse(["--dataset", "embedded", "--systems", "ICD-10-CM", "--top-k", "20"])) == (
        ["ICD-10-CM"],
        20,
    )


def test_cli_missing_folder_names_the_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError, match=str(missing)):
        cmd_baseline(_parse(["--dataset", "embedded", "--data-dir", str(missing), "--no-mlflow"]))
    with pytest.raises(ValueError, match="--codiesp-dir applies to --dataset codiesp"):
        cmd_baseline(_parse(["--dataset", "embedded", "--codiesp-dir", str(missing), "--no-mlflow"]))


def test_metrics_table_has_one_column_per_split():
    result = run_baseline(make_splits(sizes=(60, 30, 30)), top_k=None, C=10.0, log_to_mlflow=False)
    table = metrics_table({"val": result["val"], "test": result["test"]})
    assert list(table.columns) == ["metric", "val", "test"]
    assert table.set_index("metric").loc["micro_f1", "test"] == result["test"].metrics["micro_f1"]


# ---------------------------------------------------------------- on the embedded corpus
def test_baseline_on_the_embedded_corpus_is_in_range_and_measures_distractors():
    """The real generator's notes (small): every code, C and threshold chosen on val."""
    from medcoder.data.synth import generate_corpus

    splits = generate_corpus(n_notes=400, seed=11)
    result = run_baseline(splits, systems=None, top_k=None, C=(10.0, 100.0), log_to_mlflow=False)
    metrics = result["test"].metrics
    y_test = result["label_space"].encode_many(splits["test"])
    top_code_only = np.zeros_like(y_test)
    top_code_only[:, 0] = 1.0
    trivial = classification_metrics(y_test, top_code_only, 0.5)
    assert metrics["micro_f1"] > trivial["micro_f1"] + 0.2
    assert 0.3 < metrics["micro_f1"] < 1.0 and 0.0 < metrics["macro_f1"] < 1.0 and 0.3 < metrics["map"] <= 1.0
    # the corpus records distractor mentions, so the baseline's false positives on them are measured
    assert metrics["distractor_pairs"] > 0 and 0.0 <= metrics["distractor_false_positive_rate"] <= 1.0
    assert metrics["ungrounded_code_rate"] == 1.0
