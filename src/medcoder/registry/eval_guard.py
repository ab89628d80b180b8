"""What an evaluation set must be before promotion trusts a number computed on it.

Gates compare numbers; numbers computed on the wrong set promote the wrong model. Two ways that
happened (issue "trust boundaries"): a set with its gold codes stripped scores every model 0 (or
undefined) so every relative gate passes, and a set made of the challenger's own training notes
scores it far above a champion that never saw them. So, before any model is scored:

1. `check_gold`: the set must hold at least `gates.min_labelled_notes` notes with a gold code and
   `gates.min_gold_codes` gold codes in all (E/M levels not counted: they are scored apart), and,
   when the distractor gate is on and there is a champion to compare with, at least one distractor
   mention (negated, family...), without which the distractor rate is undefined;
2. `check_overlap`, for the challenger and the champion: no note of the set may be one the model
   learned from or was tuned on (its run's `train` and `val` splits), by note id or by text
   fingerprint (`medcoder.data.schema.text_fingerprint`, which survives re-indenting, re-casing
   and renaming). The run's `dataset/fingerprints.json` artifact (logged at training time by
   `tracking.log_dataset_fingerprints`) lists them. A challenger whose run logged none cannot be
   checked and is refused; a champion without them (registered before fingerprints existed) is
   checked by whole-split digest only, which is recorded: an overlap there could only favour the
   champion, never promote a challenger.
A failed check raises `EvalSetRefused` with one sentence (counts and note ids, never text), and
nothing is scored or recorded. What passed is recorded on the version (`provenance`).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from medcoder.codes.em import is_visit_em
from medcoder.data.schema import NoteRecord, text_fingerprint
from medcoder.hashing import file_sha256
from medcoder.metrics.hallucination import distractor_statuses
from medcoder.registry.client import RegistryError
from medcoder.registry.gates import Gates
from medcoder.tracking import FINGERPRINTS_ARTIFACT, FINGERPRINTS_FORMAT

TRAINING_SPLITS: tuple[str, ...] = ("train", "val")  # what a model learned from or was selected on


class EvalSetRefused(RegistryError):
    """The evaluation set cannot decide a promotion; the message says why and what to use instead."""


@dataclass(frozen=True)
class GoldCounts:
    notes: int
    labelled_notes: int
    gold_codes: int
    distractor_mentions: int


def gold_counts(records: tuple[NoteRecord, ...] | list[NoteRecord]) -> GoldCounts:
    codes = [[c for c in r.codes if not is_visit_em(c.system, c.code)] for r in records]
    return GoldCounts(
        notes=len(records),
        labelled_notes=sum(bool(c) for c in codes),
        gold_codes=sum(len(c) for c in codes),
        distractor_mentions=sum(len(distractor_statuses(r)) for r in records),
    )


def check_gold(path: Path, records: tuple[NoteRecord, ...], gates: Gates, has_champion: bool) -> GoldCounts:
    """Refuse a set with too little gold to decide the gates (module docstring, 1)."""
    counts = gold_counts(records)
    if counts.gold_codes == 0:
        raise EvalSetRefused(
            f"{path}: the evaluation set has no gold codes in its {counts.notes} notes; "
            "promotion needs a labelled set (contract JSONL with codes)"
        )
    if counts.labelled_notes < gates.min_labelled_notes or counts.gold_codes < gates.min_gold_codes:
        raise EvalSetRefused(
            f"{path}: the evaluation set has {counts.labelled_notes} labelled notes and "
            f"{counts.gold_codes} gold codes; the gates need at least {gates.min_labelled_notes} and "
            f"{gates.min_gold_codes} to decide (min_labelled_notes, min_gold_codes)"
        )
    if has_champion and gates.max_distractor_fp_rate_increase is not None and counts.distractor_mentions == 0:
        raise EvalSetRefused(
            f"{path}: the evaluation set has no distractor mentions (negated, family, historical...), so the "
            "distractor gate cannot be decided; use a set with mentions or switch the gate off "
            "(max_distractor_fp_rate_increase: null)"
        )
    return counts


# ---------------------------------------------------------------- overlap with training data
def training_fingerprints(client: MlflowClient, run_id: str) -> dict[str, Any] | None:
    """The run's `dataset/fingerprints.json`, or None when it logged none."""
    with tempfile.TemporaryDirectory(prefix="medcoder-fingerprints-") as tmp:
        try:
            path = client.download_artifacts(run_id, FINGERPRINTS_ARTIFACT, tmp)
        except Exception:  # MlflowException or OSError, depending on the artifact store
            return None
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FINGERPRINTS_FORMAT:
        raise RegistryError(f"run {run_id}: {FINGERPRINTS_ARTIFACT} is not a {FINGERPRINTS_FORMAT} file")
    return data


def check_overlap(
    client: MlflowClient,
    version: ModelVersion,
    role: str,
    path: Path,
    records: tuple[NoteRecord, ...],
    records_sha256: str,
) -> dict[str, Any]:
    """Refuse a set that shares notes with `version`'s training data (module docstring, 2); returns
    what was checked, for the provenance record."""
    who = f"the {role} ({version.name} v{version.version}, run {version.run_id})"
    fingerprints = training_fingerprints(client, version.run_id) if version.run_id else None
    if fingerprints is None:
        if role == "challenger":
            raise EvalSetRefused(
                f"{path}: cannot check the evaluation set against the training notes of {who}: its run "
                f"logged no {FINGERPRINTS_ARTIFACT}; train it again with this medcoder"
            )
        same_split = [s for s in TRAINING_SPLITS if version.tags.get(f"dataset.{s}.sha256") == records_sha256]
        if same_split:
            raise EvalSetRefused(
                f"{path}: the evaluation set is the {same_split[0]} split of {who}; use held-out notes"
            )
        return {
            "version": str(version.version),
            "run_id": version.run_id,
            "method": "whole-split digests (no note fingerprints)",
        }
    splits = {s: fingerprints["splits"].get(s, {"ids": [], "text_sha256": []}) for s in TRAINING_SPLITS}
    ids = {i for s in splits.values() for i in s["ids"]}
    texts = {h for s in splits.values() for h in s["text_sha256"]}
    salt = fingerprints["salt"]
    same_id = [r.id for r in records if r.id in ids]
    same_text = [r.id for r in records if text_fingerprint(r.text, salt) in texts]
    if same_id or same_text:
        shown = ", ".join(sorted(set(same_id) | set(same_text))[:5])
        raise EvalSetRefused(
            f"{path}: {len(set(same_id) | set(same_text))} of the evaluation set's {len(records)} notes are "
            f"training notes of {who} ({len(same_id)} by note id, {len(same_text)} by text; e.g. {shown}); "
            "a model scored on notes it "
            "learned from looks better than it is: use held-out notes"
        )
    return {
        "version": str(version.version),
        "run_id": version.run_id,
        "method": "note ids and text fingerprints",
        "training_notes": sum(len(s["ids"]) for s in splits.values()),
        "overlapping_notes": 0,
    }


def provenance(path: Path, records_sha256: str, counts: GoldCounts, overlap: dict[str, dict[str, Any]]) -> str:
    """The evaluation set's provenance as the JSON a version tag records (no note text)."""
    return json.dumps(
        {
            "file": path.name,
            "file_sha256": file_sha256(path),
            "records_sha256": records_sha256,
            "notes": counts.notes,
            "labelled_notes": counts.labelled_notes,
            "gold_codes": counts.gold_codes,
            "distractor_mentions": counts.distractor_mentions,
            "training_overlap": overlap,
        },
        sort_keys=True,
    )
