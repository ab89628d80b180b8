"""medcoder-train end to end on the real configs, shrunk to a tiny random encoder and a small corpus.

Composes configs/train.yaml the way a user's command line would (lightning-hydra-template style), runs
the whole job (corpus generation, fit, best-checkpoint test, threshold on val, evaluation, MLflow
logging) and checks what a user relies on: the loss falls, metrics are in range, the run in MLflow
has the metrics, tables, plots and dataset digests, and no note text reached MLflow.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import pytest
from train_support import TINY, TINY_DATA, compose_train, corpus_dir

import medcoder.jobs.train as train_job


def test_train_job_end_to_end_logs_a_complete_mlflow_run(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = compose_train(tmp_path, TINY + [f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}"])

    # while the job still evaluates and packages, the run must not read FINISHED (a comparison or a
    # promotion picking finished runs would take a half-logged one)
    from medcoder.evaluation import split as split_module

    statuses_during_evaluation = []
    evaluate = split_module.evaluate_trained_coder

    def recording_evaluate(*args, **kwargs):
        client = mlflow.MlflowClient(uri)
        (live,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
        statuses_during_evaluation.append(live.info.status)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(split_module, "evaluate_trained_coder", recording_evaluate)
    metrics = train_job.train(cfg)
    assert statuses_during_evaluation == ["RUNNING"]

    # the corpus was generated because it was missing
    assert (corpus_dir(tmp_path) / "train.jsonl").is_file()
    # every reported metric is a finite number in its range
    for key in ("val/micro_f1", "test/micro_f1", "test/macro_f1", "test/map", "test/ungrounded_code_rate"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["test/invalid_code_rate"] == 0.0
    # the evidence verifier was fitted on val's gold evidence and kept its target recall there; the
    # model alone is reported beside what ships (model + guideline rules)
    assert metrics["verifier/recall"] >= 0.95 and metrics["verifier/positives"] > 0
    assert (
        0.0 <= metrics["test/model_only/micro_f1"] <= 1.0 and 0.0 <= metrics["test/expected_calibration_error"] <= 1.0
    )

    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    assert run.info.status == "FINISHED"
    train_notes = [json.loads(line) for line in (corpus_dir(tmp_path) / "train.jsonl").open()]
    # the training loss fell from the first logged steps to the last
    losses = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train/loss"), key=lambda m: m.step)]
    assert len(losses) >= 4 and sum(losses[-2:]) / 2 < sum(losses[:2]) / 2
    # final evaluation metrics are each metric's latest value, with the tuned threshold
    assert math.isclose(run.data.metrics["test/micro_f1"], metrics["test/micro_f1"], rel_tol=1e-6)
    assert 0.0 < run.data.metrics["threshold"] < 1.0
    assert run.data.tags["model_family"] == "neural_coder"
    assert len(run.data.tags["dataset.train.sha256"]) == 64
    assert run.data.params["model.net.finetune"] == "lora"
    # the label space as the model card reads it: no "Not available" for what the run knows
    labels = json.loads((corpus_dir(tmp_path) / "train.jsonl").open().readline())
    assert json.loads(run.data.params["labels.systems"])[0] in {c["system"] for c in labels["codes"]}
    assert int(run.data.params["labels.n_labels"]) > 0 and run.data.params["labels.top_k"]
    artifacts = {a.path for d in ("tables", "plots", "config") for a in client.list_artifacts(run.info.run_id, d)}
    for path in (
        "tables/test_per_code.csv",
        "plots/test_calibration.png",
        "plots/val_f1_vs_threshold.png",
        "config/config.yaml",
    ):
        assert path in artifacts, path

    # the run carries a packaged model that codes notes through the prediction contract
    from medcoder.inference.contract import validate_contract_line
    from medcoder.serving.predict import load_model

    packaged = load_model(f"runs:/{run.info.run_id}/model", tracking_uri=uri)
    lines = packaged.predict_records(
        [{"id": n["id"], "text": n["text"], "setting": n["setting"]} for n in train_notes[:3]]
        + [{"id": "blank", "text": "   "}]
    )
    assert packaged.verifier is not None  # the packaged model grounds with the same verifier
    for line in lines[:3]:
        validate_contract_line(line)
        assert line["model"]["run_id"] == run.info.run_id
        assert all(0.0 <= c["support"] <= 1.0 for c in line["codes"])
    assert lines[3]["error"]["kind"] == "empty_text"

    # no note text anywhere in the store or the artifacts
    needles = {n["text"][i : i + 40] for n in train_notes[:20] for i in (60, 200) if len(n["text"]) > i + 40}
    # (the model's code/ folder is a copy of the medcoder package, whose synthetic-corpus templates
    # are the phrases these notes are made of: source code, not data, so it is not searched)
    haystack = (tmp_path / "mlflow.db").read_bytes() + b"".join(
        p.read_bytes()
        for p in (tmp_path / "artifacts").rglob("*")
        if p.is_file() and "code" not in p.relative_to(tmp_path / "artifacts").parts
    )
    assert not any(n.encode() in haystack for n in needles)
    assert list((tmp_path / "artifacts").rglob("code/medcoder/__init__.py"))  # the package travels with the model

    # medcoder-eval on the best checkpoint reproduces the run's test metrics, and the comparison
    # table lists both runs with the same metric names
    from medcoder.jobs.eval import comparison_table, evaluate_checkpoint

    (ckpt,) = (tmp_path / "run" / "checkpoints").glob("epoch_*.ckpt")
    eval_cfg = compose_train(
        tmp_path,
        TINY_DATA + [f"ckpt_path={ckpt}", f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}"],
        config_name="eval",
    )
    reevaluated = evaluate_checkpoint(eval_cfg)
    for key in ("test/micro_f1", "test/macro_f1", "test/map", "test/ungrounded_code_rate"):
        assert math.isclose(reevaluated[key], metrics[key], abs_tol=1e-9), key
    # the eval run says what it scored as the training run does (the blend, and its neural coder alone), so a
    # record made from either names the same model
    client = mlflow.MlflowClient(uri)
    by_task = {
        r.data.tags["task"]: r for r in client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    }
    trained_run, eval_run = by_task["train"].data, by_task["eval"].data
    assert eval_run.params["blend.weight"] == trained_run.params["blend.weight"] and eval_run.tags["blend"] == "tfidf"
    alone = "neural_only/test/map"
    assert math.isclose(eval_run.metrics[alone], trained_run.metrics[alone], abs_tol=1e-9)
    table = comparison_table("medcoder", None, ["test/micro_f1"], ["model.net.finetune"], uri)
    assert len(table) == 2 and table["test/micro_f1"].notna().all()


def test_a_label_space_the_contract_cannot_serve_is_refused_before_training(tmp_path, monkeypatch):
    """CodiEsp procedures are ICD-10-PCS: a packaged model would drop every one of them in `medcoder predict`."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    fixture = Path(__file__).parent / "fixtures" / "codiesp"
    cfg = compose_train(
        tmp_path,
        TINY
        + [
            "data=codiesp",
            f"data.data_dir={fixture}",
            "data.top_k=null",
            "data.label_systems=[ICD-10-CM,ICD-10-PCS]",
            "data.dataset_options.include_procedures=true",
            "+data.dataset_options.on_error=skip",
            "logger=none",
        ],
    )
    with pytest.raises(
        ValueError, match=r"label space holds ICD-10-PCS \(\d+ codes\), which a packaged model cannot return"
    ):
        train_job.train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_blended_train_job_packages_the_blend_and_logs_the_neural_coder_alone(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    cfg = compose_train(
        tmp_path,
        TINY
        + [
            "data.max_chunks=16",  # the packaged model reads whole notes: so does the evaluation here
            "blend.enabled=true",
            "blend.C=[10.0]",
            "blend.min_df=1",
            f"logger.mlflow.artifact_location={tmp_path / 'artifacts'}",
        ],
    )

    metrics = train_job.train(cfg)

    for key in ("test/micro_f1", "test/map", "neural_only/test/micro_f1", "neural_only/test/map"):
        assert 0.0 <= metrics[key] <= 1.0, key
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id])
    assert run.data.tags["blend"] == "tfidf" and run.data.tags["command"].startswith("medcoder-train")
    weight = float(run.data.params["blend.weight"])
    assert 0.0 <= weight <= 1.0
    assert math.isclose(run.data.metrics["neural_only/test/map"], metrics["neural_only/test/map"], rel_tol=1e-6)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "tables")}
    assert {"tables/blend_C_selection.csv", "tables/blend_weight_selection.csv"} <= artifacts

    # the packaged model is the blend: its test scores are the run's test metrics' scores
    from medcoder.data.sources import load_dataset
    from medcoder.metrics import evaluate_split
    from medcoder.serving.predict import load_model

    packaged = load_model(f"runs:/{run.info.run_id}/model", tracking_uri=uri)
    assert packaged.blend is not None and math.isclose(packaged.blend.weight, weight)
    splits = load_dataset("embedded", data_dir=str(corpus_dir(tmp_path)))
    predictions, scores = packaged.predict_with_scores(splits["test"])
    result = evaluate_split(splits["test"], packaged.label_space, scores, packaged.threshold, predictions=predictions)
    assert math.isclose(result.metrics["map"], metrics["test/map"], abs_tol=1e-4)
