"""The prediction contract: rendered lines pass the checker, evidence is the note's own text, invalid
codes never leave, the checker catches each kind of broken line, and no message quotes the note."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from medcoder.codes import code_set_versions, describe, is_valid_code
from medcoder.codes.icd11 import Icd11Translator
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.inference.contract import ContractError, render_prediction, validate_contract_line
from medcoder.inference.routing import RoutingPolicy

CANARY = "CANARY-patient-says-7f3a9"
TEXT = (
    f"Chief complaint: chest pain. {CANARY}. A1c 9.8%, uncontrolled hyperglycemia on metformin. "
    "Echo: chronic systolic heart failure, EF 30%. ECG performed. No pneumonia."
)


def span(phrase: str) -> tuple[int, int]:
    start = TEXT.index(phrase)
    return (start, start + len(phrase))


MODEL = {"name": "medcoder", "version": "3", "run_id": "abc123", "code_sets": code_set_versions()}
TRANSLATOR = Icd11Translator.packaged()


def pc(
    c: str, score: float, *spans: tuple[int, int], grounded: bool = True, system: str = "ICD-10-CM"
) -> PredictedCode:
    return PredictedCode(system=system, code=c, score=score, evidence=tuple(spans), grounded=grounded)


def prediction(**kwargs) -> NotePrediction:
    codes = (
        pc("I50.22", 0.55, span(" chronic systolic heart failure, ")),  # edges kept exactly as given
        pc("E11.65", 0.94, span("A1c 9.8%, uncontrolled hyperglycemia"), span("A1c 9.8%, uncontrolled hyperglycemia")),
        pc("R07.9", 0.81, grounded=False),
        pc("E11", 0.99, span("A1c 9.8%")),  # a category: valid but not billable
        pc("Z99.999", 0.97, span("chest pain")),  # does not exist
        pc(CANARY, 0.9),  # garbage from a generative coder
        pc("0DTJ4ZZ", 0.9, system="ICD-10-PCS"),  # a system medcoder has no code set for
        pc("93000", 0.88, span("ECG performed"), system="CPT"),
    )
    return NotePrediction(id="n1", codes=codes, em_code="99215", em_score=0.8123456, **kwargs)


def render(pred: NotePrediction | None = None, policy: RoutingPolicy | None = None, text: str = TEXT) -> dict:
    return render_prediction(
        "n1",
        text,
        pred or prediction(),
        model_info=MODEL,
        policy=policy or RoutingPolicy(),
        translator=TRANSLATOR,
        is_valid=is_valid_code,
        describe=describe,
    )


def test_rendered_line_is_a_valid_contract_line_with_the_notes_own_evidence():
    line = render()
    validate_contract_line(json.dumps(line), note_text=TEXT, is_valid=is_valid_code)
    assert list(line) == ["id", "model", "codes", "em", "review", "rules"]
    assert line["model"] == MODEL
    assert [c["code"] for c in line["codes"]] == ["E11.65", "93000", "R07.9", "I50.22"]  # highest score first
    for c in line["codes"]:
        for ev in c["evidence"]:
            assert ev["text"] == TEXT[ev["start"] : ev["end"]]
    e11 = line["codes"][0]
    assert e11["description"] == describe("ICD-10-CM", "E11.65") and e11["grounded"] is True
    assert e11["evidence"] == [
        {
            "start": span("A1c 9.8%, uncontrolled hyperglycemia")[0],
            "end": span("A1c 9.8%, uncontrolled hyperglycemia")[1],
            "text": "A1c 9.8%, uncontrolled hyperglycemia",
        }
    ]  # duplicate span merged
    assert e11["icd11"] == TRANSLATOR.translate("E11.65").to_dict() and e11["icd11"]["code"] == "5A11"
    assert "icd11" not in line["codes"][1]  # CPT codes have no ICD-11 translation
    assert line["codes"][2] == {
        "system": "ICD-10-CM",
        "code": "R07.9",
        "description": "Chest pain, unspecified",
        "score": 0.81,
        "grounded": False,
        "support": None,
        "rules_applied": [],
        "evidence": [],
        "icd11": TRANSLATOR.translate("R07.9").to_dict(),
    }
    assert line["em"] == {"code": "99215", "score": 0.8123, "evidence": []}
    assert line["review"] == {
        "required": True,
        "reasons": ["invalid_code_removed:4", "low_confidence:I50.22", "ungrounded:R07.9", "em_level:99215"],
    }


def test_invalid_codes_never_appear_in_the_output():
    dumped = json.dumps(render())
    emitted = [c["code"] for c in json.loads(dumped)["codes"]]
    for bad in ("E11", "Z99.999", "0DTJ4ZZ", CANARY):
        assert bad not in emitted
    for bad in ("Z99.999", "0DTJ4ZZ", "ICD-10-PCS"):
        assert bad not in dumped
    assert dumped.count(CANARY) == 0  # the canary is in the note but in no evidence span nor reason


def test_em_evidence_is_rendered_like_code_evidence_with_the_notes_own_text():
    status, problems = span("chronic systolic heart failure"), span("A1c 9.8%, uncontrolled hyperglycemia")
    line = render(prediction(em_evidence=(status, problems, problems)))  # best first, as grounding gives them
    validate_contract_line(json.dumps(line), note_text=TEXT, is_valid=is_valid_code)
    assert line["em"]["code"] == "99215" and line["em"]["score"] == 0.8123
    assert line["em"]["evidence"] == [  # in text order and de-duplicated, as for codes
        {"start": problems[0], "end": problems[1], "text": "A1c 9.8%, uncontrolled hyperglycemia"},
        {"start": status[0], "end": status[1], "text": "chronic systolic heart failure"},
    ]
    for ev in line["em"]["evidence"]:
        assert ev["text"] == TEXT[ev["start"] : ev["end"]]
    tampered = copy.deepcopy(line)
    tampered["em"]["evidence"][0]["text"] = "A1c 9.9%, uncontrolled hyperglycemia"
    with pytest.raises(ContractError, match=r"em.evidence\[0\].text: is not the note's characters") as info:
        validate_contract_line(tampered, note_text=TEXT, is_valid=is_valid_code)
    assert "hyperglycemia" not in str(info.value)


def test_an_outpatient_note_without_a_predicted_em_level_has_em_null():
    """Grounding's real output for a note whose E/M head says "none": no level, no evidence, em null."""
    from medcoder.codes.em import EM_CLASSES
    from medcoder.data.chunking import Chunking, chunk_note
    from medcoder.data.tokenizer import load_tokenizer
    from medcoder.inference.grounding.evidence import ground_note

    chunks = chunk_note(TEXT, load_tokenizer(None), Chunking(chunk_size=32, chunk_overlap=4, max_chunks=8))
    offsets = np.array([o for offs in chunks.offsets for o in offs])
    real = offsets[:, 0] >= 0
    em_attention = real / real.sum()
    em_probs = np.full(len(EM_CLASSES), 0.05)
    em_probs[EM_CLASSES.index("none")] = 0.55
    pred = ground_note("n1", TEXT, "outpatient", [("ICD-10-CM", "E11.65")], np.array([0.1]), em_attention[None, :],
                       np.zeros(len(offsets), dtype=int), offsets, 0.5,
                       em_probs=em_probs, em_attention=em_attention)  # fmt: skip
    assert pred.em_code is None and pred.em_evidence == ()
    line = render(pred)
    assert line["em"] is None
    validate_contract_line(json.dumps(line), note_text=TEXT, is_valid=is_valid_code)


def test_an_invalid_em_level_is_removed_and_counted():
    line = render(NotePrediction(id="n1", codes=(pc("E11.65", 0.9, span("A1c 9.8%")),), em_code="99201", em_score=0.9))
    assert line["em"] is None and line["review"]["reasons"] == ["invalid_code_removed:1"]


def test_a_diagnosis_no_label_codes_sends_the_note_to_review_by_its_category():
    chest_pain = span("chest pain")
    line = render(NotePrediction(id="n1", codes=(pc("E11.65", 0.9, span("A1c 9.8%")),),
                                 outside_diagnoses=(("R07", chest_pain), ("J00", chest_pain))))  # fmt: skip
    assert line["review"] == {"required": True, "reasons": ["outside_label_space:J00", "outside_label_space:R07"]}
    validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)


def test_a_label_s_billable_sibling_sends_the_note_to_review_by_its_category():
    """The verifier reads "acute inferior STEMI" as I21.11 where the labels hold I21.4: the reason names I21."""
    chest_pain = span("chest pain")
    line = render(NotePrediction(id="n1", codes=(pc("E11.65", 0.9, span("A1c 9.8%")),),
                                 outside_diagnoses=(("I21.11", chest_pain), ("I21.19", chest_pain))))  # fmt: skip
    assert line["review"] == {"required": True, "reasons": ["outside_label_space:I21"]}
    validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)


def test_a_drug_code_without_its_condition_is_rendered_and_checked():
    line = render(NotePrediction(id="n1", codes=(pc("Z79.84", 0.9, span("metformin")),)))
    assert line["review"] == {"required": True, "reasons": ["condition_not_coded:Z79.84"]}
    validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)


@pytest.mark.parametrize(("codes", "reasons"), [
    (["E11.22"], ["additional_code_missing:E11.22"]),  # the CKD stage: "stage 3a" where no label codes N18.31
    (["E11.22", "N18.30"], []),
    (["I13.0", "N18.4"], ["additional_code_missing:I13.0"]),  # and the type of heart failure
    (["I13.0", "N18.4", "I50.22"], []),
    (["J44.0", "J18.9"], []),
])  # fmt: skip
def test_a_combination_code_without_its_required_companion_is_routed(codes, reasons):
    line = render(NotePrediction(id="n1", codes=tuple(pc(c, 0.99, span("A1c 9.8%")) for c in codes)))
    assert line["review"]["reasons"] == reasons
    validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)


def test_numpy_scores_and_offsets_become_json_numbers():
    start, end = span("A1c 9.8%")
    pred = NotePrediction(
        id="n1",
        codes=(
            PredictedCode("ICD-10-CM", "E11.65", np.float32(0.91234567), ((np.int64(start), np.int64(end)),), True),
        ),
        em_code="99213",
        em_score=np.float64(0.7),
    )
    line = json.loads(json.dumps(render(pred)))
    assert line["codes"][0]["score"] == 0.9123 and line["codes"][0]["evidence"][0]["text"] == "A1c 9.8%"


def test_drop_policy_removes_ungrounded_codes_and_their_reasons():
    line = render(policy=RoutingPolicy(ungrounded="drop"))
    assert "R07.9" not in [c["code"] for c in line["codes"]]
    assert not any("R07.9" in r for r in line["review"]["reasons"])
    assert all(c["grounded"] for c in line["codes"])


def test_a_line_without_a_diagnosis_code_goes_to_review():
    # nothing coded, a procedure alone, or the only diagnosis dropped as ungrounded: a claim needs one
    line = render(NotePrediction(id="n1"))
    assert line["codes"] == [] and line["em"] is None
    assert line["review"] == {"required": True, "reasons": ["no_diagnosis_code:ICD-10-CM"]}
    procedure_only = render(NotePrediction(id="n1", codes=(pc("93000", 0.9, span("ECG performed"), system="CPT"),)))
    assert procedure_only["review"]["reasons"] == ["no_diagnosis_code:ICD-10-CM"]
    dropped = render(
        NotePrediction(id="n1", codes=(pc("R07.9", 0.9, grounded=False),)), RoutingPolicy(ungrounded="drop")
    )
    assert dropped["codes"] == [] and dropped["review"]["reasons"] == ["no_diagnosis_code:ICD-10-CM"]
    for rendered in (line, procedure_only, dropped):
        validate_contract_line(rendered, note_text=TEXT, is_valid=is_valid_code)
    coded = render(NotePrediction(id="n1", codes=(pc("E11.65", 0.9, span("A1c 9.8%")),)))
    assert coded["review"] == {"required": False, "reasons": []}
    silent = {**procedure_only, "review": {"required": False, "reasons": []}}
    with pytest.raises(ContractError, match="a line with no ICD-10-CM code must say so"):
        validate_contract_line(silent, note_text=TEXT, is_valid=is_valid_code)


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        (NotePrediction(id="n1", codes=(pc("E11.65", 0.9, (5, len(TEXT) + 3)),)), "outside the note"),
        (NotePrediction(id="n1", codes=(pc("E11.65", 0.9, (8, 8)),)), "empty or outside"),
        (NotePrediction(id="n1", codes=(pc("E11.65", float("nan"), (0, 5)),)), "score must be a number"),
        (NotePrediction(id="n1", codes=(pc("E11.65", 1.2, (0, 5)),)), "score must be a number"),
        (NotePrediction(id="n1", codes=(pc("E11.65", 0.9, (0, 5)), pc("E11.65", 0.8, (0, 5)))), "predicted twice"),
        (NotePrediction(id="n1", em_code="99214"), "E/M 99214: score"),
        (
            NotePrediction(id="n1", em_code="99214", em_score=0.9, em_evidence=((5, len(TEXT) + 3),)),
            "E/M 99214: evidence span",
        ),
        (NotePrediction(id="n2"), "was given for note 'n1'"),
    ],
)
def test_broken_coder_output_is_a_contract_error_naming_the_note(pred, message):
    with pytest.raises(ContractError, match=message) as info:
        render(pred)
    assert CANARY not in str(info.value)


def test_model_info_must_be_the_contract_model_object():
    with pytest.raises(ContractError, match="model_info.version"):
        render_prediction(
            "n1",
            TEXT,
            NotePrediction(id="n1"),
            model_info={**MODEL, "version": 3},
            policy=RoutingPolicy(),
            translator=TRANSLATOR,
            is_valid=is_valid_code,
            describe=describe,
        )
    with pytest.raises(ContractError, match="unknown keys"):
        render_prediction(
            "n1",
            TEXT,
            NotePrediction(id="n1"),
            model_info={**MODEL, "weights": "/tmp/x"},
            policy=RoutingPolicy(),
            translator=TRANSLATOR,
            is_valid=is_valid_code,
            describe=describe,
        )


# ---------------------------------------------------------------- the checker on broken lines
def _edit(path: str, value):
    def apply(line: dict) -> None:
        *parents, last = path.split(".")
        target = line
        for p in parents:
            target = target[int(p)] if p.isdigit() else target[p]
        if value is _DELETE:
            del target[last]
        else:
            target[int(last) if last.isdigit() else last] = value

    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_edit("codes.2.grounded", True), r"codes\[2\].grounded: is true but there is no evidence"),
        (
            _edit("codes.0.evidence.0.text", "A1c 9.8%, controlled hyperglycemia!!"),
            r"codes\[0\].evidence\[0\].text: is not the note's characters",
        ),
        (_edit("codes.0.evidence.0.end", 10**6), r"codes\[0\].evidence\[0\].text"),
        (_edit("codes.0.score", 1.5), r"codes\[0\].score"),
        (_edit("codes.0.score", True), r"codes\[0\].score"),
        (_edit("codes.0.code", "E11"), r"codes\[0\].code: ICD-10-CM E11 is not a valid billable code"),
        (_edit("codes.0.code", "e11.65"), r"codes\[0\].code: 'e11.65' is not a canonical"),
        (_edit("codes.3.code", "E11.65"), r"codes\[3\].code: E11.65 appears twice"),
        (_edit("codes.1.code", "E11.65"), r"codes\[1\].code: 'E11.65' is not a canonical CPT code"),
        (_edit("codes.0.icd11", _DELETE), r"codes\[0\]: missing key\(s\) \['icd11'\]"),
        (_edit("codes.0.icd11.map", "exact"), r"codes\[0\].icd11.map"),
        (_edit("codes.0.icd11.code", None), r"codes\[0\].icd11.code"),
        (_edit("codes.0.system", "ICD-10-PCS"), r"codes\[0\].system"),
        (_edit("codes.0.secret", 1), r"codes\[0\]: unknown key"),
        (
            _edit("review.reasons", ["invalid_code_removed:4", "low_confidence:I50.22", "em_level:99215"]),
            "ungrounded code R07.9 is emitted without",
        ),
        (_edit("review.reasons", ["em_level:99215", "ungrounded:R07.9"]), "ordered by rule"),
        (_edit("review.reasons", ["ungrounded:R07.9", "ungrounded:R07.9"]), "repeated"),
        (_edit("review.reasons", ["ungrounded:R07.9", "high_risk:I21.4"]), "names I21.4, which is not among"),
        (
            _edit("review.reasons", ["invalid_code_removed:0", "ungrounded:R07.9"]),
            "invalid_code_removed must give a positive number",
        ),
        (_edit("review.reasons", ["looks_odd:R07.9", "ungrounded:R07.9"]), r"review.reasons\[0\]"),
        (
            _edit("review.reasons", ["outside_label_space:J00.1", "ungrounded:R07.9"]),
            "outside_label_space must give an ICD-10-CM category",
        ),
        (
            _edit("review.reasons", ["no_diagnosis_code:ICD-10-CM", "ungrounded:R07.9"]),
            "only on a line with no ICD-10-CM code",
        ),
        (_edit("review.required", False), "review.required"),
        (_edit("em.code", "99201"), "em.code: CPT 99201 is not a valid"),
        (_edit("em.score", -0.1), "em.score"),
        (_edit("model.run_id", 5), "model.run_id"),
        (_edit("model.code_sets", {}), "model.code_sets"),
        (_edit("em", _DELETE), r"<line>: missing key\(s\) \['em'\]"),
        (_edit("id", ""), "id: must be a non-empty string"),
    ],
)
def test_the_checker_names_the_broken_field_without_quoting_the_note(edit, message):
    line = copy.deepcopy(render())
    edit(line)
    with pytest.raises(ContractError, match=message) as info:
        validate_contract_line(line, note_text=TEXT, is_valid=is_valid_code)
    assert CANARY not in str(info.value) and "hyperglycemia" not in str(info.value)


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ({"id": "line:7", "error": {"kind": "invalid_json", "message": "line is not valid JSON"}}, True),
        ({"id": "n1", "error": {"kind": "exploded", "message": "x"}}, False),
        ({"id": "n1", "error": {"kind": "empty_text", "message": ""}}, False),
        ({"id": "n1", "error": {"kind": "empty_text", "message": "m"}, "codes": []}, False),
        ('{"id": "n1", "error": ', False),
        ("[1, 2]", False),
    ],
)
def test_error_entries(line, ok):
    if ok:
        validate_contract_line(line)
    else:
        with pytest.raises(ContractError):
            validate_contract_line(line)
