"""From one note's model outputs to a NotePrediction: which codes, on which evidence, grounded or not.

For each code scored above the threshold:
1. the evidence tagger's spans (code-agnostic) are ranked by how much of THIS code's label attention
   falls on their tokens; the best span, and any other carrying at least half its mass (up to
   `max_spans`), become the evidence. The tagger says "this is evidence of something", the
   attention says "of this code";
2. when no tagged span carries `min_span_mass` of the code's attention, the evidence falls back to
   the window of `window_tokens` tokens around the attention peak, which grounds the code only if a
   tagged span overlaps it: attention alone shows where the model looked, not that the text supports
   the code;
3. every evidence span goes through the ConText-style check (`context.py`): spans that are negated,
   family, historical, hypothetical (or uncertain in a non-inpatient note) are not support. A code
   is grounded when at least one supporting span remains, and then only those spans are its
   evidence; otherwise it keeps the spans it pointed at (for the reviewer) and `grounded=False`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import Span
from medcoder.grounding.context import blocks_grounding, detect_context, exempt_statuses, subject_of
from medcoder.metrics.classification import binarize
from medcoder.models.em import EM_CLASSES, EM_NONE
from medcoder.models.spans import merge_spans, spans_from_bio


def _token_membership(spans: Sequence[Span], token_offsets: np.ndarray) -> np.ndarray:
    """(n_spans, T) bool: token t overlaps span i (special and pad tokens never do)."""
    starts, ends = token_offsets[:, 0], token_offsets[:, 1]
    valid = starts >= 0
    if not spans:
        return np.zeros((0, len(token_offsets)), dtype=bool)
    s = np.array([sp[0] for sp in spans])[:, None]
    e = np.array([sp[1] for sp in spans])[:, None]
    return valid[None, :] & (starts[None, :] < e) & (s < ends[None, :])


def _peak_window(attention: np.ndarray, token_offsets: np.ndarray, window_tokens: int, text: str) -> Span | None:
    """The character span of up to `window_tokens` real tokens centred on the attention peak, within its chunk."""
    peak = int(np.argmax(attention))
    if token_offsets[peak, 0] < 0:
        return None
    first = last = peak
    half = window_tokens // 2
    while first > 0 and peak - first < half and token_offsets[first - 1, 0] >= 0:
        first -= 1
    while last < len(token_offsets) - 1 and last - first + 1 < window_tokens and token_offsets[last + 1, 0] >= 0:
        last += 1
    spans = merge_spans([(int(token_offsets[first, 0]), int(token_offsets[last, 1]))], text)
    return spans[0] if spans else None


def ground_note(
    note_id: str,
    text: str,
    setting: str | None,
    labels: Sequence[Label],
    code_scores: np.ndarray,
    attention: np.ndarray,
    bio_tags: np.ndarray,
    token_offsets: np.ndarray,
    threshold: float,
    em_probs: np.ndarray | None = None,
    max_spans: int = 3,
    min_span_mass: float = 0.05,
    window_tokens: int = 5,
) -> NotePrediction:
    """One note's prediction. Shapes: code_scores (L,) probabilities, attention (L, T), bio_tags (T,)
    predicted tag ids, token_offsets (T, 2) with -1 for special/pad; T is all chunk tokens in order.
    A code is predicted when its score is strictly above `threshold` (the rule of medcoder.metrics).
    """
    tagged = spans_from_bio(bio_tags.tolist(), token_offsets.tolist(), text)
    membership = _token_membership(tagged, token_offsets).astype(np.float32)
    codes: list[PredictedCode] = []
    for l in np.flatnonzero(binarize(code_scores, threshold)):
        mass = membership @ attention[l] if tagged else np.zeros(0)
        if mass.size and mass.max() >= min_span_mass:
            ranked = np.argsort(-mass, kind="stable")
            chosen = [tagged[i] for i in ranked[:max_spans] if mass[i] >= 0.5 * mass.max()]
            supported = True
        else:
            window = _peak_window(attention[l], token_offsets, window_tokens, text)
            chosen = [window] if window is not None else []
            supported = bool(chosen) and any(s < window[1] and window[0] < e for s, e in tagged)
        clean = [span for span in chosen if not blocks_grounding(_status(text, span, *labels[l]), setting)]
        grounded = supported and bool(clean)
        evidence = sorted(clean) if grounded else sorted(chosen)
        system, code = labels[l]
        codes.append(PredictedCode(system, code, float(code_scores[l]), tuple(evidence), grounded))
    codes.sort(key=lambda c: -c.score)

    em_code, em_score = None, None
    if em_probs is not None:
        k = int(np.argmax(em_probs))
        if EM_CLASSES[k] != EM_NONE:
            em_code, em_score = EM_CLASSES[k], float(em_probs[k])
    return NotePrediction(id=note_id, codes=tuple(codes), em_code=em_code, em_score=em_score)


def _status(text: str, span: Span, system: str, code: str) -> str | None:
    match = detect_context(text, span[0], span[1], subject_of(system, code), ignore=exempt_statuses(system, code))
    return match.status if match else None
