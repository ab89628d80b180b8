"""load_dataset dispatch and errors, and dataset_stats numbers on records small enough to count by hand."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from medcoder.data import codiesp, mimic
from medcoder.data.loading import DatasetNotFoundError
from medcoder.data.schema import NoteRecord, RecordError, parse_record, write_notes
from medcoder.data.sources import DATASETS, dataset_stats, load_dataset, stats_markdown

FIXTURES = Path(__file__).parent / "fixtures"


def record(note_id: str, text: str, codes: list[tuple[str, str, list[list[int]]]], **extra) -> NoteRecord:
    return parse_record(
        {"id": note_id, "text": text, "codes": [{"system": s, "code": c, "evidence": e} for s, c, e in codes], **extra}
    )


def test_embedded_round_trips_the_contract_files(tmp_path: Path):
    splits = {
        "train": [
            record(
                "n1", "Type 2 diabetes with hyperglycemia.", [("ICD-10-CM", "E11.65", [[0, 15]])], setting="outpatient"
            )
        ],
        "val": [record("n2", "Essential hypertension.", [("ICD-10-CM", "I10", [])])],
        "test": [record("n3", "Office visit.", [("CPT", "99213", [])])],
    }
    for split, records in splits.items():
        write_notes(records, tmp_path / f"{split}.jsonl")
    assert load_dataset("embedded", data_dir=tmp_path) == splits


def test_embedded_missing_split_file_names_it(tmp_path: Path):
    write_notes([], tmp_path / "train.jsonl")
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("embedded", data_dir=tmp_path)
    assert str(tmp_path / "val.jsonl") in str(info.value) and "`data_dir`" in str(info.value)


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("mimic-v")
    assert all(name in str(info.value) for name in DATASETS)


def test_unknown_option_is_refused_with_the_accepted_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("codiesp", data_dir=FIXTURES / "codiesp", include_procedure=False)
    message = str(info.value)
    assert "include_procedure" in message and "include_procedures" in message and "on_error" in message


@pytest.fixture
def no_reference_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty reference-data folder, as on a user's fresh clone: defaults must not find anything."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("MEDCODER_DATA_DIR", str(empty))
    return empty


@pytest.mark.parametrize(
    ("name", "option", "present"),
    [
        ("codiesp", "data_dir", ()),
        ("mimic-iv", "data_dir", ()),
        ("mimic-iii", "data_dir", ()),
        ("mdace", "data_dir", ()),
        # the MDACE annotations are there, the user's MIMIC-III note text is not
        ("mdace", "noteevents", ("data_dir",)),
    ],
)
def test_missing_paths_name_the_path_and_the_option(
    name: str, option: str, present: tuple[str, ...], tmp_path: Path, no_reference_data: Path
):
    absent = tmp_path / "absent"
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, **{option: absent}, **{other: tmp_path for other in present})
    assert str(absent) in str(info.value) and f"`{option}`" in str(info.value)


@pytest.mark.parametrize("name", ["codiesp", "mimic-iv", "mimic-iii", "mdace"])
def test_default_paths_name_the_data_folder_when_it_is_empty(name: str, no_reference_data: Path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name)
    assert str(no_reference_data) in str(info.value)


def test_dispatch_equals_the_loader_and_logs_skips_without_text(caplog):
    direct = codiesp.load_splits(FIXTURES / "codiesp", on_error="skip")
    with caplog.at_level(logging.WARNING):
        via = load_dataset("codiesp", data_dir=FIXTURES / "codiesp", on_error="skip")
    assert via == direct
    assert "codiesp train: skipped 1 item(s)" in caplog.text and "Brucella" not in caplog.text
    iv = FIXTURES / "mimic" / "mimic-iv"
    assert load_dataset(
        "mimic-iv", data_dir=iv, split_file=iv / "mimiciv_icd10_split.csv", min_code_count=1
    ) == mimic.load_mimic_iv_splits(iv, split_file=iv / "mimiciv_icd10_split.csv", min_code_count=1)


def test_dataset_stats_counts():
    train = [
        record(
            "a",
            "one two three",
            [("ICD-10-CM", "E11.65", [[0, 3], [4, 7]]), ("ICD-10-PCS", "0DTJ4ZZ", [])],
            patient_id="p1",
            setting="inpatient",
        ),
        record("b", "four five", [("ICD-10-CM", "E11.65", [])], patient_id="p1"),
    ]
    test = [record("c", "six", [], patient_id="p2", setting="outpatient")]
    stats = dataset_stats({"train": train, "test": test})
    tr, everything = stats["splits"]["train"], stats["all"]
    assert (tr["notes"], tr["patients"], tr["code_assignments"], tr["distinct_codes"]) == (2, 1, 3, 2)
    assert tr["codes_per_note"] == {"mean": 1.5, "median": 1.5, "min": 1, "max": 2}
    assert tr["systems"] == {
        "ICD-10-CM": {"assignments": 2, "distinct_codes": 1},
        "ICD-10-PCS": {"assignments": 1, "distinct_codes": 1},
    }
    assert tr["evidence"] == {
        "assignments_with_evidence": 1 / 3,
        "notes_with_evidence": 0.5,
        "spans": 2,
        "span_chars_median": 3.0,
    }
    assert tr["settings"] == {"inpatient": 1, "unknown": 1}
    assert tr["text_words"]["max"] == 3.0 and tr["text_chars"]["max"] == len("one two three")
    assert (everything["notes"], everything["patients"], everything["codes_per_note"]["min"]) == (3, 2, 0)
    json.dumps(stats)  # plain types only: the card generator writes it as is


def test_stats_markdown_has_a_column_per_split_and_a_row_per_system():
    stats = dataset_stats(codiesp.load_splits(FIXTURES / "codiesp", on_error="skip"))
    table = stats_markdown(stats)
    assert table.splitlines()[0] == "| | train | val | test | all |"
    assert "| ICD-10-PCS: assignments / distinct | 2 / 2 | 1 / 1 | 0 / 0 | 3 / 3 |" in table


def test_dataset_stats_of_empty_split():
    stats = dataset_stats({"train": []})
    assert stats["splits"]["train"]["notes"] == 0 and stats["splits"]["train"]["text_chars"]["p50"] == 0.0


def test_mentions_are_counted_by_status():
    note = parse_record(
        {
            "id": "m",
            "text": "No pneumonia.",
            "codes": [],
            "mentions": [{"start": 3, "end": 12, "code": "J18.9", "status": "negated"}],
        }
    )
    assert dataset_stats({"test": [note]})["all"]["mentions"] == {"negated": 1}


@pytest.mark.parametrize("name", DATASETS)
def test_on_error_is_raise_or_skip(name: str):
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        load_dataset(name, on_error="ignore")


def test_embedded_skip_reports_bad_lines(tmp_path: Path, caplog):
    good = record("n1", "Essential hypertension.", [("ICD-10-CM", "I10", [])])
    for split in ("train", "val", "test"):
        write_notes([good], tmp_path / f"{split}.jsonl")
    with (tmp_path / "val.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"id": "n2", "text": "CANARY note", "codes": [{"system": "ICD-10-CM", "code": "i10"}]}\n')
    with pytest.raises(RecordError, match="val.jsonl:2"):
        load_dataset("embedded", data_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        splits = load_dataset("embedded", data_dir=tmp_path, on_error="skip")
    assert [r.id for r in splits["val"]] == ["n1"]
    assert "embedded val: skipped 1 item(s)" in caplog.text and "CANARY" not in caplog.text
