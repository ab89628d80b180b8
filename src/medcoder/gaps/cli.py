"""`medcoder care-gaps --input notes.jsonl --out gaps.jsonl [--predictions preds.jsonl] [--queries]`.

One output line per gap: the note, the rule and its source, the expected diagnosis family, the evidence
(offsets, value, date and the quoted words: the output, like a prediction line, is where evidence text
belongs) and, with `--queries`, the drafted physician query. What is printed holds counts only.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from medcoder.gaps.notes import CareNote, read_care_notes, read_predicted_codes, with_codes, write_jsonl
from medcoder.gaps.queries import draft_query
from medcoder.gaps.rules import Gap, detect_gaps


def gap_line(gap: Gap, notes: dict[str, CareNote], queries: bool) -> dict:
    """A gap as one JSON object."""
    texts = {note_id: note.text for note_id, note in notes.items()}
    line = {
        "note_id": gap.note_id,
        "patient_id": gap.patient_id,
        "rule": gap.rule.id,
        "criterion": gap.rule.criterion,
        "source": gap.rule.source,
        "diagnosis": gap.rule.family.label,
        "evidence": [{**asdict(m), "text": texts[m.note_id][m.start : m.end]} for m in gap.evidence],
        "documented_elsewhere": asdict(gap.documented_elsewhere) if gap.documented_elsewhere else None,
    }
    if queries:
        line["query"] = draft_query(gap, texts, {i: n.encounter_date for i, n in notes.items()}).to_dict()
    return line


def cmd_care_gaps(args: argparse.Namespace) -> int:
    notes = read_care_notes(Path(args.input))
    if args.predictions:
        notes = with_codes(notes, read_predicted_codes(Path(args.predictions)))
    by_id = {note.id: note for note in notes}
    gaps = detect_gaps(notes)
    count = write_jsonl((gap_line(gap, by_id, args.queries) for gap in gaps), Path(args.out))
    per_rule = Counter(gap.rule.id for gap in gaps)
    print(f"{count} care gap(s) in {len(notes)} note(s) -> {args.out}")
    for rule, n in sorted(per_rule.items()):
        print(f"  {rule}: {n}")
    return 0
