"""The public reference datasets: where each comes from, its license, and whether a user has it.

`medcoder data status` and `medcoder data fetch` are thin wrappers over this module. Each dataset
the platform reads from the reference-data folder (`medcoder.paths.shared_data_dir`) has one
`ReferenceDataset` entry: its folder name, official source, license, and a checksum manifest
(`resources/data_manifests/<name>.sha256`, in `sha256sum` format so a user can also run
`sha256sum -c` by hand). The manifests were computed once from the copies the project develops
against (`scripts/make_data_manifests.py`), so "complete" means "byte-identical to what the
tests, data cards and experiment records were produced from".

Why checksums and not just "the folder exists": CodiEsp has been re-released with fixes, WHO
updates its mapping tables, and a truncated download still makes a folder. A changed file would
silently change every number the project reports.

MIMIC-III/IV are credentialed (PhysioNet data use agreement): they are never downloaded, and no
checksums of them are shipped. `fetch` only checks that the user's own folder has the files the
loaders need (`medcoder.data.mimic.required_files_*`) and says where to put it.

Fetching: `--from` is a URL (http/https) or a local path: an archive (zip, tar, tar.gz), a folder,
or, for one-file datasets, the file itself. The manifest files are located inside it (an archive
usually adds a top folder such as `MDACE-main/`), verified BEFORE anything is written to the data
folder, then copied there. Archives are unpacked with member checks (no absolute paths, no `..`,
no links), because an archive from a mirror is untrusted input.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from medcoder.hashing import file_sha256
from medcoder.paths import resources_dir, shared_data_dir

MANIFEST_DIR = "data_manifests"
State = Literal["complete", "incomplete", "absent"]
_DOWNLOAD_CHUNK = 1 << 20


class DataFetchError(ValueError):
    """A fetch that cannot be done or does not verify; nothing was written to the data folder."""


@dataclass(frozen=True)
class ReferenceDataset:
    """One dataset of the reference-data folder (see the module docstring)."""

    name: str
    title: str
    folder: str  # sub-folder of the data folder
    license: str
    source: str  # official publisher page or DOI
    get_it: str  # what to pass to `medcoder data fetch NAME --from ...`
    used_for: str
    credentialed: bool = False
    required: Callable[[Path], list[Path]] | None = None  # credentialed: the loader's own file check
    manifest_file: Path | None = None  # default resources/data_manifests/<name>.sha256

    def manifest_path(self) -> Path:
        return self.manifest_file or resources_dir() / MANIFEST_DIR / f"{self.name}.sha256"

    def manifest(self) -> dict[str, str]:
        """relative POSIX path -> SHA-256 of every file of a complete copy (empty for credentialed data)."""
        if self.credentialed:
            return {}
        return read_manifest(self.manifest_path())


def _mimic_iv_files(folder: Path) -> list[Path]:
    from medcoder.data import mimic

    return mimic.required_files_iv(folder)


def _mimic_iii_files(folder: Path) -> list[Path]:
    from medcoder.data import mimic

    return mimic.required_files_iii(folder)


_PHYSIONET = (
    "credentialed: sign the PhysioNet data use agreement, download it yourself, then check the folder with "
    "`medcoder data fetch {name} --from DIR`"
)
REFERENCE_DATASETS: tuple[ReferenceDataset, ...] = (
    ReferenceDataset(
        name="codiesp",
        title="CodiEsp corpus (CLEF eHealth 2020), with English translations",
        folder="codiesp",
        license="CC BY 4.0",
        source="https://doi.org/10.5281/zenodo.3837305 (Miranda-Escalada et al., 2020)",
        get_it="the corpus zip from the Zenodo record (final_dataset_v4_to_publish.zip)",
        used_for="external benchmark (`experiment=codiesp_lora`, `medcoder baseline --dataset codiesp`)",
    ),
    ReferenceDataset(
        name="icd11",
        title="WHO ICD-10 to ICD-11 mapping tables and ICD-11 MMS simple tabulation (2024-01)",
        folder="icd11",
        license="CC BY-ND 3.0 IGO",
        source="https://icd.who.int/browse/2024-01/mms/en (Info > downloads)",
        get_it="the WHO mapping-table zip and the simple-tabulation zip (pass --from twice)",
        used_for="rebuilding the shipped ICD-11 translation table (`scripts/build_icd11_table.py`)",
    ),
    ReferenceDataset(
        name="mdace",
        title="MDACE code-evidence annotations (3M, ACL 2023)",
        folder="mdace",
        license="MIT",
        source="https://github.com/3mcloud/MDACE",
        get_it="https://github.com/3mcloud/MDACE/archive/refs/heads/main.zip "
        "(note text is MIMIC-III: bring it yourself)",
        used_for="evidence-grounding evaluation on real notes (`load_dataset('mdace', noteevents=...)`)",
    ),
    ReferenceDataset(
        name="mtsamples",
        title="MTSamples medical transcriptions (JSON lines)",
        folder="mtsamples",
        license="CC0 1.0 (as published on Kaggle)",
        source="https://mtsamples.com (Kaggle: tboyle10/medicaltranscriptions)",
        get_it="mtsamples.jsonl: the Kaggle CSV, one JSON object per row "
        "(pandas to_json(orient='records', lines=True))",
        used_for="unlabelled real notes for throughput and robustness checks",
    ),
    ReferenceDataset(
        name="mimic-iv",
        title="MIMIC-IV (hosp) + MIMIC-IV-Note, with Edin et al. 2023 split files",
        folder="mimic-iv",
        license="PhysioNet Credentialed Health Data License 1.5.0",
        source="https://physionet.org/content/mimiciv/ and https://physionet.org/content/mimic-iv-note/",
        get_it=_PHYSIONET.format(name="mimic-iv"),
        used_for="`load_dataset('mimic-iv')`",
        credentialed=True,
        required=_mimic_iv_files,
    ),
    ReferenceDataset(
        name="mimic-iii",
        title="MIMIC-III v1.4, with Edin et al. 2023 split files",
        folder="mimic-iii",
        license="PhysioNet Credentialed Health Data License 1.5.0",
        source="https://physionet.org/content/mimiciii/1.4/",
        get_it=_PHYSIONET.format(name="mimic-iii"),
        used_for="`load_dataset('mimic-iii')`; MDACE note text",
        credentialed=True,
        required=_mimic_iii_files,
    ),
)
BY_NAME: dict[str, ReferenceDataset] = {d.name: d for d in REFERENCE_DATASETS}


def get_dataset(name: str) -> ReferenceDataset:
    if name not in BY_NAME:
        raise ValueError(f"unknown reference dataset {name!r}; expected one of: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def fetch_command(name: str) -> str:
    """The command that provides dataset `name`, for skip reasons and error messages."""
    dataset = get_dataset(name)
    return f"medcoder data fetch {name} --from <{dataset.get_it}>"


# ---------------------------------------------------------------- manifests
def read_manifest(path: Path) -> dict[str, str]:
    """A `sha256sum`-format file (`<hex>  <relative path>` per line) as {path: hex}."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64:
            raise ValueError(f"{path}:{lineno}: expected '<sha256>  <path>'")
        out[rel] = digest
    return out


def write_manifest(folder: Path, out: Path) -> int:
    """Write the manifest of every file under `folder` (sorted; what `scripts/make_data_manifests.py` runs)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    lines = [f"{file_sha256(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


# ---------------------------------------------------------------- status
@dataclass
class DatasetStatus:
    """What `status` found for one dataset in one folder. `problems` are short, text-free lines."""

    dataset: ReferenceDataset
    path: Path
    state: State
    files: int = 0
    problems: list[str] = field(default_factory=list)


def check_folder(dataset: ReferenceDataset, folder: Path, manifest: dict[str, str] | None = None) -> DatasetStatus:
    """Compare `folder` with the dataset's manifest (or, for credentialed data, the loader's file list).

    Sizes and presence are checked for every file before hashing, so a missing folder costs nothing.
    """
    if not folder.is_dir():
        return DatasetStatus(dataset, folder, "absent")
    if dataset.credentialed:
        assert dataset.required is not None
        try:
            found = dataset.required(folder)
        except FileNotFoundError as err:
            return DatasetStatus(dataset, folder, "incomplete", problems=[str(err)])
        return DatasetStatus(dataset, folder, "complete", files=len(found))
    manifest = dataset.manifest() if manifest is None else manifest
    missing = [rel for rel in manifest if not (folder / rel).is_file()]
    changed = [rel for rel in manifest if rel not in missing and file_sha256(folder / rel) != manifest[rel]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} of {len(manifest)} files missing (first: {missing[0]})")
    if changed:
        problems.append(f"{len(changed)} files differ from the manifest (first: {changed[0]})")
    state: State = "complete" if not problems else "incomplete"
    return DatasetStatus(dataset, folder, state, files=len(manifest) - len(missing), problems=problems)


def status(data_dir: Path | None = None) -> list[DatasetStatus]:
    """The status of every known dataset under `data_dir` (default: the reference-data folder)."""
    root = shared_data_dir() if data_dir is None else Path(data_dir)
    return [check_folder(d, root / d.folder) for d in REFERENCE_DATASETS]


def is_complete(name: str, data_dir: Path | None = None) -> bool:
    """True when dataset `name` is in the data folder and matches its manifest (what data tests skip on)."""
    dataset = get_dataset(name)
    root = shared_data_dir() if data_dir is None else Path(data_dir)
    return check_folder(dataset, root / dataset.folder).state == "complete"


# ---------------------------------------------------------------- fetch
def _download(url: str, dest_dir: Path) -> Path:
    name = PurePosixPath(urllib.request.urlparse(url).path).name or "download"
    dest = dest_dir / name
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:  # noqa: S310 (http/https only)
            shutil.copyfileobj(response, out, _DOWNLOAD_CHUNK)
    except OSError as err:  # URLError and HTTPError are OSErrors
        raise DataFetchError(f"cannot download {url}: {err}") from None
    return dest


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return not path.is_absolute() and ".." not in path.parts


def _unpack(archive: Path, dest: Path) -> None:
    """Unpack a zip or tar archive, refusing members that would land outside `dest` or are links."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            bad = [m.filename for m in zf.infolist() if not _safe_member(m.filename)]
            if bad:
                raise DataFetchError(f"{archive.name}: refusing archive member outside the target folder: {bad[0]}")
            zf.extractall(dest)
        return
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            if not _safe_member(member.name) or member.issym() or member.islnk() or member.isdev():
                raise DataFetchError(
                    f"{archive.name}: refusing archive member {member.name} (link, device or outside path)"
                )
        tf.extractall(dest, filter="data")


def _stage(source: str, work: Path, manifest: dict[str, str]) -> Path:
    """A local folder holding the source's files: downloaded and/or unpacked under `work`."""
    if source.startswith(("http://", "https://")):
        path = _download(source, work)
    elif "://" in source:
        raise DataFetchError(f"--from {source}: only http(s) URLs and local paths are supported")
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise DataFetchError(f"--from {source}: no such file or folder")
    if path.is_dir():
        return path
    if zipfile.is_zipfile(path) or tarfile.is_tarfile(path):
        target = work / f"unpacked-{len(list(work.iterdir()))}"
        _unpack(path, target)
        return target
    if len(manifest) == 1:  # a one-file dataset given as that file
        target = work / f"single-{len(list(work.iterdir()))}"
        target.mkdir()
        shutil.copy2(path, target / next(iter(manifest)))
        return target
    raise DataFetchError(f"--from {source}: not a zip or tar archive, and the dataset has {len(manifest)} files")


def _anchor(staged: Path, manifest: dict[str, str]) -> Path | None:
    """The folder inside `staged` that plays the role of the dataset folder: the one under which the
    most manifest paths exist (an archive usually wraps the files in a top folder of its own)."""
    candidates: dict[Path, int] = {}
    for rel in manifest:
        name = PurePosixPath(rel).name
        for hit in staged.rglob(name):
            if hit.is_file() and hit.as_posix().endswith("/" + rel):
                root = Path(hit.as_posix()[: -len(rel) - 1])
                candidates[root] = candidates.get(root, 0) + 1
        if candidates:
            break  # the first manifest file fixes the candidate roots; counting all is the check below
    if not candidates:
        return None
    return max(candidates, key=lambda root: sum((root / rel).is_file() for rel in manifest))


def fetch(
    name: str, sources: list[str], data_dir: Path | None = None, *, dataset: ReferenceDataset | None = None
) -> DatasetStatus:
    """Download/unpack `sources`, verify them against the manifest, then copy them into the data folder.

    Nothing is written to the data folder unless every manifest file is present with its checksum.
    Credentialed datasets are never copied: the folder given is checked in place. `dataset` replaces
    the catalog entry (tests use their own small manifests).
    """
    dataset = dataset or get_dataset(name)
    root = shared_data_dir() if data_dir is None else Path(data_dir)
    if not sources:
        raise DataFetchError(f"{name}: pass --from with {dataset.get_it}")
    if dataset.credentialed:
        if any("://" in s for s in sources) or len(sources) != 1:
            raise DataFetchError(f"{name} is {dataset.get_it.replace('`', '')}: nothing is downloaded for it")
        checked = check_folder(dataset, Path(sources[0]).expanduser())
        if checked.state != "complete":
            raise DataFetchError(f"{name}: {checked.path}: " + ("; ".join(checked.problems) or "no such folder"))
        return checked
    manifest = dataset.manifest()
    target = root / dataset.folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".fetch-{name}-", dir=root) as tmp:
        work = Path(tmp)
        anchors = [a for a in (_anchor(_stage(s, work, manifest), manifest) for s in sources) if a is not None]
        located = {rel: next((a / rel for a in anchors if (a / rel).is_file()), None) for rel in manifest}
        missing = [rel for rel, path in located.items() if path is None]
        if missing:
            raise DataFetchError(
                f"{name}: {len(missing)} of {len(manifest)} files are not in the source "
                f"(first: {missing[0]}); expected {dataset.get_it}"
            )
        changed = [rel for rel, path in located.items() if file_sha256(path) != manifest[rel]]
        if changed:
            raise DataFetchError(
                f"{name}: {len(changed)} files differ from the shipped checksums (first: {changed[0]}); "
                "another release of the data, or a damaged download"
            )
        staging = work / "verified"
        for rel, path in located.items():
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            if path.is_relative_to(work):  # downloaded or unpacked here: move, do not copy gigabytes
                os.replace(path, staging / rel)
            else:  # the user's own folder: leave it as it is
                shutil.copy2(path, staging / rel)
        for anchor in anchors:  # the rest of the release (README, LICENSE, Spanish originals) comes along
            if anchor.is_relative_to(work):
                shutil.copytree(anchor, staging, dirs_exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return check_folder(dataset, target, manifest)


# ---------------------------------------------------------------- CLI (`medcoder data ...`, arguments in medcoder.cli)
def cmd_status(args) -> int:
    """`medcoder data status`: one block per dataset: state, folder, license, source, how to get it."""
    root = Path(args.data_dir) if args.data_dir else shared_data_dir()
    print(f"reference-data folder: {root} (MEDCODER_DATA_DIR, else <project>/data, else <project>/../shared/data)")
    for st in status(root):
        d = st.dataset
        detail = f"{st.files} files verified" if st.state == "complete" else "; ".join(st.problems) or "not present"
        print(
            f"\n{d.name}: {st.state.upper()} ({detail})\n  {d.title}\n  folder:  {st.path}\n"
            f"  license: {d.license}\n  source:  {d.source}\n  used for: {d.used_for}"
        )
        if st.state != "complete":
            print(f"  get it:  {fetch_command(d.name)}" if not d.credentialed else f"  get it:  {d.get_it}")
    return 0


def cmd_fetch(args) -> int:
    """`medcoder data fetch NAME --from URL_OR_PATH [--from ...]`: verified copy into the data folder."""
    root = Path(args.data_dir) if args.data_dir else shared_data_dir()
    result = fetch(args.name, args.sources, root)
    if result.dataset.credentialed:
        print(
            f"{args.name}: {result.path} has the {result.files} files the loader needs; nothing was copied. "
            f"Use it with MEDCODER_DATA_DIR=<folder holding {result.dataset.folder}/> or the loader's data_dir option."
        )
    else:
        print(f"{args.name}: {result.files} files verified against the shipped checksums -> {result.path}")
    return 0
