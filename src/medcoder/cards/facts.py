"""Everything the model card states, read from MLflow for one registered model version.

The card must never contain a typed number, so collecting (this module) is separate from writing
(`model_card`): the writer only formats what is here. What is read: the registry entry (version,
aliases, version and model tags), the run that produced the version (params, metrics, tags), a
fixed list of its table and plot artifacts, the latest external-validation run, and the alias
history. Nothing else: no other artifact is opened, so nothing derived from note text that might
sit in a run by mistake can reach the card.

Any item may be missing (an older run, a model family without evidence): it is then absent here
and the card says "Not available". A table that is present but malformed is an error naming the
artifact and run, never a silently empty section.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from medcoder.registry.alias_history import read_alias_history

EXTERNAL_DATASET = "codiesp"  # the platform's external benchmark (data_cards/codiesp.md)
EXTERNAL_RUN_TAG = "external_validation.run_id"  # version tag that links a version to its external run

# artifact path -> columns the card needs from it
TABLES: dict[str, tuple[str, ...]] = {
    "tables/test_per_code.csv": (
        "system",
        "code",
        "train_count",
        "support",
        "tp",
        "fp",
        "fn",
        "precision",
        "recall",
        "f1",
    ),
    "tables/test_f1_by_frequency.csv": ("bucket", "n_codes", "support", "micro_f1", "macro_f1"),
    "tables/test_f1_by_note_length.csv": ("bucket", "n_notes", "support", "micro_f1"),
}
TEXT_COLUMNS: dict[str, type] = {"system": str, "code": str, "bucket": str, "group": str}
# `tables/test_f1_by_<group>.csv` for any other group (sex, age band, payer, setting) is a subgroup table
SUBGROUP_TABLE = re.compile(r"^tables/test_f1_by_(?P<group>[A-Za-z0-9_]+)\.csv$")
NOT_SUBGROUPS: frozenset[str] = frozenset({"frequency", "note_length"})
SUBGROUP_COLUMNS: tuple[str, ...] = ("micro_f1",)
PLOTS: tuple[str, ...] = (
    "plots/test_per_code_f1.png",
    "plots/test_precision_recall.png",
    "plots/test_calibration.png",
    "plots/val_f1_vs_threshold.png",
    "plots/test_f1_by_frequency.png",
)
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[^/@]+))$")


@dataclass
class RunFacts:
    """One MLflow run: identity, params, latest metric values, tags, and the artifacts read from it."""

    run_id: str
    experiment_id: str
    experiment_name: str
    run_name: str
    status: str
    start_time: datetime | None
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    plots: dict[str, bytes] = field(default_factory=dict)

    def metric(self, split: str, key: str) -> float | None:
        """`<split>/<key>` as logged, or None when the run did not log it."""
        return self.metrics.get(f"{split}/{key}")

    def subgroup_tables(self) -> dict[str, pd.DataFrame]:
        """group name -> `tables/test_f1_by_<group>.csv` for demographic or setting subgroups."""
        out = {}
        for path, table in self.tables.items():
            match = SUBGROUP_TABLE.match(path)
            if match and match["group"] not in NOT_SUBGROUPS:
                out[match["group"]] = table
        return out


@dataclass
class ModelFacts:
    """One registered model version and everything recorded about it."""

    tracking_uri: str
    model_uri: str
    name: str
    version: str
    aliases: list[str]
    model_aliases: dict[str, str]  # every alias of the registered model -> version
    created_at: datetime | None
    source: str
    version_tags: dict[str, str]
    model_tags: dict[str, str]
    run: RunFacts
    external: RunFacts | None
    external_selection: str  # how the external run was chosen, or why there is none
    alias_history: list[dict]


# ---------------------------------------------------------------- registry
def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """`models:/name@alias` -> (name, alias, None); `models:/name/3` -> (name, None, "3")."""
    match = _MODEL_URI.match(model_uri.strip())
    if not match:
        raise ValueError(f"model URI {model_uri!r} is not models:/<name>@<alias> or models:/<name>/<version>")
    version = match["version"]
    if version is not None and not version.isdigit():
        raise ValueError(
            f"model URI {model_uri!r}: {version!r} is not a version number; medcoder uses aliases, not stages "
            "(models:/<name>@champion)"
        )
    return match["name"], match["alias"], version


def _model_version(client: MlflowClient, model_uri: str, tracking_uri: str):
    name, alias, version = parse_model_uri(model_uri)
    try:
        if alias is not None:
            return client.get_model_version_by_alias(name, alias)
        return client.get_model_version(name, version)
    except MlflowException as err:
        if err.error_code != "RESOURCE_DOES_NOT_EXIST" and "not found" not in str(err).lower():
            raise
        what = f"alias {alias!r}" if alias is not None else f"version {version}"
        raise ValueError(
            f"registered model {name!r} has no {what} (or does not exist) in {display_uri(tracking_uri)}; register a "
            f"version with `medcoder register` or pick one that exists (models:/{name}/<version>)"
        ) from None


def display_uri(uri: str) -> str:
    """A tracking URI fit for messages: any password in it replaced by ***."""
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@", 1)
    return uri


def _datetime(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


# ---------------------------------------------------------------- runs and artifacts
def _run_facts(client: MlflowClient, run: Run, tables: bool) -> RunFacts:
    experiment = client.get_experiment(run.info.experiment_id)
    facts = RunFacts(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        experiment_name=experiment.name,
        run_name=run.info.run_name or "",
        status=run.info.status,
        start_time=_datetime(run.info.start_time),
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        tags=dict(run.data.tags),
    )
    if tables:
        _read_artifacts(client, facts)
    return facts


def _read_artifacts(client: MlflowClient, facts: RunFacts) -> None:
    """Download the known tables and plots that exist; check each table has the columns the card uses."""
    present = {f.path for folder in ("tables", "plots") for f in client.list_artifacts(facts.run_id, folder)}
    wanted_tables = {path: cols for path, cols in TABLES.items() if path in present}
    for path in sorted(present):
        match = SUBGROUP_TABLE.match(path)
        if match and match["group"] not in NOT_SUBGROUPS:
            wanted_tables[path] = SUBGROUP_COLUMNS
    with tempfile.TemporaryDirectory(prefix="medcoder-card-") as tmp:
        for path, columns in wanted_tables.items():
            local = Path(client.download_artifacts(facts.run_id, path, tmp))
            try:
                table = pd.read_csv(local, dtype=TEXT_COLUMNS)  # CPT 99214 stays the string '99214'
            except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
                raise ValueError(f"run {facts.run_id}: artifact {path} is not a readable CSV table ({err})") from None
            missing = [c for c in columns if c not in table.columns]
            if missing:
                raise ValueError(f"run {facts.run_id}: artifact {path} lacks column(s) {', '.join(missing)}")
            facts.tables[path] = table
        for path in PLOTS:
            if path in present:
                facts.plots[path] = Path(client.download_artifacts(facts.run_id, path, tmp)).read_bytes()


def _external_run(client: MlflowClient, run: RunFacts, version_tags: dict[str, str]) -> tuple[RunFacts | None, str]:
    """The external-validation run for this version, and a sentence saying how it was chosen.

    A run named by the version tag `external_validation.run_id` wins. Otherwise the latest finished
    run tagged `dataset=codiesp` in the model's experiment, other than the model's own run. A model
    trained on CodiEsp has no external validation on it: CodiEsp is its own source.
    """
    linked = version_tags.get(EXTERNAL_RUN_TAG)
    if linked:
        try:
            return _run_facts(client, client.get_run(linked), tables=True), (
                f"the run named by the version tag {EXTERNAL_RUN_TAG}"
            )
        except MlflowException:
            raise ValueError(f"version tag {EXTERNAL_RUN_TAG}={linked!r} names a run that does not exist") from None
    if run.tags.get("dataset") == EXTERNAL_DATASET:
        return None, f"the model was trained on {EXTERNAL_DATASET}, so {EXTERNAL_DATASET} is not external to it"
    found = client.search_runs(
        [run.experiment_id],
        filter_string=f"tags.dataset = '{EXTERNAL_DATASET}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=10,
    )
    others = [r for r in found if r.info.run_id != run.run_id]
    if not others:
        return None, (
            f"no finished run tagged dataset={EXTERNAL_DATASET} in experiment {run.experiment_name!r}: `make codiesp` "
            "(with MEDCODER_DATA_DIR naming the folder that holds codiesp/) produces one"
        )
    return _run_facts(client, others[0], tables=True), (
        f"latest finished run tagged dataset={EXTERNAL_DATASET} in experiment {run.experiment_name!r}; "
        f"it is not linked to this version by the tag {EXTERNAL_RUN_TAG}"
    )


# ---------------------------------------------------------------- all of it
def collect_facts(model_uri: str, tracking_uri: str, client: MlflowClient | None = None) -> ModelFacts:
    """Read everything the card needs about the version `model_uri` names (see module docstring)."""
    client = client or MlflowClient(tracking_uri=tracking_uri)
    version = _model_version(client, model_uri, tracking_uri)
    if not version.run_id:
        raise ValueError(
            f"{model_uri} (version {version.version}) was registered without a run id; the card reads its "
            "metrics from the run, so register versions from runs (runs:/<run id>/...)"
        )
    try:
        run = _run_facts(client, client.get_run(version.run_id), tables=True)
    except MlflowException:
        raise ValueError(
            f"{model_uri}: run {version.run_id} of version {version.version} is not in {display_uri(tracking_uri)}"
        ) from None
    registered = client.get_registered_model(version.name)
    version_tags = dict(version.tags)
    external, selection = _external_run(client, run, version_tags)
    return ModelFacts(
        tracking_uri=tracking_uri,
        model_uri=model_uri,
        name=version.name,
        version=str(version.version),
        aliases=sorted(version.aliases or []),
        model_aliases=dict(sorted((registered.aliases or {}).items())),
        created_at=_datetime(version.creation_timestamp),
        source=version.source or "",
        version_tags=version_tags,
        model_tags=dict(registered.tags),
        run=run,
        external=external,
        external_selection=selection,
        alias_history=read_alias_history(client, version.name),
    )
