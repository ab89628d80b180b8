"""The registry's seal over a whole packaged model folder, and fetching a version only through it.

At registration (`register.register_run`) the version gets two tags computed on a downloaded copy
of its model folder: `model_seal.sha256` (`manifest.listing_sha256`) and `model_seal.files` (the
JSON listing, path -> SHA-256, of EVERY file: `MLmodel`, the models-from-code `pyfunc_model.py`,
environment files, `artifacts/coder/...` and any code the model ships). Whoever can change the
stored files cannot change these tags without registry rights, so a changed file, an added one, or
a regenerated manifest beside the files is caught by `fetch_verified`, which downloads a version
and checks it against its tags BEFORE anything in the folder is read or imported. Every consumer
of a registered model goes through it: `medcoder predict --model models:/...`, `medcoder serve`
and promotion's scoring (`contract_eval`).

A version registered before the seal existed has no tags and is refused with what to do (register
its run again): there is nothing trusted to check it against.

One file is not sealed: `registered_model_meta` at the folder's root, which MLflow itself writes
INTO a local store's model folder whenever anyone loads the version through a `models:/` URI
(`mlflow models serve -m models:/...` included). It is MLflow's bookkeeping (the registered name and
version as YAML), never code; it is left out of the seal and deleted from the downloaded copy before
the check, so the copy that is used holds exactly the sealed files.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from medcoder.inference.manifest import folder_listing, listing_sha256, verify_listing
from medcoder.registry.client import RegistryError

SEAL_SHA256_TAG = "model_seal.sha256"
SEAL_FILES_TAG = "model_seal.files"
MLFLOW_BOOKKEEPING = "registered_model_meta"  # written by MLflow into model folders loaded via models:/


def _without_mlflow_bookkeeping(model_dir: Path) -> Path:
    """Delete MLflow's `registered_model_meta` from a DOWNLOADED copy (module docstring); returns the folder."""
    bookkeeping = model_dir / MLFLOW_BOOKKEEPING
    if bookkeeping.is_file() and not bookkeeping.is_symlink():
        bookkeeping.unlink()
    return model_dir


def seal_tags(model_dir: str | Path) -> dict[str, str]:
    """The two version tags that seal `model_dir` (a downloaded copy of what the store serves)."""
    listing = folder_listing(_without_mlflow_bookkeeping(Path(model_dir)))
    return {
        SEAL_SHA256_TAG: listing_sha256(listing),
        SEAL_FILES_TAG: json.dumps(listing, sort_keys=True, separators=(",", ":")),
    }


def verify_registered_seal(model_dir: str | Path, version: ModelVersion) -> str:
    """Check a downloaded folder against `version`'s seal tags; returns the seal hash.

    Raises RegistryError for a version without a seal, TamperedArtifactError (naming the file) for
    a folder that is not what was registered.
    """
    expected, files = version.tags.get(SEAL_SHA256_TAG), version.tags.get(SEAL_FILES_TAG)
    if not expected or not files:
        raise RegistryError(
            f"{version.name} v{version.version} has no model seal "
            "(registered before medcoder sealed whole model folders): "
            f"register its run again (medcoder register --run-id {version.run_id}) and promote the new version"
        )
    try:
        listing = json.loads(files)
    except ValueError:
        raise RegistryError(f"{version.name} v{version.version}: tag {SEAL_FILES_TAG} is not valid JSON") from None
    if not isinstance(listing, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in listing.items()):
        raise RegistryError(f"{version.name} v{version.version}: tag {SEAL_FILES_TAG} is not a path -> sha256 object")
    verify_listing(model_dir, listing, expected)
    return expected


def fetch_verified(client: MlflowClient, version: ModelVersion, dst_dir: str | Path) -> Path:
    """Download `version`'s model folder from the CLIENT's registry into `dst_dir` and verify its seal.

    Asks the client where the files are rather than loading `models:/` URIs, which MLflow resolves
    through its GLOBAL registry URI and which write an extra `registered_model_meta` file.
    """
    import mlflow

    location = client.get_model_version_download_uri(version.name, str(version.version))
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(dst_dir), tracking_uri=client.tracking_uri
        )
    )
    verify_registered_seal(_without_mlflow_bookkeeping(local), version)
    return local
