"""What coders changed in the model's codes, and what appeals decided about denials: the two human signals
the denial-feedback retraining learns from next to the remittance (docs/DENIALS.md).

Both are JSONL, one record per line, checked against pydantic models that forbid unknown fields. A bad
line is a `RecordError` naming the file, the line and the field, never the value (a value may be note text
or an identifier). With on_error="skip" the line is left out and listed in the report's `skipped` with its
reason, and the count is logged, so nothing is dropped silently.

Evidence is stored as character offsets into the note only: the quoted text is not a field, so a
correction file never holds note text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from medcoder.codes import icd10cm
from medcoder.codes.formats import ICD10CM, CodeFormatError, normalize_code
from medcoder.data.loading import OnError, check_on_error
from medcoder.data.schema import RecordError, iter_jsonl, skipped_by_reason

log = logging.getLogger(__name__)

_CONTRACT = ConfigDict(extra="forbid", hide_input_in_errors=True, strict=True, frozen=True)
CorrectionSystem = Literal["ICD-10-CM", "CPT", "HCPCS"]
Action = Literal["add", "delete", "replace", "modifier"]
Outcome = Literal["overturned", "upheld"]
Modifier = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{2}$")]  # CPT/HCPCS modifiers: 25, 59, XS, LT
Carc = Annotated[str, StringConstraints(pattern=r"^[0-9A-Z]{1,3}$")]  # 11, 236, B7, P14


def _aware_datetime(value: Any) -> datetime:
    """An ISO 8601 date-time with a time zone: a naive time is ambiguous across sites and daylight saving."""
    parsed = value if isinstance(value, datetime) else None  # built in code rather than read from a file
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else parsed
    except ValueError:
        pass
    if parsed is None or parsed.tzinfo is None:
        message = "must be an ISO 8601 date-time with a time zone, e.g. 2026-01-05T14:30:00Z"
        raise PydanticCustomError("aware_datetime", message)
    return parsed


def _date_or_aware_datetime(value: Any) -> date:
    """An ISO 8601 date (2026-02-01) or a date-time with a time zone: payers date appeal decisions by day."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    try:
        return _aware_datetime(value)
    except PydanticCustomError:
        raise PydanticCustomError(
            "date_or_aware_datetime", "must be an ISO 8601 date (2026-02-01) or a date-time with a time zone"
        ) from None


AwareDatetime = Annotated[datetime, PlainValidator(_aware_datetime)]
DecisionDate = Annotated[date, PlainValidator(_date_or_aware_datetime)]


def _checked_code(system: str, raw: str) -> str:
    """The canonical spelling of `raw`; an ICD-10-CM code must also exist in the shipped code set. The error
    says what is wrong and never repeats the code (it is user input)."""
    try:
        code = normalize_code(system, raw)
    except CodeFormatError:
        raise PydanticCustomError("code_format", f"not a well-formed {system} code") from None
    if system == ICD10CM and not icd10cm.is_valid(code):
        raise PydanticCustomError("code_unknown", f"not an ICD-10-CM code in {icd10cm.CODE_SET_VERSION}")
    return code


class EvidenceOffsets(BaseModel):
    """Where in the note the coder saw the support: character offsets [start, end). No `text` field, on
    purpose: the quoted text is never stored, only where it is."""

    model_config = _CONTRACT
    start: int = Field(ge=0)
    end: int

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: int, info: ValidationInfo) -> int:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise PydanticCustomError("end_not_after_start", "must be greater than start")
        return end


class Correction(BaseModel):
    """One change a coder made to the model's codes for a note.

    `code` is the coder's code: added, deleted, the replacement (then `replaced_code` is the model's code it
    replaces), or the code whose `modifiers` the coder set. Fields are checked in order, so the checks of
    `code`, `replaced_code` and `modifiers` can read `system` and `action`.
    """

    model_config = _CONTRACT
    encounter_id: str = Field(min_length=1)
    note_id: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    system: CorrectionSystem
    action: Action
    code: str
    replaced_code: str | None = Field(None, validate_default=True)
    modifiers: tuple[Modifier, ...] = Field((), strict=False, validate_default=True)
    reason: str | None = None
    evidence: EvidenceOffsets | None = None
    coder_id: str = Field(min_length=1)
    timestamp: AwareDatetime

    @field_validator("code")
    @classmethod
    def _code(cls, code: str, info: ValidationInfo) -> str:
        system = info.data.get("system")
        return _checked_code(system, code) if system else code

    @field_validator("replaced_code")
    @classmethod
    def _replaced_code(cls, replaced: str | None, info: ValidationInfo) -> str | None:
        action, system = info.data.get("action"), info.data.get("system")
        if action is None:
            return replaced
        if action != "replace":
            if replaced is not None:
                raise PydanticCustomError("replaced_code_forbidden", "only allowed for action 'replace'")
            return None
        if replaced is None:
            raise PydanticCustomError("replaced_code_missing", "required for action 'replace'")
        replaced = _checked_code(system, replaced) if system else replaced
        if replaced == info.data.get("code"):
            raise PydanticCustomError("replaced_code_same", "must differ from code")
        return replaced

    @field_validator("modifiers")
    @classmethod
    def _modifiers(cls, modifiers: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if info.data.get("action") == "modifier" and not modifiers:
            raise PydanticCustomError("modifiers_missing", "required for action 'modifier' (one or more)")
        if info.data.get("system") == ICD10CM and modifiers:
            raise PydanticCustomError("modifiers_icd", "ICD-10-CM codes take no modifiers")
        return modifiers


class AppealOutcome(BaseModel):
    """What an appeal decided about one denial: the claim (CLP01/CLM01), the line (REF*6R; absent for a
    claim-level denial), the CARC that was appealed, and whether the payer's denial stood."""

    model_config = _CONTRACT
    claim_id: str = Field(min_length=1)
    line_control: str | None = Field(None, min_length=1)
    carc: Carc
    outcome: Outcome
    decided_at: DecisionDate


Record = TypeVar("Record", bound=BaseModel)


@dataclass
class JsonlReport(Generic[Record]):
    """The records that passed, and the lines skipped (on_error="skip" only) with line, field and reason."""

    records: list[Record] = field(default_factory=list)
    skipped: list[RecordError] = field(default_factory=list)

    def skipped_by_reason(self) -> dict[str, int]:
        """How many lines were skipped for each "field: reason", most frequent first."""
        return skipped_by_reason(self.skipped)


class CorrectionReport(JsonlReport[Correction]):
    """Coder corrections read from a JSONL file."""


class AppealReport(JsonlReport[AppealOutcome]):
    """Appeal outcomes read from a JSONL file."""


def _field_name(loc: tuple[int | str, ...]) -> str:
    """("modifiers", 0) -> "modifiers[0]"; ("evidence", "end") -> "evidence.end"."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name or "<record>"


def _record_error(source: str, line: int, exc: ValidationError) -> RecordError:
    """The first problem pydantic found, as file:line: field 'x': what is wrong. pydantic's messages name the
    expected type or values, never the input (and the models hide the input), so no value leaks."""
    first = exc.errors(include_url=False, include_input=False, include_context=False)[0]
    if first["type"] == "missing":
        reason = "required"
    elif first["type"] == "extra_forbidden":
        reason = "not a field of the contract"
    else:
        msg = first["msg"]  # pydantic's "Input should be ..." reads lower-case after the colon; "ICD-10-CM ..." stays
        reason = msg[:1].lower() + msg[1:] if msg[1:2].islower() else msg
    return RecordError(source, line, _field_name(first["loc"]), reason)


def _read_jsonl(path: str | Path, model: type[Record], on_error: OnError, report: JsonlReport[Record]) -> None:
    check_on_error(on_error)
    source = str(path)
    for line, obj in iter_jsonl(path):
        try:
            if isinstance(obj, RecordError):
                raise obj
            if not isinstance(obj, dict):
                raise RecordError(source, line, "<record>", f"must be a JSON object, got {type(obj).__name__}")
            try:
                report.records.append(model.model_validate(obj))
            except ValidationError as exc:
                raise _record_error(source, line, exc) from None
        except RecordError as err:
            if on_error == "raise":
                raise
            report.skipped.append(err)
    if report.skipped:
        reasons = "; ".join(f"{n} x {reason}" for reason, n in list(report.skipped_by_reason().items())[:5])
        log.warning("%s: skipped %d record(s): %s", source, len(report.skipped), reasons)


def read_corrections(path: str | Path, on_error: OnError = "raise") -> CorrectionReport:
    """Every coder correction in a JSONL file, each validated against `Correction`.

    on_error="raise" stops at the first bad line with a RecordError ("corrections.jsonl:7: field
    'replaced_code': required for action 'replace'"); "skip" leaves bad lines out, lists them in
    `skipped` and logs their count by reason."""
    report = CorrectionReport()
    _read_jsonl(path, Correction, on_error, report)
    return report


def read_appeals(path: str | Path, on_error: OnError = "raise") -> AppealReport:
    """Every appeal outcome in a JSONL file, each validated against `AppealOutcome`; on_error as in
    `read_corrections`."""
    report = AppealReport()
    _read_jsonl(path, AppealOutcome, on_error, report)
    return report


def overturned_keys(appeals: Iterable[AppealOutcome]) -> set[tuple[str, str | None]]:
    """The (claim_id, line_control) pairs whose denial an appeal overturned; line_control None is a
    claim-level denial and covers every line of the claim.

    The retraining must never use these denials as negatives: an overturned denial says the payer was
    wrong, not the codes. One overturned decision is enough, at any appeal level and whatever else was
    decided for the pair (another CARC upheld, an earlier level upheld): a label we cannot trust costs
    more than one example left out.
    """
    return {(a.claim_id, a.line_control) for a in appeals if a.outcome == "overturned"}
