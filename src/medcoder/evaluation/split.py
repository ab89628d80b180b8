"""Score a trained coder the one way every model is scored, and log the result to MLflow.

Protocol (Edin et al., SIGIR 2023): one decision threshold is tuned on val over a grid and applied
unchanged to test. Predictions at that threshold carry grounded evidence, so the same pass yields the
classification, evidence, hallucination and E/M metrics (`medcoder.metrics.evaluate_split`). The
neural coder and the TF-IDF baseline both log through `log_evaluation`, so their runs compare
column for column in the MLflow UI and in `medcoder-eval`'s comparison table.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.metrics import EvaluationResult, evaluate_split, train_label_counts, tune_threshold
from medcoder.metrics.classification import classification_metrics
from medcoder.metrics.layers import grounding_effects, rule_effects

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from medcoder.inference.grounding.verifier import SupportVerifier
    from medcoder.inference.predict import NoteForward
    from medcoder.models.blend import ScoreBlend
    from medcoder.models.lit_module import CoderLitModule

log = logging.getLogger(__name__)

# (records, threshold) -> (predictions at that threshold, (n, L) code probabilities)
Predictor = Callable[[Sequence[NoteRecord], float], tuple[list[NotePrediction], np.ndarray]]
# records -> (n, L) code probabilities only
Scorer = Callable[[Sequence[NoteRecord]], np.ndarray]
# (records, the model's predictions) -> what ships (the guideline layer)
Postprocess = Callable[[Sequence[NoteRecord], list[NotePrediction]], list[NotePrediction]]
# set metrics also reported for the model alone, to measure what the guideline layer changes
MODEL_ONLY_METRICS = (
    "micro_f1",
    "macro_f1",
    "micro_precision",
    "micro_recall",
    "ungrounded_rate",
    "distractor_fp_rate",
    "invalid_code_rate",
)
# set metrics of the coder's scores at the threshold, before grounding, the context check and the guideline
# layer: the TF-IDF baseline is scored this way, so these compare with it like for like
SCORES_ONLY_METRICS = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "exact_match")


@dataclass
class CoderEvaluation:
    """The tuned threshold and the evaluation of each split, with the scores behind them (for plots)."""

    threshold: float
    results: dict[str, EvaluationResult]
    scores: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]


def threshold_grid(start: float = 0.01, stop: float = 0.99, step: float = 0.01) -> np.ndarray:
    """The grid searched on val; inclusive of `stop` (within float tolerance)."""
    return np.round(np.arange(start, stop + step / 2, step), 6)


def evaluate_coder(
    predict: Predictor,
    splits: Mapping[str, Sequence[NoteRecord]],
    label_space: LabelSpace,
    grid: np.ndarray | None = None,
    is_valid: Callable[[str, str], bool] | None = None,
    postprocess: Postprocess | None = None,
    score: Scorer | None = None,
) -> CoderEvaluation:
    """Tune the threshold on `splits["val"]`, then evaluate val and test at that threshold.

    With `postprocess` (the guideline layer), `predict` gives the model's own predictions, the split
    is scored on what ships (postprocessed), the model alone is kept as `model_only/<metric>`, and what
    grounding and each rule changed, counted against the gold, as `grounding/<count>` and
    `rules/<rule>/<count>` (medcoder.metrics.layers); the scores alone at the threshold, before grounding
    and rules, as `scores_only/<metric>`.
    `score` gives val's probabilities for tuning when that is cheaper than `predict` (which grounds
    every code it predicts); by default `predict` at 0.5 gives them."""
    val, test = list(splits["val"]), list(splits["test"])
    val_scores = score(val) if score is not None else predict(val, 0.5)[1]
    y_val = label_space.encode_many(val)
    threshold = tune_threshold(y_val, val_scores, grid)
    log.info("threshold tuned on val: %.2f", threshold)
    counts = train_label_counts(splits["train"])
    results: dict[str, EvaluationResult] = {}
    scores, targets = {}, {}
    for name, records in (("val", val), ("test", test)):
        predictions, split_scores = predict(records, threshold)
        y_true = label_space.encode_many(records)
        layers: dict[str, float] = {}  # what grounding and the guideline layer changed (the coder's path)
        if postprocess is not None:
            model_only = evaluate_split(
                records, label_space, split_scores, threshold, predictions=predictions, is_valid=is_valid
            )
            layers |= {f"model_only/{k}": v for k, v in model_only.metrics.items() if k in MODEL_ONLY_METRICS}
            scores_only = classification_metrics(y_true, split_scores, threshold)
            layers |= {f"scores_only/{k}": scores_only[k] for k in SCORES_ONLY_METRICS}
            layers |= grounding_effects(records, predictions)
            predictions = postprocess(records, predictions)
            layers |= rule_effects(records, predictions)
        results[name] = evaluate_split(
            records,
            label_space,
            split_scores,
            threshold,
            predictions=predictions,
            train_counts=counts,
            is_valid=is_valid,
        )
        results[name].metrics.update(layers)
        scores[name], targets[name] = split_scores, y_true
    return CoderEvaluation(threshold=threshold, results=results, scores=scores, targets=targets)


class _ForwardOnce:
    """The coder's forward pass over the split it was last asked for, kept until another split is asked:
    threshold tuning reads val's scores and val is then grounded at the tuned threshold from the same
    pass (one forward pass per split, not two). One split at a time bounds the memory; the neural scores
    of every split passed are kept (small), and with a `blend` each call mixes them with the TF-IDF model's,
    so a blend fitted on val's neural scores needs no second pass."""

    def __init__(self, coder: CoderLitModule, batch_size: int, blend: ScoreBlend | None) -> None:
        self.coder, self.batch_size, self.blend = coder, batch_size, blend
        self._ids: tuple[str, ...] | None = None
        self._forwards: list[NoteForward] = []
        self._neural: dict[tuple[str, ...], np.ndarray] = {}
        self._lexical: tuple[ScoreBlend, np.ndarray] | None = None  # the current split's TF-IDF scores

    def _pass(self, records: Sequence[NoteRecord]) -> None:
        from medcoder.inference.predict import forward_notes

        ids = tuple(r.id for r in records)
        if ids != self._ids:
            self._forwards, self._lexical = [], None  # the previous split's arrays go before the next pass
            coder = self.coder
            self._forwards = forward_notes(coder.net, records, len(coder.label_space), coder.chunking, self.batch_size)
            self._neural[ids] = np.stack([f.probs for f in self._forwards])
            self._ids = ids

    def neural_scores(self, records: Sequence[NoteRecord]) -> np.ndarray:
        """(n, L) the neural coder's own probabilities for `records`."""
        ids = tuple(r.id for r in records)
        if ids not in self._neural:
            self._pass(records)
        return self._neural[ids]

    def __call__(self, records: Sequence[NoteRecord]) -> list[NoteForward]:
        self._pass(records)
        if self.blend is None:
            return self._forwards
        if self._lexical is None or self._lexical[0] is not self.blend:
            self._lexical = (self.blend, self.blend.lexical_scores([r.text for r in records]))
        lexical = self._lexical[1]
        return [replace(f, probs=self.blend.mix(f.probs, lexical[i])) for i, f in enumerate(self._forwards)]


# the neural coder's val scores (n_val, L) -> the blend fitted on them and its selection tables (models.blend)
BlendFitter = Callable[[np.ndarray], "tuple[ScoreBlend, dict[str, pd.DataFrame]]"]


@dataclass
class TrainedCoderEvaluation:
    """What `evaluate_trained_coder` found: the evaluation of what ships, the verifier it grounded with and
    the blend it scored with (both packaged with the model), the verifier's fit report, and with a blend,
    the neural coder alone (`neural_only`: its scores at its own val-tuned threshold, before grounding and
    rules, as `scores_only/` reports the packaged model's) and the blend's selection tables."""

    evaluation: CoderEvaluation
    verifier: SupportVerifier | None
    report: dict[str, float]
    blend: ScoreBlend | None = None
    blend_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    neural_only: dict[str, float] = field(default_factory=dict)  # "<split>/<metric>"
    neural_only_threshold: float | None = None


def evaluate_trained_coder(
    coder: CoderLitModule,
    splits: Mapping[str, Sequence[NoteRecord]],
    *,
    verifier: Mapping[str, Any] | SupportVerifier | None,
    grid: np.ndarray,
    batch_size: int,
    blend: ScoreBlend | None = None,
    fit_blend: BlendFitter | None = None,
) -> TrainedCoderEvaluation:
    """The evaluation medcoder-train and medcoder-eval share: fit the evidence verifier on val's gold
    evidence (settings `verifier`: enabled, target_recall, rescue_floor, rescue_support, grounded_false_accept,
    stated_false_accept; None = off;
    or an already fitted SupportVerifier, reused as is), then `evaluate_coder` with the guideline
    layer as postprocess, on the coder's scores or on their `blend` with a TF-IDF model's.
    With `fit_blend`, the blend is fitted on the neural coder's val scores first, from the same forward
    pass the evaluation then reads: one pass and one grounded evaluation per split, blend or not."""
    from medcoder.codes import validator_for
    from medcoder.inference.grounding.verifier import SupportVerifier, verifier_for_split
    from medcoder.inference.guidelines import apply_guidelines_to
    from medcoder.inference.predict import ground_forwards

    label_space = coder.label_space
    report: dict[str, float] = {}
    fitted = verifier if isinstance(verifier, SupportVerifier) else None
    if isinstance(verifier, Mapping) and verifier.get("enabled", True):
        fitted, report = verifier_for_split(
            splits["val"], label_space.labels, float(verifier["target_recall"]),
            verifier.get("rescue_floor"), float(verifier.get("rescue_support", 0.9)),
            str(verifier.get("rejected_action", "drop")), verifier.get("grounded_false_accept"),
            verifier.get("stated_false_accept"),
        )  # fmt: skip
    forward = _ForwardOnce(coder, batch_size, blend)
    tables: dict[str, pd.DataFrame] = {}
    if fit_blend is not None:
        forward.blend, tables = fit_blend(forward.neural_scores(splits["val"]))
    evaluation = evaluate_coder(
        lambda records, threshold: ground_forwards(
            records, forward(records), label_space.labels, threshold, fitted, guidelines=False, batch_size=batch_size
        ),
        splits, label_space, grid=grid, is_valid=validator_for(system for system, _ in label_space.labels),
        postprocess=apply_guidelines_to,
        # tuning reads the scores of the same forward pass the val split is then grounded from
        score=lambda records: np.stack([f.probs for f in forward(records)]),
    )  # fmt: skip
    alone_threshold, neural_only = _scores_alone(forward, splits, label_space, grid) if fit_blend else (None, {})
    return TrainedCoderEvaluation(evaluation, fitted, report, forward.blend, tables, neural_only, alone_threshold)


def _scores_alone(
    forward: _ForwardOnce, splits: Mapping[str, Sequence[NoteRecord]], label_space: LabelSpace, grid: np.ndarray
) -> tuple[float, dict[str, float]]:
    """The neural coder's own val-tuned threshold, and its scores' metrics on val and test at that threshold
    ("<split>/<metric>"): what the blend adds."""
    y = {name: label_space.encode_many(splits[name]) for name in ("val", "test")}
    threshold = float(tune_threshold(y["val"], forward.neural_scores(splits["val"]), grid))
    out: dict[str, float] = {}
    for name in ("val", "test"):
        metrics = classification_metrics(y[name], forward.neural_scores(splits[name]), threshold)
        out |= {f"{name}/{k}": float(v) for k, v in metrics.items()}
    return threshold, out


def log_evaluation(evaluation: CoderEvaluation, label_space: LabelSpace, log_metrics: bool = True) -> None:
    """Log metrics (`val/...`, `test/...`; skipped when the caller logs them itself at a step),
    tables and plots into the active MLflow run."""
    import mlflow

    from medcoder import tracking
    from medcoder.metrics import plots

    mlflow.log_metric("threshold", evaluation.threshold)
    for split, result in evaluation.results.items():
        if log_metrics:
            tracking.log_metrics(result.metrics, split)
        tracking.log_dataframe(result.per_code, f"tables/{split}_per_code.csv")
        tracking.log_dataframe(result.by_length, f"tables/{split}_f1_by_note_length.csv")
        if result.by_subgroup is not None and len(result.by_subgroup):
            tracking.log_dataframe(result.by_subgroup, f"tables/{split}_f1_by_subgroup.csv")
        if result.by_frequency is not None:
            tracking.log_dataframe(result.by_frequency, f"tables/{split}_f1_by_frequency.csv")
        if result.em_confusion is not None:
            tracking.log_dataframe(result.em_confusion.reset_index(), f"tables/{split}_em_confusion.csv")
    mlflow.log_dict({"labels": label_space.to_list()}, "label_space.json")

    y_val, s_val = evaluation.targets["val"], evaluation.scores["val"]
    y_test, s_test = evaluation.targets["test"], evaluation.scores["test"]
    test = evaluation.results["test"]
    tracking.log_figure(plots.plot_f1_vs_threshold(y_val, s_val, evaluation.threshold), "plots/val_f1_vs_threshold.png")
    tracking.log_figure(plots.plot_precision_recall(y_test, s_test), "plots/test_precision_recall.png")
    tracking.log_figure(plots.plot_calibration(y_test, s_test), "plots/test_calibration.png")
    tracking.log_figure(plots.plot_per_code_f1(test.per_code), "plots/test_per_code_f1.png")
    if test.by_frequency is not None:
        tracking.log_figure(plots.plot_f1_by_frequency(test.by_frequency), "plots/test_f1_by_frequency.png")


def log_blend(trained: TrainedCoderEvaluation, step: int | None = None) -> None:
    """Into the active MLflow run, when the evaluated model is a blend: its TF-IDF weight, the neural coder
    alone (`neural_only/<split>/<metric>` and its own threshold: what the blend adds is measured) and the
    blend's selection tables. medcoder-train and medcoder-eval log the same, so a record reads either."""
    import mlflow

    from medcoder import tracking

    if trained.blend is None:
        return
    tracking.log_metrics(trained.neural_only, "neural_only", step=step)
    mlflow.log_params({"blend.weight": trained.blend.weight, "neural_only.threshold": trained.neural_only_threshold})
    mlflow.set_tag("blend", "tfidf")
    for name, table in trained.blend_tables.items():
        tracking.log_dataframe(table, f"tables/blend_{name}_selection.csv")


def run_label_space(client: MlflowClient, run_id: str) -> LabelSpace:
    """The label space a run logged (`label_space.json`, written by `log_evaluation` above): what a
    training or baseline run scored, read back by registry scoring and experiment records."""
    with tempfile.TemporaryDirectory(prefix="medcoder-labels-") as tmp:
        try:
            path = client.download_artifacts(run_id, "label_space.json", tmp)
        except Exception as err:  # MlflowException or OSError, depending on the artifact store
            raise FileNotFoundError(f"run {run_id} has no label_space.json artifact ({type(err).__name__})") from None
        labels = json.loads(Path(path).read_text(encoding="utf-8"))["labels"]
    return LabelSpace.from_list(labels)
