"""CMS-HCC risk adjustment (medcoder.risk, `medcoder predict --risk-adjustment`): the section's HCCs and scores equal
hccinfhir's own results on the codes our rules keep (the expectations call hccinfhir here, never a typed
coefficient), the BMI rules and age bands hold, HHS-OIG's high-risk HCCs need a stated span and go to review, and
real `medcoder predict` lines carry a section the contract accepts; the review page shows it."""

from __future__ import annotations

import json
import re

import pytest
from hccinfhir import calculate_raf
from hccinfhir.defaults import dx_to_cc_default

from medcoder.codes import is_valid_code
from medcoder.codes.bmi import has_weight_diagnosis, in_age_band, indicates_pregnancy
from medcoder.inference.contract import ContractError, validate_contract_line
from medcoder.inference.inputs import InputNote, validate_input
from medcoder.inference.schema import HCC_MODELS, Prediction
from medcoder.risk.rules import bmi_exclusions, high_risk_hccs, unstated_high_risk
from medcoder.risk.scoring import Enrollment
from medcoder.risk.section import RiskSettings, risk_adjustment, with_risk_adjustment

STATED = 0.9  # the verifier's stated bar in these cases
TEXT = "A: T2DM with diabetic CKD. CHF. COPD. Morbid obesity, BMI 41. NSTEMI last week. Anemia."
SPANS = {"E11.22": (3, 25), "E11.9": (3, 7), "I50.22": (27, 30), "J44.9": (32, 36), "E66.01": (38, 52),
         "Z68.41": (54, 60), "I21.4": (62, 68), "O99.214": (38, 52), "Z68.54": (54, 60), "E66.9": (38, 52),
         "D64.9": (80, 86)}  # fmt: skip


def line_code(code: str, *, grounded: bool = True, support: float | None = 0.95) -> dict:
    """A contract code object of TEXT (evidence quoted from the note, as render_prediction writes it)."""
    start, end = SPANS[code]
    return {"system": "ICD-10-CM", "code": code, "description": code, "score": 0.9, "grounded": grounded,
            "support": support, "rules_applied": [], "icd11": {"code": None, "title": None, "map": "none"},
            "evidence": [{"start": start, "end": end, "text": TEXT[start:end]}] if grounded else []}  # fmt: skip


def library(codes: list[str], model: str, age: int = 72, sex: str = "F", **enrollment):
    """hccinfhir called directly on `codes`, the expectation of every case."""
    return calculate_raf([c.replace(".", "") for c in codes], model_name=HCC_MODELS[model], age=age, sex=sex,
                         **enrollment)  # fmt: skip


def score(value: float):
    """A risk score as hccinfhir computes it: its sum of coefficients varies in the last bit with the process's
    hash seed (1.63 or 1.6300000000000001 for the same codes), so scores compare to within float rounding."""
    return pytest.approx(value, rel=0, abs=1e-12)


def section(codes: list[dict], model: str, *, age: int = 72, sex: str = "F", submitted: tuple[str, ...] = (),
            pregnant: bool = False, stated: float | None = STATED) -> dict:  # fmt: skip
    return risk_adjustment(codes, Enrollment(age, sex), submitted, pregnant, RiskSettings(model, stated))


def assert_equals_library(got: dict, kept: list[str], model: str, age: int = 72, sex: str = "F") -> None:
    expected = library(kept, model, age, sex)
    assert [h["hcc"] for h in got["hccs"]] == sorted(expected.hcc_list, key=int)
    assert got["risk_score"] == score(expected.risk_score)
    assert {h["hcc"]: h["coefficient"] for h in got["hccs"]} == {d.hcc: d.coefficient for d in expected.hcc_details}
    listed = sorted(c["code"] for h in got["hccs"] for c in h["codes"])
    assert listed == sorted(c for c in kept if any(c.replace(".", "") in dx for dx in expected.cc_to_dx.values()))


MODELS = pytest.mark.parametrize("model", ["V28", "V24"])


@MODELS
@pytest.mark.parametrize(
    "codes",
    [["E11.22", "E11.9"], ["I50.22"], ["J44.9"], ["E11.22", "I50.22", "J44.9", "D64.9"]],
    ids=["diabetes-hierarchy", "chf", "copd", "together"],
)
def test_hccs_and_score_equal_hccinfhirs_on_the_codes(model: str, codes: list[str]) -> None:
    got = section([line_code(c) for c in codes], model)
    assert got["excluded"] == []
    assert_equals_library(got, codes, model)


@MODELS
def test_a_superseded_hcc_counts_through_the_hcc_that_wins_with_its_evidence(model: str) -> None:
    got = section([line_code("E11.22"), line_code("E11.9")], model)
    (entry,) = got["hccs"]
    by_code = {c["code"]: c for c in entry["codes"]}
    assert by_code["E11.9"]["hcc"] != entry["hcc"] == by_code["E11.22"]["hcc"]  # without complications, superseded
    start, end = SPANS["E11.9"]
    assert by_code["E11.9"]["evidence"] == [{"start": start, "end": end, "text": TEXT[start:end]}]


@MODELS
def test_morbid_obesity_counts_its_bmi_only_with_the_weight_diagnosis(model: str) -> None:
    assert library(["Z68.41"], model).hcc_list  # the library's gap: it scores the BMI alone
    with_diagnosis = section([line_code("E66.01"), line_code("Z68.41")], model)
    assert with_diagnosis["excluded"] == []
    assert_equals_library(with_diagnosis, ["E66.01", "Z68.41"], model)
    alone = section([line_code("Z68.41"), line_code("I50.22")], model)
    assert [(e["code"], e["rule"]) for e in alone["excluded"]] == [("Z68.41", "bmi_needs_weight_diagnosis")]
    assert_equals_library(alone, ["I50.22"], model)


@MODELS
def test_bmi_age_bands(model: str) -> None:
    pediatric = section([line_code("E66.9"), line_code("Z68.54")], model, age=15)
    assert pediatric["excluded"] == []
    assert_equals_library(pediatric, ["E66.9", "Z68.54"], model, age=15)
    adult_band_at_15 = section([line_code("E66.01"), line_code("Z68.41")], model, age=15)
    assert [(e["code"], e["rule"]) for e in adult_band_at_15["excluded"]] == [("Z68.41", "bmi_age_band")]
    assert_equals_library(adult_band_at_15, ["E66.01"], model, age=15)
    pediatric_at_25 = section([line_code("E66.9"), line_code("Z68.54")], model, age=25)
    assert [e["rule"] for e in pediatric_at_25["excluded"]] == ["bmi_age_band"]


@MODELS
def test_no_bmi_in_pregnancy_by_code_or_by_flag(model: str) -> None:
    by_code = section([line_code("O99.214"), line_code("E66.01"), line_code("Z68.41")], model, age=30)
    assert [(e["code"], e["rule"]) for e in by_code["excluded"]] == [("Z68.41", "bmi_in_pregnancy")]
    assert by_code["demographics"]["pregnant"] is True
    assert_equals_library(by_code, ["O99.214", "E66.01"], model, age=30)
    by_flag = section([line_code("E66.01"), line_code("Z68.41")], model, age=30, pregnant=True)
    assert [e["rule"] for e in by_flag["excluded"]] == ["bmi_in_pregnancy"]
    assert_equals_library(by_flag, ["E66.01"], model, age=30)


@MODELS
def test_an_acute_mi_counts_only_when_stated_and_always_goes_to_review(model: str) -> None:
    mi_hcc = library(["I21.4"], model).hcc_list[0]
    for code, stated in [
        (line_code("I21.4", support=0.6), STATED),
        (line_code("I21.4", grounded=False), STATED),
        (line_code("I21.4", support=0.99), None),
    ]:  # under the bar, ungrounded, no verifier's bar
        got = section([code, line_code("I50.22")], model, stated=stated)
        assert [(e["code"], e["rule"], e["hcc"]) for e in got["excluded"]] == [("I21.4", "hcc_high_risk_not_stated",
                                                                                  mi_hcc)]  # fmt: skip
        assert_equals_library(got, ["I50.22"], model)
    counted = section([line_code("I21.4", support=0.95), line_code("I50.22")], model)
    assert counted["excluded"] == []
    assert_equals_library(counted, ["I21.4", "I50.22"], model)
    assert [c["high_risk"] for h in counted["hccs"] for c in h["codes"] if c["code"] == "I21.4"] == [True]


@MODELS
def test_the_delta_is_what_the_suggestions_add_to_the_submitted_codes(model: str) -> None:
    submitted = ("E11.9", "J44.9")
    got = section([line_code("E11.22"), line_code("I50.22")], model, submitted=submitted)
    baseline, combined = library(list(submitted), model), library([*submitted, "E11.22", "I50.22"], model)
    assert got["baseline"]["risk_score"] == score(baseline.risk_score)
    assert got["combined_score"] == score(combined.risk_score)
    assert got["delta"] == score(combined.risk_score - baseline.risk_score) and got["delta"] > 0
    assert set(got["added_hccs"]) == set(combined.hcc_list) - set(baseline.hcc_list)
    nothing_submitted = section([line_code("I50.22")], model)
    assert nothing_submitted["baseline"]["risk_score"] == score(library([], model).risk_score)  # the demographics alone


def test_enrollment_fields_reach_the_library() -> None:
    codes = [line_code("I50.22")]
    for enrollment, kwargs in [(Enrollment(72, "M", dual_status="02"), {"dual_elgbl_cd": "02"}),
                               (Enrollment(72, "M", institutional=True), {"lti": True}),
                               (Enrollment(72, "M", new_enrollee=True), {"new_enrollee": True})]:  # fmt: skip
        got = risk_adjustment(codes, enrollment, (), False, RiskSettings("V28", STATED))
        expected = library(["I50.22"], "V28", sex="M", **kwargs)
        assert got["risk_score"] == score(expected.risk_score) != library(["I50.22"], "V28", sex="M").risk_score


# ---------------------------------------------------------------- each rule on its own
def test_bmi_rules_on_their_own() -> None:
    assert has_weight_diagnosis(["E66.01"]) and has_weight_diagnosis(["E44.0"]) and has_weight_diagnosis(["R63.4"])
    assert not has_weight_diagnosis(["E11.9", "I10", "Z68.41"])
    assert indicates_pregnancy(["O99.214"]) and indicates_pregnancy(["Z3A.20"]) and not indicates_pregnancy(["E66.9"])
    assert [in_age_band("Z68.41", age) for age in (19, 20)] == [False, True]
    assert [in_age_band("Z68.54", age) for age in (1, 2, 19, 20)] == [False, True, True, False]
    assert in_age_band("Z68.41", None)  # unknown age rules nothing out
    rules = {e.code: e.rule for e in bmi_exclusions(["Z68.41", "Z68.54", "E66.01"], 40, pregnant=False)}
    assert rules == {"Z68.54": "bmi_age_band"}
    assert [e.rule for e in bmi_exclusions(["Z68.41", "E66.01"], 40, pregnant=True)] == ["bmi_in_pregnancy"]
    assert [e.source for e in bmi_exclusions(["Z68.41"], 40, pregnant=False)] == [
        "ICD-10-CM Official Guidelines I.C.21.c.3, I.B.14"
    ]


def test_every_row_of_the_oig_list_is_a_category_its_codes_map_to_in_hccinfhir() -> None:
    rows = high_risk_hccs()
    assert {r.condition for r in rows} == {"acute_stroke", "acute_mi", "embolism", "major_depressive_disorder",
                                           "vascular_claudication", "lung_cancer", "breast_cancer", "colon_cancer",
                                           "prostate_cancer"}  # fmt: skip
    assert {r.model for r in rows} == set(HCC_MODELS)
    for row in rows:
        for prefix in row.prefixes:
            undotted = prefix.replace(".", "")
            mapped = {cc for (dx, name), ccs in dx_to_cc_default.items()
                      if name == HCC_MODELS[row.model] and dx.startswith(undotted) for cc in ccs}  # fmt: skip
            assert row.hcc in mapped, (row, prefix)


def test_unstated_high_risk_leaves_out_only_listed_codes_of_hccs_nothing_states() -> None:
    hccs = {"228": ["I21.4"], "23": ["C61", "C73"], "226": ["I50.22"]}
    out = unstated_high_risk(hccs, stated=set(), model="V28")
    assert [(e.code, e.hcc) for e in out] == [("I21.4", "228"), ("C61", "23")]  # thyroid C73 is not on the list
    assert unstated_high_risk(hccs, stated={"I21.4", "C61"}, model="V28") == []


# ---------------------------------------------------------------- the contract
def prediction(codes: list[dict]) -> dict:
    reasons = [f"ungrounded:{c['code']}" for c in codes if not c["grounded"]]
    model = {"name": "m", "version": "1", "run_id": None, "code_sets": {"ICD-10-CM": "x"}}
    review = {"required": bool(reasons), "reasons": reasons}
    return {"id": "n1", "model": model, "codes": codes, "em": None, "review": review, "rules": []}


def test_a_line_with_its_section_validates_and_routes_each_high_risk_hcc() -> None:
    note = InputNote("n1", TEXT, age=72, sex="F", submitted_codes=("J44.9",))
    line = with_risk_adjustment(prediction([line_code("I21.4", support=0.5), line_code("E11.22")]), note,
                                RiskSettings("V28", STATED))  # fmt: skip
    mi_hcc = library(["I21.4"], "V28").hcc_list[0]
    assert line["review"] == {"required": True, "reasons": [f"hcc_high_risk:{mi_hcc}"]}
    validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)
    Prediction.model_validate(line)
    for broken, message in [
        ({**line, "review": {"required": False, "reasons": []}}, "high-risk HCC"),
        ({**line, "risk_adjustment": {**line["risk_adjustment"], "delta": 1.0}}, "delta"),
        ({**line, "risk_adjustment": {**line["risk_adjustment"], "model": "CMS-HCC Model V99"}}, "model"),
        ({k: v for k, v in line.items() if k != "risk_adjustment"}, "needs the line's risk_adjustment"),
    ]:
        with pytest.raises(ContractError, match=message):
            validate_contract_line(broken, note_text=TEXT)


def test_a_note_without_age_or_a_scored_sex_says_what_is_missing() -> None:
    line = with_risk_adjustment(prediction([line_code("I21.4")]), InputNote("n1", TEXT, sex="U"), RiskSettings())
    assert line["risk_adjustment"] == {"model": "CMS-HCC Model V28", "missing": ["age", "sex"]}
    assert line["review"]["reasons"] == []
    validate_contract_line(line, note_text=TEXT)


@pytest.mark.parametrize(
    "field, value",
    [("submitted_codes", ["E11.9", "E11"]), ("submitted_codes", "E11.9"), ("dual_status", "full"),
     ("new_enrollee", "yes"), ("pregnant", 1)],
)  # fmt: skip
def test_a_bad_enrollment_field_is_an_error_naming_line_and_field(field: str, value) -> None:
    error = validate_input(json.dumps({"id": "n1", "text": TEXT, field: value}), 1000, line=7)
    assert (error.kind, error.line) == ("invalid_field", 7) and f"'{field}'" in error.message
    assert "T2DM" not in error.message


# ---------------------------------------------------------------- medcoder predict and the review page
def test_medcoder_predict_with_risk_adjustment_writes_sections_the_contract_accepts(tiny, tmp_path) -> None:
    from medcoder.cli import main

    notes = [r for r in tiny.records if r.text][:4]
    rows = [{"id": r.id, "text": r.text, "age": 70 + k, "sex": "FM"[k % 2], "dual_status": "02",
             "submitted_codes": ["J44.9", "E11.9"]} for k, r in enumerate(notes[:3])]  # fmt: skip
    rows.append({"id": notes[3].id, "text": notes[3].text})  # no age: not scored
    source, out = tmp_path / "notes.jsonl", tmp_path / "predictions.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert main(["predict", "--input", str(source), "--output", str(out), "--model", str(tiny.export_dir),
                 "--risk-adjustment", "--hcc-model", "V24"]) == 0  # fmt: skip
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    texts = {r["id"]: r["text"] for r in rows}
    for row, line in zip(rows, lines, strict=True):
        validate_contract_line(line, note_text=texts[line["id"]], is_valid=is_valid_code)
        Prediction.model_validate(line)
        ra = line["risk_adjustment"]
        assert ra["model"] == "CMS-HCC Model V24"
        if "age" not in row:
            assert ra["missing"] == ["age", "sex"]
            continue
        excluded = {e["code"] for e in ra["excluded"]}
        kept = [c["code"] for c in line["codes"] if c["system"] == "ICD-10-CM" and c["code"] not in excluded]
        expected = library(kept, "V24", row["age"], row["sex"], dual_elgbl_cd="02")
        assert ra["risk_score"] == score(expected.risk_score)
        assert [h["hcc"] for h in ra["hccs"]] == sorted(expected.hcc_list, key=int)
        baseline = library(["J44.9", "E11.9"], "V24", row["age"], row["sex"], dual_elgbl_cd="02")
        assert ra["baseline"]["hccs"] == sorted(baseline.hcc_list, key=int) != []
        assert ra["baseline"]["risk_score"] == score(baseline.risk_score)
        assert ra["delta"] == score(ra["combined_score"] - baseline.risk_score)


def test_the_review_page_shows_the_section(tmp_path) -> None:
    from fastapi.testclient import TestClient

    from medcoder.audit.store import AuditLog
    from medcoder.review.accounts import add_user
    from medcoder.review.app import create_review_app
    from medcoder.review.work import load_encounters

    codes = [line_code("E11.22"), line_code("E11.9"), line_code("I21.4", support=0.5), line_code("Z68.41")]
    note = InputNote("n1", TEXT, age=72, sex="F", submitted_codes=("J44.9",))
    line = with_risk_adjustment(prediction(codes), note, RiskSettings("V28", STATED))
    source, predictions = tmp_path / "notes.jsonl", tmp_path / "predictions.jsonl"
    source.write_text(json.dumps({"id": "n1", "text": TEXT, "age": 72, "sex": "F", "submitted_codes": ["J44.9"]}))
    predictions.write_text(json.dumps(line) + "\n")
    log = AuditLog(str(tmp_path / "audit.db"))
    add_user(log, "alice", "coder", "correct horse battery")
    client = TestClient(create_review_app(load_encounters(source, predictions), log, tmp_path / "c.jsonl", secret="s"))
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "alice", "password": "correct horse battery", "csrf": token})
    page = client.get("/notes/n1").text
    ra = line["risk_adjustment"]
    assert 'id="risk-adjustment"' in page and f"{ra['risk_score']:.3f}" in page and f"{ra['delta']:+.3f}" in page
    (hcc,) = ra["hccs"]
    row = re.search(rf'<tr id="hcc-{hcc["hcc"]}">(.*?)</tr>', page, re.S).group(1)
    assert "E11.22" in row and "T2DM with diabetic CKD" in row and "superseded" in row  # E11.9 through HCC 37
    assert "I21.4 (hcc_high_risk_not_stated" in page and "Z68.41 (bmi_needs_weight_diagnosis" in page
