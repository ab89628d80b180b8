"""`medcoder data status/fetch`: verified fetch from a local archive and a loopback HTTP server, refusals,
credentialed data checked in place, and the shipped manifests against the real data when it is present."""

from __future__ import annotations

import http.server
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcoder import cli
from medcoder.data import reference
from medcoder.data.reference import DataFetchError, ReferenceDataset, fetch, read_manifest, write_manifest

FIXTURES = Path(__file__).parent / "fixtures"
FILES = {
    "README.txt": "corpus readme\n",
    "train/trainD.tsv": "S1\ti10\n",
    "train/text_files_en/S1.txt": "Hypertension.\n",
}


@pytest.fixture
def release(tmp_path: Path) -> tuple[ReferenceDataset, Path]:
    """A three-file 'public dataset' and its manifest, as a folder the way the publisher's archive holds it."""
    folder = tmp_path / "publisher" / "corpus_v4"
    for rel, text in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text, encoding="utf-8")
    manifest = tmp_path / "corpus.sha256"
    write_manifest(folder, manifest)
    dataset = ReferenceDataset(
        name="corpus",
        title="test corpus",
        folder="corpus",
        license="CC0",
        source="here",
        get_it="corpus.zip",
        used_for="tests",
        manifest_file=manifest,
    )
    return dataset, folder


def _zip(folder: Path, out: Path, extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(out, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
        for name, text in (extra or {}).items():
            zf.writestr(name, text)
    return out


@pytest.fixture
def loopback(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 serving a folder: (base URL, folder). Nothing leaves the machine."""
    served = tmp_path / "served"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()


def test_fetch_from_a_local_archive_verifies_and_installs(release, tmp_path: Path):
    dataset, folder = release
    archive = _zip(folder, tmp_path / "corpus.zip")
    data = tmp_path / "data"
    result = fetch("corpus", [str(archive)], data, dataset=dataset)
    assert (result.state, result.files, result.path) == ("complete", 3, data / "corpus")
    assert {p.relative_to(data / "corpus").as_posix() for p in (data / "corpus").rglob("*") if p.is_file()} == set(
        FILES
    )
    assert not [p for p in data.iterdir() if p.name != "corpus"]  # no staging leftovers


def test_fetch_over_http_from_a_loopback_server(release, loopback, tmp_path: Path):
    dataset, folder = release
    url, served = loopback
    with tarfile.open(served / "corpus.tar.gz", "w:gz") as tf:
        tf.add(folder, arcname="corpus_v4")
    result = fetch("corpus", [f"{url}/corpus.tar.gz"], tmp_path / "data", dataset=dataset)
    assert result.state == "complete"
    assert (tmp_path / "data" / "corpus" / "train" / "trainD.tsv").read_text() == FILES["train/trainD.tsv"]


def test_a_changed_file_is_refused_and_nothing_is_installed(release, tmp_path: Path):
    dataset, folder = release
    (folder / "train" / "trainD.tsv").write_text("S1\ti11\n", encoding="utf-8")
    with pytest.raises(DataFetchError, match=r"1 files differ .*first: train/trainD.tsv"):
        fetch("corpus", [str(_zip(folder, tmp_path / "c.zip"))], tmp_path / "data", dataset=dataset)
    assert not (tmp_path / "data" / "corpus").exists()


def test_a_missing_file_is_named(release, tmp_path: Path):
    dataset, folder = release
    (folder / "README.txt").unlink()
    with pytest.raises(DataFetchError, match=r"1 of 3 files are not in the source \(first: README.txt\)"):
        fetch("corpus", [str(folder)], tmp_path / "data", dataset=dataset)


def test_an_archive_member_outside_the_folder_is_refused(release, tmp_path: Path):
    dataset, folder = release
    archive = _zip(folder, tmp_path / "evil.zip", extra={"../escaped.txt": "x"})
    with pytest.raises(DataFetchError, match="outside the target folder"):
        fetch("corpus", [str(archive)], tmp_path / "data", dataset=dataset)
    assert not (tmp_path / "escaped.txt").exists()


def test_a_dataset_published_in_two_archives(release, tmp_path: Path):
    dataset, folder = release
    first, second = tmp_path / "a", tmp_path / "b"
    (first / "maps" / "train" / "text_files_en").mkdir(parents=True)
    (second / "tab").mkdir(parents=True)
    for rel in ("train/trainD.tsv", "train/text_files_en/S1.txt"):
        (first / "maps" / rel).write_text(FILES[rel], encoding="utf-8")
    (second / "tab" / "README.txt").write_text(FILES["README.txt"], encoding="utf-8")
    result = fetch(
        "corpus",
        [str(_zip(first / "maps", tmp_path / "a.zip")), str(_zip(second / "tab", tmp_path / "b.zip"))],
        tmp_path / "data",
        dataset=dataset,
    )
    assert result.state == "complete"


def test_a_one_file_dataset_is_given_as_the_file(tmp_path: Path):
    (tmp_path / "notes.jsonl").write_text('{"note_id": 1}\n', encoding="utf-8")
    manifest = tmp_path / "one.sha256"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "notes.jsonl").write_text('{"note_id": 1}\n', encoding="utf-8")
    write_manifest(tmp_path / "src", manifest)
    one = ReferenceDataset(
        name="one", title="", folder="one", license="", source="", get_it="", used_for="", manifest_file=manifest
    )
    assert fetch("one", [str(tmp_path / "notes.jsonl")], tmp_path / "data", dataset=one).state == "complete"


def test_credentialed_data_is_never_downloaded_but_checked_in_place(tmp_path: Path):
    with pytest.raises(DataFetchError, match="PhysioNet.*nothing is downloaded"):
        fetch("mimic-iii", ["https://physionet.org/files/mimiciii/1.4/"], tmp_path)
    checked = fetch("mimic-iii", [str(FIXTURES / "mimic" / "mimic-iii")], tmp_path)
    assert checked.state == "complete" and not (tmp_path / "mimic-iii").exists()
    with pytest.raises(DataFetchError, match="MIMIC-IV diagnoses table not found"):
        broken = tmp_path / "iv"
        (broken / "hosp").mkdir(parents=True)
        (broken / "mimiciv_icd10_split.csv").write_text("_id,split\n", encoding="utf-8")
        fetch("mimic-iv", [str(broken)], tmp_path)


def test_status_on_an_empty_folder_says_what_is_missing_and_how_to_get_it(tmp_path: Path, capsys):
    assert {s.state for s in reference.status(tmp_path)} == {"absent"}
    assert cli.main(["data", "status", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "codiesp: ABSENT" in out and "medcoder data fetch codiesp --from" in out and "10.5281/zenodo.3837305" in out
    assert "mimic-iv: ABSENT" in out and "PhysioNet" in out and "CC BY-ND 3.0 IGO" in out


def test_fetch_errors_are_one_line_from_the_cli(tmp_path: Path, capsys):
    assert (
        cli.main(["data", "fetch", "codiesp", "--from", str(tmp_path / "nope.zip"), "--data-dir", str(tmp_path)]) == 2
    )
    assert (
        capsys.readouterr().err.strip()
        == f"medcoder data: error: --from {tmp_path / 'nope.zip'}: no such file or folder"
    )


@pytest.mark.parametrize("name", [d.name for d in reference.REFERENCE_DATASETS if not d.credentialed])
def test_shipped_manifests_are_sha256sum_files(name: str):
    manifest = read_manifest(reference.get_dataset(name).manifest_path())
    assert manifest and all(len(h) == 64 and not rel.startswith("/") and ".." not in rel for rel, h in manifest.items())


@pytest.mark.parametrize("name", ["codiesp", "icd11", "mdace", "mtsamples"])
def test_a_data_folder_that_is_present_matches_the_shipped_manifest(name: str):
    """Where the data folder exists (CI), it must be byte-identical to the release the manifests describe."""
    checked = reference.status()[[d.name for d in reference.REFERENCE_DATASETS].index(name)]
    if checked.state == "absent":
        pytest.skip(f"{name} not in {checked.path}: run `{reference.fetch_command(name)}`")
    assert (checked.state, checked.problems) == ("complete", [])
