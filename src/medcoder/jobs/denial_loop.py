"""`medcoder denial-loop simulate|compare`: the denial-feedback loop of issue 13 on the simulated payers.

simulate: the champion codes a practice's new notes for a year (`denial_world`); claims go to the
    simulated payers month by month and their 835s come back through the ingest path; a coder reviews a
    share of the feedback months' encounters and appeals decide the coding denials; the denial-risk model
    learns from the feedback months and is scored on the held-out months; the retraining corpus is written
    (`feedback/`: the original training notes replayed, plus the feedback notes labelled by corrections
    and upheld denials; val as the champion's; test = the held-out months).
then `medcoder-train experiment=denial_feedback` fine-tunes the champion on it (the challenger);
compare: champion and challenger code the held-out months. The champion's claims go out as built (it is the
    practice before the loop: no remittance history); the challenger is what the loop learnt, its weights
    and the feedback months' denial-risk history, so its claims pass the pre-submission check and a flagged
    claim goes to a coder first (`simulate.reviewed_before_submission`); the history is logged with the
    challenger's version (tag `denial_risk`): the version and the routing it was scored with travel
    together. A third arm, the champion's codes with that history, tells the routing's share from the
    retraining's, and the gate holds the challenger to it. The same payers adjudicate all (a claim's random
    draws depend on its id, and a line's review on its code too, so all meet the same noise); denial,
    coding-denial and clean-claim rates, micro-F1, recall and codes per encounter side by side in MLflow;
    the promotion gate of configs/registry/denial_feedback.yaml decides;
    the report goes to experiments/.
"""

from __future__ import annotations

import json
import logging
import random
import shlex
import sys
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from medcoder.claims.contract_risk import RISK_FLAG
from medcoder.claims.corrections import overturned_keys, read_appeals, read_corrections
from medcoder.claims.edit_check import edit_hits
from medcoder.claims.edits import MueEdits, PtpEdits, read_mue_edits, read_ptp_edits
from medcoder.claims.payer import load_payers
from medcoder.claims.risk import (
    DenialRiskModel,
    LineRisk,
    load_risk_model,
    pre_submission_risks,
    save_risk_model,
)
from medcoder.claims.simulate import (
    denial_rates,
    denials_by,
    month_of,
    reviewed_before_submission,
    simulate_appeals,
    simulate_corrections,
)
from medcoder.claims.submission import Claim
from medcoder.data.schema import NoteRecord, load_notes, write_notes
from medcoder.jobs.denial_changes import retraining_changes
from medcoder.jobs.denial_world import (
    CodedNote,
    bill_and_adjudicate,
    coded_notes,
    feedback_labels,
    read_coded,
    replay_sample,
    split_months,
    world_notes,
    write_coded,
)

log = logging.getLogger(__name__)
HISTORY_ONLY = "champion_with_history"  # compare's third arm: the champion's codes routed by the loop's history


def load_coder(spec: str, work_dir: Path, tracking_uri: str | None) -> tuple[Any, str]:
    """(the exported coder behind `spec`, its manifest hash), fetched with its seal verified into `work_dir`, the
    loop's own copy (`<out>/models/<role>`): a copy an earlier run of the loop left there is replaced, so the
    loop runs again into the same folder (a second retraining compared, `make denial-loop` run twice)."""
    import shutil

    from medcoder.export.artifact import load_exported
    from medcoder.registry.fetch import fetch_sealed_export

    if work_dir.exists():
        shutil.rmtree(work_dir)
    folder = fetch_sealed_export(spec, work_dir, tracking_uri)
    coder = load_exported(folder)
    return coder, coder.manifest_sha256


def risk_scores(
    history: tuple[list, list], held_out: tuple[list, list], scores: Mapping[str, Mapping[str, float]],
    ptp: PtpEdits | None = None, mue: MueEdits | None = None, save_to: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The pre-submission risk (the user's deterministic edits, then the model fitted on the feedback months)
    scored on the held-out months' lines: of the lines a coding-caused CARC denied, the share it flagged per
    CARC; of the flagged lines, the share denied. `scores`: claim id -> the coder's score per billed code. With
    `save_to`, the fitted history is saved there (for `medcoder predict --denial-risk`)."""
    model = DenialRiskModel().fit(*history, scores)
    if save_to is not None:
        save_risk_model(model, save_to)
    claims, remittances = held_out
    flagged = {r.line_control for c in claims for r in pre_submission_risks(c, model, ptp, mue, scores.get(c.claim_id))
               if r.risk >= RISK_FLAG}  # fmt: skip
    per_carc: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    lines = denied_flagged = 0
    for remittance in remittances:
        for line in remittance.lines:
            lines += 1
            carcs = {a.carc for a in line.adjustments if a.is_coding_denial}
            for carc in carcs:
                per_carc[carc][0] += 1
                per_carc[carc][1] += line.line_control in flagged
            denied_flagged += bool(carcs) and line.line_control in flagged
    return {
        "lines": lines,
        "flagged": len(flagged),
        "flagged_precision": denied_flagged / len(flagged) if flagged else None,
        "recall_by_carc": {c: {"denied_lines": n, "flagged": k} for c, (n, k) in sorted(per_carc.items())},
    }


def repeated(notes: Sequence[NoteRecord], times: int) -> list[NoteRecord]:
    """Each feedback note `times` times (the copies' ids suffixed `#2`, `#3`, ...): a few hundred notes of feedback
    beside hundreds of replayed ones are otherwise too small a share of an epoch to move the model."""
    if times < 1:
        raise ValueError(f"feedback_repeat must be at least 1, got {times}")
    return [r if k == 1 else replace(r, id=f"{r.id}#{k}") for r in notes for k in range(1, times + 1)]


def feedback_corpus(
    out: Path, world: Sequence[NoteRecord], coded: dict[str, CodedNote], feedback_ids: set[str],
    corrections_path: Path, appeals_path: Path, claims: list, remittances: list, replay_dir: Path, label_space: Any,
    replay_notes: int | None = None, seed: int = 0, feedback_repeat: int = 1, test_notes: int | None = None,
) -> dict[str, int]:  # fmt: skip
    """Write feedback/{train,val,test}.jsonl: train = the champion's training notes (replayed) + the feedback
    notes with feedback (a coder's corrections, or an upheld coding denial of a service as not medically
    necessary: CARC 50), labelled by `denial_world.feedback_labels`; val = the champion's val; test = the
    held-out months with their gold codes, or `test_notes` of them drawn at random (the training run's test
    scores are for its own record: compare scores the challenger on every held-out note, and scoring them all
    twice costs the loop minutes). Returns the counts."""
    corrections = read_corrections(corrections_path).records
    appeals = read_appeals(appeals_path).records
    overturned = overturned_keys(appeals)
    upheld = {(a.claim_id, a.line_control) for a in appeals if a.outcome == "upheld" and a.carc == "50"}
    by_note: dict[str, list] = defaultdict(list)
    for corr in corrections:
        by_note[corr.note_id].append(corr)
    negatives: dict[str, set[str]] = defaultdict(set)
    claim_of = {c.claim_id: c for c in claims}
    for remittance in remittances:
        claim = claim_of[remittance.claim_id]
        for line in remittance.lines:
            key = (remittance.claim_id, line.line_control)
            if key in upheld and key not in overturned and (remittance.claim_id, None) not in overturned:
                negatives[claim.encounter_id].add(line.procedure)
    learnt = [
        NoteRecord(
            id=r.id,
            text=r.text,
            codes=feedback_labels(coded[r.id], by_note[r.id], negatives[r.id], label_space),
            patient_id=r.patient_id,
            encounter_date=r.encounter_date,
            setting=r.setting,
            age=r.age,
            sex=r.sex,
            payer=r.payer,
        )  # fmt: skip
        for r in world
        if r.id in feedback_ids and (by_note[r.id] or negatives[r.id])
    ]
    held_out = [r for r in world if r.id not in feedback_ids]
    check_test_notes(test_notes)
    if test_notes is not None and test_notes < len(held_out):
        drawn = set(random.Random(seed).sample(range(len(held_out)), test_notes))
        held_out = [r for k, r in enumerate(held_out) if k in drawn]
    out.mkdir(parents=True, exist_ok=True)
    replay = replay_sample(load_notes(replay_dir / "train.jsonl"), replay_notes, seed)
    return {
        "train": write_notes([*replay, *repeated(learnt, feedback_repeat)], out / "train.jsonl"),
        "replayed": len(replay),
        "feedback_notes": len(learnt),
        "corrected_notes": sum(1 for r in learnt if by_note[r.id]),
        "negative_notes": sum(1 for r in learnt if negatives[r.id]),
        "negatives": sum(len(v) for v in negatives.values()),
        "val": write_notes(load_notes(replay_dir / "val.jsonl"), out / "val.jsonl"),
        "test": write_notes(held_out, out / "test.jsonl"),
    }


def check_test_notes(test_notes: int | None) -> None:
    if test_notes is not None and test_notes < 1:
        raise ValueError(f"test_notes must be at least 1, got {test_notes}")


def simulate(
    out: Path, model: str, tracking_uri: str | None, notes: int, seed: int, feedback_months: int,
    payers_path: Path, review_share: float, overturn_rate: float, replay_dir: Path, replay_notes: int | None = None,
    ptp: PtpEdits | None = None, mue: MueEdits | None = None, feedback_repeat: int = 1,
    command: str = "medcoder denial-loop simulate", site: str | None = None, test_notes: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The simulate step (module docstring); returns the summary it also writes to world/summary.json, with
    `command` (how this world was made) for the record. `site`: the dialect the practice's notes are written
    in (`data.synth.sites`), None for the corpus's own authors."""
    from medcoder.data.synth import generate_notes
    from medcoder.data.synth.sites import site_dialect

    check_test_notes(test_notes)  # before the minutes of coding, not after them
    payer_seed, payers = load_payers(payers_path)
    dialect = site_dialect(site) if site is not None else None
    world = world_notes(partial(generate_notes, site=dialect), notes, seed)
    write_notes(world, out / "world" / "notes.jsonl")
    feedback, held_out_months = split_months(world, feedback_months)
    coder, manifest = load_coder(model, out / "models" / "champion", tracking_uri)
    log.info(
        "the champion (%s) codes %d notes of %d months", manifest[:12], len(world), len(feedback) + len(held_out_months)
    )
    coded = coded_notes(coder, world)
    write_coded(coded, out / "world" / "champion.jsonl")
    feedback_ids = {r.id for r in world if month_of(r) in feedback}
    past = [r for r in world if r.id in feedback_ids]
    later = [r for r in world if r.id not in feedback_ids]
    claims, remittances = bill_and_adjudicate(past, coded, payers, payer_seed, out / "x12" / "feedback")
    later_claims, later_remittances = bill_and_adjudicate(later, coded, payers, payer_seed, out / "x12" / "held_out")
    version = manifest[:12]
    corrections = simulate_corrections(past, {k: v.labels() for k, v in coded.items()}, version, review_share, seed)
    appeals = simulate_appeals(claims, remittances, past, overturn_rate, seed)
    for name, rows in (("corrections.jsonl", corrections), ("appeals.jsonl", appeals)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    counts = feedback_corpus(out / "feedback", world, coded, feedback_ids, out / "corrections.jsonl",
                             out / "appeals.jsonl", claims, remittances, replay_dir, coder.label_space, replay_notes,
                             seed, feedback_repeat, test_notes)  # fmt: skip
    summary = {
        "command": command, "model": model, "manifest_sha256": manifest, "notes": len(world), "seed": seed,
        "site": site, "payers": str(payers_path),
        "feedback_months": feedback, "held_out_months": held_out_months,
        "feedback": vars(denial_rates(remittances)), "held_out": vars(denial_rates(later_remittances)),
        "corrections": len(corrections), "appeals": len(appeals),
        "overturned": sum(a["outcome"] == "overturned" for a in appeals),
        "corpus": counts, "risk": risk_scores((claims, remittances), (later_claims, later_remittances),
                                              {k: v.scores for k, v in coded.items()}, ptp, mue,
                                              out / "world" / "risk_model.json"),
    }  # fmt: skip
    (out / "world" / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def user_edits(ptp: str | None, mue: str | None) -> tuple[PtpEdits | None, MueEdits | None]:
    """The NCCI PTP and MUE files a user supplies (none ship: they hold AMA-licensed CPT codes)."""
    return (read_ptp_edits(ptp) if ptp else None, read_mue_edits(mue) if mue else None)


def cmd_simulate(args: Any) -> int:
    from medcoder.defaults import EMBEDDED_NOTES, EMBEDDED_SEED
    from medcoder.paths import config_dir, project_root

    root = project_root()
    corpus = f"embedded-n{EMBEDDED_NOTES}-s{EMBEDDED_SEED}"  # the corpus `make train` trains the champion on
    replay = Path(args.replay_dir) if args.replay_dir else root / "outputs" / "data" / corpus
    payers = Path(args.payers) if args.payers else Path(config_dir()) / "payer" / "simulated.yaml"
    summary = simulate(Path(args.out), args.model, args.tracking_uri, args.notes, args.seed, args.feedback_months,
                       payers, args.review_share, args.overturn_rate, replay, args.replay_notes,
                       *user_edits(args.ptp, args.mue), args.feedback_repeat,
                       shlex.join(["medcoder", *sys.argv[1:]]), None if args.site == "none" else args.site,
                       args.test_notes)  # fmt: skip
    print(json.dumps({k: summary[k] for k in ("feedback", "held_out", "corpus")}, indent=2))
    return 0


def reuse_coded(out: Path) -> dict[str, CodedNote]:
    """The champion's codes written by the simulate step."""
    return read_coded(out / "world" / "champion.jsonl")


# ---------------------------------------------------------------- compare
def coding_metrics(
    records: Sequence[NoteRecord], coded: dict[str, CodedNote], label_space: Any
) -> dict[str, float]:  # fmt: skip
    """Micro precision, recall and F1 of the emitted codes against the gold, over the champion's label space
    and the office E/M levels (what either model can emit), and the mean number of codes per encounter."""
    from medcoder.codes.em import is_office_em

    def scored(labels: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        return {lb for lb in labels if lb in label_space or is_office_em(*lb)}

    tp = fp = fn = 0
    for r in records:
        gold = scored([(c.system, c.code) for c in r.codes])
        emitted = scored(coded[r.id].labels())
        tp, fp, fn = tp + len(gold & emitted), fp + len(emitted - gold), fn + len(gold - emitted)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_note = sum(len(coded[r.id].codes) for r in records) / len(records)
    return {"micro_f1": f1, "precision": precision, "recall": recall, "codes_per_encounter": per_note}


def claim_metrics(remittances: Sequence[Any]) -> dict[str, float]:
    rates = denial_rates(remittances)
    return {"claims/denial_rate": rates.denial_rate, "claims/coding_denial_rate": rates.coding_denial_rate,
            "claims/clean_claim_rate": rates.clean_claim_rate, "claims/count": float(rates.claims),
            "claims/coding_denied": float(rates.coding_denied)}  # fmt: skip


def per_encounter_coding_denial(records: Sequence[NoteRecord], claims: list, remittances: list) -> list[float | None]:
    """1.0 / 0.0 per held-out encounter whose claim a coding-caused CARC denied / did not; None without a claim."""
    outcome = {claim.encounter_id: float(r.coding_denied) for claim, r in zip(claims, remittances)}
    return [outcome.get(r.id) for r in records]


def routing_policy(
    history: DenialRiskModel, codes: Mapping[str, CodedNote], sent: list[str], ptp: PtpEdits | None = None,
    mue: MueEdits | None = None,
) -> Callable[[Claim, NoteRecord], Claim | None]:  # fmt: skip
    """What happens to a claim coded by `codes` before it goes out, under the loop's history (and the user's
    edits): the pre-submission check with that coder's scores, and a claim with a line at risk >= RISK_FLAG goes
    to a coder (`simulate.reviewed_before_submission`); the id of each claim sent to the coder is appended to
    `sent`, so the report counts what the routing did, not a second pass over the claims."""

    def check(claim: Claim) -> list[LineRisk]:
        return pre_submission_risks(claim, history, ptp, mue, codes[claim.encounter_id].scores)

    def review(claim: Claim, record: NoteRecord) -> Claim | None:
        out = reviewed_before_submission(claim, record, check, RISK_FLAG)
        if out is not claim:
            sent.append(claim.claim_id)
        return out

    return review


def latest_challenger_run(tracking_uri: str | None) -> str:
    """The newest finished training run that started from another model's weights (init_from)."""
    from mlflow import MlflowClient

    from medcoder.paths import default_tracking_uri

    client = MlflowClient(tracking_uri or default_tracking_uri())
    experiment = client.get_experiment_by_name("medcoder")
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id], "attributes.status = 'FINISHED'", order_by=["attributes.start_time DESC"],
        max_results=50)  # fmt: skip
    for run in runs:
        if run.data.params.get("init_from") or run.data.tags.get("init_from"):
            return run.info.run_id
    raise RuntimeError("no finished run trained with init_from: run `medcoder-train experiment=denial_feedback` first")


def compare(
    out: Path, run_id: str | None, tracking_uri: str | None, gate_path: Path, payers_path: Path, promote: bool = True,
    ptp: PtpEdits | None = None, mue: MueEdits | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The compare step (module docstring): returns the numbers and the decision it records."""
    import mlflow

    from medcoder.registry.alias_history import record_alias_change
    from medcoder.registry.client import CHAMPION, alias_version, get_client
    from medcoder.registry.denial_gate import check_denial_gate, load_denial_gate, paired_bootstrap
    from medcoder.registry.register import register_run

    summary = json.loads((out / "world" / "summary.json").read_text(encoding="utf-8"))
    world = load_notes(out / "world" / "notes.jsonl")
    held_out = [r for r in world if month_of(r) in set(summary["held_out_months"])]
    payer_seed, payers = load_payers(payers_path)
    gate = load_denial_gate(gate_path)
    client = get_client(mlflow.MlflowClient(tracking_uri) if tracking_uri else None)
    champion_version = alias_version(client, "medcoder", CHAMPION)
    run_id = run_id or latest_challenger_run(tracking_uri)
    version = register_run(run_id, client=client)
    challenger, challenger_manifest = load_coder(f"models:/medcoder/{version.version}", out / "models" / "challenger",
                                                 tracking_uri)  # fmt: skip
    coded = {"champion": reuse_coded(out), "challenger": coded_notes(challenger, held_out)}
    write_coded(coded["challenger"], out / "world" / "challenger.jsonl")
    history = load_risk_model(out / "world" / "risk_model.json")

    # ARMS: the champion as deployed before the loop (no remittance history), the challenger with the history the
    # loop learnt (its claims routed to a coder by the pre-submission check), and, for the record only, the
    # champion with that history: how much of the change is the routing and how much the retraining
    metrics, outcomes, breakdown = {}, {}, {}
    sent: dict[str, list[str]] = {"champion": [], "challenger": [], HISTORY_ONLY: []}
    for role, (codes, review) in {"champion": (coded["champion"], None),
                                  "challenger": (coded["challenger"], routing_policy(history, coded["challenger"],
                                                                                     sent["challenger"], ptp, mue)),
                                  HISTORY_ONLY: (coded["champion"], routing_policy(history, coded["champion"],
                                                                                   sent[HISTORY_ONLY], ptp, mue)),
                                  }.items():  # fmt: skip
        claims, remittances = bill_and_adjudicate(held_out, codes, payers, payer_seed, out / "x12" / f"compare-{role}",
                                                  review)  # fmt: skip
        breakdown[role] = {"payer": denials_by(remittances, "payer"), "category": denials_by(remittances, "category")}
        metrics[role] = {**claim_metrics(remittances), **coding_metrics(held_out, codes, challenger.label_space),
                         "edit_violations": float(sum(len(edit_hits(c, ptp, mue)) for c in claims))}  # fmt: skip
        outcomes[role] = per_encounter_coding_denial(held_out, claims, remittances)
    routed_claims = {role: len(ids) for role, ids in sent.items()}
    interval = paired_bootstrap(outcomes["champion"], outcomes["challenger"], gate.bootstrap_samples, gate.confidence)
    decision = check_denial_gate(metrics["champion"], metrics["challenger"], interval, gate, metrics[HISTORY_ONLY])
    outcome = ("promoted" if promote else "passed") if decision.passed else "refused"
    tags = {"denial_gate.decision": outcome,
            "denial_gate.reason": "; ".join(decision.reasons)[:4000],
            "denial_gate.champion_version": str(champion_version.version) if champion_version else "none",
            "denial_gate.interval": json.dumps(interval), "denial_gate.table": decision.table.to_json(orient="records"),
            "denial_gate.held_out_months": ",".join(summary["held_out_months"])}  # fmt: skip
    # the history the challenger was scored with travels with its version (`medcoder predict --denial-risk`)
    client.log_artifact(run_id, str(out / "world" / "risk_model.json"), "denial_risk")
    tags["denial_risk"] = f"runs:/{run_id}/denial_risk/risk_model.json"
    for key, value in tags.items():
        client.set_model_version_tag("medcoder", version.version, key, value)
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.set_experiment("medcoder")
    with mlflow.start_run(run_name="denial-loop-compare") as run:
        mlflow.set_tags(
            {"task": "denial_loop_compare", "challenger_run": run_id, "challenger_version": version.version}
        )
        mlflow.log_metrics({f"{role}/{k}": v for role, m in metrics.items() for k, v in m.items()})
        low, high = interval[1], interval[2]
        mlflow.log_metrics({"coding_denial_rate_change": interval[0], "coding_denial_rate_change_low": low,
                            "coding_denial_rate_change_high": high, "gate_passed": float(decision.passed)})  # fmt: skip
    if decision.passed and promote:
        client.set_registered_model_alias("medcoder", CHAMPION, version.version)
        record_alias_change(client, CHAMPION, version.version, f"denial-feedback gate: {decision.reasons[0]}"[:2000])
    result = {"summary": summary, "metrics": metrics, "interval": interval, "passed": decision.passed,
              "reasons": decision.reasons, "table": decision.table.to_dict(orient="records"),
              "challenger_version": version.version, "challenger_run": run_id, "compare_run": run.info.run_id,
              "routed_claims": routed_claims, "denial_risk": tags["denial_risk"],
              "challenger_manifest": challenger_manifest, "breakdown": breakdown,
              "changes": retraining_changes(held_out, coded["champion"], coded["challenger"]),
              "challenger_command": client.get_run(run_id).data.tags.get("command", "medcoder-train"),
              "champion_version": champion_version.version if champion_version else None}  # fmt: skip
    (out / "compare.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result


def cmd_compare(args: Any) -> int:
    from datetime import date

    from medcoder.evaluation.records import portable
    from medcoder.jobs.denial_report import report
    from medcoder.paths import config_dir, project_root

    payers = Path(args.payers) if args.payers else Path(config_dir()) / "payer" / "simulated.yaml"
    gate = Path(args.gate) if args.gate else Path(config_dir()) / "registry" / "denial_feedback.yaml"
    result = compare(Path(args.out), args.run_id, args.tracking_uri, gate, payers, not args.no_promote,
                     *user_edits(args.ptp, args.mue))  # fmt: skip
    records = Path(args.record_dir) if args.record_dir else project_root() / "experiments"
    records.mkdir(parents=True, exist_ok=True)
    path = records / f"{date.today().isoformat()}-denial-loop.md"
    commands = [result["summary"].get("command", "medcoder denial-loop simulate"), result["challenger_command"],
                shlex.join(["medcoder", *sys.argv[1:]])]  # fmt: skip
    path.write_text(report(result, "\n".join(portable(c) for c in commands), RISK_FLAG), encoding="utf-8")
    print(f"gate {'passed' if result['passed'] else 'refused'}: {'; '.join(result['reasons'])}\nrecord: {path}")
    return 0
