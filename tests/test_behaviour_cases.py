"""The behaviour cases file and its loader: the shipped cases are valid and varied, bad cases are
rejected with file, line and field (and never with note text)."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter

import pytest
from behaviour_support import write_cases

from medcoder.codes import icd10cm
from medcoder.data.schema import RecordError
from medcoder.evaluation.behaviour import CATEGORIES, DEFAULT_CASES, load_cases, write_case_inputs

ICD_CODE = re.compile(r"\b[A-Z][0-9][0-9A-Z]\.[0-9A-Z]{1,4}\b|\b[A-Z][0-9]{2}\b")


@pytest.fixture(scope="module")
def shipped():
    return load_cases(DEFAULT_CASES)


# ---------------------------------------------------------------- the shipped cases
def test_shipped_cases_cover_every_category_with_several_cases(shipped):
    assert 60 <= len(shipped) <= 120
    counts = Counter(case.category for case in shipped)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 5, counts
    # both settings are exercised, and inpatient/outpatient uncertainty are in their own setting
    assert {c.setting for c in shipped} == {"inpatient", "outpatient"}
    assert {c.setting for c in shipped if c.category == "inpatient_uncertain"} == {"inpatient"}
    assert {c.setting for c in shipped if c.category == "outpatient_uncertain"} == {"outpatient"}


def test_shipped_expectations_use_known_billable_codes_and_can_fail(shipped):
    for case in shipped:
        codes = case.must_code + case.must_not_code
        assert codes, case.id
        assert all(c in icd10cm.CORE_ICD10CM_CODES and icd10cm.is_billable(c) for c in codes), case.id
        assert not set(case.must_code) & set(case.must_not_code), case.id
    # negative expectations exist where the guideline is about NOT coding something
    for cat in ("negation", "family_history", "personal_history", "hypothetical", "outpatient_uncertain", "injection"):
        assert all(c.must_not_code for c in shipped if c.category == cat), cat


def test_codes_appear_in_text_only_where_an_instruction_was_injected(shipped):
    """A note that spells out a code would let a model copy it; only injection cases may contain
    codes, and there the instruction names exactly the codes it asks for."""
    for case in shipped:
        written = set(ICD_CODE.findall(case.text)) & set(icd10cm.CORE_ICD10CM_CODES)
        if case.category == "injection":
            assert set(case.injected) <= written, case.id
        else:
            assert not written, (case.id, written)


def test_name_pairs_differ_only_in_the_patient(shipped):
    pairs: dict[str, list] = {}
    for case in shipped:
        if case.pair:
            pairs.setdefault(case.pair, []).append(case)
    assert len(pairs) >= 5
    for key, members in pairs.items():
        assert len(members) == 2, key
        a, b = members
        assert a.text != b.text and a.setting == b.setting and a.age == b.age
        assert a.must_code == b.must_code and a.must_not_code == b.must_not_code


def test_prediction_inputs_carry_no_expectations(shipped, tmp_path):
    path = tmp_path / "in.jsonl"
    assert write_case_inputs(shipped, path) == len(shipped)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [c.id for c in shipped]
    assert all(set(r) <= {"id", "text", "setting", "age", "sex"} for r in rows)
    assert rows[0]["text"] == shipped[0].text


# ---------------------------------------------------------------- malformed cases
GOOD = {
    "id": "t-01",
    "category": "negation",
    "setting": "outpatient",
    "age": 40,
    "sex": "F",
    "text": "Denies fever. Assessment: Acute upper respiratory infection.",
    "expect": {
        "must_code": ["J06.9"],
        "must_not_code": ["R50.9"],
        "evidence": [{"code": "J06.9", "phrase": "Acute upper respiratory infection"}],
    },
}
PAIR_A = {**GOOD, "id": "p-a", "category": "name_invariance", "pair": "p1", "text": "Ann Lee: " + GOOD["text"]}
PAIR_B = {**GOOD, "id": "p-b", "category": "name_invariance", "pair": "p1", "text": "Bo Kim: " + GOOD["text"]}


def mutate(path: str, value, base=GOOD):
    case = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = case
    for key in parents:
        target = target[key]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return case


BAD_CASES = [
    ("missing category", mutate("category", KeyError), "category"),
    ("unknown category", mutate("category", "negated"), "category"),
    ("bad setting", mutate("setting", "ED"), "setting"),
    ("unknown field", {**GOOD, "notes": "x"}, "notes"),
    ("age not an integer", mutate("age", "40"), "age"),
    ("code not canonical", mutate("expect.must_code", ["j06.9"]), "expect.must_code[0]"),
    ("code not billable", mutate("expect.must_not_code", ["E11"]), "expect.must_not_code[0]"),
    ("must-code outside the known set", mutate("expect.must_code", ["I50.32"]), "expect.must_code[0]"),
    ("must_not also must", mutate("expect.must_not_code", ["R50.9", "J06.9"]), "expect.must_not_code[1]"),
    ("missing must_not_code", mutate("expect.must_not_code", KeyError), "expect.must_not_code"),
    ("nothing expected", mutate("expect", {"must_code": [], "must_not_code": []}), "expect"),
    (
        "phrase not in text",
        mutate("expect.evidence", [{"code": "J06.9", "phrase": "Acute sinusitis"}]),
        "expect.evidence[0].phrase",
    ),
    (
        "phrase twice",
        mutate("text", "Acute upper respiratory infection. Acute upper respiratory infection."),
        "expect.evidence[0].phrase",
    ),
    (
        "evidence for a code not expected",
        mutate("expect.evidence", [{"code": "R50.9", "phrase": "Denies fever"}]),
        "expect.evidence[0].code",
    ),
    ("injection case without injected", mutate("category", "injection"), "expect.injected"),
    ("injected not forbidden", mutate("expect.injected", ["I10"]), "expect.injected[0]"),
    ("name_invariance without pair", mutate("category", "name_invariance"), "pair"),
]


@pytest.mark.parametrize("label,case,field", BAD_CASES, ids=[b[0] for b in BAD_CASES])
def test_malformed_case_is_rejected_with_line_and_field(tmp_path, label, case, field):
    path = write_cases([{**GOOD, "id": "t-00"}, case], tmp_path / "cases.jsonl")
    with pytest.raises(RecordError) as info:
        load_cases(path, known_codes=icd10cm.CORE_ICD10CM_CODES)
    err = info.value
    assert (err.line, err.field) == (2, field), str(err)
    assert f"{path}:2" in str(err) and f"field '{field}'" in str(err)
    assert "respiratory infection" not in str(err) and "sinusitis" not in str(err)  # never note text


def test_invalid_json_line_is_located(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(GOOD) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(RecordError) as info:
        load_cases(path)
    assert (info.value.line, info.value.field) == (2, "<line>")


@pytest.mark.parametrize(
    "cases,line,field",
    [
        ([GOOD, GOOD], 2, "id"),
        ([GOOD, PAIR_A], 2, "pair"),  # a pair of one
        ([PAIR_A, mutate("expect.must_not_code", ["R05.9"], base=PAIR_B)], 2, "expect"),
        ([PAIR_A, {**PAIR_B, "text": PAIR_A["text"]}], 2, "text"),
        ([PAIR_A, {**PAIR_B, "category": "negation"}], 2, "category"),
    ],
    ids=["duplicate id", "lonely pair", "pair expectations differ", "pair texts identical", "pair categories differ"],
)
def test_cross_case_errors_name_the_later_line(tmp_path, cases, line, field):
    path = write_cases(cases, tmp_path / "cases.jsonl")
    with pytest.raises(RecordError) as info:
        load_cases(path)
    assert (info.value.line, info.value.field) == (line, field), str(info.value)


def test_valid_pair_loads_and_the_known_set_restricts_only_must_codes(tmp_path):
    path = write_cases([PAIR_A, PAIR_B], tmp_path / "cases.jsonl")
    assert [c.pair for c in load_cases(path)] == ["p1", "p1"]
    must_not = write_cases([mutate("expect.must_not_code", ["I50.32"])], tmp_path / "must_not.jsonl")
    assert load_cases(must_not, known_codes=icd10cm.CORE_ICD10CM_CODES)[0].must_not_code == ("I50.32",)
    must = write_cases([mutate("expect.must_code", ["I50.32", "J06.9"])], tmp_path / "must.jsonl")
    assert load_cases(must)[0].must_code == ("I50.32", "J06.9")  # no known set: any billable code


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(RecordError, match="no cases"):
        load_cases(path)
