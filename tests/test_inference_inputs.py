"""Batch input: every bad line becomes an error entry of the right kind, the batch goes on, and no
message ever carries note text (a canary string planted in every note checks it)."""

from __future__ import annotations

import json

import pytest

from medcoder.inference.contract import validate_contract_line
from medcoder.inference.inputs import (
    ERROR_KINDS,
    InputError,
    InputNote,
    max_line_bytes,
    read_input_lines,
    validate_input,
)

CANARY = "CANARY-patient-says-7f3a9"
MAX = 200


def note(note_id: str, text: str = f"Seen for chest pain. {CANARY}", **fields) -> bytes:
    return json.dumps({"id": note_id, "text": text, **fields}).encode("utf-8")


def write_batch(tmp_path, lines: list[bytes]):
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


# One line per error kind (expected kind, expected id), with good lines between and after them.
BAD_LINES: list[tuple[bytes, str, str]] = [
    (note("e-empty", ""), "empty_text", "e-empty"),
    (note("e-blank", " \n\t  "), "empty_text", "e-blank"),
    (json.dumps({"id": "e-num", "text": 5}).encode(), "not_a_string", "e-num"),
    (json.dumps({"id": "e-notext", "txt": CANARY}).encode(), "invalid_field", "e-notext"),
    (json.dumps({"id": "e-nokey"}).encode(), "not_a_string", "e-nokey"),
    (note("e-long", CANARY * 20), "too_long", "e-long"),
    (b'{"id": "e-utf8", "text": "' + CANARY.encode() + b' \xff\xfe"}', "invalid_utf8", "line:{n}"),
    (b'{"id": "e-surrogate", "text": "' + CANARY.encode() + b' \\ud800"}', "invalid_utf8", "e-surrogate"),
    (b'{"id": "e-json", "text": "' + CANARY.encode(), "invalid_json", "line:{n}"),
    (json.dumps([CANARY]).encode(), "invalid_json", "line:{n}"),
    (json.dumps({"text": CANARY}).encode(), "missing_id", "line:{n}"),
    (json.dumps({"id": 17, "text": CANARY}).encode(), "missing_id", "line:{n}"),
    (json.dumps({"id": "  ", "text": CANARY}).encode(), "missing_id", "line:{n}"),
    (note("e-setting", setting="icu"), "invalid_field", "e-setting"),
    (note("e-age", age=-1), "invalid_field", "e-age"),
    (note("e-agebool", age=True), "invalid_field", "e-agebool"),
    (note("e-sex", sex="female"), "invalid_field", "e-sex"),
    (note("good-1"), "duplicate_id", "good-1"),
    (note("e-notnote", "\u200b" * 9 + " ?! " + CANARY[:2]), "not_clinical_text", "e-notnote"),
]


def test_every_bad_line_becomes_its_error_and_the_batch_goes_on(tmp_path):
    lines = [b"\xef\xbb\xbf" + note("good-1", setting="outpatient", age=67, sex="F")]  # BOM on line 1
    expected: list[tuple[str, str]] = [("ok", "good-1")]
    for raw, kind, key in BAD_LINES:
        lines.append(raw)
        expected.append((kind, key.format(n=len(lines))))
        lines.append(note(f"good-{len(lines) + 1}"))
        expected.append(("ok", f"good-{len(lines)}"))
    lines.append(b"   ")  # a blank line keeps its place in the output
    expected.append(("empty_line", f"line:{len(lines)}"))
    path = write_batch(tmp_path, lines)

    items = list(read_input_lines(path, max_chars=MAX))

    got = [("ok" if isinstance(i, InputNote) else i.kind, i.id) for i in items]
    assert got == expected
    assert {kind for kind, _ in expected} >= set(ERROR_KINDS) - {"model_error"}
    first = items[0]
    assert (first.text, first.setting, first.age, first.sex, first.line) == (
        f"Seen for chest pain. {CANARY}",
        "outpatient",
        67,
        "F",
        1,
    )
    for item in items:
        if isinstance(item, InputError):
            entry = item.to_dict()
            validate_contract_line(entry)
            assert CANARY not in json.dumps(entry)
            assert CANARY not in repr(item)


def test_error_messages_say_where_without_the_text():
    err = validate_input(b'{"id": "n1", "text": "ab\xffcd"}', MAX, line=7)
    assert (err.kind, err.id) == ("invalid_utf8", "line:7") and "offset 24" in err.message
    err = validate_input(note("n2", "x" * 201), MAX)
    assert err.kind == "too_long" and "201 characters" in err.message and "200" in err.message
    err = validate_input('{"id": "n3", "text": "abc', MAX, line=3)
    assert err.kind == "invalid_json" and "column" in err.message


def test_a_line_too_big_to_read_is_skipped_in_chunks_and_the_next_line_is_read(tmp_path):
    limit = max_line_bytes(MAX)
    huge = note("huge", CANARY * (limit // len(CANARY) + 10))
    path = write_batch(tmp_path, [note("a"), huge, note("b")])
    items = list(read_input_lines(path, max_chars=MAX))
    assert [(type(i).__name__, i.id) for i in items] == [
        ("InputNote", "a"),
        ("InputError", "line:2"),
        ("InputNote", "b"),
    ]
    assert items[1].kind == "too_long" and f"{len(huge) + 1} bytes" in items[1].message


def test_dict_input_and_contract_fields_are_accepted():
    record = {"id": "n1", "text": "Cough.", "patient_id": "p1", "payer": "x", "codes": [], "mentions": []}
    assert validate_input(record, MAX) == InputNote(
        id="n1", text="Cough.", payer="x"
    )  # the payer its claim is billed to
    assert validate_input(note("n1", "a" * MAX), MAX).text == "a" * MAX  # exactly at the limit is fine


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
def test_max_chars_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="max_chars"):
        validate_input({"id": "n1", "text": "x"}, bad)


def test_a_json_error_names_its_column_once():
    """json says "Unterminated string starting at"; the message must not read "at at column"."""
    err = validate_input('{"id": "n3", "text": "abc', MAX, line=3)
    assert "at at" not in err.message and err.message.endswith("(Unterminated string starting at column 22)")


NOT_NOTES = {
    "arabic": "المريض يعاني من ارتفاع ضغط الدم والسكري منذ عشر سنوات",
    "hebrew": "החולה סובל מלחץ דם גבוה וסוכרת במשך עשר שנים",
    "zero_width": "\u200b\u200c\u200d\ufeff" * 50,
    "control": "\x01\x02\x03\x07\x1b" * 40,
    "punctuation": "!!! ??? ... --- *** ;;; ,,, ///",
    "emoji": "😀🩺💊❤️🔥" * 20,
    "one_letter": "a",
    "one_word_repeated": "hypertension " * 7600,
}


@pytest.mark.parametrize("name", sorted(NOT_NOTES))
def test_text_that_is_not_a_clinical_note_is_an_error_entry(name):
    text = NOT_NOTES[name]
    err = validate_input({"id": name, "text": text}, 200_000)
    assert isinstance(err, InputError) and err.kind == "not_clinical_text", err
    entry = err.to_dict()
    validate_contract_line(entry)
    if len(text.strip()) > 3:
        assert text.strip()[:8] not in err.message  # the text itself is never quoted


@pytest.mark.parametrize(
    "text",
    [
        "Cough.",
        "Essential hypertension.",
        "Pt c/o CP x2d, r/o ACS. HTN, DM2.",
        "Assessment: essential hypertension, stable on lisinopril 10 mg. Follow-up in 3 months.",
        "Neumonía adquirida en la comunidad; hipertensión esencial.",  # accented Latin letters are Latin
        "Started a β-blocker (metoprolol) for atrial fibrillation with rapid ventricular response.",
    ],
)
def test_short_terse_and_accented_notes_pass_the_content_check(text):
    assert isinstance(validate_input({"id": "n", "text": text}, MAX), InputNote)
