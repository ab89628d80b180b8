"""How the registry code reaches MLflow: one client, the alias names, and version look-ups.

Every registry function takes an optional `MlflowClient` so tests and scripts can point it at any
store without touching MLflow's global state; None means the project default store
(`paths.default_tracking_uri()`, i.e. `MLFLOW_TRACKING_URI` or `<project>/mlflow.db`).

Problems a user can fix (no such run, model, alias or version) become `RegistryError`, a
ValueError, so `medcoder register|promote` print one line and exit 2 instead of a stack trace.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from medcoder.paths import default_tracking_uri

MODEL_NAME = "medcoder"
CHAMPION = "champion"
CHALLENGER = "challenger"


class RegistryError(ValueError):
    """A registry operation that cannot proceed for a reason the user can fix (named in the message)."""


def get_client(client: MlflowClient | None = None) -> MlflowClient:
    """`client` itself, or a client for the project's default tracking and registry store."""
    if client is not None:
        return client
    uri = default_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def is_not_found(err: MlflowException) -> bool:
    return err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version `name@alias` points to, or None when the model or the alias does not exist.

    Read from the registered model's alias map, because stores disagree on the error a missing
    alias raises (the SQL store says INVALID_PARAMETER_VALUE, not RESOURCE_DOES_NOT_EXIST).
    """
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as err:
        if is_not_found(err):
            return None
        raise
    version = aliases.get(alias)
    return None if version is None else client.get_model_version(name, str(version))


def resolve_version(client: MlflowClient, name: str, ref: str | int) -> ModelVersion:
    """A version from an alias (`champion`) or a version number (`3`); RegistryError if there is none.

    Callers resolve an alias ONCE and then work with the version number, so an alias moved by
    someone else half-way through an evaluation cannot mix two versions in one result.
    """
    ref = str(ref)
    if ref.isdigit():
        try:
            return client.get_model_version(name, ref)
        except MlflowException as err:
            if is_not_found(err):
                raise RegistryError(f"registered model {name!r} has no version {ref}") from None
            raise
    version = alias_version(client, name, ref)
    if version is None:
        raise RegistryError(f"registered model {name!r} has no alias @{ref} (or the model is not registered)")
    return version
