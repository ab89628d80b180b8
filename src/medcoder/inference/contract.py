"""The prediction contract: render a coder's `NotePrediction` as one output line, and check a line.

`render_prediction` is the single gate every prediction passes on its way out (docs/ARCHITECTURE.md,
"Prediction contract"), so the invariants live here and nowhere else:
- only codes that `is_valid(system, code)` accepts (valid, billable, of the configured code-set
  version) leave; the others are removed, counted in `invalid_code_removed:<n>` and never echoed
  (a code string from a generative coder could be anything, including note text);
- `grounded` means "has evidence and the coder said grounded"; ungrounded codes are routed to
  review or dropped by the `RoutingPolicy`;
- every evidence `text` is exactly `note[start:end]`;
- a note the coder could not read to its end (`NotePrediction.read_chars`) is routed to review with
  `truncated:<characters read>`: codes documented after that point are missing, and the caller
  must know.
Model output that breaks the contract in a way that cannot be repaired (a span outside the note,
a NaN score, a code given twice) is a bug in the coder: `ContractError`, naming note id and code.

`validate_contract_line` is the independent checker: tests, `render_prediction` itself and
consumers of `medcoder predict` run it on each line (a prediction or an error entry).
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from medcoder.codes.age_sex import PatientFacts
from medcoder.codes.errors import UnsupportedCodeSystemError
from medcoder.codes.formats import CPT, HCPCS, ICD10CM, is_canonical
from medcoder.codes.icd11 import MAP_KINDS, Icd11Translator
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import Span
from medcoder.inference.inputs import ERROR_KINDS
from medcoder.inference.routing import (
    CATEGORY_REASONS,
    COUNT_REASONS,
    HCC_REASONS,
    REASON_ORDER,
    SYSTEM_REASONS,
    RoutingPolicy,
    apply_routing,
    is_grounded,
)

CodeValidator = Callable[[str, str], bool]
Describer = Callable[[str, str], str]

OUTPUT_SYSTEMS: tuple[str, ...] = (ICD10CM, CPT, HCPCS)
SCORE_DECIMALS = 4  # finer than any threshold or calibration bin; avoids float noise in diffs
PREDICTION_KEYS = ("id", "model", "codes", "em", "review")
# added with the evidence verifier and the guideline layer; optional so older lines still validate
OPTIONAL_PREDICTION_KEYS = ("rules", "denial_risk", "risk_adjustment")
OPTIONAL_CODE_KEYS = ("support", "rules_applied")
MODEL_KEYS = ("name", "version", "run_id", "code_sets")
_REASON = re.compile(r"^(?P<rule>[a-z_]+):(?P<detail>[0-9A-Z.-]+)$")
HIGH_RISK_NOT_STATED = "hcc_high_risk_not_stated"  # the risk-adjustment rule that leaves a high-risk HCC's codes out


class ContractError(ValueError):
    """A coder output or an output line that breaks the prediction contract. Never holds note text."""


def check_servable(systems: Iterable[str]) -> None:
    """Refuse a label space with codes of a system the contract cannot return (ICD-10-PCS, ICD-9...).

    `render_prediction` returns only codes it can validate against a configured code set, so a model
    trained on other systems would train, evaluate, and then silently drop those codes in
    `medcoder predict`. The training job calls this before it fits, so that mismatch is a sentence at
    the start of the run instead of a model that serves less than it was scored on.
    """
    counts: dict[str, int] = {}
    for system in systems:
        counts[system] = counts.get(system, 0) + 1
    unservable = {s: n for s, n in sorted(counts.items()) if s not in OUTPUT_SYSTEMS}
    if unservable:
        found = ", ".join(f"{s} ({n} codes)" for s, n in unservable.items())
        raise ValueError(
            f"the label space holds {found}, which a packaged model cannot return: the prediction contract "
            f"validates {', '.join(OUTPUT_SYSTEMS)} only. Train on those systems (data.label_systems=[ICD-10-CM]; "
            "CodiEsp: data.dataset_options.include_procedures=false)"
        )


# ---------------------------------------------------------------- rendering
def _checked_score(value: Any, where: str) -> float:
    """A plain float from a Python or numpy number (numpy floats would not be JSON-serialisable)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ContractError(f"{where}: score must be a number from 0 to 1, got {value!r}")
    return float(value)


def _evidence(spans: tuple[Span, ...], text: str, where: str) -> list[dict[str, Any]]:
    """Spans -> sorted, de-duplicated `{start, end, text}` objects; a span outside the note is a bug."""
    out = []
    for start, end in sorted(set(spans)):
        if not (
            isinstance(start, numbers.Integral) and isinstance(end, numbers.Integral) and 0 <= start < end <= len(text)
        ):
            raise ContractError(
                f"{where}: evidence span [{start}, {end}) is empty or outside the note ({len(text)} characters)"
            )
        start, end = int(start), int(end)  # numpy integers are not JSON-serialisable
        out.append({"start": start, "end": end, "text": text[start:end]})
    return out


def _model_object(model_info: Mapping[str, Any]) -> dict[str, Any]:
    model = {key: model_info.get(key) for key in MODEL_KEYS}
    extra = sorted(set(model_info) - set(MODEL_KEYS))
    if extra:
        raise ContractError(
            f"model_info has unknown keys {extra}; the contract's model object has {', '.join(MODEL_KEYS)}"
        )
    _check_model(model, lambda path, msg: _raise(path.replace("model", "model_info", 1), msg))
    return {**model, "code_sets": dict(model["code_sets"])}


def render_prediction(
    note_id: str,
    text: str,
    pred: NotePrediction,
    *,
    model_info: Mapping[str, Any],
    policy: RoutingPolicy,
    translator: Icd11Translator,
    is_valid: CodeValidator,
    describe: Describer,
    setting: str | None = None,
    patient: PatientFacts | None = None,
) -> dict[str, Any]:
    """One contract line (a dict ready for `json.dumps`) for one note of `setting` (routing reads it;
    None: unknown) and of a `patient` whose age, sex and visit history the age and sex edits check
    (`codes.age_sex`; None: no edit); see the module docstring."""
    if pred.id != note_id:
        raise ContractError(f"prediction for note {pred.id!r} was given for note {note_id!r}")
    model = _model_object(model_info)

    def valid(system: str, code: str) -> bool:
        try:
            return bool(is_valid(system, code))
        except UnsupportedCodeSystemError:  # no code set to check it against: it must not leave
            return False

    # 1. Remove (and count) codes that are not valid billable codes; check what stays.
    codes: list[PredictedCode] = []
    seen: set[tuple[str, str]] = set()
    n_invalid = 0
    for c in pred.codes:
        if not valid(c.system, c.code):
            n_invalid += 1
            continue
        where = f"note {note_id}, {c.system} {c.code}"
        if (c.system, c.code) in seen:
            raise ContractError(f"{where}: code predicted twice")
        seen.add((c.system, c.code))
        codes.append(replace(c, score=_checked_score(c.score, where)))
    em_code, em_score = pred.em_code, pred.em_score
    if em_code is not None and not valid(CPT, em_code):
        n_invalid += 1
        em_code = em_score = None
    if em_code is not None:
        em_score = _checked_score(em_score, f"note {note_id}, E/M {em_code}")

    # 2. Route: review reasons, ungrounded codes dropped or flagged.
    kept, review = apply_routing(
        replace(pred, codes=tuple(codes), em_code=em_code, em_score=em_score), policy, setting, patient
    )
    note_reasons = [f"invalid_code_removed:{n_invalid}"] if n_invalid else []
    if pred.read_chars is not None:
        note_reasons.append(f"truncated:{int(pred.read_chars)}")
    # by category, whether the verifier read a category or a label's billable sibling (I21.11 -> I21)
    note_reasons += sorted({f"outside_label_space:{code[:3]}" for code, _ in pred.outside_diagnoses})
    if not any(c.system == ICD10CM for c in kept):
        note_reasons.append(f"no_diagnosis_code:{ICD10CM}")
    if note_reasons:
        review = {"required": True, "reasons": [*note_reasons, *review["reasons"]]}

    # 3. Render, highest score first.
    out_codes = []
    for c in sorted(kept, key=lambda c: (-c.score, c.system, c.code)):
        obj: dict[str, Any] = {
            "system": c.system,
            "code": c.code,
            "description": describe(c.system, c.code),
            "score": round(c.score, SCORE_DECIMALS),
            "grounded": is_grounded(c),
            "support": None
            if c.support is None
            else round(_checked_score(c.support, f"note {note_id}, {c.system} {c.code} support"), SCORE_DECIMALS),
            "rules_applied": list(c.rules_applied),
            "evidence": _evidence(c.evidence, text, f"note {note_id}, {c.system} {c.code}"),
        }
        if c.system == ICD10CM:
            obj["icd11"] = translator.translate(c.code).to_dict()
        out_codes.append(obj)
    em = None
    if em_code is not None:
        em = {"code": em_code, "score": round(em_score, SCORE_DECIMALS),
              "evidence": _evidence(pred.em_evidence, text, f"note {note_id}, E/M {em_code}")}  # fmt: skip
    line = {"id": note_id, "model": model, "codes": out_codes, "em": em, "review": review,
            "rules": [event.to_dict() for event in pred.rules]}  # fmt: skip
    validate_contract_line(line, note_text=text, is_valid=is_valid)
    return line


# ---------------------------------------------------------------- checking
def _raise(path: str, message: str) -> None:
    raise ContractError(f"{path}: {message}")


def _check_keys(obj: Any, path: str, required: tuple[str, ...], fail, optional: tuple[str, ...] = ()) -> None:
    if not isinstance(obj, dict):
        fail(path, f"must be an object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    extra = sorted(k for k in obj if k not in required and k not in optional)
    if missing:
        fail(path, f"missing key(s) {missing}")
    if extra:
        fail(path, f"unknown key(s) {extra}")


def _check_model(model: Any, fail) -> None:
    _check_keys(model, "model", MODEL_KEYS, fail)
    for key in ("name", "version"):
        if not isinstance(model[key], str) or not model[key]:
            fail(f"model.{key}", "must be a non-empty string")
    if model["run_id"] is not None and not isinstance(model["run_id"], str):
        fail("model.run_id", "must be a string or null")
    sets = model["code_sets"]
    if (
        not isinstance(sets, Mapping)
        or not sets
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in sets.items())
    ):
        fail("model.code_sets", "must be a non-empty object of code system -> version strings")


def _check_score(value: Any, path: str, fail) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0 <= value <= 1
    ):
        fail(path, f"must be a number from 0 to 1, got {value!r}")


def _check_evidence(evidence: Any, path: str, note_text: str | None, fail) -> None:
    if not isinstance(evidence, list):
        fail(path, "must be a list")
    for j, ev in enumerate(evidence):
        at = f"{path}[{j}]"
        _check_keys(ev, at, ("start", "end", "text"), fail)
        start, end, text = ev["start"], ev["end"], ev["text"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not 0 <= start < end:
            fail(at, f"start/end must be integers with 0 <= start < end, got [{start!r}, {end!r})")
        if not isinstance(text, str) or len(text) != end - start:
            fail(f"{at}.text", f"must be a string of end - start = {end - start} characters")
        if note_text is not None and (end > len(note_text) or note_text[start:end] != text):
            fail(f"{at}.text", f"is not the note's characters [{start}, {end}) (note has {len(note_text)} characters)")


def _check_code(c: Any, path: str, note_text: str | None, is_valid: CodeValidator | None, fail) -> None:
    if not isinstance(c, dict):
        fail(path, f"must be an object, got {type(c).__name__}")
    system = c.get("system")
    if system not in OUTPUT_SYSTEMS:
        fail(f"{path}.system", f"must be one of {', '.join(OUTPUT_SYSTEMS)}, got {system!r}")
    icd = ("icd11",) if system == ICD10CM else ()
    _check_keys(
        c, path, ("system", "code", "description", "score", "grounded", "evidence", *icd), fail, OPTIONAL_CODE_KEYS
    )
    code = c["code"]
    if not isinstance(code, str) or not is_canonical(system, code):
        fail(f"{path}.code", f"{code!r} is not a canonical {system} code")
    if is_valid is not None and not is_valid(system, code):
        fail(f"{path}.code", f"{system} {code} is not a valid billable code of the configured code set")
    if not isinstance(c["description"], str) or not c["description"]:
        fail(f"{path}.description", "must be a non-empty string")
    _check_score(c["score"], f"{path}.score", fail)
    if not isinstance(c["grounded"], bool):
        fail(f"{path}.grounded", "must be true or false")
    _check_evidence(c["evidence"], f"{path}.evidence", note_text, fail)
    if c.get("support") is not None:
        _check_score(c["support"], f"{path}.support", fail)
    rules = c.get("rules_applied", [])
    if not isinstance(rules, list) or not all(isinstance(r, str) and r for r in rules):
        fail(f"{path}.rules_applied", "must be a list of rule ids")
    if c["grounded"] and not c["evidence"]:
        fail(f"{path}.grounded", "is true but there is no evidence span")
    if icd:
        icd11 = c["icd11"]
        _check_keys(icd11, f"{path}.icd11", ("code", "title", "map"), fail)
        if icd11["map"] not in MAP_KINDS:
            fail(f"{path}.icd11.map", f"must be one of {', '.join(MAP_KINDS)}")
        has_target = icd11["map"] != "none"
        for key in ("code", "title"):
            value = icd11[key]
            if has_target != (isinstance(value, str) and bool(value)) or not (value is None or isinstance(value, str)):
                fail(f"{path}.icd11.{key}", "must be a non-empty string when map is not 'none', and null when it is")


def _is_icd10cm_category(code: str) -> bool:
    """A three-character category of the configured ICD-10-CM release ("J00")."""
    from medcoder.codes import icd10cm

    return len(code) == 3 and icd10cm.is_valid(code)


def _check_review(review: Any, emitted: dict[str, bool], diagnosis_coded: bool, fail) -> None:
    """`emitted`: code -> grounded for every code in the line (the E/M level counts as grounded);
    `diagnosis_coded`: whether the line has an ICD-10-CM code (else it must say so, `no_diagnosis_code`)."""
    _check_keys(review, "review", ("required", "reasons"), fail)
    reasons = review["reasons"]
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        fail("review.reasons", "must be a list of strings")
    if not isinstance(review["required"], bool) or review["required"] != bool(reasons):
        fail("review.required", "must be true exactly when there are reasons")
    if len(set(reasons)) != len(reasons):
        fail("review.reasons", "has repeated reasons")
    ranks = []
    for i, reason in enumerate(reasons):
        m = _REASON.match(reason)
        if not m or m["rule"] not in REASON_ORDER:
            fail(f"review.reasons[{i}]", f"must be '<rule>:<code>' with rule one of {', '.join(REASON_ORDER)}")
        rule, detail = m["rule"], m["detail"]
        if rule in COUNT_REASONS:
            if not detail.isdigit() or int(detail) < 1:
                fail(f"review.reasons[{i}]", f"{rule} must give a positive number")
        elif rule in CATEGORY_REASONS:
            if not _is_icd10cm_category(detail):
                fail(f"review.reasons[{i}]", f"{rule} must give an ICD-10-CM category (three characters)")
        elif rule in SYSTEM_REASONS:
            if detail != ICD10CM or diagnosis_coded:
                fail(f"review.reasons[{i}]", f"{rule} must give {ICD10CM}, and only on a line with no {ICD10CM} code")
        elif rule in HCC_REASONS:
            if not detail.isdigit():
                fail(f"review.reasons[{i}]", f"{rule} must give a CMS-HCC number")
        elif detail not in emitted:
            fail(f"review.reasons[{i}]", f"names {detail}, which is not among the line's codes or E/M level")
        ranks.append(REASON_ORDER.index(rule))
    if ranks != sorted(ranks):
        fail("review.reasons", f"must be ordered by rule ({', '.join(REASON_ORDER)})")
    if not diagnosis_coded and f"no_diagnosis_code:{ICD10CM}" not in reasons:
        fail("review.reasons", f"a line with no {ICD10CM} code must say so ('no_diagnosis_code:{ICD10CM}')")
    for code, grounded in emitted.items():
        if not grounded and f"ungrounded:{code}" not in reasons:
            fail("review.reasons", f"ungrounded code {code} is emitted without an 'ungrounded:{code}' reason")


def _check_rules(rules: Any, fail) -> None:
    if not isinstance(rules, list):
        fail("rules", "must be a list")
    for i, event in enumerate(rules):
        _check_keys(event, f"rules[{i}]", ("rule", "section", "removed", "added"), fail)
        if not isinstance(event["rule"], str) or not isinstance(event["section"], str):
            fail(f"rules[{i}]", "rule and section must be strings")
        for key in ("removed", "added"):
            if not isinstance(event[key], list) or not all(isinstance(c, str) for c in event[key]):
                fail(f"rules[{i}].{key}", "must be a list of codes")


def _check_denial_risk(risk: Any, emitted: dict[str, bool], reasons: list[str], fail) -> None:
    """The claim check: each line a code of the prediction (or its E/M level), risks in [0, 1], the claim risk
    their highest, and a line at or above the flag routed (`denial_risk:<code>`) only where it is flagged."""
    _check_keys(risk, "denial_risk", ("payer", "claim_risk", "lines"), fail)
    if not isinstance(risk["lines"], list):
        fail("denial_risk.lines", "must be a list")
    for i, line in enumerate(risk["lines"]):
        _check_keys(line, f"denial_risk.lines[{i}]", ("code", "risk", "reason", "denied", "seen"), fail)
        if line["code"] not in emitted:
            fail(f"denial_risk.lines[{i}].code", f"{line['code']} is not among the line's codes or E/M level")
        _check_score(line["risk"], f"denial_risk.lines[{i}].risk", fail)
    _check_score(risk["claim_risk"], "denial_risk.claim_risk", fail)
    if risk["lines"] and risk["claim_risk"] != max(line["risk"] for line in risk["lines"]):
        fail("denial_risk.claim_risk", "must be the highest line risk")
    flagged = {r.split(":", 1)[1] for r in reasons if r.startswith("denial_risk:")}
    if not flagged <= {line["code"] for line in risk["lines"]}:
        fail("review.reasons", "a denial_risk reason names a code that is not a line of the claim")


def routed_hccs(section: Mapping[str, Any]) -> list[str]:
    """The HCCs a `risk_adjustment` section routes to review (`hcc_high_risk:<HCC>`): those of its high-risk
    codes, counted or left out (HIGH_RISK_NOT_STATED); lowest number first."""
    counted = {c["hcc"] for entry in section.get("hccs", []) for c in entry["codes"] if c["high_risk"]}
    left_out = {e["hcc"] for e in section.get("excluded", []) if e["rule"] == HIGH_RISK_NOT_STATED}
    return sorted(counted | left_out, key=int)


def _check_risk_adjustment(section: Any, codes: list[dict[str, Any]], reasons: list[str], fail) -> None:
    """The shape (`schema.RiskAdjustment`, or `RiskAdjustmentMissing` for a note that cannot be scored), each HCC's
    code one of the line's ICD-10-CM codes with the line's grounding and evidence, the delta the difference of
    its scores, and an `hcc_high_risk` reason exactly for each high-risk HCC (`routed_hccs`)."""
    from pydantic import ValidationError

    from medcoder.inference.schema import RiskAdjustment, RiskAdjustmentMissing

    if not isinstance(section, dict):
        fail("risk_adjustment", f"must be an object, got {type(section).__name__}")
    try:
        (RiskAdjustmentMissing if "missing" in section else RiskAdjustment).model_validate(section)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False, include_context=False)[0]
        fail(".".join(["risk_adjustment", *map(str, first["loc"])]), first["msg"])
    flagged = {r.split(":", 1)[1] for r in reasons if r.split(":", 1)[0] in HCC_REASONS}
    if "missing" in section:
        if flagged:
            fail("review.reasons", "an hcc_high_risk reason on a line whose risk adjustment was not scored")
        return
    line_codes = {c["code"]: c for c in codes if c["system"] == ICD10CM}
    for i, entry in enumerate(section["hccs"]):
        for j, c in enumerate(entry["codes"]):
            mine = line_codes.get(c["code"])
            if mine is None or (c["grounded"], c["evidence"]) != (mine["grounded"], mine["evidence"]):
                fail(f"risk_adjustment.hccs[{i}].codes[{j}]", "must be one of the line's ICD-10-CM codes, as the line "
                     "gives its grounding and evidence")  # fmt: skip
    for i, e in enumerate(section["excluded"]):
        if e["code"] not in line_codes:
            fail(f"risk_adjustment.excluded[{i}].code", f"{e['code']} is not among the line's ICD-10-CM codes")
    if section["delta"] != section["combined_score"] - section["baseline"]["risk_score"]:
        fail("risk_adjustment.delta", "must be combined_score - baseline.risk_score")
    if flagged != set(routed_hccs(section)):
        fail("review.reasons", "must name each high-risk HCC of risk_adjustment once (hcc_high_risk:<HCC>), no other")


def validate_contract_line(
    line: Mapping[str, Any] | str | bytes, *, note_text: str | None = None, is_valid: CodeValidator | None = None
) -> None:
    """Raise ContractError (naming the id and field) unless `line` is a valid prediction or error entry.

    `note_text` also checks every evidence text against the note; `is_valid` also checks every code
    against the code set. Messages never quote note or evidence text.
    """
    obj: Any = line
    if isinstance(line, (str, bytes)):
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ContractError(f"<line>: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise ContractError(f"<line>: must be a JSON object, got {type(obj).__name__}")
    note_id = obj.get("id")
    label = f"line for id {note_id!r}" if isinstance(note_id, str) else "line"

    def fail(path: str, message: str) -> None:
        raise ContractError(f"{label}: {path}: {message}")

    if not isinstance(note_id, str) or not note_id:
        fail("id", "must be a non-empty string")
    if "error" in obj:
        _check_keys(obj, "<line>", ("id", "error"), fail)
        _check_keys(obj["error"], "error", ("kind", "message"), fail)
        if obj["error"]["kind"] not in ERROR_KINDS:
            fail("error.kind", f"must be one of {', '.join(ERROR_KINDS)}")
        if not isinstance(obj["error"]["message"], str) or not obj["error"]["message"]:
            fail("error.message", "must be a non-empty string")
        return

    _check_keys(obj, "<line>", PREDICTION_KEYS, fail, OPTIONAL_PREDICTION_KEYS)
    _check_rules(obj.get("rules", []), fail)
    _check_model(obj["model"], fail)
    if not isinstance(obj["codes"], list):
        fail("codes", "must be a list")
    emitted: dict[str, bool] = {}
    for i, c in enumerate(obj["codes"]):
        _check_code(c, f"codes[{i}]", note_text, is_valid, fail)
        if c["code"] in emitted:
            fail(f"codes[{i}].code", f"{c['code']} appears twice")
        emitted[c["code"]] = c["grounded"]
    em = obj["em"]
    if em is not None:
        _check_keys(em, "em", ("code", "score", "evidence"), fail)
        if not isinstance(em["code"], str) or not is_canonical(CPT, em["code"]):
            fail("em.code", f"{em['code']!r} is not a canonical CPT code")
        if is_valid is not None and not is_valid(CPT, em["code"]):
            fail("em.code", f"CPT {em['code']} is not a valid code of the configured catalog")
        _check_score(em["score"], "em.score", fail)
        _check_evidence(em["evidence"], "em.evidence", note_text, fail)
        emitted.setdefault(em["code"], True)
    diagnosis_coded = any(c["system"] == ICD10CM for c in obj["codes"])
    _check_review(obj["review"], emitted, diagnosis_coded, fail)
    if obj.get("denial_risk") is not None:
        _check_denial_risk(obj["denial_risk"], emitted, obj["review"]["reasons"], fail)
    if obj.get("risk_adjustment") is not None:
        _check_risk_adjustment(obj["risk_adjustment"], obj["codes"], obj["review"]["reasons"], fail)
    elif any(r.split(":", 1)[0] in HCC_REASONS for r in obj["review"]["reasons"]):
        fail("review.reasons", "an hcc_high_risk reason needs the line's risk_adjustment")
