"""The stress-note loader and scorer on hand-built `medcoder predict` outputs (no trained model needed)."""

from __future__ import annotations

import copy
import json
import math

import pandas as pd
import pytest
from behaviour_support import contract_line, error_line, write_cases

from medcoder.data.schema import RecordError
from medcoder.evaluation.stress import DEFAULT_STRESS, load_stress, score_stress

HTN = {
    "id": "s-htn",
    "setting": "outpatient",
    "age": 58,
    "sex": "M",
    "style": "one_line",
    "text": "Assessment: essential hypertension, stable. Continue lisinopril.",
    "supported": ["I10"],
    "may_code": [],
    "out_of_label_space": [],
}
COLD = {
    "id": "s-cold",
    "setting": "emergency",
    "age": 38,
    "sex": "F",
    "style": "ed",
    "text": "ED: cough and congestion 5 days. Mother had breast cancer. Dx: common cold.",
    "supported": ["J00"],
    "may_code": ["Z80.3"],
    "out_of_label_space": ["J00"],
}
CLEAN = {
    "id": "s-clean",
    "setting": "inpatient",
    "age": 61,
    "sex": "M",
    "style": "soap",
    "text": "S: denies chest pain\nO: lungs clear\nA: no acute issues",
    "supported": [],
    "may_code": [],
    "out_of_label_space": [],
}
COMBO = {
    "id": "s-combo",
    "setting": "outpatient",
    "age": 68,
    "sex": "M",
    "style": "typos",
    "text": "ckd stg 4, htn, on amlodipne",
    "supported": ["I12.9", "N18.4"],
    "may_code": [],
    "out_of_label_space": [],
}


@pytest.fixture()
def notes(tmp_path):
    return {n.id: n for n in load_stress(write_cases([HTN, COLD, CLEAN, COMBO], tmp_path / "stress.jsonl"))}


def span(note, word: str) -> tuple[int, int]:
    start = note.text.index(word)
    return (start, start + len(word))


def line(note, codes, *, scores=None, **routing):
    """A contract line emitting `codes` (code -> word of the note it points at), optionally with scores."""
    out = contract_line(note, {code: [span(note, word)] for code, word in codes.items()}, **routing)
    for entry in out["codes"]:
        entry["score"] = (scores or {}).get(entry["code"], entry["score"])
    return out


def perfect(notes):
    return {
        "s-htn": line(notes["s-htn"], {"I10": "essential hypertension"}),
        "s-cold": line(notes["s-cold"], {}),  # J00 is outside the label space: a model cannot emit it
        "s-clean": line(notes["s-clean"], {}),
        "s-combo": line(notes["s-combo"], {"I12.9": "htn", "N18.4": "ckd stg 4"}),
    }


def row(report, value: str, field: str = "style") -> pd.Series:
    return report.by(field).set_index(field).loc[value]


# ---------------------------------------------------------------- scoring
def test_perfect_output_has_no_unsupported_codes_and_full_label_space_recall(notes):
    report = score_stress(list(notes.values()), list(perfect(notes).values()))
    overall = row(report, "all")
    assert overall["codes emitted"] == 3 and overall["unsupported rate"] == 0.0
    assert (
        overall["must-code recall (label space)"] == 1.0 and overall["must-code recall accepted (label space)"] == 1.0
    )
    assert overall["must-code recall (all supported)"] == 0.75  # J00 is supported but outside the label space
    assert report.failures().empty and report.unsupported_codes().empty
    assert "None." in report.to_markdown()


def test_a_confident_grounded_hallucination_is_accepted_and_counted(notes):
    """The issue's example: I10 plus I50.23 at 0.9995, grounded on the assessment."""
    htn = notes["s-htn"]
    lines = perfect(notes)
    lines["s-htn"] = line(htn, {"I10": "essential hypertension", "I50.23": "Assessment"}, scores={"I50.23": 0.9995})
    report = score_stress(list(notes.values()), list(lines.values()))
    one_line = row(report, "one_line")
    assert one_line["unsupported rate"] == 0.5 and one_line["unsupported accepted rate"] == 0.5
    assert one_line["unsupported routed rate"] == 0.0
    assert one_line["unsupported grounded > 0.9"] == 1
    assert row(report, "all")["unsupported accepted rate"] == 0.25  # 1 of 4 emitted codes overall
    assert row(report, "ed")["codes emitted"] == 0 and math.isnan(row(report, "ed")["unsupported rate"])
    failures = report.failures().set_index("note")
    assert failures.loc["s-htn", "unsupported accepted"] == "I50.23" and list(failures.index) == ["s-htn"]
    assert report.unsupported_codes().to_dict("records") == [
        {"code": "I50.23", "notes": 1, "accepted": 1, "max score": 0.9995}
    ]


def test_routed_and_ungrounded_hallucinations_are_split_from_accepted_ones(notes):
    clean, cold = notes["s-clean"], notes["s-cold"]
    lines = perfect(notes)
    lines["s-clean"] = line(clean, {"R07.9": "chest pain"}, low_confidence=["R07.9"])
    lines["s-cold"] = line(cold, {"J06.9": "congestion"}, ungrounded=["J06.9"], scores={"J06.9": 0.97})
    report = score_stress(list(notes.values()), list(lines.values()))
    overall = row(report, "all")
    assert overall["unsupported rate"] == 0.4 and overall["unsupported routed rate"] == 0.4
    assert overall["unsupported accepted rate"] == 0.0
    assert overall["unsupported grounded > 0.9"] == 0  # 0.97 but not grounded
    assert row(report, "inpatient", "setting")["unsupported routed rate"] == 1.0


def test_acceptable_codes_are_neither_unsupported_nor_required(notes):
    cold = notes["s-cold"]
    lines = perfect(notes)
    lines["s-cold"] = line(cold, {"Z80.3": "breast cancer"})
    report = score_stress(list(notes.values()), list(lines.values()))
    assert row(report, "all")["unsupported rate"] == 0.0 and row(report, "all")["codes emitted"] == 4


def test_recall_counts_routed_codes_and_the_accepted_variant_does_not(notes):
    combo = notes["s-combo"]
    lines = perfect(notes)
    lines["s-combo"] = line(combo, {"I12.9": "htn", "N18.4": "ckd stg 4"}, low_confidence=["N18.4"])
    report = score_stress(list(notes.values()), list(lines.values()))
    typos = row(report, "typos")
    assert typos["must-code recall (label space)"] == 1.0 and typos["must-code recall accepted (label space)"] == 0.5


def test_missed_codes_and_the_less_specific_code_instead(notes):
    """I10 where hypertension with CKD needs I12.9 is both a miss and an unsupported code."""
    combo = notes["s-combo"]
    lines = perfect(notes)
    lines["s-combo"] = line(combo, {"I10": "htn", "N18.4": "ckd stg 4"})
    report = score_stress(list(notes.values()), list(lines.values()))
    assert row(report, "typos")["must-code recall (label space)"] == 0.5
    failure = report.failures().set_index("note").loc["s-combo"]
    assert failure["missed (label space)"] == "I12.9" and failure["unsupported accepted"] == "I10"


def test_a_given_label_space_replaces_the_annotation(notes):
    report = score_stress(list(notes.values()), list(perfect(notes).values()), label_space={"I10", "J00"})
    overall = row(report, "all")
    assert overall["must-code recall (label space)"] == 0.5  # I10 found, J00 missed; I12.9/N18.4 not knowable
    assert "given, 2 ICD-10-CM codes" in report.to_markdown()


def test_error_entries_count_as_emitting_nothing(notes):
    lines = perfect(notes)
    lines["s-htn"] = error_line(notes["s-htn"])
    report = score_stress(list(notes.values()), list(lines.values()))
    assert row(report, "all")["error entries"] == 1
    assert row(report, "one_line")["must-code recall (label space)"] == 0.0
    assert report.failures().set_index("note").loc["s-htn", "error"] == "model_error"


def test_output_must_cover_exactly_the_notes(notes):
    lines = list(perfect(notes).values())
    with pytest.raises(ValueError, match="no prediction for 1 note.*s-clean"):
        score_stress(list(notes.values()), [x for x in lines if x["id"] != "s-clean"])
    with pytest.raises(ValueError, match="not a stress note"):
        score_stress(list(notes.values()), [*lines, {**lines[0], "id": "other"}])
    with pytest.raises(ValueError, match="two predictions for note s-htn"):
        score_stress(list(notes.values()), [*lines, lines[0]])


def test_json_lines_and_the_report_never_carry_note_text(notes):
    report = score_stress(list(notes.values()), [json.dumps(x) for x in perfect(notes).values()])
    text = report.to_markdown()
    assert "hypertension" not in text and "congestion" not in text


def test_emergency_visits_are_sent_as_outpatient(notes):
    assert notes["s-cold"].input_record() == {
        "id": "s-cold",
        "text": COLD["text"],
        "setting": "outpatient",
        "age": 38,
        "sex": "F",
    }


def test_perfect_output_on_the_shipped_notes():
    shipped = load_stress(DEFAULT_STRESS)
    lines = [
        contract_line(n, {c: [(0, min(len(n.text), 5))] for c in n.supported if c not in n.out_of_label_space})
        for n in shipped
    ]
    report = score_stress(shipped, lines)
    overall = row(report, "all")
    assert overall["notes"] == len(shipped) and overall["unsupported rate"] == 0.0
    assert overall["must-code recall (label space)"] == 1.0
    assert 0.5 < overall["must-code recall (all supported)"] < 1.0


# ---------------------------------------------------------------- malformed notes
def mutate(field: str, value):
    note = copy.deepcopy(HTN)
    if value is KeyError:
        del note[field]
    else:
        note[field] = value
    return note


BAD_NOTES = [
    ("missing style", mutate("style", KeyError), "style"),
    ("unknown style", mutate("style", "dictation"), "style"),
    ("unknown setting", mutate("setting", "ED"), "setting"),
    ("unknown field", {**HTN, "notes": "x"}, "notes"),
    ("age not an integer", mutate("age", "58"), "age"),
    ("bad sex", mutate("sex", "male"), "sex"),
    ("empty text", mutate("text", " "), "text"),
    ("supported not a list", mutate("supported", "I10"), "supported"),
    ("code not canonical", mutate("supported", ["i10"]), "supported[0]"),
    ("code not billable", mutate("may_code", ["E11"]), "may_code[0]"),
    ("code twice", mutate("supported", ["I10", "I10"]), "supported[1]"),
    ("may_code also supported", mutate("may_code", ["I10"]), "may_code[0]"),
    ("outside code not supported", mutate("out_of_label_space", ["J00"]), "out_of_label_space[0]"),
]


@pytest.mark.parametrize("label,note,field", BAD_NOTES, ids=[b[0] for b in BAD_NOTES])
def test_malformed_note_is_rejected_with_line_and_field(tmp_path, label, note, field):
    path = write_cases([{**HTN, "id": "s-000"}, note], tmp_path / "stress.jsonl")
    with pytest.raises(RecordError) as info:
        load_stress(path)
    err = info.value
    assert (err.line, err.field) == (2, field), str(err)
    assert f"{path}:2" in str(err) and "hypertension" not in str(err)


def test_duplicate_ids_bad_json_and_empty_files_are_located(tmp_path):
    with pytest.raises(RecordError, match="duplicate id") as info:
        load_stress(write_cases([HTN, HTN], tmp_path / "dup.jsonl"))
    assert info.value.line == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HTN) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError) as info:
        load_stress(bad)
    assert (info.value.line, info.value.field) == (2, "<line>")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(RecordError, match="no notes"):
        load_stress(empty)
