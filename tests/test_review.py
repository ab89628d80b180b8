"""The review app end to end over HTTP (FastAPI's TestClient) on the tiny model's real predictions: log in,
the queue, a note with its evidence highlighted, reject a code, attest, export; and what it refuses."""

from __future__ import annotations

import csv
import io
import re

import pytest
from review_support import PASSWORD, review_app

from medcoder.audit.store import AuditLog
from medcoder.claims.corrections import read_corrections
from medcoder.review.accounts import add_user, authenticate
from medcoder.review.app import highlighted


@pytest.fixture
def review(tiny, tmp_path):
    from fastapi.testclient import TestClient

    app, log, encounters = review_app(tiny, tmp_path, secret="test-secret")
    return TestClient(app), log, encounters, tmp_path


def csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def login(client, name: str, password: str = PASSWORD):
    token = csrf(client.get("/login").text)
    return client.post("/login", data={"name": name, "password": password, "csrf": token}, follow_redirects=False)


def test_a_coder_rejects_a_code_attests_and_the_export_never_holds_it(review):
    client, log, encounters, tmp_path = review
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"  # no anonymous page
    assert login(client, "alice", "wrong password").status_code == 401
    assert login(client, "alice").status_code == 303
    queue = client.get("/").text
    routed = [e for e in encounters.values() if e.prediction["review"]["required"] and len(e.suggested) >= 2]
    assert routed, "the tiny model routes some notes with two codes or more to review"
    encounter = routed[0]
    assert f'href="/notes/{encounter.note_id}"' in queue
    page = client.get(f"/notes/{encounter.note_id}").text
    evidenced = [c for c in encounter.prediction["codes"] if c["evidence"]]
    for c in evidenced:  # each code's evidence is marked in place in the note
        assert re.search(rf'<mark data-codes="[^"]*\b{re.escape(c["code"])}\b', page)
    (system, rejected), *kept = encounter.suggested
    token = csrf(page)
    decide = f"/notes/{encounter.note_id}/decide"
    reject = {"action": "reject", "system": system, "code": rejected, "reason": "not documented", "csrf": token}
    assert client.post(decide, data=reject, follow_redirects=False).status_code == 303
    visit = {"action": "add", "system": "CPT", "code": "99213", "reason": "visit level", "csrf": token}
    assert client.post(decide, data=visit, follow_redirects=False).status_code == 303  # a code the model missed
    # a significant, separately identifiable visit on the day of a procedure: modifier 25 on the visit's line
    modifier = {"action": "modifier", "system": "CPT", "code": "99213", "modifiers": "25", "reason": "separate E/M",
                "csrf": token}  # fmt: skip
    assert client.post(decide, data=modifier, follow_redirects=False).status_code == 303
    diagnoses = [code for system, code in kept if system == "ICD-10-CM"]
    assert diagnoses, "the routed encounter has a diagnosis to try a modifier on"
    wrong = {**modifier, "system": "ICD-10-CM", "code": diagnoses[0]}  # a diagnosis takes no modifier
    refused = client.post(decide, data=wrong)
    assert refused.status_code == 400 and "modifiers" in refused.text  # said on the page, nothing written
    undecided = client.post(f"/notes/{encounter.note_id}/attest", data={"csrf": token})
    assert undecided.status_code == 400 and "before attesting" in undecided.text  # every code decided first
    for system_kept, code in kept:
        accept = {"action": "accept", "system": system_kept, "code": code, "reason": "supported", "csrf": token}
        assert client.post(decide, data=accept, follow_redirects=False).status_code == 303
    assert (
        client.post(f"/notes/{encounter.note_id}/attest", data={"csrf": token}, follow_redirects=False).status_code
        == 303
    )
    assert 'id="released"' in client.get(f"/notes/{encounter.note_id}").text
    exported = list(csv.DictReader(io.StringIO(client.get("/export.csv").text)))
    assert {r["code"] for r in exported} == {code for _, code in kept} | {"99213"}
    assert {r["code"]: r["modifiers"] for r in exported}["99213"] == "25"
    assert all(r["modifiers"] == "" for r in exported if r["code"] != "99213")
    assert rejected not in {r["code"] for r in exported} and all(r["attested_by"] == "alice" for r in exported)
    # the trail: who did what, chained and intact; the coder's correction in the denial-feedback contract
    rows = log.rows()
    decisions = [r for r in rows if r["action"] != "suggest"]
    assert [(r["action"], r["actor"], r["code"]) for r in decisions][0] == ("reject", "alice", rejected)
    assert rows[-1]["action"] == "attest" and exported[0]["audit_entry_hash"] == rows[-1]["entry_hash"]
    assert log.verify().intact
    corrections = read_corrections(tmp_path / "corrections.jsonl").records
    assert [(c.action, c.code, c.modifiers, c.coder_id) for c in corrections] == [
        ("delete", rejected, (), "alice"),
        ("add", "99213", (), "alice"),
        ("modifier", "99213", ("25",), "alice"),
    ]
    # the released claim as a real 837P, priced from the practice's charges, with the attestation's reference
    from medcoder.claims.submission import read_claims
    from medcoder.cli import main

    billed = [code for system, code in kept if system != "ICD-10-CM"] + ["99213"]
    (tmp_path / "charges.csv").write_text("code,charge\n" + "".join(f"{c},100.00\n" for c in billed))
    assert main(["claims", "export", "--notes", str(tmp_path / "notes.jsonl"), "--db", log.url, "--out",
                 str(tmp_path / "claims.csv"), "--predictions", str(tmp_path / "predictions.jsonl"),
                 "--x12-dir", str(tmp_path / "x12"), "--charges", str(tmp_path / "charges.csv")]) == 0  # fmt: skip
    (file,) = sorted((tmp_path / "x12").glob("*.837"))
    (claim,) = read_claims(file).claims
    assert [line.procedure for line in claim.lines] == billed and claim.claim_id == encounter.note_id
    assert [line.modifiers for line in claim.lines] == [() for _ in billed[:-1]] + [("25",)]  # read back from X12
    assert set(claim.diagnoses) == {code for system, code in kept if system == "ICD-10-CM"}  # the rejected one: none
    assert f"NTE*ADD*ATTESTED alice AUDIT {rows[-1]['seq']}" in file.read_text()
    assert log.rows()[-1]["action"] == "export" and log.verify().intact
    # the compliance report of the model version, from the audit trail alone
    from medcoder.audit.report import compliance_report, report_html

    model = encounter.prediction["model"]
    report = compliance_report(log, model["name"], model["version"])
    by_code = {r.code: r for r in report.codes}
    assert (by_code[rejected].rejected, by_code[rejected].override_rate) == (1, 1.0)
    assert all(r.replaced == 0 for r in report.codes)  # setting 99213's modifier is no override of a code
    assert all(by_code[code].accepted == 1 for _, code in kept)
    assert report.agreement is None and report.reviewers == 1 and len(report.review_minutes) == len(kept) + 1
    assert rejected in report_html(report) and "not measured" in report_html(report)
    # released means frozen
    late = client.post(
        decide, data={"action": "add", "system": "ICD-10-CM", "code": "I10", "reason": "x", "csrf": token}
    )
    assert late.status_code == 400 and "released" in late.text


def test_writes_need_a_session_its_csrf_token_and_a_writing_role(review):
    client, log, encounters, _ = review
    note_id = next(iter(encounters))
    form = {"action": "add", "system": "ICD-10-CM", "code": "I10", "reason": "r", "csrf": "x"}
    assert client.post(f"/notes/{note_id}/decide", data=form).status_code == 403  # no session token matches
    login(client, "bob")
    token = csrf(client.get("/").text)
    assert client.post(f"/notes/{note_id}/decide", data={**form, "csrf": token}).status_code == 403  # an auditor
    client.post("/logout", data={"csrf": token})
    login(client, "alice")
    token = csrf(client.get("/").text)
    assert client.post(f"/notes/{note_id}/decide", data={**form, "csrf": "forged"}).status_code == 403
    bad = client.post(f"/notes/{note_id}/decide", data={**form, "code": "X99.999", "csrf": token})
    assert bad.status_code == 400 and 'id="error"' in bad.text  # a code that does not exist: said, nothing written
    assert [r for r in log.rows() if r["action"] != "suggest"] == []


def test_the_note_is_escaped_and_overlapping_evidence_names_every_code():
    html = str(highlighted("BP <b>high</b> & CKD", {(0, 13): ["I10"], (3, 20): ["I12.9"]}))
    assert "<b>" not in html and "&lt;b&gt;" in html and "&amp;" in html
    assert '<mark data-codes="I10 I12.9">' in html  # the overlap is marked with both codes


def test_passwords_are_salted_hashes_and_short_ones_are_refused(tmp_path):
    log = AuditLog(str(tmp_path / "audit.db"))
    add_user(log, "carol", "admin", PASSWORD)
    with log.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM review_users").scalar()
    assert PASSWORD not in stored and stored.startswith("scrypt$")
    assert authenticate(log, "carol", PASSWORD) == "admin" and authenticate(log, "carol", "nope") is None
    with pytest.raises(ValueError, match="shorter than"):
        add_user(log, "dave", "coder", "short")
    with pytest.raises(ValueError, match="exists already"):
        add_user(log, "carol", "coder", PASSWORD)
