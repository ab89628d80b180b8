"""Hand-built prediction-contract lines for the behaviour scorer tests (no model needed).

Lines are built the way `medcoder predict` writes them (descriptions from the real code set, review
reasons ordered by rule) and every test line passes the real contract validator inside the scorer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from medcoder.codes import icd10cm
from medcoder.evaluation.behaviour import Case
from medcoder.inference.routing import REASON_ORDER

MODEL = {"name": "medcoder", "version": "7", "run_id": None, "code_sets": {"ICD-10-CM": icd10cm.CODE_SET_VERSION}}
Span = tuple[int, int]


def code_entry(
    text: str, code: str, spans: Sequence[Span], *, grounded: bool = True, score: float = 0.9
) -> dict[str, Any]:
    return {
        "system": "ICD-10-CM",
        "code": code,
        "description": icd10cm.description(code),
        "score": score,
        "grounded": grounded and bool(spans),
        "evidence": [{"start": s, "end": e, "text": text[s:e]} for s, e in spans],
        "icd11": {"code": None, "title": None, "map": "none"},
    }


def contract_line(
    case: Case,
    codes: Mapping[str, Sequence[Span]],
    *,
    low_confidence: Sequence[str] = (),
    ungrounded: Sequence[str] = (),
) -> dict[str, Any]:
    """A prediction line for `case` emitting `codes` (code -> evidence spans); the codes named in
    `low_confidence` / `ungrounded` are routed to review with that reason, and a line without an
    ICD-10-CM code with `no_diagnosis_code`."""
    entries = [
        code_entry(case.text, code, () if code in ungrounded else spans, score=0.5 if code in low_confidence else 0.9)
        for code, spans in codes.items()
    ]
    # a line with no diagnosis code says so, as the contract requires (a claim needs one)
    no_diagnosis = [] if any(e["system"] == "ICD-10-CM" for e in entries) else [("no_diagnosis_code", "ICD-10-CM")]
    reasons = sorted(
        no_diagnosis + [("low_confidence", c) for c in low_confidence] + [("ungrounded", c) for c in ungrounded],
        key=lambda r: (REASON_ORDER.index(r[0]), r[1]),
    )
    return {
        "id": case.id,
        "model": dict(MODEL),
        "codes": entries,
        "em": None,
        "review": {"required": bool(reasons), "reasons": [f"{rule}:{code}" for rule, code in reasons]},
    }


def expected_span(case: Case, code: str) -> Span:
    """The first expected evidence phrase of `code`, or the note's first characters when none is given."""
    for ev in case.evidence:
        if ev.code == code:
            return (ev.start, ev.end)
    return (0, min(len(case.text), 12))


def perfect_line(case: Case) -> dict[str, Any]:
    """Exactly the must-codes, accepted, each with evidence on its expected phrase."""
    return contract_line(case, {code: [expected_span(case, code)] for code in case.must_code})


def error_line(case: Case, kind: str = "model_error") -> dict[str, Any]:
    return {"id": case.id, "error": {"kind": kind, "message": "the model failed on this note"}}


def write_lines(lines: Sequence[Mapping[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def write_cases(cases: Sequence[Mapping[str, Any]], path: Path) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path
