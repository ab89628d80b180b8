"""TF-IDF + one-vs-rest logistic regression: the baseline every neural coder must beat.

Word 1-2 grams with sublinear tf, one independent logistic regression per code (scikit-learn's
`OneVsRestClassifier`). It is the standard reference point in automated coding papers and trains
in seconds, so a neural model that does not clearly beat it is broken, not "competitive".

The baseline finds no evidence: every code it predicts is ungrounded. That is a real, measured
weakness (the ungrounded-code rate and distractor false positives show it), not an error.

Labels with a single class in train (a code no train note has, or one every train note has) cannot
train a classifier. They are kept in the label space (so columns line up with every other model)
and scored with their train constant; `constant_labels` lists them and fitting logs a warning
with their codes. The fitted vectorizer holds note words, so never log or ship it as an artifact.

`features="hashed"` replaces the word vocabulary by hash buckets of the n-grams
(`medcoder.models.lexical.HashedTfidf`): the fitted model then holds numbers only and can be shipped
inside a packaged model as arrays (`linear_scorer()`), for the neural + TF-IDF blend.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from medcoder.data.labels import Label, LabelSpace
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import NoteRecord
from medcoder.metrics.classification import binarize, micro_f1_by_threshold, tune_threshold
from medcoder.models.lexical import FEATURE_KINDS, HashedTfidf, LinearTfidfScorer

log = logging.getLogger(__name__)


class TfidfBaseline:
    """Multi-label coder: TF-IDF features, one logistic regression per label.

    Args:
        C: inverse L2 regularisation strength of each logistic regression.
        class_weight: None, or "balanced" to weight each code's positives by their rarity in train
            (compare both: experiments/*-codiesp-tfidf-baseline.md).
        ngram_range: word n-gram range of the vectorizer.
        min_df: drop terms that occur in fewer train notes (removes typos and one-off numbers).
        max_features: keep only the most frequent terms (None = all).
        max_iter: solver iterations per label.
        n_jobs: parallel label fits (1 keeps shared CPUs free).
        seed: the solver's random state; the same data and seed give identical scores.
        features: "vocabulary" (scikit-learn's TfidfVectorizer: terms are note words) or "hashed"
            (terms are hash buckets: the model can be exported, see `linear_scorer`).
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        class_weight: Literal["balanced"] | None = None,
        ngram_range: tuple[int, int] = (1, 2),
        min_df: int = 1,
        max_features: int | None = None,
        max_iter: int = 1000,
        n_jobs: int | None = 1,
        seed: int = 0,
        features: str = "vocabulary",
    ) -> None:
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        if class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
        if features not in FEATURE_KINDS:
            raise ValueError(f"features must be one of {', '.join(FEATURE_KINDS)}, got {features!r}")
        if features == "hashed" and max_features is not None:
            raise ValueError(
                "max_features applies to features='vocabulary' only; "
                "hashed features keep every bucket with min_df notes"
            )
        self.features = features
        self.C, self.class_weight = C, class_weight
        self.ngram_range, self.min_df, self.max_features = tuple(ngram_range), min_df, max_features
        self.max_iter, self.n_jobs, self.seed = max_iter, n_jobs, seed
        self.label_space: LabelSpace | None = None
        self.constant_labels: list[Label] = []
        self._vectorizer: TfidfVectorizer | HashedTfidf | None = None
        self._classifier: OneVsRestClassifier | None = None

    def params(self) -> dict[str, object]:
        """Hyperparameters as a plain dict (for MLflow params and experiment records)."""
        return {
            "name": "tfidf_ovr_logreg",
            "C": self.C,
            "class_weight": self.class_weight,
            "ngram_range": list(self.ngram_range),
            "min_df": self.min_df,
            "max_features": self.max_features,
            "sublinear_tf": True,
            "solver": "liblinear-dual",
            "max_iter": self.max_iter,
            "seed": self.seed,
            "features": self.features,
        }

    # ------------------------------------------------------------ training
    def fit(self, records: Sequence[NoteRecord], label_space: LabelSpace) -> TfidfBaseline:
        """Fit the vectorizer and one classifier per label on `records` (the train split)."""
        if not records:
            raise ValueError("TfidfBaseline.fit: no training records")
        if len(label_space) == 0:
            raise ValueError("TfidfBaseline.fit: the label space is empty (no codes of the requested systems in train)")
        y = label_space.encode_many(records).astype(np.int64)
        positives = y.sum(axis=0)
        self.constant_labels = [label for label, n in zip(label_space.labels, positives) if n == 0 or n == len(records)]
        if self.constant_labels:
            shown = ", ".join(f"{s}:{c}" for s, c in self.constant_labels[:10])
            more = "" if len(self.constant_labels) <= 10 else f" and {len(self.constant_labels) - 10} more"
            log.warning(
                "TfidfBaseline: %d label(s) have a single class in %d train notes and get a constant score: %s%s",
                len(self.constant_labels),
                len(records),
                shown,
                more,
            )

        if self.features == "hashed":
            self._vectorizer = HashedTfidf(ngram_range=self.ngram_range, min_df=self.min_df)
        else:
            self._vectorizer = TfidfVectorizer(
                ngram_range=self.ngram_range,
                sublinear_tf=True,
                min_df=self.min_df,
                max_features=self.max_features,
                dtype=np.float32,
            )
        x = self._vectorizer.fit_transform([r.text for r in records])
        # liblinear's dual coordinate descent: with more TF-IDF features than notes it solves the
        # same L2 problem 10-20x faster than lbfgs (CodiEsp and the embedded corpus, measured), and
        # converges at large C where lbfgs needs thousands of iterations.
        estimator = LogisticRegression(
            C=self.C,
            class_weight=self.class_weight,
            max_iter=self.max_iter,
            solver="liblinear",
            dual=True,
            random_state=self.seed,  # liblinear visits coordinates in random order: fix it for repeatable runs
        )
        self._classifier = OneVsRestClassifier(estimator, n_jobs=self.n_jobs)
        with warnings.catch_warnings():
            # sklearn's "Label (not) N is present in all training examples": reported above, by code.
            warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
            self._classifier.fit(x, y)
        self.label_space = label_space
        return self

    # ------------------------------------------------------------ inference
    def predict_scores(self, records: Sequence[NoteRecord]) -> np.ndarray:
        """Probabilities, shape (n_notes, n_labels), columns in label-space order."""
        if self._vectorizer is None or self._classifier is None or self.label_space is None:
            raise RuntimeError("TfidfBaseline.predict_scores called before fit")
        if not records:
            return np.zeros((0, len(self.label_space)), dtype=np.float32)
        x = self._vectorizer.transform([r.text for r in records])
        scores = self._classifier.predict_proba(x)
        return np.asarray(scores, dtype=np.float32).reshape(len(records), len(self.label_space))

    def linear_scorer(self) -> LinearTfidfScorer:
        """The fitted model as plain arrays (hash buckets, idf, weights), to ship inside a packaged model.

        Only for features="hashed": a vocabulary model's terms are note words and must never leave
        the training machine. A label with a single class in train keeps its constant score.
        """
        if self._classifier is None or self.label_space is None:
            raise RuntimeError("TfidfBaseline.linear_scorer called before fit")
        if not isinstance(self._vectorizer, HashedTfidf):
            raise ValueError(
                "only a features='hashed' model can be exported: a vocabulary model's terms are note words"
            )
        n_labels, n_terms = len(self.label_space), len(self._vectorizer.buckets)
        coef = np.zeros((n_labels, n_terms), dtype=np.float32)
        intercept = np.zeros(n_labels, dtype=np.float32)
        for j, estimator in enumerate(self._classifier.estimators_):
            if hasattr(estimator, "coef_"):
                coef[j], intercept[j] = estimator.coef_.ravel(), estimator.intercept_[0]
            else:  # sklearn's constant predictor for a single-class label: a logit that gives 0 or 1
                intercept[j] = LinearTfidfScorer.CONSTANT_LOGIT * (
                    1.0 if float(np.ravel(estimator.y_)[0]) >= 0.5 else -1.0
                )
        return LinearTfidfScorer(self._vectorizer, coef, intercept)

    def predict(self, records: Sequence[NoteRecord], threshold: float) -> list[NotePrediction]:
        """Codes scoring above `threshold` per note, best first; all ungrounded (no evidence)."""
        return predictions_from_scores(records, self.label_space, self.predict_scores(records), threshold)


def predictions_from_scores(
    records: Sequence[NoteRecord], label_space: LabelSpace | None, scores: np.ndarray, threshold: float
) -> list[NotePrediction]:
    """Turn a score matrix into NotePredictions without evidence (grounded=False for every code).

    Uses the metrics' decision rule (`binarize`: score strictly above threshold), so the codes a
    note gets here are exactly the ones the note-level metrics count as predicted.
    """
    if label_space is None:
        raise RuntimeError("predictions need a label space (fit the model first)")
    if scores.shape != (len(records), len(label_space)):
        raise ValueError(f"scores have shape {scores.shape}, expected ({len(records)}, {len(label_space)})")
    decided = binarize(scores, threshold).astype(bool)
    out: list[NotePrediction] = []
    for record, row, keep in zip(records, scores, decided):
        chosen = np.flatnonzero(keep)
        chosen = chosen[np.argsort(-row[chosen], kind="stable")]
        codes = tuple(
            PredictedCode(system=label_space.labels[j][0], code=label_space.labels[j][1], score=float(row[j]))
            for j in chosen
        )
        out.append(NotePrediction(id=record.id, codes=codes))
    return out


def select_model(
    train: Sequence[NoteRecord],
    val: Sequence[NoteRecord],
    label_space: LabelSpace,
    *,
    c_grid: Sequence[float],
    class_weight: str | None,
    threshold_grid: np.ndarray,
    **model_options: Any,
) -> tuple[TfidfBaseline, float, np.ndarray, pd.DataFrame]:
    """Fit one model per C on train, tune a threshold for each on val, keep the best by val micro-F1.

    Returns the chosen model, its threshold, its val scores and the selection table (one row per C).
    `model_options` go to every TfidfBaseline (e.g. features="hashed", min_df=2).
    """
    y_val = label_space.encode_many(val)
    best: tuple[float, TfidfBaseline, float, np.ndarray] | None = None
    rows = []
    for c in c_grid:
        model = TfidfBaseline(C=float(c), class_weight=class_weight, **model_options).fit(train, label_space)
        scores = model.predict_scores(val)
        threshold = tune_threshold(y_val, scores, threshold_grid)
        f1 = float(micro_f1_by_threshold(y_val, scores, np.asarray([threshold]))[0])
        rows.append({"C": float(c), "threshold": threshold, "val_micro_f1": f1})
        if best is None or f1 > best[0]:
            best = (f1, model, threshold, scores)
    assert best is not None
    selection = pd.DataFrame(rows)
    selection["selected"] = selection["C"] == best[1].C
    return best[1], best[2], best[3], selection
