"""`medcoder compare`: the experiment record of the latest neural run against the TF-IDF baseline.

Real MLflow in a private sqlite store (no mocks): a TF-IDF baseline run logged by `run_baseline` and a
"neural" run scored and logged by the code medcoder-train uses (`evaluate_coder`, `log_evaluation`),
with noisy scores standing in for the model; then the command writes the record through
`medcoder.evaluation.records`.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import mlflow
import pytest
from scored_notes_support import make_notes, noisy_scores

from medcoder import tracking
from medcoder.cli import main as medcoder_main
from medcoder.data.labels import LabelSpace
from medcoder.evaluation import comparison
from medcoder.evaluation.baseline import run_baseline
from medcoder.evaluation.split import evaluate_coder, log_evaluation
from medcoder.inference.guidelines import apply_guidelines_to
from medcoder.models.tfidf_baseline import predictions_from_scores

NEURAL_PARAMS = {
    "model": {"net": {"encoder": None, "finetune": "lora", "lora_r": 8, "lora_layers": "all"}},
    "trainer": {"max_epochs": 3, "precision": "32-true"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A store holding one baseline and one neural run on the same (small) embedded splits."""
    store = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    splits = {"train": make_notes(60, 1, "tr"), "val": make_notes(30, 2, "va"), "test": make_notes(30, 3, "te")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        baseline = run_baseline(
            splits, systems=["ICD-10-CM"], top_k=None, C=[1.0, 10.0], dataset_name="embedded", tracking_uri=store
        )

        labels = LabelSpace.from_records(splits["train"], systems=["ICD-10-CM"])
        seeds = {"va": 4, "te": 5}

        def predict(records, threshold):
            scores = noisy_scores(list(records), labels, seeds[records[0].id[:2]])
            return predictions_from_scores(records, labels, scores, threshold), scores

        evaluation = evaluate_coder(predict, splits, labels, postprocess=apply_guidelines_to)
        tracking.configure_mlflow(comparison.DEFAULT_EXPERIMENT, store)
        with mlflow.start_run(run_name="neural-embedded") as neural:
            mlflow.set_tags({"model_family": "neural_coder", "dataset": "embedded", "task": "train"})
            tracking.log_params({**NEURAL_PARAMS, "dataset": {"train": {"notes": len(splits["train"])}}})
            tracking.log_dataset_digests(splits, "embedded")
            log_evaluation(evaluation, labels)
    return {
        "store": store,
        "baseline": baseline["run_id"],
        "neural": neural.info.run_id,
        "neural_test": evaluation.results["test"].metrics,
    }


def test_compare_writes_the_record_with_both_rows(runs, tmp_path, capsys):
    out = tmp_path / "records"
    assert medcoder_main(["compare", "--dataset", "embedded", "--tracking-uri", runs["store"], "--out", str(out)]) == 0
    path = out / f"{dt.date.today().isoformat()}-embedded-lora-vs-tfidf.md"
    assert capsys.readouterr().out.strip() == str(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# the embedded corpus: MiniLM + LoRA label-attention coder against the TF-IDF baseline\n")
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Question", "## Setup", "## Command", "## Runs", "## Results", "## Notes", "## Decision"]
    assert "```bash\nmake train && .venv/bin/medcoder compare\n```" in text
    assert f"- baseline: MLflow run `{runs['baseline']}`" in text and f"- neural: MLflow run `{runs['neural']}`" in text
    rows = [line for line in text.splitlines() if line.startswith("| TF-IDF") or line.startswith("| MiniLM")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| TF-IDF + logistic regression",
        "| MiniLM + LoRA",
        "| MiniLM + LoRA: scores alone, before grounding and guideline rules",
    ]
    assert rows[1].split(" | ")[1] == f"{runs['neural_test']['micro_f1']:.3f}"  # numbers read from the run
    # the scores at the threshold, scored as the baseline is: what the guideline layer changed is not in them
    assert rows[2].split(" | ")[1] == f"{runs['neural_test']['scores_only/micro_f1']:.3f}"
    assert "Neural: encoder packaged all-MiniLM-L6-v2, finetune lora, LoRA r=8" in text
    assert "Criteria met:" in text.split("## Decision")[1]
    # why what ships differs from the scores alone: the run's own counts of what grounding and the rules removed
    notes = text.split("## Notes")[1].split("## Decision")[0]
    blocked, gold = (
        runs["neural_test"]["grounding/context_blocked"],
        runs["neural_test"]["grounding/context_blocked_gold"],
    )
    assert f"the context check {blocked:.0f} ({gold:.0f} of them gold codes)" in notes
    assert text.rstrip().endswith(
        "Generated by `make train && .venv/bin/medcoder compare`; numbers come from the runs above, not typed."
    )


def test_compare_without_the_runs_is_a_one_line_error(runs, tmp_path, capsys):
    assert (
        medcoder_main(["compare", "--dataset", "codiesp", "--tracking-uri", runs["store"], "--out", str(tmp_path)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith("medcoder compare: error: no finished run with model_family=neural_coder and dataset=codiesp")
    assert err.endswith("run `make codiesp` first") and "\n" not in err
    assert not list(tmp_path.iterdir())


def test_codiesp_decision_adds_the_absolute_targets_and_ignores_evidence():
    beaten = {"test/micro_f1": 0.5, "test/macro_f1": 0.4, "test/map": 0.6, "test/distractor_false_positive_rate": 0.1}
    neural = {
        "test/micro_f1": 0.72,
        "test/macro_f1": 0.61,
        "test/map": 0.81,
        "test/invalid_code_rate": 0.0,
        "test/distractor_false_positive_rate": 0.5,
    }
    text = comparison.decision(neural, beaten, with_evidence=False)
    assert "evidence" not in text and "distractor" not in text
    assert text.endswith("The default CodiEsp coder meets the targets and beats the baseline on all three.")
    short = comparison.decision({**neural, "test/map": 0.79}, beaten, with_evidence=False)
    assert "Not met: map >= 0.80;" in short


def test_codiesp_targets_are_judged_as_its_gold_is_annotated_and_what_ships_is_reported_beside():
    baseline = {"test/micro_f1": 0.49, "test/macro_f1": 0.38, "test/map": 0.61}
    scores = {"test/micro_f1": 0.72, "test/macro_f1": 0.63, "test/map": 0.81, "test/invalid_code_rate": 0.0}
    shipped = {**scores, "test/micro_f1": 0.68, "test/macro_f1": 0.57}
    text = comparison.codiesp_decision(scores, shipped, baseline)
    annotated, what_ships = text.split(" What ships ")
    assert "Not met" not in annotated and "meets the targets and beats the baseline on all three" in annotated
    assert "Not met: micro_f1 >= 0.70, macro_f1 >= 0.60." in what_ships  # reported, never hidden
    missed = comparison.codiesp_decision({**scores, "test/macro_f1": 0.59}, shipped, baseline)
    assert "Not met: macro_f1 >= 0.60." in missed.split(" What ships ")[0] and "meets the targets" not in missed


def test_medcoder_help_does_not_import_the_comparison():
    code = (
        "import sys; from medcoder.cli import build_parser; build_parser(); "
        "assert 'medcoder.evaluation.comparison' not in sys.modules and 'mlflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_layer_effects_note_counts_what_each_layer_removed_and_the_gold_among_it():
    metrics = {
        "test/grounding/context_blocked": 71.0,
        "test/grounding/context_blocked_gold": 47.0,
        "test/grounding/context_blocked_gold/historical": 12.0,
        "test/grounding/context_blocked_gold/negated": 35.0,
        "test/grounding/verifier_rejected": 2.0,
        "test/grounding/verifier_rejected_gold": 1.0,
        "test/rules/unspecified_beside_specific/removed": 21.0,
        "test/rules/unspecified_beside_specific/removed_gold": 19.0,
        "test/rules/history_codes/removed": 0.0,
        "val/grounding/context_blocked": 5.0,
    }
    note = comparison.layer_effects_note(metrics)
    assert (
        "the context check 71 (47 of them gold codes; the gold ones by their mentions: negated 35, historical 12), "
        "the evidence verifier 2 (1 gold)" in note
    )
    assert "removed: unspecified_beside_specific 21 (19 gold) (" in note  # a rule that removed nothing is not listed
    assert comparison.layer_effects_note({"test/micro_f1": 0.5}) is None  # a run scored without the layers
