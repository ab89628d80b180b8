"""The denial-risk history a registered version was scored with, for `medcoder predict --denial-risk`.

`medcoder denial-loop compare` logs the history the challenger's claims were routed by to the challenger's run
(`denial_risk/risk_model.json`) and names it in the version's `denial_risk` tag, so the history travels with the
version. A serving team that pulls `models:/medcoder@champion` passes the same URI to `--denial-risk` and gets
the history that version was gated with, not a file someone copied by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from medcoder.defaults import REGISTRY_URI
from medcoder.registry.client import RegistryError

DENIAL_RISK_TAG = "denial_risk"  # the model-version tag `medcoder denial-loop compare` sets
_RUN_ARTIFACT = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})/(?P<path>.+)$")


def fetch_denial_risk(spec: str, dst_dir: Path, tracking_uri: str | None = None) -> Path:
    """A local file holding the history `spec` names: a file path as given; `runs:/<run_id>/<artifact path>`
    downloaded from the run; `models:/<name>@<alias>` or `models:/<name>/<version>` resolved once to a version,
    whose `denial_risk` tag names the history. A version without the tag, or a run without the artifact, is an
    error saying which and where."""
    if not spec.startswith(("models:/", "runs:/")):
        return Path(spec)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from medcoder.paths import default_tracking_uri
    from medcoder.registry.client import resolve_version
    from medcoder.registry.fetch import _first_line

    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifact = spec
    if spec.startswith("models:/"):
        match = REGISTRY_URI.match(spec)
        if match is None:
            raise RegistryError(f"{spec!r} is not a registry URI: write models:/<name>@<alias> or models:/<name>/<n>")
        try:
            version = resolve_version(client, match["name"], match["alias"] or match["version"])
        except RegistryError as err:
            raise RegistryError(f"{spec}: {err}, in {uri}") from None
        artifact = version.tags.get(DENIAL_RISK_TAG, "")
        if not artifact:
            raise RegistryError(
                f"{spec} (version {version.version}) has no {DENIAL_RISK_TAG!r} tag: no denial-risk history was "
                "logged with it (`medcoder denial-loop compare` logs one); pass a history file instead"
            )
    run = _RUN_ARTIFACT.match(artifact)
    if run is None:
        raise RegistryError(f"{artifact!r} is not a run artifact URI: write runs:/<run_id>/<artifact path>")
    dst_dir.mkdir(parents=True, exist_ok=True)
    try:
        return Path(client.download_artifacts(run["run_id"], run["path"], str(dst_dir)))
    except (MlflowException, OSError) as exc:
        reason = _first_line(exc)
        raise RegistryError(f"cannot download the denial-risk history {artifact} from {uri}: {reason}") from None
