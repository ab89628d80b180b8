"""`medcoder audit verify`: walk the audit log's hash chain and report the first broken link."""

from __future__ import annotations

import argparse
import sys

from medcoder.audit.store import AuditLog


def parse_head(value: str | None) -> tuple[int, str] | None:
    """`SEQ:HASH` (what an earlier `verify` printed as the head) -> (seq, hash)."""
    if value is None:
        return None
    seq, sep, digest = value.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise ValueError(f"--expect-head {value!r}: write it as SEQ:HASH, as `medcoder audit verify` prints the head")
    return int(seq), digest


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the chain is intact, 1 at the first broken link (named on stderr)."""
    report = AuditLog(args.db).verify(parse_head(args.expect_head))
    if report.intact:
        print(f"audit log intact: {report.entries} entries; head {report.head_seq}:{report.head_hash}")
        return 0
    print(f"audit log BROKEN at entry {report.broken_at}: {report.reason}", file=sys.stderr)
    return 1


def cmd_report(args: argparse.Namespace) -> int:
    """Write the compliance report of one model version as HTML."""
    from pathlib import Path

    from medcoder.audit.report import compliance_report, report_html

    report = compliance_report(AuditLog(args.db), args.name, args.version)
    Path(args.out).write_text(report_html(report), encoding="utf-8")
    print(
        f"compliance report of {args.name} v{args.version}: {sum(r.decided for r in report.codes)} decided codes "
        f"-> {args.out}"
    )
    return 0
