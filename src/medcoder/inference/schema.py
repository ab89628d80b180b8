"""The serving contract as types: one input record, one prediction line, one error entry.

These pydantic models are the single definition of the shapes serving teams program against:
`docs/schemas/*.schema.json` are generated from them (`scripts/write_schemas.py`; a test fails when
the files are stale), `medcoder.inference.inputs.validate_input` checks a record's optional fields
with `PredictionInput`, and the packaged model's MLflow signature is derived from the same fields
(`PredictionRecord`, the type hint of the pyfunc's predict). What a type cannot say (evidence text
equals the note's characters, codes are valid billable codes, review reasons match the codes) stays
in `contract.validate_contract_line`.

Validation errors never carry input values (`hide_input_in_errors`): a value may be note text.
"""

from __future__ import annotations

import operator
from functools import reduce
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from medcoder.codes.formats import CPT, HCPCS, ICD10CM
from medcoder.codes.icd11 import MAP_KINDS
from medcoder.data.schema import SETTINGS, SEXES
from medcoder.inference.inputs import ERROR_KINDS

_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, strict=True)
Setting = Literal[SETTINGS]  # type: ignore[valid-type]
Sex = Literal[SEXES]  # type: ignore[valid-type]
OutputSystem = Literal[ICD10CM, CPT, HCPCS]
MapKind = Literal[MAP_KINDS]  # type: ignore[valid-type]
ErrorKind = Literal[ERROR_KINDS]  # type: ignore[valid-type]


class PredictionInput(BaseModel):
    """One note to code: a line of `medcoder predict`'s input, or an element of a server's `inputs`."""

    model_config = _STRICT
    id: str = Field(min_length=1, description="the caller's note id; every output line carries it")
    text: str = Field(description="the note text (plain UTF-8); evidence offsets index into it")
    setting: Setting | None = Field(None, description="outpatient or inpatient: which coding guidelines apply")
    age: int | None = Field(None, ge=0, le=130, description="patient age in years")
    sex: Sex | None = Field(None, description="F, M or U")
    payer: str | None = Field(
        None, min_length=1, description="the payer the encounter is billed to; with a denial-risk history "
        "(`medcoder predict --denial-risk`), the note's claim is checked before submission"
    )  # fmt: skip
    encounter_date: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="date of service, YYYY-MM-DD (edits are looked up by it)"
    )


class Evidence(BaseModel):
    model_config = _STRICT
    start: int = Field(ge=0, description="character offset into the note, inclusive")
    end: int = Field(gt=0, description="character offset into the note, exclusive")
    text: str = Field(description="exactly text[start:end] of the note")


class Icd11(BaseModel):
    model_config = _STRICT
    code: str | None = Field(description="ICD-11 MMS code; null when map is 'none'")
    title: str | None
    map: MapKind


class PredictedCodeOut(BaseModel):
    model_config = _STRICT
    system: OutputSystem
    code: str = Field(description="canonical dotted form, a valid billable code of model.code_sets")
    description: str
    score: float = Field(ge=0.0, le=1.0)
    grounded: bool = Field(
        description="has evidence that is not a negated, family, historical or hypothetical mention "
        "and that the evidence verifier accepts as saying this code (docs/GROUNDING.md)"
    )
    support: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="the evidence verifier's support for the quoted text; null when the model has no verifier",
    )
    rules_applied: list[str] = Field(
        default_factory=list, description="guideline rules that added or changed this code"
    )
    evidence: list[Evidence]
    icd11: Icd11 | None = Field(None, description="ICD-11 translation; present for ICD-10-CM codes only")


class EmLevel(BaseModel):
    model_config = _STRICT
    code: str = Field(description="E/M level, a CPT code such as 99214")
    score: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence]


class Review(BaseModel):
    model_config = _STRICT
    required: bool
    reasons: list[str] = Field(description="'<rule>:<code>' entries, e.g. 'low_confidence:I50.22'")


class ModelInfo(BaseModel):
    model_config = _STRICT
    name: str = Field(min_length=1)
    version: str = Field(min_length=1, description="registry version that answered, else 'sha256:<manifest prefix>'")
    run_id: str | None
    code_sets: dict[str, str] = Field(description="code system -> code-set version the model validates against")


class RuleEventOut(BaseModel):
    model_config = _STRICT
    rule: str = Field(description="guideline rule id (medcoder.inference.guidelines)")
    section: str = Field(description="ICD-10-CM Official Guidelines section it applies")
    removed: list[str] = Field(description="codes the rule removed")
    added: list[str] = Field(description="codes the rule added")


class DenialRiskLine(BaseModel):
    """One billed line of the note's claim (a procedure, service or visit-level code) and its denial risk."""

    model_config = _STRICT
    code: str = Field(description="the line's code, one of the prediction's codes or its E/M level")
    risk: float = Field(ge=0.0, le=1.0, description="probability the payer denies the line for its coding")
    reason: str = Field(description="'edit: <rule>: <detail>' or 'history: <pattern>: <n> of <m> lines denied'")
    denied: int = Field(ge=0, description="past lines of the pattern a coding-caused denial hit")
    seen: int = Field(ge=0, description="past lines of the pattern (0 for an edit)")


class DenialRisk(BaseModel):
    """The note's claim checked before submission (present only with a payer and a denial-risk history)."""

    model_config = _STRICT
    payer: str
    claim_risk: float = Field(ge=0.0, le=1.0, description="the highest line risk")
    lines: list[DenialRiskLine]


class Prediction(BaseModel):
    """A coded note."""

    model_config = _STRICT
    id: str = Field(min_length=1)
    model: ModelInfo
    codes: list[PredictedCodeOut]
    em: EmLevel | None
    review: Review
    rules: list[RuleEventOut] = Field(default_factory=list, description="what the guideline rules changed, in order")
    denial_risk: DenialRisk | None = Field(
        None, description="the claim's denial risk before submission (medcoder predict --denial-risk)"
    )


class ErrorDetail(BaseModel):
    model_config = _STRICT
    kind: ErrorKind
    message: str = Field(min_length=1, description="what is wrong and where (field, length, line); never note text")


class ErrorEntry(BaseModel):
    """A record that could not be coded, in its place in the output."""

    model_config = _STRICT
    id: str = Field(min_length=1, description="the record's id, or 'line:<n>' when it had none")
    error: ErrorDetail


OutputLine = Prediction | ErrorEntry
SCHEMAS: dict[str, type[BaseModel]] = {
    "prediction_input": PredictionInput,
    "prediction": Prediction,
    "error_entry": ErrorEntry,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """name -> JSON Schema (draft 2020-12, as pydantic writes it) of each serving type."""
    return {name: model.model_json_schema() for name, model in SCHEMAS.items()}


def _without_literals(annotation: Any) -> Any:
    """`Literal["a", "b"]` -> `str` (MLflow signatures have no enums), through `X | None`."""
    if get_origin(annotation) is Literal:
        return type(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        return reduce(operator.or_, (_without_literals(a) for a in get_args(annotation)))
    return annotation


# The type hint of the pyfunc's predict, so the MLflow signature names every field of PredictionInput
# (MLflow infers `Array(Object(id, text, setting?, age?, sex?))`; a `dict` hint gives only `map<any>`).
# Derived from PredictionInput, not written twice; the pyfunc still validates each record itself.
PredictionRecord: type[BaseModel] = create_model(
    "PredictionRecord",
    __doc__=PredictionInput.__doc__,
    **{
        name: (_without_literals(f.annotation), ... if f.is_required() else None)
        for name, f in PredictionInput.model_fields.items()
    },
)
