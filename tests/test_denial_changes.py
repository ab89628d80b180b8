"""The record's count of what the retraining changed: codes added and dropped judged by gold, visit levels
moved towards or away from the gold level, each note with a change counted once."""

from __future__ import annotations

from medcoder.data.schema import CodeAssignment, NoteRecord
from medcoder.jobs.denial_changes import CHANGE_ROWS, retraining_changes
from medcoder.jobs.denial_world import CodedNote


def note(note_id: str, *codes: str) -> NoteRecord:
    systems = ["CPT" if code[0].isdigit() else "ICD-10-CM" for code in codes]
    return NoteRecord(note_id, "text", tuple(CodeAssignment(s, c) for s, c in zip(systems, codes)))


def coded(note_id: str, *codes: str) -> CodedNote:
    return CodedNote(note_id, note(note_id, *codes).codes)


def test_each_change_is_judged_by_the_gold_and_a_moved_level_is_one_change():
    records = [
        note("a", "J45.909", "I10", "99213"),  # the challenger adds a right code, moves the level away from gold
        note("b", "E11.9", "99214"),  # drops a wrong code, moves a wrong level to the gold one
        note("c", "R05.9"),  # no visit level in gold: the champion's wrong one is dropped (right), a right code too
        note("d", "N39.0", "99212"),  # nothing changes
        note("e", "K21.9", "99215"),  # one wrong level to another; adds a wrong code
    ]
    champion = {"a": coded("a", "I10", "99213"), "b": coded("b", "E11.9", "I11.0", "99213"),
                "c": coded("c", "R05.9", "99212"), "d": coded("d", "N39.0", "99212"),
                "e": coded("e", "K21.9", "99213")}  # fmt: skip
    challenger = {"a": coded("a", "I10", "J45.909", "99214"), "b": coded("b", "E11.9", "99214"),
                  "c": coded("c"), "d": coded("d", "N39.0", "99212"),
                  "e": coded("e", "K21.9", "R51.9", "99212")}  # fmt: skip
    changes = retraining_changes(records, champion, challenger)
    assert changes == {
        "codes_added_right": 1, "codes_added_wrong": 1, "codes_dropped_right": 1, "codes_dropped_wrong": 1,
        "em_moved_to_right": 2, "em_moved_from_right": 1, "em_moved_wrong_to_wrong": 1,
        "notes_changed": 4, "notes": 5,
    }  # fmt: skip
    assert [key for key, _ in CHANGE_ROWS] == [k for k in changes if k not in ("notes_changed", "notes")]
    assert retraining_changes(records, champion, champion)["notes_changed"] == 0
