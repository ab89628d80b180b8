"""The review app (FastAPI, server-rendered): log in, the queue, a note with its evidence highlighted in place,
decisions and attestation, the released claim lines as CSV.

No anonymous page or write: every page but the login needs a session (a signed cookie, SameSite=strict), every
form carries the session's CSRF token, and only coders and admins write (auditors read). Decisions go through
`work` (audit entries and correction records); the app keeps no state of its own.
"""

from __future__ import annotations

import csv
import hmac
import io
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from starlette.middleware.sessions import SessionMiddleware

from medcoder.audit.store import AuditLog
from medcoder.codes import describe
from medcoder.review.accounts import WRITERS, authenticate
from medcoder.review.work import (
    ATTESTATION,
    Encounter,
    attest,
    attestation,
    current_codes,
    decide,
    line_modifiers,
    released_lines,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "resources" / "review"


def highlighted(text: str, spans: dict[tuple[int, int], list[str]]) -> Any:
    """The note as HTML with each evidence span in a <mark> naming its codes; overlapping spans are cut at
    every boundary so each piece names all the codes whose evidence covers it."""
    cuts = sorted({0, len(text), *(i for span in spans for i in span)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        codes = sorted({c for (s, e), cs in spans.items() if s <= a and b <= e for c in cs})
        piece = escape(text[a:b])
        out.append(Markup(f'<mark data-codes="{escape(" ".join(codes))}">{piece}</mark>') if codes else piece)
    return Markup("").join(out)


def create_review_app(
    encounters: dict[str, Encounter], log: AuditLog, corrections: Path, secret: str | None = None
) -> FastAPI:
    """The app over `encounters`, writing decisions to `log` and `corrections`; `secret` signs the session cookie."""
    pages = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    app = FastAPI(title="medcoder review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret or secrets.token_hex(32), same_site="strict")

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = request.session
        session.setdefault("csrf", secrets.token_urlsafe(32))
        html = pages.get_template(name).render(user=session.get("user"), role=session.get("role"),
                                               csrf=session["csrf"], **context)  # fmt: skip
        return HTMLResponse(html, status_code=status)

    def check_csrf(request: Request, csrf: str) -> None:
        if not hmac.compare_digest(str(request.session.get("csrf", "")), csrf):
            raise HTTPException(403, "the form's CSRF token does not match this session")

    def checked(request: Request, csrf: str, write: bool = True) -> tuple[str, str]:
        """The session's user and role, after the CSRF token; 401 without a session, 403 for a reader."""
        user, role = request.session.get("user"), request.session.get("role")
        check_csrf(request, csrf)
        if user is None:
            raise HTTPException(401, "log in first")
        if write and role not in WRITERS:
            raise HTTPException(403, f"role {role} may read, not decide")
        return user, role

    def encounter_of(note_id: str) -> Encounter:
        if note_id not in encounters:
            raise HTTPException(404, f"no encounter {note_id}")
        return encounters[note_id]

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request):
        return page(request, "login.html", title="log in")

    @app.post("/login")
    def login(request: Request, name: str = Form(...), password: str = Form(...), csrf: str = Form(...)):
        check_csrf(request, csrf)
        role = authenticate(log, name, password)
        if role is None:
            return page(request, "login.html", status=401, title="log in", error="Wrong name or password.")
        request.session.update(user=name, role=role, csrf=secrets.token_urlsafe(32))
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form(...)):
        checked(request, csrf, write=False)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/", response_class=HTMLResponse)
    def queue(request: Request):
        if "user" not in request.session:
            return RedirectResponse("/login", status_code=303)
        routed = [e for e in encounters.values() if e.prediction.get("review", {}).get("required")]
        rows = [{"id": e.note_id, "reasons": e.reasons, "codes": [c for _, c, _ in current_codes(log, e)],
                 "status": "released" if attestation(log, e) else "open"} for e in routed]  # fmt: skip
        return page(request, "queue.html", title="queue", rows=rows,
                    released=sum(r["status"] == "released" for r in rows))  # fmt: skip

    def note_page(request: Request, note_id: str, error: str | None = None, status: int = 200) -> HTMLResponse:
        encounter = encounter_of(note_id)
        predicted = {c["code"]: c for c in encounter.prediction.get("codes", [])}
        spans: dict[tuple[int, int], list[str]] = {}
        for c in encounter.prediction.get("codes", []):
            for e in c.get("evidence", []):
                spans.setdefault((e["start"], e["end"]), []).append(c["code"])
        codes, modifiers = [], line_modifiers(log, encounter)
        for system, code, state in current_codes(log, encounter):
            c = predicted.get(code, {})
            codes.append({"system": system, "code": code, "status": state, "description": describe(system, code),
                          "modifiers": " ".join(modifiers.get((system, code), ())),
                          "score": f"{c['score']:.2f}" if "score" in c else "-", "grounded": c.get("grounded", "-"),
                          "rules": c.get("rules_applied", []),
                          "icd11": (c.get("icd11") or {}).get("code", "")})  # fmt: skip
        model = encounter.prediction.get("model", {})
        return page(request, "note.html", status=status, title=note_id, note_id=note_id, setting=encounter.setting,
                    model=f"{model.get('name')} v{model.get('version')}", reasons=encounter.reasons,
                    em=encounter.prediction.get("em"), highlighted=highlighted(encounter.text, spans), codes=codes,
                    denial_risk=encounter.prediction.get("denial_risk"), error=error,
                    risk=encounter.prediction.get("risk_adjustment"),
                    can_write=request.session.get("role") in WRITERS, attested=attestation(log, encounter),
                    statement=ATTESTATION)  # fmt: skip

    @app.get("/notes/{note_id}", response_class=HTMLResponse)
    def note(request: Request, note_id: str):
        if "user" not in request.session:
            return RedirectResponse("/login", status_code=303)
        return note_page(request, note_id)

    @app.post("/notes/{note_id}/decide")
    def decision(request: Request, note_id: str, action: str = Form(...), system: str = Form(...),
                 code: str = Form(...), reason: str = Form(""), new_code: str = Form(""),
                 modifiers: str = Form(""), csrf: str = Form(...)):  # fmt: skip
        user, role = checked(request, csrf)
        try:
            decide(log, corrections, encounter_of(note_id), user, role, action, system, code.strip(), reason,
                   new_code=new_code.strip() or None,
                   modifiers=tuple(m.upper() for m in modifiers.replace(",", " ").split()))  # fmt: skip
        except ValueError as exc:  # a wrong code, a missing reason: said on the page, nothing written
            return note_page(request, note_id, error=str(exc).splitlines()[0], status=400)
        return RedirectResponse(f"/notes/{note_id}", status_code=303)

    @app.post("/notes/{note_id}/attest")
    def attestation_form(request: Request, note_id: str, csrf: str = Form(...)):
        user, role = checked(request, csrf)
        try:
            attest(log, encounter_of(note_id), user, role)
        except ValueError as exc:
            return note_page(request, note_id, error=str(exc), status=400)
        return RedirectResponse(f"/notes/{note_id}", status_code=303)

    @app.get("/export.csv")
    def export(request: Request):
        if "user" not in request.session:
            raise HTTPException(401, "log in first")
        return Response(released_csv(released_lines(log, list(encounters.values()))), media_type="text/csv")

    return app


EXPORT_COLUMNS = ("encounter_id", "note_id", "system", "code", "modifiers", "status", "attested_by", "attested_at",
                  "audit_seq", "audit_entry_hash")  # fmt: skip


def released_csv(rows: list[dict[str, Any]]) -> str:
    """Released claim lines (work.released_lines: attested encounters only, rejected codes never) as CSV."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
