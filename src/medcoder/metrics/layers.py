"""What the layers after the model's scores removed and added, counted against the gold codes.

Between the scores and what ships, the context check (grounding.evidence: negated, family, historical,
hypothetical, uncertain mentions), the evidence verifier and the guideline rules each drop or change
codes, and each records what it did in the prediction (`context_blocked`, `verifier_rejected`,
`RuleEvent`s). Counting those against the gold says how often each layer was right: a dropped code
that was gold is a true positive the layer cost, an added code that is gold one it won. On data
annotated by another convention than the US Official Guidelines (CodiEsp codes the symptoms of an
established diagnosis and past conditions too) these counts show which layer disagrees with the gold,
and by how much, instead of one unexplained gap between the scores and what ships.

Keys (no split prefix, like every metric):
- `rules/<rule>/removed`, `removed_gold`, `added`, `added_gold`, `net_gold` (added_gold minus
  removed_gold: the change in true positives the rule made); a rule that never fired has no keys;
- `grounding/context_blocked`, `grounding/context_blocked_gold`, `grounding/verifier_rejected`,
  `grounding/verifier_rejected_gold`: codes above the threshold the grounding dropped, and how many
  of them were gold; `grounding/context_blocked_gold/<status>`: those gold codes by the status that
  blocked them (negated, family, historical, hypothetical, uncertain, resolved; a status with no gold
  code blocked has no key).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.metrics._common import align_predictions

RULE_COUNTS = ("removed", "removed_gold", "added", "added_gold")


def _gold(record: NoteRecord) -> set[tuple[str, str]]:
    return {(c.system, c.code) for c in record.codes}


def rule_effects(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> dict[str, float]:
    """Per rule that fired on the split: codes it removed and added, and how many of each were gold."""
    counts: Counter[tuple[str, str]] = Counter()
    for record, prediction in zip(records, align_predictions(records, predictions), strict=True):
        gold = _gold(record)
        for event in prediction.rules:
            for kind, labels in (("removed", event.removed), ("added", event.added)):
                counts[event.rule, kind] += len(labels)
                counts[event.rule, f"{kind}_gold"] += sum(label in gold for label in labels)
    out: dict[str, float] = {}
    for rule in sorted({rule for rule, _ in counts}):
        out.update({f"rules/{rule}/{kind}": float(counts[rule, kind]) for kind in RULE_COUNTS})
        out[f"rules/{rule}/net_gold"] = float(counts[rule, "added_gold"] - counts[rule, "removed_gold"])
    return out


def grounding_effects(records: Sequence[NoteRecord], predictions: Sequence[NotePrediction]) -> dict[str, float]:
    """Codes above the threshold that the context check blocked or the verifier rejected, and the gold among them."""
    counts: Counter[str] = Counter()
    for record, prediction in zip(records, align_predictions(records, predictions), strict=True):
        gold = _gold(record)
        for kind, labels in (("context_blocked", prediction.context_blocked),
                             ("verifier_rejected", prediction.verifier_rejected)):  # fmt: skip
            counts[kind] += len(labels)
            counts[f"{kind}_gold"] += sum(label in gold for label in labels)
        for system, code, status in prediction.context_blocked_status:
            counts[f"context_blocked_gold/{status}"] += (system, code) in gold
    kinds = ("context_blocked", "context_blocked_gold", "verifier_rejected", "verifier_rejected_gold")
    by_status = sorted(k for k in counts if k.startswith("context_blocked_gold/"))
    return {f"grounding/{kind}": float(counts[kind]) for kind in (*kinds, *by_status)}
