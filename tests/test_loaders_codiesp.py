"""CodiEsp loader: the synthetic fixture for behaviour and errors, the real corpus (when present) for shape."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from data_support import needs_reference

from medcoder.data import codiesp
from medcoder.data.loading import DatasetNotFoundError
from medcoder.data.schema import RecordError

FIXTURE = Path(__file__).parent / "fixtures" / "codiesp"
REAL = codiesp.default_dir()
needs_real = needs_reference("codiesp")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A writable copy of the fixture, for tests that break it."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "codiesp"))


def test_records_follow_files_with_official_split_names_and_canonical_codes():
    reports = codiesp.read_splits(FIXTURE, on_error="skip")
    assert list(reports) == ["train", "val", "test"]
    ids = {split: [r.id for r in rep.records] for split, rep in reports.items()}
    assert ids == {"train": ["S0000-synth-1", "S0000-synth-2"], "val": ["S0000-synth-3"], "test": ["S0000-synth-4"]}

    first = reports["train"].records[0]
    assert first.text == (FIXTURE / "train" / "text_files_en" / "S0000-synth-1.txt").read_text(encoding="utf-8")
    # diagnoses in file order, then procedures; lower case made canonical
    assert [(c.system, c.code) for c in first.codes] == [
        ("ICD-10-CM", "R50.9"),
        ("ICD-10-CM", "A23.9"),
        ("ICD-10-CM", "N44.8"),
        ("ICD-10-PCS", "BW03ZZZ"),
    ]
    # English text has no evidence (the X.tsv offsets are into the Spanish text); setting is unknown
    assert all(not c.evidence for rep in reports.values() for r in rep.records for c in r.codes)
    assert all(r.setting is None for rep in reports.values() for r in rep.records)
    # the same code in two spellings is one label
    assert reports["train"].records[1].codes_of("ICD-10-CM") == ["E11.65"]


def test_four_character_procedure_prefix_is_an_error_naming_file_line_and_code():
    with pytest.raises(RecordError) as info:
        codiesp.load_splits(FIXTURE)
    err = info.value
    assert (Path(err.source).name, err.line, err.field, err.record_id) == ("trainP.tsv", 2, "code", "S0000-synth-1")
    assert "'bn20'" in str(err) and "include_procedures=False" in str(err)


def test_skip_reports_the_bad_row_and_keeps_the_note():
    report = codiesp.read_split("train", data_dir=FIXTURE, on_error="skip")
    assert [(Path(e.source).name, e.line, e.field) for e in report.skipped] == [("trainP.tsv", 2, "code")]
    note = next(r for r in report.records if r.id == "S0000-synth-1")
    assert note.codes_of("ICD-10-PCS") == ["BW03ZZZ"]


def test_without_procedures_loads_strictly_and_has_only_diagnoses():
    splits = codiesp.load_splits(FIXTURE, include_procedures=False)
    assert {c.system for records in splits.values() for r in records for c in r.codes} == {"ICD-10-CM"}


def test_code_row_for_a_missing_text_file_is_reported(copy: Path):
    with (copy / "test" / "testD.tsv").open("a", encoding="utf-8") as fh:
        fh.write("S0000-no-such-case\tr07.9\n")
    with pytest.raises(RecordError) as info:
        codiesp.read_split("test", data_dir=copy, include_procedures=False)
    assert (info.value.line, info.value.field, info.value.record_id) == (3, "articleID", "S0000-no-such-case")
    report = codiesp.read_split("test", data_dir=copy, include_procedures=False, on_error="skip")
    assert len(report.records) == 1 and len(report.skipped) == 1


def test_malformed_row_is_an_error(copy: Path):
    with (copy / "dev" / "devD.tsv").open("a", encoding="utf-8") as fh:
        fh.write("S0000-synth-3\tr07.9\textra\n")
    with pytest.raises(RecordError, match="expected 2 tab-separated fields, got 3") as info:
        codiesp.read_split("val", data_dir=copy)
    assert info.value.line == 3


def test_bad_utf8_names_the_file_and_never_echoes_text(copy: Path):
    bad = copy / "dev" / "text_files_en" / "S0000-synth-3.txt"
    bad.write_bytes(b"CANARY-TEXT patient story " + b"\xff\xfe")
    with pytest.raises(RecordError) as info:
        codiesp.read_split("val", data_dir=copy)
    assert info.value.source == str(bad) and info.value.field == "text"
    assert "CANARY" not in str(info.value)
    report = codiesp.read_split("val", data_dir=copy, on_error="skip")
    # the note is gone, and so are its code rows: each listed with its reason
    assert report.records == []
    assert {e.field for e in report.skipped} == {"text", "articleID"} and len(report.skipped) == 4


def test_missing_folder_names_path_and_option(tmp_path: Path):
    with pytest.raises(DatasetNotFoundError) as info:
        codiesp.load_splits(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "`data_dir`" in str(info.value)


def test_background_cases_have_no_codes():
    background = codiesp.load_background(FIXTURE)
    assert [r.id for r in background] == ["S0000-synth-bg-1"] and background[0].codes == ()


def test_icd10cm_validity_counts_codes_outside_the_current_release():
    splits = codiesp.load_splits(FIXTURE, include_procedures=False, billable_icd10cm=False)
    validity = codiesp.icd10cm_validity(splits)
    assert validity["code_set_version"]
    val = validity["splits"]["val"]  # s01.00x lacks its 7th character; r50 is a category, not billable
    assert (val["assignments"], val["invalid_assignments"], val["non_billable_assignments"]) == (2, 1, 1)
    assert val["invalid_codes"] == ["S01.00X"]
    assert validity["splits"]["train"]["invalid_assignments"] == 0


def test_every_successor_is_billable_and_refines_its_non_billable_source():
    from medcoder.codes import icd10cm

    for source, successor in codiesp.ICD10CM_SUCCESSORS.items():
        assert not (icd10cm.is_valid(source) and icd10cm.is_billable(source)), source
        assert icd10cm.is_valid(successor) and icd10cm.is_billable(successor), successor
        # the successor refines the source: same code with more characters (the XXX placeholders too)
        assert successor.startswith(source), (source, successor)
    asked = {"R05": "R05.9", "M54.5": "M54.50", "T14.90": "T14.90XA", "T14.8": "T14.8XXA", "R51": "R51.9"}
    assert {k: codiesp.ICD10CM_SUCCESSORS[k] for k in asked} == asked


def test_non_billable_codes_are_mapped_or_dropped_on_load_and_counted(copy: Path, caplog: pytest.LogCaptureFixture):
    with (copy / "dev" / "devD.tsv").open("a", encoding="utf-8") as fh:
        fh.write("S0000-synth-3\tr51\nS0000-synth-3\tr51.9\nS0000-synth-3\tt14.90\n")
    caplog.set_level("INFO", logger="medcoder.data.codiesp")
    note = codiesp.read_split("val", data_dir=copy, include_procedures=False).records[0]
    # s01.00x (no 7th character, no successor) and r50 (a category) are dropped; r51 and r51.9 are one label
    assert note.codes_of("ICD-10-CM") == ["R51.9", "T14.90XA"]
    log_text = caplog.text
    assert (
        "2 diagnosis assignment(s) mapped" in log_text
        and "R51->R51.9 x1" in log_text
        and "T14.90->T14.90XA x1" in log_text
    )
    assert "dropped 2 diagnosis assignment(s)" in log_text and "S01.00X x1" in log_text and "R50 x1" in log_text
    assert "synth" not in log_text  # codes and counts only: no note ids, no text

    raw = codiesp.read_split("val", data_dir=copy, include_procedures=False, billable_icd10cm=False).records[0]
    assert raw.codes_of("ICD-10-CM") == ["S01.00X", "R50", "R51", "R51.9", "T14.90"]


@needs_real
def test_real_corpus_loads_only_billable_diagnosis_codes():
    from medcoder.codes import icd10cm

    splits = codiesp.load_splits(include_procedures=False)
    codes = {c for records in splits.values() for r in records for c in r.codes_of("ICD-10-CM")}
    assert codes and all(icd10cm.is_valid(c) and icd10cm.is_billable(c) for c in codes)
    assert {"R51.9", "T14.8XXA", "T14.90XA", "M54.50", "R05.9"} <= codes


@needs_real
def test_real_corpus_shape_and_every_skipped_row_is_a_short_procedure_code():
    reports = codiesp.read_splits(on_error="skip", billable_icd10cm=False)
    assert {s: len(rep.records) for s, rep in reports.items()} == {"train": 500, "val": 250, "test": 250}
    assert all(r.codes_of("ICD-10-CM") for rep in reports.values() for r in rep.records)
    for split, folder in codiesp.SPLIT_DIRS.items():
        rows = (REAL / folder / f"{folder}P.tsv").read_text(encoding="utf-8").splitlines()
        short = {i for i, row in enumerate(rows, start=1) if len(row.split("\t")[1].strip()) != 7}
        skipped = reports[split].skipped
        assert {e.line for e in skipped} == short
        assert all(Path(e.source).name == f"{folder}P.tsv" for e in skipped)
