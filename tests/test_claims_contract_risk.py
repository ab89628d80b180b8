"""A prediction's claim checked before submission: its billed lines' denial risks in the prediction, a likely
denial routed to review, the contract still valid; `medcoder predict --denial-risk` writes them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from medcoder.claims.contract_risk import ClaimCheck, claim_of, with_denial_risk
from medcoder.claims.payer import fee
from medcoder.claims.remittance import Adjustment, ClaimRemittance, RemittanceLine
from medcoder.claims.risk import DenialRiskModel
from medcoder.claims.submission import Claim, ClaimLine
from medcoder.inference.contract import validate_contract_line
from medcoder.inference.inputs import InputNote

TEXT = "Hypertension, stable on lisinopril. Flu shot given today."


def prediction() -> dict:
    start = TEXT.index("Hypertension")
    return {
        "id": "n1",
        "model": {"name": "medcoder", "version": "1", "run_id": None, "code_sets": {"ICD-10-CM": "FY2026-04"}},
        "codes": [
            {"system": "ICD-10-CM", "code": "I10", "description": "Essential (primary) hypertension", "score": 0.97,
             "grounded": True, "support": 0.95, "rules_applied": [],
             "evidence": [{"start": start, "end": start + 12, "text": "Hypertension"}],
             "icd11": {"code": "BA00.Z", "title": "Essential hypertension, unspecified", "map": "one-to-one"}},
            {"system": "HCPCS", "code": "G0008", "description": "Flu vaccine administration", "score": 0.9,
             "grounded": True, "support": 0.9, "rules_applied": [],
             "evidence": [{"start": TEXT.index("Flu"), "end": TEXT.index("Flu") + 8, "text": "Flu shot"}]},
        ],
        "em": None,
        "review": {"required": False, "reasons": []},
    }  # fmt: skip


def history(payer: str, denied: bool, n: int = 12) -> DenialRiskModel:
    """`n` past claims of I10 + G0008 to `payer`, each G0008 line denied for medical necessity (CARC 50) or paid."""
    claims, remittances = [], []
    for k in range(n):
        line = ClaimLine(f"h{k}-1", "G0008", (), Decimal(1), fee("G0008"), "20260105", ("I10",))
        claims.append(Claim(f"h{k}", payer, "outpatient", 50, "F", "20260105", ("I10",), (line,)))
        adjustments = (Adjustment("CO", "50", fee("G0008"), None, "diagnosis_support", True),) if denied else ()
        paid = Decimal(0) if denied else fee("G0008")
        remitted = RemittanceLine(f"h{k}-1", "HC", "G0008", (), None, fee("G0008"), paid, Decimal(1), "20260105",
                                  adjustments, ())  # fmt: skip
        remittances.append(ClaimRemittance("h", payer, None, f"h{k}", "1", fee("G0008"), paid, None, None, None, (),
                                           (remitted,)))  # fmt: skip
    return DenialRiskModel().fit(claims, remittances)


def test_a_line_the_payers_history_denies_is_routed_and_the_line_stays_a_valid_contract_line():
    note = InputNote("n1", TEXT, setting="outpatient", age=50, sex="F", payer="plan_a", encounter_date="2026-01-20")
    out = with_denial_risk(prediction(), note, ClaimCheck(history("plan_a", denied=True)))
    validate_contract_line(out, note_text=TEXT)
    (line,) = out["denial_risk"]["lines"]
    assert line["code"] == "G0008" and line["risk"] >= 0.5 and line["seen"] == 12 and line["denied"] == 12
    assert line["reason"].startswith("history: ") and out["denial_risk"]["claim_risk"] == line["risk"]
    assert out["review"] == {"required": True, "reasons": ["denial_risk:G0008"]}
    paid = with_denial_risk(prediction(), note, ClaimCheck(history("plan_a", denied=False)))
    validate_contract_line(paid, note_text=TEXT)
    assert paid["denial_risk"]["lines"][0]["risk"] < 0.5 and paid["review"]["required"] is False


def test_no_payer_or_nothing_to_bill_leaves_the_prediction_as_it_is():
    check = ClaimCheck(history("plan_a", denied=True))
    assert with_denial_risk(prediction(), InputNote("n1", TEXT), check) == prediction()
    diagnoses_only = {**prediction(), "codes": prediction()["codes"][:1]}
    note = InputNote("n1", TEXT, payer="plan_a")
    assert claim_of(diagnoses_only, note) is None and with_denial_risk(diagnoses_only, note, check) == diagnoses_only


def test_a_denial_risk_naming_a_code_the_line_does_not_bill_breaks_the_contract():
    from medcoder.inference.contract import ContractError

    note = InputNote("n1", TEXT, payer="plan_a", encounter_date="2026-01-20")
    out = with_denial_risk(prediction(), note, ClaimCheck(history("plan_a", denied=True)))
    out["denial_risk"]["lines"][0]["code"] = "G0009"
    with pytest.raises(ContractError, match="denial_risk.lines"):
        validate_contract_line(out, note_text=TEXT)


def test_medcoder_predict_adds_the_claim_check_to_notes_with_a_payer(tiny, tmp_path):
    """The wiring: every line stays a valid contract line, a claim check only where a payer and a billed line
    are, and a bad history file refused before the model loads (what the check adds is tested above: the tiny
    model seldom bills a procedure or visit level)."""
    from medcoder.claims.risk import save_risk_model
    from medcoder.cli import build_parser
    from medcoder.serving.predict import cmd_predict

    notes = tiny.records
    rows = [{"id": r.id, "text": r.text, **({"payer": "plan_a", "encounter_date": "2026-01-20"} if k % 3 else {})}
            for k, r in enumerate(notes)]  # fmt: skip
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    risk = save_risk_model(history("plan_a", denied=True), tmp_path / "risk.json")
    args = ["predict", "--input", str(source), "--output", str(out), "--model", str(tiny.export_dir)]
    cmd_predict(build_parser().parse_args([*args, "--denial-risk", str(risk)]))
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    texts = {r.id: r.text for r in notes}
    for row, line in zip(rows, lines, strict=True):
        validate_contract_line(line, note_text=texts[line["id"]])
        billed = any(c["system"] != "ICD-10-CM" for c in line["codes"]) or line["em"] is not None
        assert ("denial_risk" in line) == ("payer" in row and billed)
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="not a denial-risk model"):  # refused before the model loads
        cmd_predict(build_parser().parse_args([*args, "--denial-risk", str(tmp_path / "bad.json")]))
