"""`medcoder review add-user | serve` and `medcoder claims export` (docs/REVIEW.md)."""

from __future__ import annotations

import argparse
import csv
import getpass
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path

from medcoder.audit.store import AuditLog
from medcoder.review.accounts import add_user
from medcoder.review.work import load_encounters

PASSWORD_ENV = "MEDCODER_REVIEW_PASSWORD"  # for scripts; otherwise asked twice on the terminal
SECRET_ENV = "MEDCODER_REVIEW_SECRET"  # signs session cookies; a random one per process when unset


def cmd_add_user(args: argparse.Namespace) -> int:
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ")
    add_user(AuditLog(args.db), args.name, args.role, password)
    print(f"review account {args.name} ({args.role}) added")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from medcoder.review.app import create_review_app

    encounters = load_encounters(Path(args.notes), Path(args.predictions))
    app = create_review_app(encounters, AuditLog(args.db), Path(args.corrections), os.environ.get(SECRET_ENV))
    print(f"review app on http://{args.host}:{args.port} for {len(encounters)} encounters")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def read_charges(path: Path) -> dict[str, Decimal]:
    """The practice's charges, a CSV with columns `code` and `charge`: a bad row is an error naming its line."""
    out = {}
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.DictReader(fh)
        if rows.fieldnames is None or not {"code", "charge"} <= set(rows.fieldnames):
            raise ValueError(f"{path}: the header must name the columns code and charge")
        for number, row in enumerate(rows, 2):
            try:
                charge = Decimal(row["charge"])
            except (InvalidOperation, TypeError):
                raise ValueError(f"{path}:{number}: field 'charge' is not an amount") from None
            if not row["code"] or charge <= 0:
                raise ValueError(f"{path}:{number}: a code and a positive charge are needed")
            out[row["code"].strip().upper()] = charge
    return out


def cmd_export(args: argparse.Namespace) -> int:
    """The released lines as CSV, and with --x12-dir one 837P per payer (priced from --charges); each encounter
    exported is an `export` entry in the audit trail."""
    from medcoder.audit.entry import AuditEntry
    from medcoder.claims.submission_writer import write_submission
    from medcoder.review.app import released_csv
    from medcoder.review.work import released_claims, released_lines

    encounters = list(load_encounters(Path(args.notes), Path(args.predictions)).values())
    log = AuditLog(args.db)
    rows = released_lines(log, encounters)
    Path(args.out).write_text(released_csv(rows), encoding="utf-8")
    exported = {row["encounter_id"] for row in rows}
    print(f"{len(rows)} released claim lines -> {args.out}")
    if args.x12_dir:
        if not args.charges:
            raise ValueError("--x12-dir needs --charges: an 837P carries the practice's charge for every line")
        claims = released_claims(log, encounters, read_charges(Path(args.charges)))
        out = Path(args.x12_dir)
        out.mkdir(parents=True, exist_ok=True)
        for payer in sorted({claim.payer for claim, _ in claims}):
            group = [(c, note) for c, note in claims if c.payer == payer]
            path = write_submission([c for c, _ in group], out / f"{payer}.837", payer_name=payer.upper(),
                                    notes={c.claim_id: note for c, note in group})  # fmt: skip
            print(f"{len(group)} claims -> {path}")
    actor = os.environ.get("MEDCODER_ACTOR") or getpass.getuser()
    log.append(AuditEntry(actor=actor, role="admin", action="export", encounter_id=e.note_id, note_id=e.note_id,
                          decision="exported", reason=f"to {Path(args.out).name}")
               for e in encounters if e.note_id in exported)  # fmt: skip
    return 0
