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

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from medcoder.codes import icd10cm
from medcoder.codes.formats import CPT, HCPCS, ICD10CM, is_canonical
from medcoder.codes.icd11 import MAP_KINDS
from medcoder.data.schema import SETTINGS, SEXES
from medcoder.inference.inputs import ERROR_KINDS

_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, strict=True)
Setting = Literal[SETTINGS]  # type: ignore[valid-type]
Sex = Literal[SEXES]  # type: ignore[valid-type]
OutputSystem = Literal[ICD10CM, CPT, HCPCS]
MapKind = Literal[MAP_KINDS]  # type: ignore[valid-type]
ErrorKind = Literal[ERROR_KINDS]  # type: ignore[valid-type]
# Risk adjustment (`medcoder predict --risk-adjustment`, docs/RISK.md): the CMS-HCC models it scores with
# (`--hcc-model` -> hccinfhir's model name), CMS's Medicare-Medicaid dual eligibility codes as enrollment
# files carry them, the rules that keep a code out of a score (`medcoder.risk.rules`)
HCC_MODELS: dict[str, str] = {"V28": "CMS-HCC Model V28", "V24": "CMS-HCC Model V24"}
DEFAULT_HCC_MODEL = "V28"  # the model of payment year 2026; V24, the one it replaces, for comparison
DUAL_STATUS_CODES: tuple[str, ...] = tuple(f"{n:02d}" for n in range(11))
RISK_EXCLUSION_RULES: tuple[str, ...] = (
    "bmi_in_pregnancy", "bmi_age_band", "bmi_needs_weight_diagnosis", "hcc_high_risk_not_stated"
)  # fmt: skip
HccModelName = Literal[tuple(HCC_MODELS.values())]  # type: ignore[valid-type]
DualStatus = Literal[DUAL_STATUS_CODES]  # type: ignore[valid-type]
RiskExclusionRule = Literal[RISK_EXCLUSION_RULES]  # type: ignore[valid-type]
MAX_SUBMITTED_CODES = 1000


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
    prior_visit_date: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="the patient's last visit with the practice (same "
        "specialty), YYYY-MM-DD, not after encounter_date: within 3 years the patient is established, and a "
        "new-patient E/M code is routed to review (em_patient_status)"
    )  # fmt: skip
    # enrollment fields: read by risk adjustment only (medcoder predict --risk-adjustment), never by the model
    dual_status: DualStatus | None = Field(
        None, description="CMS Medicare-Medicaid dual eligibility code: '00' not dual, '02'/'04'/'08' full, "
        "'01'/'03'/'05'/'06' partial benefit (risk adjustment)"
    )  # fmt: skip
    new_enrollee: bool | None = Field(None, description="a new Medicare enrollee (risk adjustment)")
    institutional: bool | None = Field(None, description="a long-term institutional resident (risk adjustment)")
    pregnant: bool | None = Field(None, description="the patient is pregnant: no BMI code counts (risk adjustment)")
    submitted_codes: list[str] | None = Field(
        None, max_length=MAX_SUBMITTED_CODES, description="ICD-10-CM codes already submitted for the patient this "
        "year, the baseline of the risk score's change (risk adjustment)"
    )  # fmt: skip

    @field_validator("submitted_codes")
    @classmethod
    def _billable_codes(cls, codes: list[str] | None) -> list[str] | None:
        """Each a billable ICD-10-CM code of the configured release, in canonical form (the message names its
        position, never its value)."""
        for i, code in enumerate(codes or ()):
            if not (is_canonical(ICD10CM, code) and icd10cm.is_billable(code)):
                raise ValueError(f"item {i} is not a billable ICD-10-CM code in canonical dotted form (e.g. E11.9)")
        return codes


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


class RiskCode(BaseModel):
    """A code of the prediction behind an HCC, with the evidence the contract gives it."""

    model_config = _STRICT
    code: str = Field(description="one of the prediction's ICD-10-CM codes")
    hcc: str = Field(description="the HCC it maps to: this entry's, or one this HCC wins over in the hierarchy")
    high_risk: bool = Field(description="on HHS-OIG's high-risk list (then grounded and stated by the verifier)")
    grounded: bool
    support: float | None = Field(ge=0.0, le=1.0)
    evidence: list[Evidence]


class HccOut(BaseModel):
    """One CMS-HCC of the suggested codes, as hccinfhir gives it."""

    model_config = _STRICT
    hcc: str = Field(pattern=r"^\d+$", description="the HCC number in the model")
    label: str | None
    coefficient: float | None = Field(description="hccinfhir's coefficient for this patient's segment")
    codes: list[RiskCode]


class RiskExclusion(BaseModel):
    """A code kept out of a score by one of our rules (docs/RISK.md)."""

    model_config = _STRICT
    code: str
    rule: RiskExclusionRule
    source: str = Field(description="the guideline section or OIG report the rule applies")
    hcc: str | None = Field(description="the high-risk HCC the code maps to (rule hcc_high_risk_not_stated)")


class RiskDemographics(BaseModel):
    model_config = _STRICT
    age: int = Field(ge=0, le=130)
    sex: Literal["F", "M"]
    dual_status: DualStatus | None
    new_enrollee: bool
    institutional: bool
    pregnant: bool = Field(description="the input's flag, or a pregnancy code among the codes (O, Z3A, Z33.1)")


class RiskBaseline(BaseModel):
    """The codes already submitted for the patient (the input's submitted_codes) and their score."""

    model_config = _STRICT
    codes: list[str]
    excluded: list[RiskExclusion]
    hccs: list[str]
    risk_score: float


class RiskAdjustment(BaseModel):
    """CMS-HCC risk adjustment of the prediction's ICD-10-CM codes; every score is hccinfhir's (docs/RISK.md)."""

    model_config = _STRICT
    model: HccModelName
    demographics: RiskDemographics
    hccs: list[HccOut] = Field(description="the HCCs of the suggested codes our rules keep, after the hierarchies")
    excluded: list[RiskExclusion] = Field(description="suggested codes our rules keep out of the score")
    demographic_score: float = Field(description="the part of risk_score from the demographics alone")
    risk_score: float = Field(description="the score of the suggested codes our rules keep")
    baseline: RiskBaseline
    combined_score: float = Field(description="the score of the submitted and the suggested codes together")
    delta: float = Field(description="combined_score - baseline.risk_score: what the suggestions add")
    added_hccs: list[str] = Field(description="HCCs of the combined codes the baseline does not have")


class RiskAdjustmentMissing(BaseModel):
    """Risk adjustment asked for a note that cannot be scored: CMS-HCC needs the age and a sex of F or M."""

    model_config = _STRICT
    model: HccModelName
    missing: list[Literal["age", "sex"]] = Field(min_length=1)


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
    risk_adjustment: RiskAdjustment | RiskAdjustmentMissing | None = Field(
        None, description="CMS-HCC risk adjustment of the codes (medcoder predict --risk-adjustment)"
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
