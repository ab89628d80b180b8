"""MIMIC-IV / MIMIC-III loaders against synthetic fixtures in the PhysioNet + Edin et al. layout."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from medcoder.data import mimic
from medcoder.data.loading import DatasetNotFoundError
from medcoder.data.schema import RecordError

FIXTURE = Path(__file__).parent / "fixtures" / "mimic"


def as_released(src: Path, dst: Path) -> Path:
    """Copy a fixture tree the way users have it: tables gzipped, split files as feather."""
    for path in src.rglob("*.csv"):
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        if "split" in path.name:
            pd.read_csv(path).to_feather(out.with_suffix(".feather"))
        else:
            with gzip.open(out.with_suffix(".csv.gz"), "wb") as fh:
                fh.write(path.read_bytes())
    return dst


@pytest.fixture
def iv(tmp_path: Path) -> Path:
    return as_released(FIXTURE / "mimic-iv", tmp_path / "mimiciv")


@pytest.fixture
def iii(tmp_path: Path) -> Path:
    return as_released(FIXTURE / "mimic-iii", tmp_path / "mimiciii")


def by_id(splits):
    return {r.id: (split, r) for split, records in splits.items() for r in records}


def test_mimic_iv_released_layout_one_record_per_listed_admission(iv: Path):
    splits = mimic.load_mimic_iv_splits(iv, min_code_count=1)
    records = by_id(splits)
    assert {i: s for i, (s, _) in records.items()} == {
        "20000001": "train",
        "20000002": "train",
        "20000003": "val",
        "20000004": "test",
    }  # 20000006 has a note and codes but no split: not part of the dataset
    split, first = records["20000001"]
    # diagnoses by seq_num (trailing blanks stripped, duplicate removed), then procedures
    assert [(c.system, c.code) for c in first.codes] == [
        ("ICD-10-CM", "I50.22"),
        ("ICD-10-CM", "E11.65"),
        ("ICD-10-CM", "I10"),
        ("ICD-10-PCS", "02HV33Z"),
    ]
    assert (first.patient_id, first.setting, first.encounter_date) == ("10000001", "inpatient", None)
    assert first.text.startswith("Name: ___ Unit No: ___\nSynthetic discharge summary") and '"synthetic"' in first.text
    assert records["20000004"][1].codes_of("ICD-10-CM") == ["E11.65", "I10"]  # the empty code cell is no label


def test_mimic_iv_notes_of_one_admission_joined_in_note_seq_order_once_each(iv: Path):
    text = by_id(mimic.load_mimic_iv_splits(iv, min_code_count=1))["20000002"][1].text
    first, second = "Synthetic discharge summary (first note)", "Synthetic addendum (second note)"
    assert text.index(first) < text.index(second)
    assert text.count(second) == 1 and "\n\n" in text


def test_mimic_iv_icd9_admissions_get_icd9_systems_with_dots(iv: Path):
    splits = mimic.load_mimic_iv_splits(iv, icd_version=9, min_code_count=1)
    (record,) = splits["train"]
    assert splits["val"] == [] and splits["test"] == []
    assert [(c.system, c.code) for c in record.codes] == [
        ("ICD-9-CM", "428.0"),
        ("ICD-9-CM", "250.00"),
        ("ICD-9-CM", "E849.0"),
        ("ICD-9-CM", "V30.01"),
        ("ICD-9-PCS", "38.93"),
        ("ICD-9-PCS", "00.66"),
    ]


def test_rare_codes_are_dropped_by_admission_count(iv: Path):
    codes = {
        i: r.codes_of("ICD-10-CM") + r.codes_of("ICD-10-PCS")
        for i, (_, r) in by_id(mimic.load_mimic_iv_splits(iv, min_code_count=2)).items()
    }
    # J18.9, Z79.84 and 02HV33Z occur in one listed admission each
    assert codes == {
        "20000001": ["I50.22", "E11.65", "I10"],
        "20000002": ["I50.22"],
        "20000003": ["I50.22", "I10"],
        "20000004": ["E11.65", "I10"],
    }


def test_admission_left_without_codes_is_an_error_or_a_reported_skip(iv: Path):
    with pytest.raises(RecordError, match="no codes left after dropping codes seen in fewer than 10"):
        mimic.read_mimic_iv(iv)
    reports = mimic.read_mimic_iv(iv, on_error="skip")
    assert sum(len(r.records) for r in reports.values()) == 0
    assert sorted(e.record_id for r in reports.values() for e in r.skipped) == [
        "20000001",
        "20000002",
        "20000003",
        "20000004",
    ]


def test_without_procedures(iv: Path):
    splits = mimic.load_mimic_iv_splits(iv, include_procedures=False, min_code_count=1)
    assert {c.system for records in splits.values() for r in records for c in r.codes} == {"ICD-10-CM"}


def test_bad_code_row_names_file_line_field_and_admission(tmp_path: Path):
    root = Path(shutil.copytree(FIXTURE / "mimic-iv", tmp_path / "iv"))
    with (root / "hosp" / "diagnoses_icd.csv").open("a", encoding="utf-8") as fh:
        fh.write("10000004,20000004,4,I5Q!,10\n")
    split_file = root / "mimiciv_icd10_split.csv"
    with pytest.raises(RecordError) as info:
        mimic.read_mimic_iv(root, split_file=split_file, min_code_count=1)
    err = info.value
    assert (Path(err.source).name, err.line, err.field, err.record_id) == (
        "diagnoses_icd.csv",
        19,
        "icd_code",
        "20000004",
    )
    reports = mimic.read_mimic_iv(root, split_file=split_file, min_code_count=1, on_error="skip")
    assert [e.line for e in reports["test"].skipped] == [19]
    assert reports["test"].records[0].codes_of("ICD-10-CM") == ["E11.65", "I10"]


def test_listed_admission_without_a_note_is_reported(tmp_path: Path):
    root = Path(shutil.copytree(FIXTURE / "mimic-iv", tmp_path / "iv"))
    split_file = root / "mimiciv_icd10_split.csv"
    with split_file.open("a", encoding="utf-8") as fh:
        fh.write("20000099,test\n")
    with pytest.raises(RecordError, match="no discharge summary") as info:
        mimic.read_mimic_iv(root, split_file=split_file, min_code_count=1)
    assert info.value.record_id == "20000099"
    reports = mimic.read_mimic_iv(root, split_file=split_file, min_code_count=1, on_error="skip")
    assert [r.id for r in reports["test"].records] == ["20000004"] and len(reports["test"].skipped) == 1


def test_split_file_problems_are_errors_with_line(tmp_path: Path):
    bad = tmp_path / "split.csv"
    bad.write_text("_id,split\n20000001,train\n20000002,dev\n", encoding="utf-8")
    with pytest.raises(RecordError) as info:
        mimic.read_split_file(bad)
    assert (info.value.line, info.value.field) == (3, "split")
    bad.write_text("hadm,split\n1,train\n", encoding="utf-8")
    with pytest.raises(RecordError, match="missing column"):
        mimic.read_split_file(bad)


def test_missing_paths_name_the_option(iv: Path, tmp_path: Path):
    with pytest.raises(DatasetNotFoundError) as info:
        mimic.read_mimic_iv(iv, icd_version=9, split_file=tmp_path / "absent.feather")
    assert "absent.feather" in str(info.value) and "`split_file`" in str(info.value)
    with pytest.raises(DatasetNotFoundError, match="note/discharge.csv.gz and .csv .*`note_dir`"):
        mimic.read_mimic_iv(iv, note_dir=tmp_path)


def test_missing_column_is_named(tmp_path: Path):
    root = Path(shutil.copytree(FIXTURE / "mimic-iii", tmp_path / "iii"))
    table = root / "DIAGNOSES_ICD.csv"
    table.write_text(table.read_text(encoding="utf-8").replace('"ICD9_CODE"', '"CODE"'), encoding="utf-8")
    with pytest.raises(RecordError) as info:
        mimic.read_mimic_iii(root, split_file=root / "mimiciii_clean_splits.csv")
    assert (info.value.line, info.value.field) == (1, "ICD9_CODE")


def test_mimic_iii_discharge_summaries_report_before_addendum(iii: Path):
    records = by_id(mimic.load_mimic_iii_splits(iii, min_code_count=1))
    assert {i: s for i, (s, _) in records.items()} == {"130001": "train", "130002": "val", "130003": "test"}
    text = records["130001"][1].text
    assert text.index("Synthetic report") < text.index("Addendum: synthetic") and "radiology" not in text
    assert [(c.system, c.code) for c in records["130001"][1].codes] == [
        ("ICD-9-CM", "428.0"),
        ("ICD-9-CM", "427.31"),
        ("ICD-9-CM", "250.00"),
        ("ICD-9-PCS", "37.23"),
        ("ICD-9-PCS", "99.04"),
    ]
    # MIMIC-III stores procedure codes as numbers: 00.17 arrives as "17" and is kept as given
    assert records["130002"][1].codes_of("ICD-9-PCS") == ["17"]
    assert records["130003"][1].codes_of("ICD-9-CM") == ["427.31", "401.9"]


def test_load_splits_dispatches_by_dataset(iii: Path):
    direct = mimic.load_mimic_iii_splits(iii, min_code_count=1)
    assert mimic.load_splits("mimic-iii", data_dir=iii, min_code_count=1) == direct
    with pytest.raises(ValueError, match="unknown MIMIC dataset"):
        mimic.load_splits("mimic-v")
