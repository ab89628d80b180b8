"""A packaged model's sealed export, fetched to build on (`medcoder-train init_from=<model>`).

Retraining from the champion (the denial-feedback loop fine-tunes from its weights) needs the champion's
sealed export folder on local disk: `encoder/` (LoRA merged), `heads.safetensors`, `coder.json`. `<model>` is

    models:/<name>@<alias>, models:/<name>/<version>   a registered version: an alias is resolved ONCE to a
                                                       version number (an alias moved meanwhile cannot mix two
                                                       versions), and that version is downloaded and checked
                                                       against the seal recorded at registration
                                                       (`seal.fetch_verified`) before anything in it is read;
    runs:/<run_id>/model                               a training run's packaged model (nothing registered
                                                       vouches for it: its export's manifest is checked, and the
                                                       manifest hash its MLmodel metadata names, when present);
    a local folder                                     an export folder (MANIFEST.sha256.json) or an MLflow model
                                                       folder holding one, used in place once its manifest checks.

Every case ends in a verified sealed folder; no code from the model folder is ever imported (the same trust
rule as `medcoder predict`). Problems a user can fix (no such alias, version, run or folder; no sealed folder)
are `RegistryError`s naming the model and the store.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from medcoder.defaults import REGISTRY_URI
from medcoder.paths import default_tracking_uri
from medcoder.registry.client import RegistryError

log = logging.getLogger(__name__)

RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>[^/]+)/?$")


@dataclass(frozen=True)
class SealedExport:
    """A verified sealed export folder and what it came from (for logs and run tags)."""

    spec: str  # as the user gave it
    folder: Path  # the sealed export folder (holds MANIFEST.sha256.json)
    manifest_sha256: str
    version: str | None = None  # the registry version a models:/ spec resolved to


def fetch_sealed_export(spec: str, dst_dir: Path, tracking_uri: str | None = None) -> Path:
    """The local, verified sealed export folder of `spec` (module docstring); downloads go under `dst_dir`."""
    return fetch_export(spec, dst_dir, tracking_uri).folder


def fetch_export(spec: str, dst_dir: Path, tracking_uri: str | None = None) -> SealedExport:
    """`fetch_sealed_export` with the manifest hash and, for a models:/ spec, the version it resolved to.

    `tracking_uri` is the MLflow store of models:/ and runs:/ specs (None: `paths.default_tracking_uri()`).
    """
    if spec.startswith(("models:/", "runs:/")):
        uri = _existing_store(tracking_uri)
        fetch = _fetch_registered if spec.startswith("models:/") else _fetch_run
        return fetch(spec, _empty_folder(dst_dir, spec), uri)
    path = Path(spec)
    if path.is_dir():
        return _verified(spec, path)
    raise RegistryError(
        f"model {spec!r} is neither a models:/<name>@<alias>, models:/<name>/<version> or runs:/<run_id>/model URI "
        "nor an existing folder"
    )


def _existing_store(tracking_uri: str | None) -> str:
    """The store URI; a sqlite file that is not there would be created EMPTY by MLflow, so it is refused."""
    uri = tracking_uri or default_tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(unquote(uri[len("sqlite:///") :]))
        if not db.is_file():
            raise RegistryError(f"no MLflow store at {db} (set MLFLOW_TRACKING_URI to the store that holds the model)")
    return uri


def _empty_folder(dst_dir: Path, spec: str) -> Path:
    """`dst_dir`, created; a folder with files already in it is refused (a stale copy would fail the seal)."""
    dst = Path(dst_dir)
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise RegistryError(f"cannot fetch {spec} into {dst}: it exists and is not an empty folder")
    dst.mkdir(parents=True, exist_ok=True)
    return dst


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _fetch_registered(spec: str, dst: Path, uri: str) -> SealedExport:
    """A registered version, resolved once, downloaded and checked against its registration seal."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from medcoder.registry.client import resolve_version
    from medcoder.registry.seal import fetch_verified

    match = REGISTRY_URI.match(spec)
    if match is None:
        raise RegistryError(f"{spec!r} is not a registry URI: write models:/<name>@<alias> or models:/<name>/<version>")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = resolve_version(client, match["name"], match["alias"] or match["version"])
    except RegistryError as err:
        raise RegistryError(f"{spec}: {err}, in {uri}: register and promote a model first") from None
    try:
        local = fetch_verified(client, version, dst)
    except (MlflowException, OSError) as exc:
        raise RegistryError(
            f"cannot download {spec} (version {version.version}) from {uri}: {_first_line(exc)}"
        ) from None
    fetched = _verified(spec, local, version=str(version.version))
    log.info("%s is version %s of %r (seal verified)", spec, version.version, version.name)
    return fetched


def _fetch_run(spec: str, dst: Path, uri: str) -> SealedExport:
    """A run's packaged model, downloaded; only its sealed export's manifest vouches for it.

    The run's model is looked up through the client (`register.find_packaged_model`), not by downloading the
    runs:/ URI: MLflow 3 resolves a model logged under a run through the GLOBAL tracking URI, not the one given.
    """
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from medcoder.registry.register import find_packaged_model, get_run

    match = RUN_URI.match(spec)
    if match is None:
        raise RegistryError(f"{spec!r} is not a run URI: write runs:/<run_id>/model")
    client = MlflowClient(tracking_uri=uri)
    try:
        source, _ = find_packaged_model(client, get_run(client, match["run_id"]), match["path"])
        local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dst), tracking_uri=uri)
    except RegistryError as err:
        raise RegistryError(f"{spec}: {err}") from None
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"cannot download {spec} from {uri}: {_first_line(exc)}") from None
    return _verified(spec, Path(local))


def _verified(spec: str, model_dir: Path, version: str | None = None) -> SealedExport:
    """The one sealed export folder inside `model_dir`, its manifest checked (and the MLmodel's hash of it)."""
    from medcoder.registry.register import sealed_folder, sealed_manifest_hash

    try:
        folder = sealed_folder(model_dir)
        manifest_sha256 = sealed_manifest_hash(model_dir)
    except RegistryError as err:
        raise RegistryError(f"{spec} ({model_dir}): {err}") from None
    return SealedExport(spec=spec, folder=folder, manifest_sha256=manifest_sha256, version=version)
