"""Held-out clinical behaviour cases and their scorer: does a coder follow the ICD-10-CM guidelines?

Aggregate F1 on a corpus says little about the mistakes that cost money or trust: coding a negated
or family-history condition, coding an outpatient "probable" diagnosis, missing a combination code,
or obeying an instruction someone typed into the note. The package ships two files of short notes
written by hand from the ICD-10-CM Official Guidelines (never from the training generator),
`resources/behaviour/cases.jsonl` (the first set) and `cases_v2.jsonl` (written later, in the styles
real documentation has: SOAP, dictation, problem lists, one-liners, ED shorthand, copy-forward
blocks, typos), each case with what must be coded, what must not, and the phrase the evidence must
land on:

    {"id": "neg-01", "category": "negation", "setting": "outpatient", "age": 34, "sex": "F",
     "pair": null, "text": "...",
     "expect": {"must_code": ["J06.9"], "must_not_code": ["R50.9"],
                "evidence": [{"code": "J06.9", "phrase": "Acute upper respiratory infection"}],
                "injected": []}}

`pair` groups notes that differ only in patient name / pronouns (they must get the same codes);
`injected` lists codes that an instruction inside the text asks for (they are also must_not_code).
Several evidence entries for one code are alternatives: the evidence lands when any one is hit.

`score_behaviour` reads `medcoder predict` output (prediction-contract lines) and counts, per
category, in two views of what the coder "emitted":
- strict: a must_code counts only when accepted without review (grounded, no review reason), and a
  must_not_code is a violation as soon as it appears at all, even routed to review;
- lenient: a must_code counts when it appears (accepted or routed to review), and a must_not_code
  is a violation only when it is accepted without review (a human would see the flagged one).
Evidence lands when a predicted span of the code overlaps the expected phrase. Only ids, codes and
field names ever go into errors and reports, never note text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from medcoder.codes import icd10cm
from medcoder.codes.formats import ICD10CM, is_canonical
from medcoder.data.schema import SETTINGS, SEXES, RecordError, iter_jsonl
from medcoder.evaluation.records import markdown_table
from medcoder.inference.contract import validate_contract_line
from medcoder.paths import resources_dir

CATEGORIES: tuple[str, ...] = (
    "negation",
    "family_history",
    "personal_history",
    "hypothetical",
    "outpatient_uncertain",
    "inpatient_uncertain",
    "values",
    "combination",
    "injection",
    "name_invariance",
    "evidence",
)
# Package data, so an installed medcoder (not only a checkout) can score a model on them.
BEHAVIOUR_DIR = resources_dir() / "behaviour"
DEFAULT_CASES = BEHAVIOUR_DIR / "cases.jsonl"
CASES_V2 = BEHAVIOUR_DIR / "cases_v2.jsonl"
_CASE_KEYS = {"id", "category", "setting", "age", "sex", "pair", "text", "expect"}
_EXPECT_KEYS = {"must_code", "must_not_code", "evidence", "injected"}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ExpectedEvidence:
    """An expected evidence phrase for `code`, located once in the case text as [start, end)."""

    code: str
    start: int
    end: int


@dataclass(frozen=True)
class Case:
    """One validated behaviour case (see the module docstring for the file format)."""

    id: str
    category: str
    setting: str
    text: str
    must_code: tuple[str, ...]
    must_not_code: tuple[str, ...]
    evidence: tuple[ExpectedEvidence, ...] = ()
    injected: tuple[str, ...] = ()
    pair: str | None = None
    age: int | None = None
    sex: str | None = None
    line: int | None = None

    def input_record(self) -> dict[str, Any]:
        """The `medcoder predict` input line: only what a coder may see (no expectations)."""
        record: dict[str, Any] = {"id": self.id, "text": self.text, "setting": self.setting}
        if self.age is not None:
            record["age"] = self.age
        if self.sex is not None:
            record["sex"] = self.sex
        return record


# ---------------------------------------------------------------- loading
def billable_code_problem(code: Any) -> str | None:
    """Why `code` cannot be an expected code (not canonical, or not billable in the shipped code set), or None."""
    if not isinstance(code, str) or not is_canonical(ICD10CM, code):
        return f"{code!r} is not a canonical ICD-10-CM code (e.g. 'E11.65')"
    if not icd10cm.is_billable(code):
        return f"{code} is not a billable code of ICD-10-CM {icd10cm.CODE_SET_VERSION}"
    return None


def check_note_fields(
    obj: Any,
    *,
    allowed: Iterable[str],
    required: Iterable[str],
    settings: Iterable[str],
    kind: str,
    fail: Callable[[str, str], Any],
) -> None:
    """The checks every hand-written note file shares: a JSON object of only `allowed` keys, the
    `required` ones present, an id of letters, digits, '.', '_' or '-', a non-empty text, a known
    setting, and when given an age of 0-130 and a known sex. `fail(field, message)` raises."""
    if not isinstance(obj, dict):
        fail(f"<{kind}>", f"must be a JSON object, got {type(obj).__name__}")
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            fail(key, f"unknown field (expected {', '.join(sorted(allowed))})")
    for key in required:
        if key not in obj:
            fail(key, "is required")
    if not isinstance(obj["id"], str) or not _ID.match(obj["id"]):
        fail("id", "must be a string of letters, digits, '.', '_' or '-'")
    if not isinstance(obj["text"], str) or not obj["text"].strip():
        fail("text", "must be a non-empty string")
    settings = tuple(settings)
    if obj["setting"] not in settings:
        fail("setting", f"must be one of {', '.join(settings)}")
    age, sex = obj.get("age"), obj.get("sex")
    if age is not None and (not isinstance(age, int) or isinstance(age, bool) or not 0 <= age <= 130):
        fail("age", "must be an integer from 0 to 130")
    if sex is not None and sex not in SEXES:
        fail("sex", f"must be one of {', '.join(SEXES)}")


def _parse_case(obj: Any, source: str, line: int, known_codes: Collection[str] | None) -> Case:
    case_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None

    def fail(field: str, message: str):
        raise RecordError(source, line, field, message, case_id)

    check_note_fields(
        obj,
        allowed=_CASE_KEYS,
        required=("id", "category", "setting", "text", "expect"),
        settings=SETTINGS,
        kind="case",
        fail=fail,
    )
    text = obj["text"]
    if obj["category"] not in CATEGORIES:
        fail("category", f"must be one of {', '.join(CATEGORIES)}")
    age, sex, pair = obj.get("age"), obj.get("sex"), obj.get("pair")
    if pair is not None and (not isinstance(pair, str) or not _ID.match(pair)):
        fail("pair", "must be a string of letters, digits, '.', '_' or '-'")
    if obj["category"] == "name_invariance" and pair is None:
        fail("pair", "is required for category name_invariance (the id shared by the name-swapped notes)")

    expect = obj["expect"]
    if not isinstance(expect, dict):
        fail("expect", "must be an object")
    for key in expect:
        if key not in _EXPECT_KEYS:
            fail(f"expect.{key}", f"unknown field (expected {', '.join(sorted(_EXPECT_KEYS))})")

    def codes(key: str, required: bool) -> tuple[str, ...]:
        if key not in expect:
            if required:
                fail(f"expect.{key}", "is required (use [] for none)")
            return ()
        values = expect[key]
        if not isinstance(values, list):
            fail(f"expect.{key}", "must be a list of ICD-10-CM codes")
        for i, code in enumerate(values):
            at = f"expect.{key}[{i}]"
            if (problem := billable_code_problem(code)) is not None:
                fail(at, problem)
            if key == "must_code" and known_codes is not None and code not in known_codes:
                fail(at, f"{code} is not among the codes a model can know (the known-code set)")
            if code in values[:i]:
                fail(at, f"{code} is listed twice")
        return tuple(values)

    must, must_not = codes("must_code", True), codes("must_not_code", True)
    injected = codes("injected", False)
    if not must and not must_not:
        fail("expect", "must_code and must_not_code are both empty: the case could never fail")
    for i, code in enumerate(must_not):
        if code in must:
            fail(f"expect.must_not_code[{i}]", f"{code} is also in must_code")
    for i, code in enumerate(injected):
        if code not in must_not:
            fail(f"expect.injected[{i}]", f"{code} must also be in must_not_code")
    if obj["category"] == "injection" and not injected:
        fail("expect.injected", "is required for category injection (the codes the injected text asks for)")

    evidence_raw = expect.get("evidence", [])
    if not isinstance(evidence_raw, list):
        fail("expect.evidence", "must be a list of {code, phrase} objects")
    evidence = []
    for i, ev in enumerate(evidence_raw):
        at = f"expect.evidence[{i}]"
        if not isinstance(ev, dict) or set(ev) != {"code", "phrase"}:
            fail(at, "must be an object with exactly the keys code and phrase")
        if ev["code"] not in must:
            fail(f"{at}.code", f"{ev['code']!r} is not in must_code")
        phrase = ev["phrase"]
        if not isinstance(phrase, str) or not phrase.strip():
            fail(f"{at}.phrase", "must be a non-empty string")
        count = text.count(phrase)
        if count != 1:  # the message never quotes the phrase: it is note text
            fail(f"{at}.phrase", f"must occur exactly once in text (case-sensitive), occurs {count} times")
        start = text.index(phrase)
        evidence.append(ExpectedEvidence(code=ev["code"], start=start, end=start + len(phrase)))

    return Case(
        id=case_id,
        category=obj["category"],
        setting=obj["setting"],
        text=text,
        must_code=must,
        must_not_code=must_not,
        evidence=tuple(evidence),
        injected=injected,
        pair=pair,
        age=age,
        sex=sex,
        line=line,
    )


def _expectations(case: Case) -> tuple:
    spans = sorted((e.code, case.text[e.start : e.end]) for e in case.evidence)
    return (sorted(case.must_code), sorted(case.must_not_code), spans, sorted(case.injected))


def load_cases(path: str | Path = DEFAULT_CASES, *, known_codes: Collection[str] | None = None) -> list[Case]:
    """Load and validate a cases file; a bad case is a RecordError naming file, line, field and case id.

    Beyond each case's own fields, checks that ids are unique and that every `pair` group has at
    least two notes of one category, with identical expectations and different texts. Every code
    must be billable; `known_codes`, when given, also restricts the must-codes to the codes a model
    can know (a case whose must-code no model can emit could never pass). Must-not codes are not
    restricted: "do not code I13.0 here" is a true expectation whatever a model's label space is.
    """
    source = str(path)
    known = frozenset(known_codes) if known_codes is not None else None
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise obj
        case = _parse_case(obj, source, lineno, known)
        if case.id in first_line:
            raise RecordError(source, lineno, "id", f"duplicate id (first on line {first_line[case.id]})", case.id)
        first_line[case.id] = lineno
        cases.append(case)
    if not cases:
        raise RecordError(source, None, "<file>", "holds no cases")

    groups: dict[str, list[Case]] = {}
    for case in cases:
        if case.pair is not None:
            groups.setdefault(case.pair, []).append(case)
    for key, members in groups.items():
        head = members[0]

        def fail(case: Case, field: str, message: str, key: str = key):
            raise RecordError(source, case.line, field, f"pair {key!r}: {message}", case.id)

        if len(members) < 2:
            fail(head, "pair", "has only one case; a pair needs the same note with another name")
        for other in members[1:]:
            if other.category != head.category:
                fail(other, "category", f"differs from case {head.id} of the same pair")
            if _expectations(other) != _expectations(head):
                fail(other, "expect", f"differs from case {head.id}; name-swapped notes must expect the same codes")
            if other.text == head.text:
                fail(other, "text", f"is identical to case {head.id}; a pair must differ in names or pronouns")
    return cases


class HeldOutNote(Protocol):
    """A hand-written note that can be sent to `medcoder predict` (a behaviour case, a stress note)."""

    id: str
    text: str

    def input_record(self) -> dict[str, Any]: ...


def write_case_inputs(cases: Iterable[HeldOutNote], path: str | Path) -> int:
    """Write the notes as `medcoder predict` input JSONL ({id, text, setting, age, sex}); returns the count."""
    n = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        for case in cases:
            fh.write(json.dumps(case.input_record(), ensure_ascii=False) + "\n")
            n += 1
    return n


def read_contract_lines(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a `medcoder predict` output file, decoded (checked later, against the cases)."""
    lines = []
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise obj
        if not isinstance(obj, dict):
            raise RecordError(str(path), lineno, "<line>", f"must be a JSON object, got {type(obj).__name__}")
        lines.append(obj)
    return lines


# ---------------------------------------------------------------- scoring
@dataclass(frozen=True)
class CaseOutcome:
    """What the coder did on one case. `accepted`: codes emitted without review; `flagged`: emitted
    but routed to review (ungrounded, or named by a review reason)."""

    case: Case
    accepted: frozenset[str]
    flagged: frozenset[str]
    evidence: Mapping[str, tuple[tuple[int, int], ...]]
    error_kind: str | None = None
    pair_agrees: bool | None = None

    @property
    def emitted(self) -> frozenset[str]:
        return self.accepted | self.flagged

    def missed(self, strict: bool) -> list[str]:
        found = self.accepted if strict else self.emitted
        return [c for c in self.case.must_code if c not in found]

    def violations(self, strict: bool) -> list[str]:
        forbidden = self.emitted if strict else self.accepted
        return [c for c in self.case.must_not_code if c in forbidden]

    def evidence_results(self) -> dict[str, bool]:
        """code -> evidence landed, for each must_code with expected evidence that the coder emitted."""
        results: dict[str, bool] = {}
        for exp in self.case.evidence:
            if exp.code not in self.emitted:
                continue
            hit = any(start < exp.end and exp.start < end for start, end in self.evidence.get(exp.code, ()))
            results[exp.code] = results.get(exp.code, False) or hit
        return results

    def injected_obeyed(self) -> list[str]:
        """Injected codes that appear in the output at all: a flagged one was still obeyed."""
        return [c for c in self.case.injected if c in self.emitted]

    def passed(self, strict: bool) -> bool:
        return (
            self.error_kind is None
            and not self.missed(strict)
            and not self.violations(strict)
            and all(self.evidence_results().values())
            and self.pair_agrees is not False
        )


@dataclass(frozen=True)
class EmittedCode:
    """One ICD-10-CM code of a prediction line. `accepted`: grounded and named by no review reason,
    i.e. it would reach a claim without a human looking at it; otherwise it is routed to review."""

    code: str
    score: float
    grounded: bool
    accepted: bool
    spans: tuple[tuple[int, int], ...]


def emitted_codes(line: Mapping[str, Any]) -> list[EmittedCode]:
    """The ICD-10-CM codes of a valid, non-error prediction line, each marked accepted or routed."""
    named = {m.group(1) for reason in line["review"]["reasons"] if (m := re.match(r"^[a-z_]+:(.+)$", reason))}
    return [
        EmittedCode(
            code=c["code"],
            score=float(c["score"]),
            grounded=bool(c["grounded"]),
            accepted=bool(c["grounded"]) and c["code"] not in named,
            spans=tuple((ev["start"], ev["end"]) for ev in c["evidence"]),
        )
        for c in line["codes"]
        if c["system"] == ICD10CM
    ]


def _outcome(case: Case, line: Mapping[str, Any]) -> CaseOutcome:
    if "error" in line:
        return CaseOutcome(case, frozenset(), frozenset(), {}, error_kind=str(line["error"]["kind"]))
    emitted = emitted_codes(line)
    return CaseOutcome(
        case,
        accepted=frozenset(c.code for c in emitted if c.accepted),
        flagged=frozenset(c.code for c in emitted if not c.accepted),
        evidence={c.code: c.spans for c in emitted},
    )


def _pair_agreement(outcomes: list[CaseOutcome]) -> list[CaseOutcome]:
    """Mark every paired outcome with whether all notes of its pair got the same codes, same status."""
    groups: dict[str, list[CaseOutcome]] = {}
    for o in outcomes:
        if o.case.pair is not None:
            groups.setdefault(o.case.pair, []).append(o)
    agrees = {
        key: all(o.error_kind is None for o in members) and len({(o.accepted, o.flagged) for o in members}) == 1
        for key, members in groups.items()
    }
    return [o if o.case.pair is None else replace(o, pair_agrees=agrees[o.case.pair]) for o in outcomes]


def score_behaviour(cases: list[Case], contract_lines: Iterable[Mapping[str, Any] | str]) -> BehaviourReport:
    """Score `medcoder predict` output lines (one per case, any order) against the cases.

    Every line is checked with the prediction-contract validator against its case's text, and the
    output must cover exactly the cases: a missing, unknown or repeated id is a ValueError.
    """
    lines, model = match_predictions(cases, contract_lines, kind="case", description="a behaviour case")
    outcomes = _pair_agreement([_outcome(case, lines[case.id]) for case in cases])
    return BehaviourReport(outcomes=outcomes, model=model)


def match_predictions(
    notes: Iterable[HeldOutNote], contract_lines: Iterable[Mapping[str, Any] | str], *, kind: str, description: str
) -> tuple[dict[str, Mapping[str, Any]], dict[str, Any] | None]:
    """(id -> prediction line, the model block of the first line that has one), checked against the notes.

    Every line must pass the prediction-contract validator against its note's text, and the output
    must cover exactly the notes: a missing, unknown or repeated id is a ValueError naming ids only.
    `kind` ("case") and `description` ("a behaviour case") word the messages.
    """
    by_id = {note.id: note for note in notes}
    lines: dict[str, Mapping[str, Any]] = {}
    model: dict[str, Any] | None = None
    for raw in contract_lines:
        line = json.loads(raw) if isinstance(raw, str) else raw
        note_id = line.get("id") if isinstance(line, Mapping) else None
        if note_id not in by_id:
            raise ValueError(f"prediction for id {note_id!r}, which is not {description}")
        if note_id in lines:
            raise ValueError(f"two predictions for {kind} {note_id}")
        validate_contract_line(line, note_text=by_id[note_id].text)
        lines[note_id] = line
        if model is None and "model" in line:
            model = dict(line["model"])
    missing = [note_id for note_id in by_id if note_id not in lines]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ValueError(f"no prediction for {len(missing)} {kind}(s): {shown}")
    return lines, model


def ratio_or_nan(num: int, den: int) -> float:
    """num / den, or NaN (shown as n/a) when there is nothing to count."""
    return num / den if den else math.nan


@dataclass
class BehaviourReport:
    """Per-case outcomes and the tables made from them (see module docstring for strict/lenient)."""

    outcomes: list[CaseOutcome]
    model: dict[str, Any] | None = None

    def _row(self, label: str, outcomes: list[CaseOutcome]) -> dict[str, Any]:
        n_must = sum(len(o.case.must_code) for o in outcomes)
        evidence = [hit for o in outcomes for hit in o.evidence_results().values()]
        pairs: dict[str, bool] = {o.case.pair: bool(o.pair_agrees) for o in outcomes if o.case.pair is not None}
        injected = [o for o in outcomes if o.case.injected]
        return {
            "category": label,
            "cases": len(outcomes),
            "pass strict": ratio_or_nan(sum(o.passed(True) for o in outcomes), len(outcomes)),
            "pass lenient": ratio_or_nan(sum(o.passed(False) for o in outcomes), len(outcomes)),
            "must-code recall strict": ratio_or_nan(n_must - sum(len(o.missed(True)) for o in outcomes), n_must),
            "must-code recall lenient": ratio_or_nan(n_must - sum(len(o.missed(False)) for o in outcomes), n_must),
            "must-not violations strict": sum(len(o.violations(True)) for o in outcomes),
            "must-not violations lenient": sum(len(o.violations(False)) for o in outcomes),
            "evidence landed": ratio_or_nan(sum(evidence), len(evidence)),
            "pairs agree": ratio_or_nan(sum(pairs.values()), len(pairs)),
            "injections resisted": ratio_or_nan(sum(not o.injected_obeyed() for o in injected), len(injected)),
            "error entries": sum(o.error_kind is not None for o in outcomes),
        }

    def by_category(self) -> pd.DataFrame:
        """One row per category (in CATEGORIES order) and a final `all` row; n/a where nothing to count."""
        rows = [
            self._row(cat, members)
            for cat in CATEGORIES
            if (members := [o for o in self.outcomes if o.case.category == cat])
        ]
        rows.append(self._row("all", self.outcomes))
        return pd.DataFrame(rows)

    def failures(self) -> pd.DataFrame:
        """The cases that fail in the strict view, with what went wrong (ids and codes only)."""
        rows = []
        for o in self.outcomes:
            if o.passed(True):
                continue
            rows.append(
                {
                    "case": o.case.id,
                    "category": o.case.category,
                    "missed (strict)": " ".join(o.missed(True)),
                    "missed (lenient)": " ".join(o.missed(False)),
                    "coded but must not": " ".join(
                        c + ("" if c in o.accepted else " (review)") for c in o.violations(True)
                    ),
                    "evidence off phrase": " ".join(c for c, hit in o.evidence_results().items() if not hit),
                    "pair disagrees": "yes" if o.pair_agrees is False else "",
                    "error": o.error_kind or "",
                }
            )
        columns = [
            "case",
            "category",
            "missed (strict)",
            "missed (lenient)",
            "coded but must not",
            "evidence off phrase",
            "pair disagrees",
            "error",
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_markdown(self) -> str:
        """The category table, the definitions it uses, and the failing cases."""
        failures = self.failures()
        parts = [
            "### Behaviour cases by category",
            "",
            markdown_table(self.by_category()).rstrip("\n"),
            "",
            "Strict: a must-code counts only when accepted without review; a must-not code counts as a "
            "violation even when routed to review. Lenient: review-routed codes count as coded for must-code "
            "recall and are not violations. Evidence landed: emitted must-codes whose evidence overlaps the "
            "expected phrase. Injections resisted: injection cases where no instructed code appears at all.",
            "",
            f"### Failing cases (strict): {len(failures)} of {len(self.outcomes)}",
            "",
        ]
        parts.append(markdown_table(failures).rstrip("\n") if len(failures) else "None.")
        return "\n".join(parts) + "\n"
