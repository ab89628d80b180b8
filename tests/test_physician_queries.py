"""Physician queries: every drafted query passes every compliance check, the checker catches bad queries, and
queries and answers go to the audit trail, an answered one to a correction record."""

from __future__ import annotations

from dataclasses import replace

import pytest

from medcoder.audit.store import AuditLog
from medcoder.claims.corrections import read_corrections
from medcoder.evaluation.care_gaps import hand_set, planted_set
from medcoder.gaps.compliance import CHECKS, check_query
from medcoder.gaps.notes import CareNote
from medcoder.gaps.queries import DIAGNOSIS, MULTIPLE_CHOICE, UNDETERMINED, YES_NO, Option, Query, draft_query
from medcoder.gaps.rules import detect_gaps
from medcoder.gaps.trail import record_answer, record_query


def queries_of(notes: tuple[CareNote, ...] | list[CareNote]) -> tuple[list[Query], dict[str, str]]:
    texts = {n.id: n.text for n in notes}
    dates = {n.id: n.encounter_date for n in notes}
    return [draft_query(gap, texts, dates) for gap in detect_gaps(notes)], texts


def one_query(text: str, **fields) -> tuple[Query, dict[str, str]]:
    (query,), texts = queries_of([CareNote("n1", text, None, fields.get("date", "2026-03-02"), "outpatient", 55)])
    return query, texts


def failed(query: Query, texts: dict[str, str]) -> set[str]:
    return {name for name, problems in check_query(query, texts).items() if problems}


@pytest.mark.parametrize("source", ["planted", "hand-written"])
def test_every_generated_query_passes_every_check(source: str) -> None:
    notes = planted_set(80, seed=4).notes if source == "planted" else hand_set().notes
    queries, texts = queries_of(notes)
    assert len(queries) >= 8 and len(CHECKS) == 7
    for query in queries:
        assert failed(query, texts) == set(), query.query_id


def test_options_follow_the_values() -> None:
    query, _ = one_query("Vitals: BMI 41.2 kg/m2.")
    labels = [o.label for o in query.options]
    assert labels[0] == "Obesity, class 3" and not any("class 1" in x or "verweight" in x for x in labels)
    assert labels[-2:] == ["Other (please specify)", "Clinically undetermined"] and query.format == MULTIPLE_CHOICE
    a1c, _ = one_query("Labs: HbA1c 7.1%.")
    assert not any("prediabetes" in o.label.lower() for o in a1c.options)
    assert '"HbA1c 7.1%"' in a1c.text and "2026-03-02" in a1c.text
    ckd = [CareNote(f"n{i}", f"BMP: eGFR {v}.", "p", d, "outpatient", 70)
           for i, (d, v) in enumerate([("2026-01-01", 48), ("2026-05-01", 51)])]  # fmt: skip
    (egfr,), _ = queries_of(ckd)
    assert [o.code for o in egfr.options if o.kind == DIAGNOSIS] == ["N18.31", "R94.4"]


def test_a_condition_documented_in_another_note_is_asked_as_yes_no() -> None:
    notes = [CareNote("n1", "Assessment: type 2 diabetes, on metformin.", "p", "2026-01-05", "outpatient", 60),
             CareNote("n2", "Labs: A1c 7.9%. Assessment: cough.", "p", "2026-04-05", "outpatient", 60)]  # fmt: skip
    (query,), texts = queries_of(notes)
    assert query.format == YES_NO and query.confirms.quote == "type 2 diabetes"
    assert [o.label for o in query.options] == ["Yes", "No", "Other (please specify)", "Clinically undetermined"]
    assert failed(query, texts) == set()


def test_the_checker_catches_bad_queries() -> None:
    good, texts = one_query("Vitals: BMI 41.2 kg/m2.")
    assert failed(good, texts) == set()
    undetermined = next(o for o in good.options if o.kind == UNDETERMINED)
    leading_text = good.text.replace("Based on your clinical judgment", "Please document obesity; based on")
    single = tuple(o for o in good.options if o.kind != DIAGNOSIS or o.code == "E66.813")
    single = tuple(o for o in single if o.kind != "not_significant")
    bad = {
        "does_not_lead": [replace(good, text=leading_text), replace(good, options=single)],
        "mentions_no_payment": [replace(good, text=good.text + "\nAccurate documentation supports the HCC payment.")],
        "offers_clinically_undetermined": [
            replace(
                good,
                options=tuple(o for o in good.options if o is not undetermined),
                text=good.text.replace("[ ] Clinically undetermined\n", ""),
            )
        ],  # fmt: skip
        "names_only_supported_diagnoses": [
            replace(good, options=(Option("Obesity, class 1", "E66.811", DIAGNOSIS), *good.options)),
            replace(good, options=(Option("Overweight", "E66.3", DIAGNOSIS), *good.options)),
        ],  # fmt: skip
        "yes_no_only_to_confirm": [replace(good, format=YES_NO)],
        "cites_clinical_indicators": [replace(good, indicators=(replace(good.indicators[0], start=0),))],
    }
    for prop, queries in bad.items():
        for query in queries:
            assert prop in failed(query, texts), prop


def test_queries_and_answers_are_in_the_audit_trail_and_an_answer_is_a_correction(tmp_path) -> None:
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", key=None)
    corrections = tmp_path / "corrections.jsonl"
    query, texts = one_query("Vitals: BMI 41.2 kg/m2. Knee pain.")
    with pytest.raises(ValueError, match="never sent"):
        record_answer(log, query, texts["n1"], "Obesity, class 3", "dr_lee", "7", corrections)
    record_query(log, query, texts["n1"], actor="cdi_anne")
    with pytest.raises(ValueError, match="not one of its"):
        record_answer(log, query, texts["n1"], "Overweight", "dr_lee", "7", corrections)
    correction = record_answer(log, query, texts["n1"], "Obesity, class 3", "dr_lee", "7", corrections)
    assert correction is not None and (correction["action"], correction["code"]) == ("add", "E66.813")
    with pytest.raises(ValueError, match="already answered"):
        record_answer(log, query, texts["n1"], "Clinically undetermined", "dr_lee", "7", corrections)
    (read,) = read_corrections(corrections).records
    assert (read.code, read.note_id, read.coder_id) == ("E66.813", "n1", "dr_lee")
    rows = log.rows(note_id="n1")
    assert [(r["action"], r["role"], r["code"]) for r in rows] == [("query", "coder", None),
                                                                   ("answer", "provider", "E66.813")]  # fmt: skip
    assert log.verify().intact
    stored = (tmp_path / "audit.db").read_bytes()
    assert b"Knee pain" not in stored and b"BMI 41.2" not in stored


def test_clinically_undetermined_makes_no_correction(tmp_path) -> None:
    log = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}", key=None)
    query, texts = one_query("Labs: A1c 7.3%.")
    record_query(log, query, texts["n1"], actor="cdi_anne")
    corrections = tmp_path / "corrections.jsonl"
    assert record_answer(log, query, texts["n1"], "Clinically undetermined", "dr_lee", "7", corrections) is None
    assert not corrections.exists() and log.rows(actions=("answer",))[0]["decision"] == "undetermined"


def test_a_query_is_sent_and_answered_from_the_command_line(tmp_path, capsys) -> None:
    """As a CDI specialist runs it: care-gaps drafts the query, `query send` records it, `query answer` records the
    provider's choice and appends its correction record; a second answer and an unknown id are clear errors."""
    import json

    from medcoder.cli import main

    notes, gaps, db = tmp_path / "notes.jsonl", tmp_path / "gaps.jsonl", tmp_path / "audit.db"
    corrections = tmp_path / "corrections.jsonl"
    note = {"id": "n1", "text": "Vitals: BMI 41.2 kg/m2. Knee pain, ice and rest.", "setting": "outpatient",
            "age": 55, "encounter_date": "2026-03-02"}  # fmt: skip
    notes.write_text(json.dumps(note) + "\n")
    assert main(["care-gaps", "--input", str(notes), "--out", str(gaps), "--queries"]) == 0
    (line,) = [json.loads(raw) for raw in gaps.read_text().splitlines()]
    query_id = line["query"]["query_id"]
    common = ["--gaps", str(gaps), "--notes", str(notes), "--query-id", query_id, "--db", str(db)]
    assert main(["query", "send", *common, "--user", "cdi_anne"]) == 0
    answer = [*common, "--provider", "dr_lee", "--model-version", "7", "--corrections", str(corrections)]
    assert main(["query", "answer", *answer, "--option", "Obesity, class 3"]) == 0
    (record,) = read_corrections(corrections).records
    assert (record.code, record.action, record.coder_id) == ("E66.813", "add", "dr_lee")
    rows = AuditLog(str(db)).rows(note_id="n1")
    assert [(r["action"], r["actor"]) for r in rows] == [("query", "cdi_anne"), ("answer", "dr_lee")]
    capsys.readouterr()
    assert main(["query", "answer", *answer, "--option", "Clinically undetermined"]) == 2
    assert "already answered" in capsys.readouterr().err
    assert main(["query", "send", *common[:4], "--query-id", "no-such-id", "--db", str(db)]) == 2
    assert "no drafted query with id 'no-such-id'" in capsys.readouterr().err
