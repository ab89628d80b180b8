"""What the retraining changed on the held-out notes: each code the challenger added or dropped against the
champion, and each visit level it moved, judged right or wrong by the notes' gold codes.

Why: the gate's rates say whether the challenger is better; a compliance reviewer signing off a retrained
coder also needs to see how much it moved and in which direction (a challenger that adds two right codes and
drops two others has the champion's recall and is not the champion). The denial-feedback record prints it
(`medcoder.jobs.denial_report`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from medcoder.codes.em import is_visit_em
from medcoder.data.schema import NoteRecord
from medcoder.jobs.denial_world import CodedNote

# the record's rows, in order: (key, what it counts)
CHANGE_ROWS: tuple[tuple[str, str], ...] = (
    ("codes_added_right", "codes added that the gold has"),
    ("codes_added_wrong", "codes added that the gold does not have"),
    ("codes_dropped_right", "codes dropped that the gold has"),
    ("codes_dropped_wrong", "codes dropped that the gold does not have"),
    ("em_moved_to_right", "visit levels moved to the gold's (or dropped where the gold has none)"),
    ("em_moved_from_right", "visit levels moved away from the gold's"),
    ("em_moved_wrong_to_wrong", "visit levels moved, wrong before and after"),
)


def _visit_level(codes: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    return next((label for label in codes if is_visit_em(*label)), None)


def retraining_changes(
    records: Sequence[NoteRecord], champion: Mapping[str, CodedNote], challenger: Mapping[str, CodedNote]
) -> dict[str, int]:
    """Counts keyed as CHANGE_ROWS, plus "notes" (held-out notes compared) and "notes_changed" (notes whose
    codes or visit level differ). Visit levels are counted apart from the other codes: a moved level is one
    change, not a code added and another dropped."""
    counts: Counter[str] = Counter({key: 0 for key, _ in CHANGE_ROWS})
    for record in records:
        gold = {(c.system, c.code) for c in record.codes}
        before, after = champion[record.id].labels(), challenger[record.id].labels()
        old_level, new_level = _visit_level(before), _visit_level(after)
        before_codes = {label for label in before if not is_visit_em(*label)}
        after_codes = {label for label in after if not is_visit_em(*label)}
        for label in after_codes - before_codes:
            counts["codes_added_right" if label in gold else "codes_added_wrong"] += 1
        for label in before_codes - after_codes:
            counts["codes_dropped_right" if label in gold else "codes_dropped_wrong"] += 1
        if old_level != new_level:  # right: the gold's level, or none where the gold has none
            gold_level = _visit_level(sorted(gold))
            if new_level == gold_level:
                counts["em_moved_to_right"] += 1
            elif old_level == gold_level:
                counts["em_moved_from_right"] += 1
            else:
                counts["em_moved_wrong_to_wrong"] += 1
        counts["notes_changed"] += before_codes != after_codes or old_level != new_level
    counts["notes"] = len(records)
    return dict(counts)
