"""Hallucination stress notes and their scorer: how often does a coder emit a code the note does not support?

`resources/behaviour/stress.jsonl` holds short notes written by hand (never from the training
generator), each documenting zero to three conditions in plain words, in the styles real
documentation has, with what a certified coder would code:

    {"id": "s-001", "setting": "outpatient", "age": 58, "sex": "M", "style": "one_line",
     "text": "...", "supported": ["I10"], "may_code": [], "out_of_label_space": []}

- `supported`: the codes the note supports and a coder must code;
- `may_code`: codes that are also acceptable (a symptom, status or history code a coder might
  reasonably add); they are neither required nor counted as unsupported;
- `out_of_label_space`: the supported codes the embedded corpus does not teach, so no model trained
  on it can emit them (the notes that hold them show over-coding: the model's nearest code is wrong).

Settings are `outpatient`, `inpatient` and `emergency`; an emergency visit is coded by the
outpatient rules (ICD-10-CM Official Guidelines, Section IV), so it goes to `medcoder predict` as
`outpatient`.

`score_stress` reads `medcoder predict` output and counts, per style, per setting and overall: the
ICD-10-CM codes emitted; the unsupported ones (neither supported nor may_code) as a share of the
emitted codes, split into accepted without review and routed to review (`behaviour.emitted_codes`
decides which); the unsupported codes marked grounded with a score above 0.9; and must-code recall
over the supported codes in the model's label space (and over all supported codes). Only ids,
codes and field names go into errors and reports, never note text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medcoder.data.schema import SETTINGS, RecordError, iter_jsonl
from medcoder.evaluation.behaviour import (
    BEHAVIOUR_DIR,
    EmittedCode,
    billable_code_problem,
    check_note_fields,
    emitted_codes,
    match_predictions,
    ratio_or_nan,
)
from medcoder.evaluation.records import markdown_table

DEFAULT_STRESS = BEHAVIOUR_DIR / "stress.jsonl"
STYLES: tuple[str, ...] = ("soap", "narrative", "problem_list", "one_line", "ed", "copy_forward", "typos")
STRESS_SETTINGS: tuple[str, ...] = (*SETTINGS, "emergency")
CONFIDENT_SCORE = 0.9  # an unsupported code above this score, grounded, is a certified hallucination
_KEYS = ("id", "setting", "age", "sex", "style", "text", "supported", "may_code", "out_of_label_space")


@dataclass(frozen=True)
class StressNote:
    """One validated stress note (see the module docstring for the file format)."""

    id: str
    setting: str
    age: int
    sex: str
    style: str
    text: str
    supported: tuple[str, ...]
    may_code: tuple[str, ...]
    out_of_label_space: tuple[str, ...]
    line: int | None = None

    def input_record(self) -> dict[str, Any]:
        """The `medcoder predict` input line: only what a coder may see; emergency is outpatient."""
        setting = "outpatient" if self.setting == "emergency" else self.setting
        return {"id": self.id, "text": self.text, "setting": setting, "age": self.age, "sex": self.sex}


# ---------------------------------------------------------------- loading
def _parse_note(obj: Any, source: str, line: int) -> StressNote:
    note_id = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None

    def fail(field: str, message: str):
        raise RecordError(source, line, field, message, note_id)

    check_note_fields(obj, allowed=_KEYS, required=_KEYS, settings=STRESS_SETTINGS, kind="note", fail=fail)
    if obj["style"] not in STYLES:
        fail("style", f"must be one of {', '.join(STYLES)}")

    def codes(key: str) -> tuple[str, ...]:
        values = obj[key]
        if not isinstance(values, list):
            fail(key, "must be a list of ICD-10-CM codes (use [] for none)")
        for i, code in enumerate(values):
            if (problem := billable_code_problem(code)) is not None:
                fail(f"{key}[{i}]", problem)
            if code in values[:i]:
                fail(f"{key}[{i}]", f"{code} is listed twice")
        return tuple(values)

    supported, may_code, outside = codes("supported"), codes("may_code"), codes("out_of_label_space")
    for i, code in enumerate(may_code):
        if code in supported:
            fail(f"may_code[{i}]", f"{code} is also in supported (a code is required or optional, not both)")
    for i, code in enumerate(outside):
        if code not in supported:
            fail(f"out_of_label_space[{i}]", f"{code} is not in supported")
    return StressNote(
        id=obj["id"],
        setting=obj["setting"],
        age=obj["age"],
        sex=obj["sex"],
        style=obj["style"],
        text=obj["text"],
        supported=supported,
        may_code=may_code,
        out_of_label_space=outside,
        line=line,
    )


def load_stress(path: str | Path = DEFAULT_STRESS) -> list[StressNote]:
    """Load and validate a stress file; a bad note is a RecordError naming file, line, field and note id."""
    source = str(path)
    notes: list[StressNote] = []
    first_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path):
        if isinstance(obj, RecordError):
            raise obj
        note = _parse_note(obj, source, lineno)
        if note.id in first_line:
            raise RecordError(source, lineno, "id", f"duplicate id (first on line {first_line[note.id]})", note.id)
        first_line[note.id] = lineno
        notes.append(note)
    if not notes:
        raise RecordError(source, None, "<file>", "holds no notes")
    return notes


# ---------------------------------------------------------------- scoring
@dataclass(frozen=True)
class NoteOutcome:
    """What the coder emitted on one note, against what the note supports. `must`: the supported
    codes the model can know (in its label space); the rest of `supported` no model of it can emit."""

    note: StressNote
    emitted: tuple[EmittedCode, ...]
    must: frozenset[str]
    error_kind: str | None = None

    def unsupported(self) -> list[EmittedCode]:
        allowed = set(self.note.supported) | set(self.note.may_code)
        return [c for c in self.emitted if c.code not in allowed]

    def found(self, codes: Iterable[str], accepted_only: bool = False) -> list[str]:
        got = {c.code for c in self.emitted if c.accepted or not accepted_only}
        return [code for code in codes if code in got]


@dataclass
class StressReport:
    """Per-note outcomes and the tables made from them (see the module docstring)."""

    outcomes: list[NoteOutcome]
    model: dict[str, Any] | None = None
    label_space_source: str = "the notes' out_of_label_space annotation"

    @staticmethod
    def _row(label: str, outcomes: list[NoteOutcome]) -> dict[str, Any]:
        emitted = sum(len(o.emitted) for o in outcomes)
        unsupported = [c for o in outcomes for c in o.unsupported()]
        n_must = sum(len(o.must) for o in outcomes)
        n_supported = sum(len(o.note.supported) for o in outcomes)
        return {
            "group": label,
            "notes": len(outcomes),
            "codes emitted": emitted,
            "unsupported rate": ratio_or_nan(len(unsupported), emitted),
            "unsupported accepted rate": ratio_or_nan(sum(c.accepted for c in unsupported), emitted),
            "unsupported routed rate": ratio_or_nan(sum(not c.accepted for c in unsupported), emitted),
            f"unsupported grounded > {CONFIDENT_SCORE}": sum(
                c.grounded and c.score > CONFIDENT_SCORE for c in unsupported
            ),
            "must-code recall (label space)": ratio_or_nan(sum(len(o.found(o.must)) for o in outcomes), n_must),
            "must-code recall accepted (label space)": ratio_or_nan(
                sum(len(o.found(o.must, True)) for o in outcomes), n_must
            ),
            "must-code recall (all supported)": ratio_or_nan(
                sum(len(o.found(o.note.supported)) for o in outcomes), n_supported
            ),
            "error entries": sum(o.error_kind is not None for o in outcomes),
        }

    def by(self, field: str) -> pd.DataFrame:
        """One row per value of `field` ("style" or "setting", in file-format order) and a final `all` row."""
        order = {"style": STYLES, "setting": STRESS_SETTINGS}[field]
        rows = [
            self._row(value, members)
            for value in order
            if (members := [o for o in self.outcomes if getattr(o.note, field) == value])
        ]
        rows.append(self._row("all", self.outcomes))
        return pd.DataFrame(rows).rename(columns={"group": field})

    def unsupported_codes(self) -> pd.DataFrame:
        """Each unsupported code the coder emitted: on how many notes, how often accepted, its top score."""
        rows: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:
            for c in o.unsupported():
                row = rows.setdefault(c.code, {"code": c.code, "notes": 0, "accepted": 0, "max score": 0.0})
                row["notes"] += 1
                row["accepted"] += int(c.accepted)
                row["max score"] = max(row["max score"], c.score)
        table = pd.DataFrame(list(rows.values()), columns=["code", "notes", "accepted", "max score"])
        return table.sort_values(["notes", "code"], ascending=[False, True]).reset_index(drop=True)

    def failures(self) -> pd.DataFrame:
        """Notes with an unsupported code or a missed must-code (ids and codes only)."""
        rows = []
        for o in self.outcomes:
            wrong = o.unsupported()
            missed = [c for c in o.note.supported if c in o.must and not o.found([c])]
            if not wrong and not missed and o.error_kind is None:
                continue
            rows.append(
                {
                    "note": o.note.id,
                    "style": o.note.style,
                    "unsupported accepted": " ".join(c.code for c in wrong if c.accepted),
                    "unsupported routed": " ".join(c.code for c in wrong if not c.accepted),
                    "missed (label space)": " ".join(missed),
                    "error": o.error_kind or "",
                }
            )
        columns = ["note", "style", "unsupported accepted", "unsupported routed", "missed (label space)", "error"]
        return pd.DataFrame(rows, columns=columns)

    def to_markdown(self) -> str:
        failures, codes = self.failures(), self.unsupported_codes()
        parts = [
            "### Stress notes by style",
            "",
            markdown_table(self.by("style")).rstrip("\n"),
            "",
            "### Stress notes by setting",
            "",
            markdown_table(self.by("setting")).rstrip("\n"),
            "",
            "Rates are shares of the ICD-10-CM codes emitted. Unsupported: emitted, but neither supported by the "
            "note nor among its acceptable codes. Accepted: grounded and named by no review reason (it would reach a "
            "claim unreviewed); routed: sent to review. Must-code recall counts a supported code found when emitted "
            f"at all; the accepted variant only when accepted. Label space: {self.label_space_source}.",
            "",
            f"### Unsupported codes emitted: {len(codes)} distinct",
            "",
            markdown_table(codes).rstrip("\n") if len(codes) else "None.",
            "",
            f"### Notes with an unsupported or missed code: {len(failures)} of {len(self.outcomes)}",
            "",
            markdown_table(failures).rstrip("\n") if len(failures) else "None.",
        ]
        return "\n".join(parts) + "\n"


def score_stress(
    notes: list[StressNote],
    contract_lines: Iterable[Mapping[str, Any] | str],
    *,
    label_space: Collection[str] | None = None,
    label_space_source: str | None = None,
) -> StressReport:
    """Score `medcoder predict` output lines (one per note, any order) against the stress notes.

    `label_space`: the ICD-10-CM codes the scored model can emit (its training run's label space);
    None falls back to the notes' own `out_of_label_space` annotation. Lines are checked like the
    behaviour cases' (contract validator, exactly one line per note).
    """
    lines, model = match_predictions(notes, contract_lines, kind="note", description="a stress note")
    outcomes = []
    for note in notes:
        line = lines[note.id]
        if label_space is None:
            must = frozenset(note.supported) - set(note.out_of_label_space)
        else:
            must = frozenset(c for c in note.supported if c in label_space)
        if "error" in line:
            outcomes.append(NoteOutcome(note, (), must, error_kind=str(line["error"]["kind"])))
        else:
            outcomes.append(NoteOutcome(note, tuple(emitted_codes(line)), must))
    source = label_space_source or (
        "the notes' out_of_label_space annotation"
        if label_space is None
        else f"given, {len(label_space)} ICD-10-CM codes"
    )
    return StressReport(outcomes=outcomes, model=model, label_space_source=source)
