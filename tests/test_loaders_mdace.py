"""MDACE loader: the REAL MDACE annotation JSON joined to synthetic NOTEEVENTS text (tests/fixtures/mdace)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from data_support import needs_reference

from medcoder.data import mdace
from medcoder.data.loading import DatasetNotFoundError
from medcoder.data.schema import RecordError

NOTEEVENTS = Path(__file__).parent / "fixtures" / "mdace" / "NOTEEVENTS.csv"
REAL = mdace.default_dir()
pytestmark = needs_reference("mdace")
ADMISSIONS = (177239, 182231, 184718, 189189, 190150)  # the notes the fixture has text for


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A small MDACE tree: the real split files and the real JSON of the fixture's admissions."""
    out = tmp_path / "mdace"
    shutil.copytree(REAL / "splits", out / "splits")
    for setting in ("Inpatient", "Profee"):
        for version in ("ICD-10", "ICD-9"):
            folder = REAL / "data" / setting / version / mdace.RELEASE
            (out / "data" / setting / version / mdace.RELEASE).mkdir(parents=True)
            for hadm in ADMISSIONS:
                src = folder / f"{hadm}-{version}.json"
                if src.is_file():
                    shutil.copy(src, out / "data" / setting / version / mdace.RELEASE / src.name)
    return out


def fixture_texts(path: Path = NOTEEVENTS) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as fh:
        return {row["ROW_ID"]: row["TEXT"] for row in csv.DictReader(fh)}


def expected_from_json(setting: str, version: str) -> dict[str, dict[tuple[str, str], set[tuple[int, int]]]]:
    """note id -> {(system, code): spans}, read straight from the real JSON."""
    out: dict[str, dict[tuple[str, str], set[tuple[int, int]]]] = {}
    for hadm in ADMISSIONS:
        path = REAL / "data" / setting / version / mdace.RELEASE / f"{hadm}-{version}.json"
        if not path.is_file():
            continue
        for note in json.loads(path.read_text(encoding="utf-8"))["notes"]:
            codes = out.setdefault(str(note["note_id"]), {})
            for a in note["annotations"]:
                codes.setdefault((a["code_system"], a["code"]), set()).add((a["begin"], a["end"]))
    return out


def test_one_record_per_annotated_note_with_every_span(root: Path):
    splits = mdace.load_splits(NOTEEVENTS, data_dir=root)
    ids = {split: [r.id for r in records] for split, records in splits.items()}
    assert ids == {
        "train": ["618120", "21972", "40396", "1197953", "8026"],
        "val": ["1237", "1238998"],
        "test": ["47049"],
    }
    expected = expected_from_json("Inpatient", "ICD-10")
    texts = fixture_texts()
    for records in splits.values():
        for r in records:
            assert {(c.system, c.code): set(c.evidence) for c in r.codes} == expected[r.id]
            assert r.text == texts[r.id]  # offsets index exactly the NOTEEVENTS TEXT field
            assert r.setting == "inpatient" and r.patient_id is not None
    assert {c.system for records in splits.values() for r in records for c in r.codes} == {"ICD-10-CM", "ICD-10-PCS"}


def test_categories_filter_notes(root: Path):
    splits = mdace.load_splits(NOTEEVENTS, data_dir=root, categories=["Discharge summary"])
    assert sorted(r.id for records in splits.values() for r in records) == ["1237", "21972", "40396", "47049", "8026"]


def test_profee_is_outpatient_coding_with_cpt(root: Path):
    splits = mdace.load_splits(NOTEEVENTS, data_dir=root, setting="Profee")
    records = [r for recs in splits.values() for r in recs]
    assert sorted(r.id for r in records) == sorted(["40396", "1197953", "1237", "1238998"])  # 2 admissions in Profee
    assert {r.setting for r in records} == {"outpatient"}
    assert "CPT" in {c.system for r in records for c in r.codes}
    expected = expected_from_json("Profee", "ICD-10")
    assert all({(c.system, c.code): set(c.evidence) for c in r.codes} == expected[r.id] for r in records)


def test_icd9_version_uses_icd9_systems(root: Path):
    splits = mdace.load_splits(NOTEEVENTS, data_dir=root, code_version="ICD-9")
    assert {c.system for recs in splits.values() for r in recs for c in r.codes} == {"ICD-9-CM", "ICD-9-PCS"}


def test_trimmed_spans_lose_edge_whitespace_and_punctuation_only(root: Path):
    plain = {r.id: r for recs in mdace.load_splits(NOTEEVENTS, data_dir=root).values() for r in recs}
    trimmed = {
        r.id: r for recs in mdace.load_splits(NOTEEVENTS, data_dir=root, trim_evidence=True).values() for r in recs
    }
    changed = 0
    for note_id, record in trimmed.items():
        for code, original in zip(record.codes, plain[note_id].codes, strict=True):
            for start, end in code.evidence:
                assert any(s <= start < end <= e for s, e in original.evidence)
                if (start, end) not in original.evidence:
                    changed += 1
                    assert record.text[start] not in "-.,/ \n\t)" and record.text[end - 1] not in "-.,/ \n\t("
    assert changed > 0  # the filler has spaces and commas at many span edges


def test_offsets_outside_the_text_are_an_error_or_a_reported_skip(root: Path, tmp_path: Path):
    rows = list(csv.reader(NOTEEVENTS.open(encoding="utf-8", newline="")))
    for row in rows:
        if row[0] == "47049":
            row[10] = row[10][:500]  # shorter than its annotations reach
    short = tmp_path / "NOTEEVENTS.csv"
    with short.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    with pytest.raises(RecordError) as info:
        mdace.load_splits(short, data_dir=root)
    err = info.value
    assert Path(err.source).name == "177239-ICD-10.json" and err.record_id == "47049"
    assert err.field.startswith("notes[0].annotations[") and err.field.endswith("].end")
    assert "length 500" in str(err) and "Synthetic line" not in str(err)
    reports = mdace.read_splits(short, data_dir=root, on_error="skip")
    assert reports["test"].records == [] and [e.record_id for e in reports["test"].skipped] == ["47049"]
    assert len(reports["train"].records) == 5 and not reports["train"].skipped


def test_note_of_another_admission_is_an_error(root: Path, tmp_path: Path):
    text = NOTEEVENTS.read_text(encoding="utf-8").replace("47049,9005,177239", "47049,9005,177240")
    other = tmp_path / "NOTEEVENTS.csv"
    other.write_text(text, encoding="utf-8")
    with pytest.raises(RecordError, match="admission 177240 in NOTEEVENTS, MDACE says 177239"):
        mdace.load_splits(other, data_dir=root)


def test_full_real_annotations_with_partial_text_report_every_missing_note():
    reports = mdace.read_splits(NOTEEVENTS, on_error="skip")
    loaded = sorted(r.id for rep in reports.values() for r in rep.records)
    assert loaded == sorted(fixture_texts().keys() - {"1", "2"})
    total_notes = sum(
        len(json.loads(p.read_text())["notes"])
        for p in (REAL / "data" / "Inpatient" / "ICD-10" / mdace.RELEASE).glob("*.json")
    )
    skipped = [e for rep in reports.values() for e in rep.skipped]
    assert len(skipped) == total_notes - len(loaded)
    assert {e.field for e in skipped} == {"ROW_ID"}


def test_noteevents_is_required_and_named(root: Path, tmp_path: Path):
    with pytest.raises(DatasetNotFoundError, match="`noteevents`"):
        mdace.load_splits(tmp_path / "NOTEEVENTS.csv.gz", data_dir=root)


def test_annotation_stats_match_the_json():
    stats = mdace.annotation_stats()
    files = list((REAL / "data" / "Inpatient" / "ICD-10" / mdace.RELEASE).glob("*.json"))
    annotations = [a for p in files for n in json.loads(p.read_text())["notes"] for a in n["annotations"]]
    assert sum(s["admissions"] for s in stats["splits"].values()) == len(files)
    assert sum(s["annotations"] for s in stats["splits"].values()) == len(annotations)
    assert sum(v["annotations"] for v in stats["systems"].values()) == len(annotations)
