"""`medcoder card`: the model card of one registered model version, for compliance review.

    medcoder card --model models:/medcoder@champion --out DIR

writes `DIR/model_card.md` (plots as `DIR/plots/*.png` links), a self-contained
`DIR/model_card.html` (plots embedded as base64 PNG, inline CSS, no external asset), logs both
and the plots as artifacts of the version's run under `card/`, sets the registry version's
description to the Markdown, and tags the version with the card's location and sha256.

Why it is built this way:
- Every number comes from MLflow (`facts.collect_facts`): run metrics and params, registry tags and
  the run's logged tables. The prose around them is fixed text about what the platform is; nothing
  measured is typed. Regenerating the card after a re-evaluation updates every number.
- Sections never disappear (`sections`): a missing metric, table, plot or external run renders
  "Not available" with what would supply it, so a reviewer can tell "not measured" from "forgotten".
- The 31 ONC HTI-1 source attributes are answered one by one (`hti1`, `hti1_answers`).
- Privacy: the card reads only metrics, params, tags and the named tables and plots, none of which
  hold note text.
- The HTML is the same Markdown rendered once more with the plots inlined (`markdown.render_html`),
  so the two documents say the same thing.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from medcoder.cards import sections
from medcoder.cards.facts import ModelFacts, collect_facts
from medcoder.cards.hti1_answers import deployer_answers, hti1_section
from medcoder.cards.markdown import esc, render_html
from medcoder.defaults import CHAMPION_URI
from medcoder.paths import default_tracking_uri

log = logging.getLogger(__name__)

CARD_ARTIFACT_DIR = "card"
MARKDOWN_FILE = "model_card.md"
HTML_FILE = "model_card.html"


# ---------------------------------------------------------------- the documents
def render_markdown(
    f: ModelFacts,
    image: sections.ImageLink,
    generated_at: datetime,
    review: str | None = None,
    answers: dict[str, str] | None = None,
) -> str:
    """The whole card as Markdown; `image` maps a plot's artifact path to the link written for it; `review` is
    the human-review section (`review_section`), left out when None; `answers` the organisation's HTI-1 answers."""
    parts = [
        sections.header(f, generated_at),
        sections.intended_use(f),
        sections.training_data(f),
        sections.performance(f, image),
        sections.external_validation(f),
        sections.monitoring(f),
        sections.alias_history_section(f),
        *([review] if review else []),
        sections.lineage(f),
        hti1_section(f, answers),
    ]
    return "\n\n".join(parts) + "\n"


def local_plot_path(artifact_path: str) -> str:
    """Where a plot sits next to the Markdown file (and under `card/` in the run): `plots/<name>.png`."""
    return f"plots/{Path(artifact_path).name}"


def build_card(
    f: ModelFacts,
    generated_at: datetime | None = None,
    review: str | None = None,
    answers: dict[str, str] | None = None,
) -> tuple[str, str]:
    """(Markdown linking plots as `plots/*.png`, self-contained HTML with the plots inlined)."""
    generated_at = generated_at or datetime.now(UTC)
    markdown = render_markdown(f, local_plot_path, generated_at, review, answers)

    def inline(artifact_path: str) -> str:
        return "data:image/png;base64," + base64.b64encode(f.run.plots[artifact_path]).decode("ascii")

    html = render_html(
        render_markdown(f, inline, generated_at, review), title=f"Model card: {f.name} version {f.version}"
    )
    return markdown, html


def summary_markdown(f: ModelFacts) -> str:
    """A short description for registries that refuse the full card (MLflow's SQL column holds 5000
    characters; SQLite ignores that, PostgreSQL and MySQL do not)."""
    return (
        "\n\n".join(
            [
                f"# Model card: {esc(f.name)} version {esc(f.version)}",
                sections.metrics_table(
                    [("Test", f.run, "test")],
                    {k: sections.HEADLINE_METRICS[k] for k in ("micro_f1", "macro_f1", "map")},
                ),
                f"Full card: `runs:/{f.run.run_id}/{CARD_ARTIFACT_DIR}/{MARKDOWN_FILE}`",
            ]
        )
        + "\n"
    )


# ---------------------------------------------------------------- writing and publishing
@dataclass
class CardResult:
    markdown_path: Path
    html_path: Path
    plot_paths: list[Path]
    run_id: str
    artifact_uri: str | None  # runs:/<run>/card/model_card.md once published
    description: str | None  # "full" or "summary" once published


def write_model_card(
    model_uri: str = CHAMPION_URI,
    out_dir: Path | str = "model_card",
    *,
    tracking_uri: str | None = None,
    publish: bool = True,
    generated_at: datetime | None = None,
    audit_url: str | None = None,
    hti1_path: str | Path | None = None,
) -> CardResult:
    """Write the card of `model_uri` into `out_dir`; with `publish`, also log it to the version's run
    and set the version's description and its tags `model_card.artifact` and `model_card.sha256`."""
    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    facts = collect_facts(model_uri, uri, client)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    answers = deployer_answers(hti1_path)
    markdown, html = build_card(facts, generated_at, review_section(facts, audit_url, out), answers)

    markdown_path, html_path = out / MARKDOWN_FILE, out / HTML_FILE
    markdown_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    plot_paths = []
    for artifact_path, data in facts.run.plots.items():
        target = out / local_plot_path(artifact_path)
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
        plot_paths.append(target)
    result = CardResult(markdown_path, html_path, plot_paths, facts.run.run_id, artifact_uri=None, description=None)
    if publish:
        publish_card(client, facts, result, markdown)
    return result


COMPLIANCE_FILE = "compliance_report.html"


def review_section(f: ModelFacts, audit_url: str | None, out: Path) -> str:
    """The card's human-review section: with review decisions of this version in the audit trail (`audit_url`,
    default the project's audit.db), their summary and the compliance report written beside the card and linked;
    otherwise that none are recorded yet."""
    from medcoder.audit.report import compliance_report, report_html
    from medcoder.audit.store import AuditLog
    from medcoder.audit.store import audit_url as resolved

    head = "## Human review\n\n"
    url = resolved(audit_url)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return (
            head
            + "No audit trail yet: no suggestion of this version has been reviewed (`make review`, docs/REVIEW.md)."
        )
    log = AuditLog(url)
    chain = log.verify()
    if not chain.intact:
        return (
            head + f"The audit trail is BROKEN at entry {chain.broken_at}: {chain.reason}. No report is drawn from it."
        )
    report = compliance_report(log, f.name, f.version)
    decided = sum(r.decided for r in report.codes)
    if not decided:
        return head + "No review decision on this version's suggestions is in the audit trail yet (docs/REVIEW.md)."
    (out / COMPLIANCE_FILE).write_text(report_html(report), encoding="utf-8")
    accepted = sum(r.accepted for r in report.codes)
    return head + (
        f"Reviewers decided {decided} of this version's suggested codes; {accepted} ({accepted / decided:.2f}) were "
        f"accepted as suggested. Per code acceptance and override rates, the codes most often rejected, reviewer "
        f"agreement and time to review: [compliance report]({COMPLIANCE_FILE}). The audit trail it was read from "
        f"verified intact up to entry {report.head[0]} (`medcoder audit verify --expect-head "
        f"{report.head[0]}:{report.head[1]}`)."
    )


def publish_card(client: MlflowClient, f: ModelFacts, result: CardResult, markdown: str) -> None:
    """Log the written files under the run's `card/`, tag the version, set its description."""
    run_id = f.run.run_id
    client.log_artifact(run_id, str(result.markdown_path), CARD_ARTIFACT_DIR)
    client.log_artifact(run_id, str(result.html_path), CARD_ARTIFACT_DIR)
    for path in result.plot_paths:
        client.log_artifact(run_id, str(path), f"{CARD_ARTIFACT_DIR}/plots")
    result.artifact_uri = f"runs:/{run_id}/{CARD_ARTIFACT_DIR}/{MARKDOWN_FILE}"
    client.set_model_version_tag(f.name, f.version, "model_card.artifact", result.artifact_uri)
    client.set_model_version_tag(
        f.name, f.version, "model_card.sha256", hashlib.sha256(markdown.encode("utf-8")).hexdigest()
    )
    try:
        client.update_model_version(f.name, f.version, description=markdown)
        result.description = "full"
    except MlflowException as err:
        log.warning(
            "the registry refused the full card as the description of %s version %s (%s); "
            "setting a summary that links to %s",
            f.name,
            f.version,
            err.error_code,
            result.artifact_uri,
        )
        client.update_model_version(f.name, f.version, description=summary_markdown(f))
        result.description = "summary"


# ---------------------------------------------------------------- command line
def cmd_card(args: argparse.Namespace) -> int:
    """Write (and publish) the card from parsed arguments and say where it went; returns the exit status."""
    result = write_model_card(args.model, Path(args.out), tracking_uri=args.tracking_uri, publish=not args.no_publish,
                              hti1_path=args.hti1)  # fmt: skip
    print(f"model card: {result.markdown_path}")
    print(f"model card, self-contained HTML: {result.html_path}")
    if result.artifact_uri:
        print(
            f"logged to run {result.run_id} as {result.artifact_uri} (+ {HTML_FILE}); "
            f"version description set ({result.description})"
        )
    return 0
