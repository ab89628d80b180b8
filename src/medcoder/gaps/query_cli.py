"""`medcoder query send` and `medcoder query answer`: a drafted physician query through the audit trail.

`medcoder care-gaps --queries` drafts the queries (one per gap line, under "query"); a CDI specialist sends one
(`send`: a `query` entry), the provider's choice is recorded (`answer`: an `answer` entry) and, when it names a
diagnosis, appended to the coder-correction file the next denial-feedback retraining reads. The audit trail
holds offsets and hashes only (gaps.trail); what is printed holds ids and counts.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path

from medcoder.audit.store import AuditLog
from medcoder.data.schema import RecordError, iter_jsonl
from medcoder.gaps.notes import read_care_notes
from medcoder.gaps.queries import Query
from medcoder.gaps.trail import record_answer, record_query


def read_query(gaps: Path, query_id: str) -> Query:
    """The drafted query `query_id` of a `medcoder care-gaps --queries` output file."""
    for line, obj in iter_jsonl(gaps):
        if isinstance(obj, RecordError):
            raise obj
        drafted = obj.get("query") if isinstance(obj, dict) else None
        if not isinstance(drafted, dict) or drafted.get("query_id") != query_id:
            continue
        try:
            return Query.from_dict(drafted)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{gaps}:{line}: field 'query': not a drafted query ({type(exc).__name__})") from None
    raise ValueError(f"{gaps}: no drafted query with id {query_id!r} (run medcoder care-gaps --queries)")


def _note_text(notes: Path, note_id: str) -> str:
    for note in read_care_notes(notes):
        if note.id == note_id:
            return note.text
    raise ValueError(f"{notes}: no note with id {note_id!r}")


def cmd_query_send(args: argparse.Namespace) -> int:
    query = read_query(Path(args.gaps), args.query_id)
    sender = args.user or os.environ.get("MEDCODER_USER") or getpass.getuser()
    record_query(AuditLog(args.db), query, _note_text(Path(args.notes), query.note_id), actor=sender)
    print(f"query {query.query_id} of note {query.note_id} sent ({len(query.options)} options)")
    return 0


def cmd_query_answer(args: argparse.Namespace) -> int:
    query = read_query(Path(args.gaps), args.query_id)
    text = _note_text(Path(args.notes), query.note_id)
    correction = record_answer(AuditLog(args.db), query, text, args.option, args.provider, args.model_version,
                               Path(args.corrections), args.free_text)  # fmt: skip
    added = f"correction record (add {correction['code']}) -> {args.corrections}" if correction else "no code to add"
    print(f"query {query.query_id} of note {query.note_id} answered: {added}")
    return 0
