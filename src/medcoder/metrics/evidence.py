"""Evidence metrics: do the predicted evidence spans match the gold spans, code by code?

The four MDACE variants (Cheng et al., ACL 2023; reference code 3mcloud/MDACE, mdace/metrics.py).
Each compares, per note, the SET of gold items with the SET of predicted items; true positives,
false positives and false negatives are summed over notes, then precision/recall/F1 (micro):

- exact span:                 item = (start, end, system, code)
- position-independent span:  item = (lower-cased span text, system, code)
- exact token:                item = (token start, token end, system, code), one per token
- position-independent token: item = (lower-cased token text, system, code)

Position-independent variants give credit for pointing at the same words elsewhere in the note
(a diagnosis repeated in the assessment); token variants give partial credit for overlapping spans.
As in MDACE's published results (`--trim-annotations`), span ends are trimmed of white space and
`-.,/` (plus `)` at the start and `(` at the end) before matching, for gold and predicted alike.

Differences from the reference code, on purpose: every note passed in is scored, so evidence
predicted on a note that has no gold evidence counts as false positives (the reference loops over
gold notes only); and an exact token is identified by its start AND end (the reference keeps only
the start, which lets a truncated word match the whole word).

`seqeval_span_f1` scores IOB2 tag sequences (token-tagging evidence models) with seqeval directly.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from seqeval.metrics import f1_score as seqeval_f1_score
from seqeval.scheme import IOB2

from medcoder.data.labels import Label
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord, Span
from medcoder.metrics._common import align_predictions, prf

VARIANTS: tuple[str, ...] = ("exact_span", "position_independent_span", "exact_token", "position_independent_token")

_TOKEN = re.compile(r"\w+")
_TRIM_BOTH = set("-.,/ \n\t")
_TRIM_START = _TRIM_BOTH | {")"}
_TRIM_END = _TRIM_BOTH | {"("}


def evidence_tokens(text: str, span: Span) -> list[tuple[int, int, str]]:
    """THE definition of a token for the token-level evidence metrics.

    A token is a maximal run of Unicode word characters (regex `\\w+`) inside `text[start:end]`,
    lower-cased, with its absolute character offsets in the note. Numbers above 10 are dropped
    (MDACE's tokenizer, after Mullenbach et al.: lab values and dates are not evidence words).
    Matching runs on the original text so offsets stay right even where lower-casing changes length.
    """
    start, end = span
    tokens = []
    for m in _TOKEN.finditer(text, start, end):
        word = m.group()
        if word.isdecimal() and int(word) > 10:
            continue
        tokens.append((m.start(), m.end(), word.lower()))
    return tokens


def trim_span(text: str, span: Span) -> Span:
    """Drop white space and `-.,/` from both ends (and `)` from the start, `(` from the end)."""
    start, end = span
    while start < end and text[start] in _TRIM_START:
        start += 1
    while end > start and text[end - 1] in _TRIM_END:
        end -= 1
    return (start, end)


@dataclass(frozen=True)
class EvidenceCounts:
    """Summed true positives, false positives and false negatives of one variant."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: EvidenceCounts) -> EvidenceCounts:
        return EvidenceCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @classmethod
    def of_sets(cls, gold: set[Hashable], predicted: set[Hashable]) -> EvidenceCounts:
        return cls(len(gold & predicted), len(predicted - gold), len(gold - predicted))


EvidenceItem = tuple[Label, Span]  # ((system, code), (start, end))


def _items(text: str, pairs: Iterable[EvidenceItem], variant: str, trim: bool) -> set[Hashable]:
    """The set of matchable items of one note for one variant."""
    out: set[Hashable] = set()
    for (system, code), span in pairs:
        start, end = trim_span(text, span) if trim else span
        if variant == "exact_span":
            out.add((start, end, system, code))
        elif variant == "position_independent_span":
            out.add((text[start:end].lower(), system, code))
        elif variant == "exact_token":
            out.update((s, e, system, code) for s, e, _ in evidence_tokens(text, (start, end)))
        elif variant == "position_independent_token":
            out.update((word, system, code) for _, _, word in evidence_tokens(text, (start, end)))
        else:
            raise ValueError(f"unknown evidence variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return out


def evidence_counts(
    records: Sequence[NoteRecord],
    predictions: Sequence[NotePrediction],
    labels: set[Label] | None = None,
    trim: bool = True,
) -> dict[str, EvidenceCounts]:
    """TP/FP/FN of each variant, summed over notes. `labels` keeps only those (system, code) labels
    on both sides (e.g. the model's label space, so gold evidence for codes it cannot predict does
    not count as missed)."""
    aligned = align_predictions(records, predictions)
    totals = {variant: EvidenceCounts() for variant in VARIANTS}
    for record, prediction in zip(records, aligned):
        gold = [((c.system, c.code), s) for c in record.codes for s in c.evidence]
        pred = [((c.system, c.code), s) for c in prediction.codes for s in c.evidence]
        for (system, code), (start, end) in pred:
            if not 0 <= start <= end <= len(record.text):
                raise ValueError(
                    f"prediction for note {record.id}: evidence span [{start}, {end}) of {system} {code} "
                    f"is outside the text (length {len(record.text)})"
                )
        if labels is not None:
            gold = [item for item in gold if item[0] in labels]
            pred = [item for item in pred if item[0] in labels]
        for variant in VARIANTS:
            totals[variant] += EvidenceCounts.of_sets(
                _items(record.text, gold, variant, trim), _items(record.text, pred, variant, trim)
            )
    return totals


def evidence_metrics(
    records: Sequence[NoteRecord],
    predictions: Sequence[NotePrediction],
    labels: set[Label] | None = None,
    trim: bool = True,
) -> dict[str, float]:
    """Precision, recall and F1 of the four MDACE variants, e.g. `evidence_exact_span_f1`."""
    out: dict[str, float] = {}
    for variant, c in evidence_counts(records, predictions, labels=labels, trim=trim).items():
        p, r, f = prf(c.tp, c.fp, c.fn)
        out[f"evidence_{variant}_precision"], out[f"evidence_{variant}_recall"], out[f"evidence_{variant}_f1"] = p, r, f
    return out


# ---------------------------------------------------------------- IOB2 tag sequences
_IOB2_TAG = re.compile(r"^(O|[BI]-.+)$")


def seqeval_span_f1(gold_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> float:
    """Micro span F1 over IOB2 tag sequences, strict mode (seqeval, not `evaluate.load`, which
    needs the hub). Strict: a span counts only with the right type and exact boundaries, and an
    `I-` tag that does not continue a span of its type starts no span. 0.0 when there are no spans.
    """
    if len(gold_tags) != len(pred_tags):
        raise ValueError(f"{len(gold_tags)} gold tag sequences but {len(pred_tags)} predicted ones")
    for i, (gold, pred) in enumerate(zip(gold_tags, pred_tags)):
        if len(gold) != len(pred):
            raise ValueError(f"sequence {i}: {len(gold)} gold tags but {len(pred)} predicted tags")
        for side, seq in (("gold", gold), ("predicted", pred)):
            for j, tag in enumerate(seq):
                if not isinstance(tag, str) or not _IOB2_TAG.match(tag):
                    raise ValueError(
                        f"sequence {i}, position {j}: {side} tag {tag!r} is not IOB2 (O, B-TYPE or I-TYPE)"
                    )
    return float(
        seqeval_f1_score(
            [list(s) for s in gold_tags], [list(s) for s in pred_tags], mode="strict", scheme=IOB2, zero_division=0
        )
    )
