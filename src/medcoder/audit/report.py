"""The compliance report of one model version, from the audit trail alone: how reviewers treated its codes.

Per code: how often it was suggested, accepted as is, rejected, or replaced by another (the override rate is
rejected plus replaced over decided), the codes reviewers rejected most, the time from suggestion to decision,
and reviewer agreement where two reviewers decided the same code of the same note (else said to be unmeasured).
Written as HTML (`medcoder audit report`), with the chain's head so that a reader can check the log it came from.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from medcoder.audit.entry import sets_line_modifiers
from medcoder.audit.store import AuditLog

DECIDED = ("accept", "reject", "modify")
_VERDICT = {"accept": "accepted", "reject": "rejected", "modify": "replaced"}


@dataclass(frozen=True)
class CodeRow:
    system: str
    code: str
    suggested: int
    accepted: int
    rejected: int
    replaced: int

    @property
    def decided(self) -> int:
        return self.accepted + self.rejected + self.replaced

    @property
    def acceptance_rate(self) -> float | None:
        return self.accepted / self.decided if self.decided else None

    @property
    def override_rate(self) -> float | None:
        return (self.rejected + self.replaced) / self.decided if self.decided else None


@dataclass(frozen=True)
class ComplianceReport:
    model_name: str
    model_version: str
    codes: list[CodeRow]
    review_minutes: list[float]  # suggestion to first decision, per decided code
    agreement: float | None  # share of doubly reviewed (note, code) pairs where the reviewers agreed
    doubly_reviewed: int
    reviewers: int
    head: tuple[int, str]

    @property
    def most_rejected(self) -> list[CodeRow]:
        return sorted((r for r in self.codes if r.rejected + r.replaced),
                      key=lambda r: (-(r.rejected + r.replaced), r.code))[:10]  # fmt: skip


def compliance_report(log: AuditLog, model_name: str, model_version: str) -> ComplianceReport:
    """The report of `model_name` version `model_version` (decisions count for the notes it suggested codes for)."""
    rows = log.rows()
    suggested = [r for r in rows if r["action"] == "suggest" and r["model_name"] == model_name
                 and r["model_version"] == str(model_version)]  # fmt: skip
    first_seen = {}
    for r in suggested:
        first_seen.setdefault((r["note_id"], r["code_system"], r["code"]), r["recorded_at"])
    notes = {r["note_id"] for r in suggested}
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in suggested:
        counts[r["code_system"], r["code"]]["suggested"] += 1
    verdicts: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)  # (note, system, code) -> reviewer
    minutes = []
    for r in rows:
        if r["action"] not in DECIDED or r["note_id"] not in notes:
            continue
        if sets_line_modifiers(r):  # the line's modifiers set: no verdict on the code
            continue
        code = r["replaces"] if r["action"] == "modify" else r["code"]
        key = (r["note_id"], r["code_system"], code)
        verdicts[key][r["actor"]] = r["action"]
        counts[r["code_system"], code][
            {"accept": "accepted", "reject": "rejected", "modify": "replaced"}[r["action"]]
        ] += 1
        if key in first_seen and len(verdicts[key]) == 1:
            delta = datetime.fromisoformat(r["recorded_at"]) - datetime.fromisoformat(first_seen[key])
            minutes.append(delta.total_seconds() / 60)
    double = [v for v in verdicts.values() if len(v) >= 2]
    agreement = sum(len(set(v.values())) == 1 for v in double) / len(double) if double else None
    codes = [CodeRow(system, code, c["suggested"], c["accepted"], c["rejected"], c["replaced"])
             for (system, code), c in sorted(counts.items())]  # fmt: skip
    report = log.verify()
    reviewers = len({actor for v in verdicts.values() for actor in v})
    return ComplianceReport(model_name, str(model_version), codes, minutes, agreement, len(double), reviewers,
                            (report.head_seq, report.head_hash))  # fmt: skip


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_html(report: ComplianceReport) -> str:
    """The report as a self-contained HTML page (escaped; no note text exists in the log to leak)."""
    from jinja2 import Environment, select_autoescape

    template = Environment(autoescape=select_autoescape(default=True)).from_string(_TEMPLATE)
    decided = sum(r.decided for r in report.codes)
    median = statistics.median(report.review_minutes) if report.review_minutes else None
    return template.render(r=report, rate=_rate, decided=decided,
                           accepted=sum(r.accepted for r in report.codes), median=median)  # fmt: skip


_TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Compliance report: {{ r.model_name }} v{{ r.model_version }}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5rem}td,th{border:1px solid #ccc;padding:.2rem .5rem}
table{border-collapse:collapse}</style></head><body>
<h1>Compliance report: {{ r.model_name }} version {{ r.model_version }}</h1>
<p>From the audit trail, whose head was entry {{ r.head[0] }} ({{ r.head[1] }}) when this report was made:
check it with <code>medcoder audit verify --expect-head {{ r.head[0] }}:{{ r.head[1] }}</code>.</p>
<h2>Summary</h2><ul>
<li>Codes decided by reviewers: {{ decided }}; accepted as suggested: {{ accepted }}
({{ rate(accepted / decided if decided else None) }}).</li>
<li>Reviewers: {{ r.reviewers }}. Reviewer agreement: {% if r.agreement is none %}not measured (no code was
decided by two reviewers){% else %}{{ rate(r.agreement) }} over {{ r.doubly_reviewed }} codes decided by two or
more{% endif %}.</li>
<li>Time from suggestion to decision: {% if median is none %}no decisions{% else %}median {{ "%.1f"|format(median) }}
minutes over {{ r.review_minutes|length }} codes{% endif %}.</li></ul>
<h2>Codes most often rejected or replaced</h2>
<table><tr><th>Code</th><th>Rejected</th><th>Replaced</th><th>Decided</th></tr>
{% for c in r.most_rejected %}<tr><td>{{ c.system }} {{ c.code }}</td><td>{{ c.rejected }}</td><td>{{ c.replaced }}</td>
<td>{{ c.decided }}</td></tr>{% else %}<tr><td colspan="4">none</td></tr>{% endfor %}</table>
<h2>Per code</h2>
<table><tr><th>Code</th><th>Suggested</th><th>Accepted</th><th>Rejected</th><th>Replaced</th><th>Acceptance rate</th>
<th>Override rate</th></tr>
{% for c in r.codes %}<tr><td>{{ c.system }} {{ c.code }}</td><td>{{ c.suggested }}</td><td>{{ c.accepted }}</td>
<td>{{ c.rejected }}</td><td>{{ c.replaced }}</td><td>{{ rate(c.acceptance_rate) }}</td>
<td>{{ rate(c.override_rate) }}</td></tr>
{% endfor %}</table></body></html>
"""
