"""The audit trail: append-only in the database, and every kind of tampering found by `medcoder audit verify`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa

from medcoder.audit.entry import HASHED_COLUMNS, AuditEntry, EvidenceRef, text_sha256
from medcoder.audit.store import AuditLog


def entries(n: int) -> list[AuditEntry]:
    return [AuditEntry(actor="medcoder", role="model", action="suggest", encounter_id=f"e{k}", note_id=f"n{k}",
                       note_sha256=text_sha256(f"note {k}"), code_system="ICD-10-CM", code="I10", score=0.5 + k / 100,
                       threshold=0.4, evidence=(EvidenceRef(3, 9, text_sha256("quoted")),), rules=("history_codes",),
                       context_flags=("grounded",), decision="suggested") for k in range(n)]  # fmt: skip


def log_with(tmp_path: Path, n: int = 5, key: bytes | None = None) -> AuditLog:
    tmp_path.mkdir(parents=True, exist_ok=True)
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", key=key)
    log.append(entries(n))
    return log


def tamper(log: AuditLog, *statements: str) -> None:
    """What someone with the database's admin rights can do: drop the triggers, then change rows."""
    connection = sqlite3.connect(log.engine.url.database)
    connection.executescript(
        "DROP TRIGGER audit_entries_no_update; DROP TRIGGER audit_entries_no_delete;" + ";".join(statements)
    )
    connection.commit()
    connection.close()


def test_entries_chain_in_order_and_verify_intact(tmp_path):
    log = log_with(tmp_path)
    log.append(
        AuditEntry(actor="alice", role="coder", action="reject", note_id="n1", code="I10", reason="not documented")
    )
    rows = log.rows()
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(b["prev_hash"] == a["entry_hash"] for a, b in zip(rows, rows[1:]))
    report = log.verify()
    assert report.intact and (report.entries, report.head_seq, report.head_hash) == (6, 6, rows[-1]["entry_hash"])
    # a second handle on the same database continues the same chain
    assert AuditLog(log.url).append(entries(1))[0]["prev_hash"] == rows[-1]["entry_hash"]


@pytest.mark.parametrize("statement", ["UPDATE audit_entries SET code = 'I11.0' WHERE seq = 2",
                                       "DELETE FROM audit_entries WHERE seq = 5"])  # fmt: skip
def test_the_database_refuses_update_and_delete(tmp_path, statement):
    log = log_with(tmp_path)
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), log.engine.begin() as connection:
        connection.execute(sa.text(statement))
    assert log.verify().intact and len(log.rows()) == 5


def _flipped(value: object) -> object:
    if value is None:
        return "x"
    if isinstance(value, float):
        return value + 1e-9
    if isinstance(value, int):
        return value + 1
    text = str(value)
    return text[:-1] + chr(ord(text[-1]) ^ 1)  # one bit of the last character


@pytest.mark.parametrize("column", [c for c in (*HASHED_COLUMNS, "entry_hash") if c != "seq"])
def test_one_flipped_byte_in_any_column_is_found_at_its_entry(tmp_path, column):
    log = log_with(tmp_path)
    value = next(r for r in log.rows() if r["seq"] == 3)[column]
    tamper(log)
    with log.engine.begin() as connection:
        connection.execute(sa.text(f"UPDATE audit_entries SET {column} = :v WHERE seq = 3"), {"v": _flipped(value)})
    report = log.verify()
    assert report.broken_at == 3, (column, report)


def test_entries_hashed_before_the_modifiers_column_still_verify_and_a_set_modifier_is_hashed(tmp_path):
    from medcoder.audit.entry import entry_hash

    log = log_with(tmp_path)
    log.append(AuditEntry(actor="alice", role="coder", action="modify", note_id="n1", code_system="CPT", code="99213",
                          replaces="99213", modifiers=("25",), reason="separate E/M"))  # fmt: skip
    rows = log.rows()
    before_0003 = {k: v for k, v in rows[0].items() if k != "modifiers"}  # a row as written before the column
    assert entry_hash(before_0003, None) == rows[0]["entry_hash"] and rows[-1]["modifiers"] == '["25"]'
    tamper(log, "UPDATE audit_entries SET modifiers = NULL WHERE seq = 6")
    assert log.verify().broken_at == 6


def test_a_deleted_entry_is_found_and_one_cut_from_the_end_with_the_recorded_head(tmp_path):
    log = log_with(tmp_path / "middle")
    tamper(log, "DELETE FROM audit_entries WHERE seq = 3")
    report = log.verify()
    assert report.broken_at == 3 and "missing" in report.reason
    cut = log_with(tmp_path / "end")
    head = (cut.verify().head_seq, cut.verify().head_hash)
    tamper(cut, "DELETE FROM audit_entries WHERE seq = 5")
    assert cut.verify().intact  # nothing left in the table shows a cut end...
    assert cut.verify(expect_head=head).broken_at == 5  # ...the head recorded earlier does


def test_an_entry_inserted_in_the_middle_is_found(tmp_path):
    log = log_with(tmp_path)
    forged = {**log.rows()[1], "event_id": "forged", "code": "I50.9"}
    tamper(log, "UPDATE audit_entries SET seq = seq + 100 WHERE seq >= 3",
           "UPDATE audit_entries SET seq = seq - 99 WHERE seq >= 103")  # fmt: skip
    with log.engine.begin() as connection:  # the forger re-hashes the entry and chains it to entry 2
        from medcoder.audit.entry import entry_hash

        forged.update(seq=3, prev_hash=log.rows()[1]["entry_hash"])
        forged["entry_hash"] = entry_hash(forged, None)
        connection.execute(sa.insert(log.table), [forged])
    assert log.verify().broken_at == 4  # entry 4 (the old 3) no longer chains


def test_two_swapped_entries_are_found(tmp_path):
    log = log_with(tmp_path)
    tamper(log, "UPDATE audit_entries SET seq = 100 WHERE seq = 2", "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
           "UPDATE audit_entries SET seq = 3 WHERE seq = 100")  # fmt: skip
    assert log.verify().broken_at == 2


def test_with_a_key_a_forged_continuation_is_found_and_verifying_needs_the_key(tmp_path):
    from medcoder.audit.entry import entry_hash

    log = log_with(tmp_path, key=b"secret")
    last = log.rows()[-1]
    forged = {**last, "seq": 6, "event_id": "forged", "prev_hash": last["entry_hash"], "hash_kind": "sha256"}
    forged["entry_hash"] = entry_hash(forged, None)  # a valid SHA-256 chain link, but no HMAC
    with log.engine.begin() as connection:
        connection.execute(sa.insert(log.table), [forged])
    report = AuditLog(log.url, key=b"secret").verify()
    assert report.broken_at == 6 and "not hmac-sha256" in report.reason
    forged.update(hash_kind="hmac-sha256", entry_hash=entry_hash({**forged, "hash_kind": "hmac-sha256"}, b"guess"))
    second = log_with(tmp_path / "second", key=b"secret")
    with second.engine.begin() as connection:
        connection.execute(sa.insert(second.table), [forged])
    assert second.verify().broken_at == 6  # an HMAC made without the key
    with pytest.raises(ValueError, match="MEDCODER_AUDIT_KEY"):
        AuditLog(log.url, key=None).verify()
    with pytest.raises(ValueError, match="MEDCODER_AUDIT_KEY"):  # nor continued with plain hashes
        AuditLog(second.url, key=None).append(entries(1))


def test_medcoder_audit_verify_exits_1_at_the_first_broken_link(tmp_path, capsys):
    from medcoder.cli import main

    log = log_with(tmp_path)
    assert main(["audit", "verify", "--db", log.url]) == 0
    head = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert head == f"5:{log.rows()[-1]['entry_hash']}"
    tamper(log, "DELETE FROM audit_entries WHERE seq = 5")
    assert main(["audit", "verify", "--db", str(tmp_path / "audit.db"), "--expect-head", head]) == 1
    assert capsys.readouterr().err.strip() == (
        "audit log BROKEN at entry 5: the recorded head, entry 5, is missing: entries were removed or rewritten"
    )
    assert main(["audit", "verify", "--db", log.url, "--expect-head", "5:abc"]) == 2  # a head written wrong


def test_medcoder_predict_writes_a_suggest_entry_per_code_without_patient_text(tiny, tmp_path):
    from medcoder.cli import main

    notes = tiny.records[:6]
    source, out, db = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "audit.db"
    source.write_text("".join(json.dumps({"id": r.id, "text": r.text, "setting": "outpatient"}) + "\n" for r in notes))
    assert main(["predict", "--input", str(source), "--output", str(out), "--model", str(tiny.export_dir),
                 "--audit", str(db)]) == 0  # fmt: skip
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    log = AuditLog(str(db))
    rows = log.rows()
    expected = [
        (line["id"], c["code"]) for line in lines for c in [*line["codes"], *([line["em"]] if line["em"] else [])]
    ]
    assert [(r["note_id"], r["code"]) for r in rows] == expected and expected
    texts = {r.id: r.text for r in notes}
    for row in rows:
        assert (
            row["action"] == "suggest"
            and row["role"] == "model"
            and row["note_sha256"] == text_sha256(texts[row["note_id"]])
        )
        assert row["threshold"] == pytest.approx(tiny.threshold) and row["manifest_sha256"]
        for ref in json.loads(row["evidence"]):  # where the quote was, and its hash: never the words
            assert ref["sha256"] == text_sha256(texts[row["note_id"]][ref["start"] : ref["end"]])
    assert log.verify().intact
    stored = db.read_bytes()
    assert not any(r.text[:40].encode() in stored for r in notes)  # no note text in the database file


def test_the_compliance_report_counts_decisions_per_code_and_reviewer_agreement(tmp_path):
    from medcoder.audit.report import compliance_report

    log = AuditLog(str(tmp_path / "audit.db"))
    suggest = {"actor": "medcoder", "role": "model", "action": "suggest", "model_name": "m", "model_version": "2",
               "code_system": "ICD-10-CM"}  # fmt: skip
    log.append([AuditEntry(**suggest, note_id="n1", code="I10"), AuditEntry(**suggest, note_id="n2", code="I10"),
                AuditEntry(**suggest, note_id="n2", code="E11.9"),
                AuditEntry(**{**suggest, "model_version": "1"}, note_id="n9", code="J18.9")])  # fmt: skip
    decide = {"role": "coder", "code_system": "ICD-10-CM", "reason": "r"}
    log.append([AuditEntry(actor="alice", action="accept", note_id="n1", code="I10", **decide),
                AuditEntry(actor="bob", action="reject", note_id="n1", code="I10", **decide),
                AuditEntry(actor="alice", action="accept", note_id="n2", code="I10", **decide),
                AuditEntry(actor="alice", action="modify", note_id="n2", code="E11.65", replaces="E11.9", **decide),
                AuditEntry(actor="alice", action="reject", note_id="n9", code="J18.9", **decide)])  # fmt: skip
    report = compliance_report(log, "m", "2")
    rows = {r.code: r for r in report.codes}
    assert set(rows) == {"I10", "E11.9"}  # version 1's note is not version 2's
    assert (rows["I10"].suggested, rows["I10"].accepted, rows["I10"].rejected) == (2, 2, 1)
    assert rows["I10"].acceptance_rate == pytest.approx(2 / 3) and rows["E11.9"].override_rate == 1.0
    assert (report.agreement, report.doubly_reviewed, report.reviewers) == (0.0, 1, 2)  # alice and bob disagreed
    assert [r.code for r in report.most_rejected] == ["E11.9", "I10"]


def test_the_model_card_links_the_compliance_report_of_its_version(tmp_path):
    from types import SimpleNamespace

    from medcoder.cards.model_card import COMPLIANCE_FILE, review_section

    version = SimpleNamespace(name="m", version="2")
    assert "No audit trail yet" in review_section(version, str(tmp_path / "none.db"), tmp_path)
    log = AuditLog(str(tmp_path / "audit.db"))
    assert "No review decision" in review_section(version, log.url, tmp_path)
    log.append([AuditEntry(actor="medcoder", role="model", action="suggest", model_name="m", model_version="2",
                           note_id="n1", code_system="ICD-10-CM", code="I10"),
                AuditEntry(actor="alice", role="coder", action="accept", note_id="n1", code_system="ICD-10-CM",
                           code="I10", reason="documented")])  # fmt: skip
    section = review_section(version, log.url, tmp_path)
    assert f"[compliance report]({COMPLIANCE_FILE})" in section and "decided 1 of" in section
    assert "ICD-10-CM I10" in (tmp_path / COMPLIANCE_FILE).read_text(encoding="utf-8")
