"""TF-IDF features over hashed word n-grams, and a fitted linear TF-IDF model as plain arrays.

Why hashing: a TF-IDF vocabulary is a list of the words and word pairs of the training notes, names
and dates included, so a model that carries one must never leave the training machine. Hashing each
n-gram into one of 2**20 buckets (scikit-learn's HashingVectorizer, MurmurHash3, the same on every
machine) leaves only bucket numbers, idf weights and regression weights: arrays that a packaged model
stores as safetensors, without pickle and without a word of any note. Buckets seen in fewer than
`min_df` train notes are dropped, so a one-off token (a name in one note) leaves no bucket behind.

The features match scikit-learn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm="l2") over
the kept buckets: counts of the train buckets -> 1 + log(tf) -> times idf -> unit L2 norm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.preprocessing import normalize

FEATURE_KINDS: tuple[str, ...] = ("vocabulary", "hashed")
N_BUCKETS = 2**20


class HashedTfidf:
    """TF-IDF over hashed word n-grams; `fit_transform` on train texts, `transform` on any."""

    def __init__(self, ngram_range: Sequence[int] = (1, 2), min_df: int = 1, n_features: int = N_BUCKETS):
        lo, hi = (int(n) for n in ngram_range)
        if not 1 <= lo <= hi:
            raise ValueError(f"ngram_range must be (low, high) with 1 <= low <= high, got {tuple(ngram_range)}")
        if min_df < 1:
            raise ValueError(f"min_df must be >= 1, got {min_df}")
        self.ngram_range, self.min_df, self.n_features = (lo, hi), int(min_df), int(n_features)
        self.buckets = np.zeros(0, dtype=np.int64)  # the kept hash buckets, sorted
        self.idf = np.zeros(0, dtype=np.float32)  # idf of each kept bucket

    def _counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        hasher = HashingVectorizer(n_features=self.n_features, ngram_range=self.ngram_range, alternate_sign=False,
                                   norm=None, dtype=np.float32)  # fmt: skip
        return hasher.transform(list(texts)).tocsr()

    def fit_transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        counts = self._counts(texts)
        df = np.bincount(counts.indices, minlength=self.n_features)  # a CSR row lists each bucket once
        self.buckets = np.flatnonzero(df >= self.min_df).astype(np.int64)
        if not len(self.buckets):
            raise ValueError(f"no n-gram occurs in {self.min_df} or more train notes: lower min_df")
        n = counts.shape[0]
        self.idf = (np.log((1.0 + n) / (1.0 + df[self.buckets])) + 1.0).astype(np.float32)
        return self._weigh(counts[:, self.buckets])

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        if not len(self.buckets):
            raise RuntimeError("HashedTfidf.transform called before fit_transform")
        return self._weigh(self._counts(texts)[:, self.buckets])

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        x = counts.astype(np.float32).tocsr()
        x.data = 1.0 + np.log(x.data)
        x = x @ sp.diags(self.idf)
        return normalize(x, norm="l2", copy=False).tocsr()

    def config(self) -> dict[str, Any]:
        return {"ngram_range": list(self.ngram_range), "min_df": self.min_df, "n_features": self.n_features}


@dataclass
class LinearTfidfScorer:
    """A fitted one-vs-rest logistic regression over `HashedTfidf` features, as arrays.

    coef (L, K) and intercept (L,) over the features' K kept buckets; scores are sigmoid(x @ coef.T
    + intercept), the probabilities scikit-learn's model gives. `save` and `load` write and read one
    safetensors file plus a JSON header (no pickle anywhere).
    """

    features: HashedTfidf
    coef: np.ndarray
    intercept: np.ndarray

    CONSTANT_LOGIT = 30.0  # the logit of a label with a single class in train: sigmoid(+-30) is 1 or 0 to 1e-13

    def __post_init__(self) -> None:
        if self.coef.shape != (len(self.intercept), len(self.features.buckets)):
            raise ValueError(
                f"coef has shape {self.coef.shape}, expected ({len(self.intercept)}, {len(self.features.buckets)})"
            )

    @property
    def num_labels(self) -> int:
        return len(self.intercept)

    def predict_scores(self, texts: Sequence[str]) -> np.ndarray:
        """(n_texts, L) probabilities."""
        if not len(texts):
            return np.zeros((0, self.num_labels), dtype=np.float32)
        logits = np.asarray(self.features.transform(texts) @ self.coef.T) + self.intercept
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)

    def save(self, path: Path) -> dict[str, Any]:
        """Write the arrays to `path` (safetensors); returns the JSON-able header `load` needs."""
        save_file({"buckets": self.features.buckets, "idf": self.features.idf,
                   "coef": np.ascontiguousarray(self.coef), "intercept": self.intercept},
                  str(path), metadata={"features": json.dumps(self.features.config())})  # fmt: skip
        return {"file": path.name, **self.features.config(), "num_labels": self.num_labels}

    @classmethod
    def load(cls, path: Path, header: dict[str, Any]) -> LinearTfidfScorer:
        arrays = load_file(str(path))
        missing = sorted({"buckets", "idf", "coef", "intercept"} - set(arrays))
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        features = HashedTfidf(header["ngram_range"], header["min_df"], header["n_features"])
        features.buckets, features.idf = arrays["buckets"].astype(np.int64), arrays["idf"].astype(np.float32)
        if len(features.idf) != len(features.buckets):
            raise ValueError(f"{path}: {len(features.idf)} idf weights for {len(features.buckets)} buckets")
        scorer = cls(features, arrays["coef"].astype(np.float32), arrays["intercept"].astype(np.float32))
        if scorer.num_labels != int(header["num_labels"]):
            raise ValueError(f"{path}: {scorer.num_labels} labels, the header says {header['num_labels']}")
        return scorer
