"""`medcoder promote`: make the challenger champion only when it passes the gates on a pinned set.

Sequence:
1. resolve `@challenger` and `@champion` to version numbers once (a concurrent alias move cannot
   mix versions into one decision); promoting the version that is already champion is an error;
2. refuse an evaluation set that cannot decide (`eval_guard`: too little gold, or notes the
   challenger or champion learned from), before anything is scored;
3. score both FROM THE REGISTRY through the prediction contract on the SAME pinned evaluation set
   (`contract_eval`, every code of the set in scope, so different label spaces compare fairly);
4. apply the gates (`gates.check_gates`; no champion = first promotion = absolute gates only; a challenger
   that packages an ONNX fast path is also held to `min_fast_path_agreement` by its `fast_path_agreement` tag);
5. record the decision on the challenger version as tags, whatever it is:
   `promotion.decision` (promoted | refused), `promotion.reason`, `promotion.at`,
   `promotion.eval_set_sha256`, `promotion.eval_set`, `promotion.eval_set.provenance` (JSON: file and
   records sha256, gold counts, how training overlap was checked per version), `promotion.champion_version`,
   `promotion.gates` (JSON), `promotion.table` (JSON, the gate table), the gated metrics as
   `promotion.challenger.<metric>` / `promotion.champion.<metric>`, and every contract metric as
   JSON in `promotion.challenger.metrics` / `promotion.champion.metrics` (a later promote run
   overwrites these: they describe the version's latest decision);
6. only when the gates pass, move `@champion` to the challenger and append the move, with the
   decision as its reason, to the alias history. A refusal never moves an alias (and, since no
   alias moved, adds nothing to the alias history: the refusal lives in the version's tags).

A challenger whose output breaks the contract so badly it cannot be scored (ContractError) is
refused with that reason; any other failure (store unreachable, model not loadable) raises and
records nothing, because no decision was made.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.tracking import MlflowClient

from medcoder.audit.entry import AuditEntry
from medcoder.audit.store import AuditLog
from medcoder.evaluation.contract import DEFAULT_BATCH_SIZE, EvalSet, load_eval_set
from medcoder.inference.contract import ContractError
from medcoder.paths import config_dir
from medcoder.registry.alias_history import record_alias_change
from medcoder.registry.client import CHALLENGER, CHAMPION, MODEL_NAME, RegistryError, alias_version, get_client
from medcoder.registry.eval_guard import check_gold, check_overlap, provenance
from medcoder.registry.gates import TABLE_COLUMNS, GateDecision, Gates, check_gates, fast_path_metrics, load_gates
from medcoder.registry.scoring import evaluate_registered

log = logging.getLogger(__name__)

DEFAULT_GATES_FILE = config_dir() / "registry" / "default.yaml"
DECISION_PROMOTED, DECISION_REFUSED = "promoted", "refused"


def _fmt(value: float) -> str:
    return repr(float(value)) if math.isfinite(value) else "NaN"


def _record_decision(
    client: MlflowClient,
    name: str,
    version: str,
    decision: GateDecision,
    eval_set: EvalSet,
    champion_version: str | None,
    gates: Gates,
    challenger_metrics: dict[str, float] | None,
    champion_metrics: dict[str, float] | None,
    eval_set_provenance: str,
) -> None:
    """Write the decision and its numbers onto the challenger version (see module docstring)."""
    tags = {
        "promotion.decision": DECISION_PROMOTED if decision.passed else DECISION_REFUSED,
        "promotion.reason": "; ".join(decision.reasons),
        "promotion.at": datetime.now(UTC).isoformat(timespec="seconds"),
        "promotion.eval_set_sha256": eval_set.sha256,
        "promotion.eval_set": f"{eval_set.path.name} ({len(eval_set.records)} notes)",
        "promotion.eval_set.provenance": eval_set_provenance,
        "promotion.champion_version": champion_version or "none",
        "promotion.gates": json.dumps(gates.to_dict(), sort_keys=True),
        "promotion.table": decision.table.to_json(orient="records"),
    }
    for role, metrics in (("challenger", challenger_metrics), ("champion", champion_metrics)):
        if metrics is None:
            continue
        for metric in sorted(set(decision.table["metric"])):
            tags[f"promotion.{role}.{metric}"] = _fmt(metrics.get(metric, math.nan))
        # every contract metric, for the card and audits; NaN (undefined) as JSON null
        tags[f"promotion.{role}.metrics"] = json.dumps(
            {k: (v if math.isfinite(v) else None) for k, v in sorted(metrics.items())}, allow_nan=False
        )
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def promote(
    name: str = MODEL_NAME,
    eval_set: str | Path | EvalSet | None = None,
    gates: Gates | None = None,
    client: MlflowClient | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    audit: AuditLog | None = None,
) -> GateDecision:
    """Gate `@challenger` against `@champion` on `eval_set`; move `@champion` only if it passes. With `audit`,
    the decision (promoted or refused, and why) is written to the audit log as a `promote` entry."""
    if eval_set is None:
        raise ValueError("promote needs a pinned evaluation set (contract JSONL with gold codes): pass eval_set")
    client = get_client(client)
    gates = gates or load_gates(DEFAULT_GATES_FILE)
    eval_set = eval_set if isinstance(eval_set, EvalSet) else load_eval_set(eval_set)

    # 1. who is who, resolved once
    challenger = alias_version(client, name, CHALLENGER)
    if challenger is None:
        raise RegistryError(f"registered model {name!r} has no @{CHALLENGER}: register a run first (medcoder register)")
    champion = alias_version(client, name, CHAMPION)
    if champion is not None and champion.version == challenger.version:
        raise RegistryError(f"{name} v{challenger.version} is already @{CHAMPION}; register a new run to challenge it")
    champion_version = None if champion is None else str(champion.version)

    # 2. an evaluation set that can decide, and that neither model learned from
    counts = check_gold(eval_set.path, eval_set.records, gates, has_champion=champion is not None)
    overlap = {
        role: check_overlap(client, version, role, eval_set.path, eval_set.records, eval_set.sha256)
        for role, version in (("challenger", challenger), ("champion", champion))
        if version is not None
    }
    eval_set_provenance = provenance(eval_set.path, eval_set.sha256, counts, overlap)

    # 3. both scored from the registry on the same set, same scope
    champion_metrics = None
    if champion is not None:
        champion_metrics = evaluate_registered(
            champion.version, eval_set, name=name, client=client, batch_size=batch_size
        ).metrics
    try:
        challenger_metrics = evaluate_registered(
            challenger.version, eval_set, name=name, client=client, batch_size=batch_size
        ).metrics | fast_path_metrics(challenger.tags or {})
    except ContractError as err:
        decision = GateDecision(
            passed=False,
            reasons=[f"challenger output cannot be scored: {err}"],
            table=pd.DataFrame(columns=list(TABLE_COLUMNS)),
        )
        _record_decision(
            client,
            name,
            challenger.version,
            decision,
            eval_set,
            champion_version,
            gates,
            None,
            champion_metrics,
            eval_set_provenance,
        )
        return decision

    # 4. gates, 5. the record, 6. the move
    decision = check_gates(challenger_metrics, champion_metrics, gates)
    _record_decision(
        client,
        name,
        challenger.version,
        decision,
        eval_set,
        champion_version,
        gates,
        challenger_metrics,
        champion_metrics,
        eval_set_provenance,
    )
    if audit is not None:
        audit.append(promotion_entry(name, challenger, decision, eval_set.sha256))
    if decision.passed:
        client.set_registered_model_alias(name, CHAMPION, challenger.version)
        was = f"v{champion_version}" if champion_version else "no champion"
        reason = f"promoted over {was} on eval set {eval_set.sha256[:12]}: {'; '.join(decision.reasons)}"
        record_alias_change(client, CHAMPION, challenger.version, reason[:2000], name=name)
        log.info("%s v%s is now @%s", name, challenger.version, CHAMPION)
    else:
        log.info("%s v%s refused: %s", name, challenger.version, "; ".join(decision.reasons))
    return decision


def promotion_entry(name: str, challenger: Any, decision: GateDecision, eval_set_sha256: str) -> AuditEntry:
    """The audit entry of a promotion decision: who ran it (MEDCODER_ACTOR, else the OS user), which version
    and manifest, promoted or refused, and the gates' reasons."""
    import getpass

    return AuditEntry(
        actor=os.environ.get("MEDCODER_ACTOR") or getpass.getuser(), role="admin", action="promote",
        model_name=name, model_version=str(challenger.version),
        manifest_sha256=(challenger.tags or {}).get("manifest_sha256"),
        decision="promoted" if decision.passed else "refused",
        reason=f"eval set {eval_set_sha256[:12]}: " + "; ".join(decision.reasons),
    )  # fmt: skip


# ---------------------------------------------------------------- CLI
def cmd_promote(args: argparse.Namespace) -> int:
    """`medcoder promote`: prints the gate table and the decision; exit 0 promoted, 1 refused."""
    decision = promote(
        args.name,
        load_eval_set(args.eval_set),
        load_gates(args.gates or DEFAULT_GATES_FILE),
        batch_size=args.batch_size,
        audit=AuditLog(args.audit),
    )
    with pd.option_context("display.width", 160, "display.max_columns", None):
        print(decision.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(("PROMOTED: " if decision.passed else "REFUSED: ") + "; ".join(decision.reasons))
    return 0 if decision.passed else 1
