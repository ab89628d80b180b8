"""Physician queries in the audit trail, and an answered query as a coder-correction record.

A `query` entry records that a drafted query was sent (who sent it, for which note and rule, its options, where
its indicators are and the SHA-256 of what they and the query's text say); an `answer` entry records the
provider's choice. Neither holds note text: the query's text quotes the note, so only its hash is kept, and a
free-text "Other" answer is kept as a hash too (docs/AUDIT.md). An answer that names a diagnosis becomes a
correction record in the denial-feedback contract (`claims.corrections.Correction`, action "add"), which the
next retraining reads; "Clinically undetermined", "Other", "No" and "not clinically significant" add no code,
so they make no record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medcoder.audit.entry import AuditEntry, EvidenceRef, text_sha256
from medcoder.audit.store import AuditLog
from medcoder.claims.corrections import Correction
from medcoder.codes.formats import ICD10CM
from medcoder.gaps.queries import Option, Query


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _queries_of(log: AuditLog, note_id: str) -> dict[str, list[dict[str, Any]]]:
    """query id -> its `query` and `answer` entries for the note, in chain order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for row in log.rows(note_id=note_id, actions=("query", "answer")):
        out.setdefault(json.loads(row["query"])["query_id"], []).append(row)
    return out


def record_query(log: AuditLog, query: Query, note_text: str, actor: str, role: str = "coder") -> dict[str, Any]:
    """Append the `query` entry of a query sent to the provider; a query is sent once."""
    if query.query_id in _queries_of(log, query.note_id):
        raise ValueError(f"query {query.query_id} of note {query.note_id} was already sent")
    identity = {
        "query_id": query.query_id,
        "rule": query.rule,
        "format": query.format,
        "options": [o.label for o in query.options],
        "text_sha256": text_sha256(query.text),
        "indicators": [
            {"note_id": i.note_id, "start": i.start, "end": i.end, "sha256": text_sha256(i.quote)}
            for i in query.indicators
        ],  # fmt: skip
    }
    here = tuple(
        EvidenceRef(i.start, i.end, text_sha256(i.quote)) for i in query.indicators if i.note_id == query.note_id
    )
    entry = AuditEntry(actor=actor, role=role, action="query", encounter_id=query.note_id, note_id=query.note_id,
                       note_sha256=text_sha256(note_text), code_system=ICD10CM, rules=(query.rule,), evidence=here,
                       decision="sent", query=_canonical(identity))  # fmt: skip
    return log.append(entry)[0]


def _chosen(query: Query, label: str) -> Option:
    for option in query.options:
        if option.label == label:
            return option
    raise ValueError(f"query {query.query_id}: the answer is not one of its {len(query.options)} options")


def answer_correction(query: Query, option: Option, provider: str, model_version: str) -> dict[str, Any] | None:
    """The correction record of an answer, checked against the contract: "add" the chosen option's code; None
    when the answer names no diagnosis."""
    if option.code is None:
        return None
    here = [i for i in query.indicators if i.note_id == query.note_id]
    record = {"encounter_id": query.note_id, "note_id": query.note_id, "model_version": model_version,
              "system": ICD10CM, "code": option.code, "action": "add", "coder_id": provider,
              "reason": f"physician query {query.query_id} ({query.rule}) answered",
              "timestamp": datetime.now(UTC).isoformat()}  # fmt: skip
    if here:
        record["evidence"] = {"start": here[-1].start, "end": here[-1].end}
    Correction.model_validate(record)
    return record


def record_answer(
    log: AuditLog, query: Query, note_text: str, label: str, provider: str, model_version: str,
    corrections: Path | None = None, free_text: str | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """Append the provider's `answer` entry to a sent query (once), and, when the answer names a diagnosis,
    append its correction record to `corrections`; returns the record (None: no code to add)."""
    option = _chosen(query, label)
    history = _queries_of(log, query.note_id).get(query.query_id, [])
    if not history:
        raise ValueError(f"query {query.query_id} of note {query.note_id} was never sent: record it first")
    if any(row["action"] == "answer" for row in history):
        raise ValueError(f"query {query.query_id} of note {query.note_id} is already answered")
    correction = answer_correction(query, option, provider, model_version)  # checked before anything is written
    answer = {"query_id": query.query_id, "option": option.label, "kind": option.kind}
    if free_text:
        answer["free_text_sha256"] = text_sha256(free_text)
    log.append(AuditEntry(actor=provider, role="provider", action="answer", encounter_id=query.note_id,
                          note_id=query.note_id, note_sha256=text_sha256(note_text), code_system=ICD10CM,
                          code=option.code, rules=(query.rule,), decision=option.kind, model_version=model_version,
                          query=_canonical(answer)))  # fmt: skip
    if correction is not None and corrections is not None:
        with Path(corrections).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(correction) + "\n")  # the record as checked, in the contract's own JSON
    return correction
