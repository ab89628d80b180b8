"""`medcoder review add-user | serve` and `medcoder claims export` (docs/REVIEW.md)."""

from __future__ import annotations

import argparse
import getpass
import os
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


def cmd_export(args: argparse.Namespace) -> int:
    from medcoder.review.app import released_csv

    encounters = load_encounters(Path(args.notes), Path(args.predictions))
    text = released_csv(AuditLog(args.db), list(encounters.values()))
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"{text.count(chr(10)) - 1} released claim lines -> {args.out}")
    return 0
