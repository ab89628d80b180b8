"""The experiment record of one denial-feedback loop (`medcoder denial-loop compare`), generated from
the numbers the loop measured: nothing in it is typed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medcoder.jobs.denial_changes import CHANGE_ROWS
from medcoder.registry.denial_gate import shown

RATE_KEYS = ("claims/count", "claims/denial_rate", "claims/coding_denial_rate", "claims/clean_claim_rate",
             "micro_f1", "precision", "recall", "codes_per_encounter")  # fmt: skip


def _rate_row(name: str, m: dict[str, float]) -> str:
    cells = [f"{m[k]:.0f}" if k == "claims/count" else f"{m[k]:.3f}" for k in RATE_KEYS]
    return f"| {name} | " + " | ".join(cells) + " |"


def _site(site: str | None) -> str:
    if site is None:
        return "written by the corpus's own authors"
    return (f"written in the `{site}` dialect (`medcoder.data.synth.sites`: the same encounters and gold codes, in "
            "words the champion's training notes never use)")  # fmt: skip


def _setup(result: dict[str, Any], command: str) -> list[str]:
    s = result["summary"]
    corpus = s["corpus"]
    return [
        "# Denial-feedback loop on the simulated payers", "", "## Setup", "",
        f"- Practice: {s['notes']} new embedded-generator notes (seed {s['seed']}), {_site(s.get('site'))}; "
        "feedback months "
        f"{s['feedback_months'][0]} to {s['feedback_months'][-1]}, held out {s['held_out_months'][0]} to "
        f"{s['held_out_months'][-1]}.",
        f"- Champion: {s['model']} (manifest {s['manifest_sha256'][:12]}, registry version "
        f"{result['champion_version']}); challenger: registry version {result['challenger_version']} "
        f"(run `{result['challenger_run']}`), fine-tuned from the champion's weights.",
        f"- Payers: `{Path(s['payers']).name}`. Feedback: {s['corrections']} coder corrections, {s['appeals']} "
        f"appeals ({s['overturned']} overturned). Retraining corpus: {corpus['train']} train notes, of which "
        f"{corpus['feedback_notes']} feedback notes ({corpus['corrected_notes']} corrected, "
        f"{corpus['negative_notes']} with upheld CARC 50 denials, {corpus['negatives']} negatives).",
        "", "## Command", "", "```bash", command, "```", "",
    ]  # fmt: skip


def _held_out(result: dict[str, Any], flag: float) -> list[str]:
    """The arms in the order compare scored them: champion, challenger, then the champion with the
    challenger's history (recorded, gated only against the challenger)."""
    s, m = result["summary"], result["metrics"]
    routed = result.get("routed_claims", {})
    third = next((role for role in m if role not in ("champion", "challenger")), None)
    diff, low, high = result["interval"]
    feedback = s["feedback"]
    lines = [
        "## Feedback months (champion)", "",
        "| claims | denial rate | coding denial rate | clean claim rate |", "|---:|---:|---:|---:|",
        f"| {feedback['claims']} | {feedback['denial_rate']:.3f} | {feedback['coding_denial_rate']:.3f} "
        f"| {feedback['clean_claim_rate']:.3f} |", "",
        "## Held-out months: champion and challenger on the same notes and payers", "",
        "The champion's claims go out as built (the practice before the loop: no remittance history). The "
        "challenger is what the loop learnt: its weights, and the feedback months' denial-risk history, whose "
        f"pre-submission check sends a claim with a line at risk >= {flag} to a coder first (the coder "
        "codes it from the record and marks a flagged code pair as a distinct service, modifier 59); "
        f"claims routed: {routed.get('challenger', 0)}."
        + (f" The row `{third}`, gated only against the challenger, is the champion's codes with the same history "
           f"({routed.get(third, 0)} routed): the routing's share of the change." if third else ""), "",
        "| model | claims | denial rate | coding denial rate | clean claim rate | micro-F1 | precision | recall "
        "| codes per encounter |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(_rate_row(role, values) for role, values in m.items()), "",
        f"Coding denial rate, challenger minus champion: {diff:+.4f} (95% paired-bootstrap interval {low:+.4f} "
        f"to {high:+.4f}, resampling held-out encounters).", "",
        "### Denials by payer (held-out)", "",
        "| payer | model | claims | denied | coding denied |", "|---|---|---:|---:|---:|",
    ]  # fmt: skip
    for role in result["breakdown"]:
        for payer, c in sorted(result["breakdown"][role]["payer"].items()):
            lines.append(
                f"| {payer} | {role} | {c.get('claims', 0)} | {c.get('denied', 0)} | {c.get('coding_denied', 0)} |"
            )
    lines += ["", "### Denial adjustments by CARC category (held-out)", "",
              "| category | model | adjustments | coding-caused |", "|---|---|---:|---:|"]  # fmt: skip
    for role in result["breakdown"]:
        for category, c in sorted(result["breakdown"][role]["category"].items()):
            lines.append(f"| {category} | {role} | {c.get('adjustments', 0)} | {c.get('coding_caused', 0)} |")
    return lines


def _risk(result: dict[str, Any], flag: float) -> list[str]:
    risk = result["summary"]["risk"]
    precision = "n/a" if risk["flagged_precision"] is None else f"{risk['flagged_precision']:.3f}"
    lines = [
        "", "## Denial risk before submission (fitted on the feedback months, scored on the held-out months)", "",
        f"Lines: {risk['lines']}; flagged (risk >= {flag}): {risk['flagged']}; share of the flagged lines that a "
        f"coding-caused CARC denied: {precision}.", "",
        "| CARC | denied lines | flagged |", "|---|---:|---:|",
    ]  # fmt: skip
    return lines + [f"| {carc} | {v['denied_lines']} | {v['flagged']} |" for carc, v in risk["recall_by_carc"].items()]


def _changes(result: dict[str, Any]) -> list[str]:
    changes = result.get("changes")
    if changes is None:  # a compare.json written before the count existed
        return []
    lines = ["", "## What the retraining changed (held-out notes, challenger against champion, judged by gold)", "",
             f"Notes whose codes or visit level changed: {changes['notes_changed']} of {changes['notes']}.", "",
             "| change | count |", "|---|---:|"]  # fmt: skip
    return lines + [f"| {text} | {changes[key]} |" for key, text in CHANGE_ROWS]


def _gate(result: dict[str, Any]) -> list[str]:
    lines = ["", "## Gate (configs/registry/denial_feedback.yaml)", "",
             "| gate | metric | challenger | champion | change | limit | passed |",
             "|---|---|---:|---:|---:|---:|---|"]  # fmt: skip
    for row in result["table"]:
        m = row["metric"]
        lines.append(f"| {row['gate']} | {m} | {shown(m, row['challenger'])} | {shown(m, row['champion'])} | "
                     f"{shown(m, row['change'], True)} | {shown(m, row['limit'], True)} | "
                     f"{'yes' if row['passed'] else 'no'} |")  # fmt: skip
    decision = "promoted to @champion" if result["passed"] else "refused (the champion stays)"
    footer = "Generated by `medcoder denial-loop compare`; numbers come from the runs above, not typed."
    return lines + ["", "## Decision", "", f"The challenger is {decision}: {'; '.join(result['reasons'])}.", "",
                    "---", footer]  # fmt: skip


def report(result: dict[str, Any], command: str, flag: float) -> str:
    """The record as markdown: setup and command, feedback and held-out rates, what the retraining changed, risk,
    gate and decision."""
    sections = [*_setup(result, command), *_held_out(result, flag), *_changes(result), *_risk(result, flag),
                *_gate(result)]  # fmt: skip
    return "\n".join(sections) + "\n"
