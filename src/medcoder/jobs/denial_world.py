"""The world the denial loop runs in (issue 13): a practice's notes over a year, coded by the champion,
billed, adjudicated by the simulated payers month by month, partly reviewed by a coder, appealed.

`simulate_world` writes, under one folder:
- `world/notes.jsonl`: the practice's notes with their gold codes (new notes: a seed the champion was not
  trained on; ids prefixed so they never collide with the training corpus's);
- `world/champion.jsonl`: the champion's codes per note;
- `x12/<month>-<payer>.835`: the payers' remittance advice, written through x12sdk and read back through
  the same ingest path as a user's files (`claims.remittance.read_remittance`);
- `corrections.jsonl`, `appeals.jsonl`: the coder's corrections and the appeal outcomes of the feedback
  months, read back through their validating readers;
- `feedback/{train,val,test}.jsonl`: the retraining corpus (`feedback_corpus`);
- `world/summary.json`: what happened, for the report.
The first `feedback_months` months are what the retraining learns from; the months after them are the
held-out period on which champion and challenger are compared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medcoder.claims.payer import PayerRules
from medcoder.claims.remittance import ClaimRemittance, read_remittance
from medcoder.claims.remittance_writer import write_remittance
from medcoder.claims.simulate import (
    adjudicate_claims,
    claim_for,
    month_of,
)
from medcoder.claims.submission import Claim
from medcoder.codes.em import is_office_em
from medcoder.data.labels import Label, LabelSpace
from medcoder.data.schema import CodeAssignment, NoteRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CodedNote:
    """A note's codes as a coder emitted them, with the evidence spans each quoted and the coder's score for
    each (its E/M level's too): the claim check reads the scores, known before the claim goes out."""

    note_id: str
    codes: tuple[CodeAssignment, ...]
    scores: Mapping[str, float] = field(default_factory=dict)

    def labels(self) -> list[Label]:
        return [(c.system, c.code) for c in self.codes]


def coded_notes(coder: Any, records: Sequence[NoteRecord]) -> dict[str, CodedNote]:
    """Each note coded by an exported coder (`export.artifact.ExportedCoder`): its codes and E/M level."""
    predictions, _ = coder.predict_with_scores(list(records))
    out = {}
    for p in predictions:
        codes = [CodeAssignment(c.system, c.code, tuple(c.evidence)) for c in p.codes]
        scores = {c.code: round(float(c.score), 4) for c in p.codes}
        if p.em_code:
            codes.append(CodeAssignment("CPT", p.em_code, tuple(p.em_evidence)))
            if p.em_score is not None:
                scores[p.em_code] = round(float(p.em_score), 4)
        out[p.id] = CodedNote(p.id, tuple(codes), scores)
    return out


def write_coded(coded: Mapping[str, CodedNote], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for note in coded.values():
            codes = [c.to_dict() for c in note.codes]
            f.write(json.dumps({"id": note.note_id, "codes": codes, "scores": dict(note.scores)}) + "\n")


def read_coded(path: Path) -> dict[str, CodedNote]:
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        obj = json.loads(line)
        codes = tuple(
            CodeAssignment(c["system"], c["code"], tuple(tuple(s) for s in c["evidence"])) for c in obj["codes"]
        )
        out[obj["id"]] = CodedNote(obj["id"], codes, obj.get("scores", {}))
    return out


def world_notes(generate: Any, n_notes: int, seed: int) -> list[NoteRecord]:
    """New notes for the practice (`generate(n, seed)`: the corpus generator), ids prefixed `w<seed>-`, over
    one calendar year: the generator's year runs October to September, and its October-December notes are
    dated a year later, so that both the feedback months and the held-out months (the last six by default)
    hold a flu season (a seasonal service whose coding errors the loop should learn from and be tested on),
    each note keeping its month."""
    records = generate(n_notes, seed)
    first = min(int(r.encounter_date[:4]) for r in records if r.encounter_date)
    return [replace(r, id=f"w{seed}-{r.id}", encounter_date=_within_year(r.encounter_date, first)) for r in records]


def _within_year(date: str | None, first_year: int) -> str | None:
    """ "2025-11-03" -> "2026-11-03" when the generator's year began in 2025; later dates unchanged."""
    if not date or int(date[:4]) != first_year:
        return date
    return f"{first_year + 1}{date[4:]}"


def split_months(records: Sequence[NoteRecord], feedback_months: int) -> tuple[list[str], list[str]]:
    """(feedback months, held-out months), in time order."""
    months = sorted({month_of(r) for r in records})
    if len(months) <= feedback_months:
        raise ValueError(f"the notes span {len(months)} months: need more than feedback_months={feedback_months}")
    return months[:feedback_months], months[feedback_months:]


def bill_and_adjudicate(
    records: Sequence[NoteRecord], coded: Mapping[str, CodedNote], payers: Mapping[str, PayerRules], seed: int,
    x12_dir: Path | None = None, review: Callable[[Claim, NoteRecord], Claim | None] | None = None,
) -> tuple[list[Claim], list[ClaimRemittance]]:  # fmt: skip
    """Claims for the coded notes, adjudicated by their payers; with `x12_dir`, the remittances go through
    real 835 files (one per month and payer) and are read back, so the loop learns from what it ingests.
    `review`: what happens to a built claim before it goes out (`simulate.reviewed_before_submission`: the
    routing policy and the coder it routes to); None sends every claim as built."""
    claims = [c for r in records if (c := claim_for(r, coded[r.id].labels())) is not None]
    if review is not None:
        by_id = {r.id: r for r in records}
        claims = [sent for c in claims if (sent := review(c, by_id[c.encounter_id])) is not None]
    remittances = adjudicate_claims(records, claims, payers, seed)
    if x12_dir is None:
        return claims, remittances
    x12_dir.mkdir(parents=True, exist_ok=True)
    month = {r.id: month_of(r) for r in records}
    groups: dict[tuple[str, str], list[ClaimRemittance]] = {}
    for claim, remittance in zip(claims, remittances):
        groups.setdefault((month[claim.encounter_id], claim.payer), []).append(remittance)
    paths = [write_remittance(group, x12_dir / f"{m}-{payer}.835", payer_name=payer)
             for (m, payer), group in sorted(groups.items())]  # fmt: skip
    read_back = read_remittance(paths).claims
    if len(read_back) != len(remittances):
        raise RuntimeError(f"wrote {len(remittances)} claim payments to 835s but read back {len(read_back)}")
    return claims, read_back


def feedback_labels(
    note: CodedNote, corrections: Sequence[Any], upheld_negatives: set[str], label_space: LabelSpace
) -> tuple[CodeAssignment, ...]:
    """A feedback note's training labels: the codes the coder emitted, with a reviewing coder's corrections
    applied (deleted codes out, added codes in with their evidence offsets), less the codes a payer's upheld
    coding denial showed unsupported; only labels of the champion's label space (and office E/M levels, the
    E/M head's), so the challenger keeps the champion's outputs."""
    codes = {(c.system, c.code): c for c in note.codes}
    for corr in corrections:
        if corr.action in ("delete", "replace"):
            codes.pop((corr.system, corr.replaced_code if corr.action == "replace" else corr.code), None)
        if corr.action in ("add", "replace"):
            evidence = ((corr.evidence.start, corr.evidence.end),) if corr.evidence else ()
            codes[(corr.system, corr.code)] = CodeAssignment(corr.system, corr.code, evidence)
    kept = [c for key, c in codes.items() if key[1] not in upheld_negatives]
    return tuple(c for c in kept if (c.system, c.code) in label_space or is_office_em(c.system, c.code))


def replay_sample(records: Sequence[NoteRecord], n_notes: int | None, seed: int) -> list[NoteRecord]:
    """The champion's training notes replayed beside the feedback: all of them (`n_notes` None), or `n_notes`
    of them chosen so that every label of the training set is still there (the retrained model keeps the
    champion's label space: one note per label, rarest labels first, then the rest at random). Fewer replayed
    notes make the fine-tune faster and the feedback a larger share of what it reads."""
    import random

    if n_notes is None or n_notes >= len(records):
        return list(records)
    counts: dict[tuple[str, str], int] = {}
    for r in records:
        for c in r.codes:
            counts[(c.system, c.code)] = counts.get((c.system, c.code), 0) + 1
    chosen: dict[str, NoteRecord] = {}
    for label in sorted(counts, key=lambda lb: (counts[lb], lb)):
        if not any((c.system, c.code) == label for r in chosen.values() for c in r.codes):
            holder = next(r for r in records if any((c.system, c.code) == label for c in r.codes))
            chosen[holder.id] = holder
    rest = [r for r in records if r.id not in chosen]
    random.Random(seed).shuffle(rest)
    picked = [*chosen.values(), *rest[: max(0, n_notes - len(chosen))]]
    order = {r.id: k for k, r in enumerate(records)}
    return sorted(picked, key=lambda r: order[r.id])
