"""The simulated payer applies its hidden rules, and the denial-risk model learnt from its remittances
flags each planted rule on claims of a later month, from what a claim says before submission only."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from medcoder.claims.payer import PayerConfigError, adjudicate, fee, load_payers
from medcoder.claims.risk import DenialRiskModel
from medcoder.claims.simulate import denial_rates
from medcoder.claims.submission import Claim, ClaimLine

PAYERS = """
seed: 3
payers:
  plan_a:
    code_pairs: [["G0008", "G0009", 0], ["G0444", "Q2035", 1]]
    covered_diagnoses: {"A4253": ["E11", "E10"]}
    age_ranges: {"J1100": [18, 64]}
    sex_codes: {"N40": "M"}
    unit_limits: {"J1100": 2}
    prior_authorization: []
    review_rate: 0.3
    eligibility_rate: 0.03
    duplicate_rate: 0.01
    timely_filing_rate: 0.0
    coinsurance: 0.2
"""
PROCEDURES = ("G0008", "G0009", "G0444", "Q2035", "A4253", "J1100")
DIAGNOSES = ("E11.9", "I10", "N40.0", "J44.9", "Z23", "E78.5")


@pytest.fixture(scope="module")
def payer(tmp_path_factory):
    path = Path(tmp_path_factory.mktemp("payer")) / "payers.yaml"
    path.write_text(PAYERS, encoding="utf-8")
    seed, payers = load_payers(path)
    return seed, payers["plan_a"]


def random_claims(n: int, month: int, seed: int) -> tuple[list[Claim], dict[str, frozenset[str]]]:
    """Claims of one month with random codes, ages and sexes; the record supports ~90% of the codes."""
    rng = np.random.default_rng(seed)
    claims, supported = [], {}
    for k in range(n):
        claim_id = f"m{month}-c{k}"
        dx = tuple(rng.choice(DIAGNOSES, size=rng.integers(1, 4), replace=False))
        procedures = rng.choice(PROCEDURES, size=rng.integers(1, 4), replace=False)
        date = f"2026{month:02d}15"
        lines = tuple(ClaimLine(f"{claim_id}-{j}", str(p), (), Decimal(1), fee(str(p)), date, dx)
                      for j, p in enumerate(procedures, 1))  # fmt: skip
        claims.append(Claim(claim_id, "plan_a", "outpatient", int(rng.integers(5, 90)), str(rng.choice(["M", "F"])),
                            date, dx, lines, claim_id))  # fmt: skip
        supported[claim_id] = frozenset(c for c in (*dx, *procedures) if rng.random() < 0.9)
    return claims, supported


def test_each_planted_rule_denies_its_lines_with_its_carc_and_the_patients_share_is_no_denial(payer):
    seed, rules = payer

    def line(code: str, dx: tuple[str, ...] = ("E11.9",), units: int = 1) -> ClaimLine:
        return ClaimLine(f"c-{code}", code, (), Decimal(units), fee(code), "20260115", dx)

    def claim(lines: list[ClaimLine], age: int = 40, sex: str = "F") -> Claim:
        diagnoses = tuple(dict.fromkeys(d for x in lines for d in x.diagnoses))
        return Claim("c", "plan_a", "outpatient", age, sex, "20260115", diagnoses, tuple(lines))

    everything = frozenset(PROCEDURES + DIAGNOSES)
    quiet = dataclasses.replace(rules, eligibility_rate=0.0, duplicate_rate=0.0)

    def carcs(c: Claim) -> dict[str, list[str]]:
        remittance = adjudicate(c, quiet, everything, seed)
        assert remittance.paid == remittance.charge - sum(a.amount for a in remittance.all_adjustments())
        return {rl.procedure: [a.carc for a in rl.adjustments if a.is_denial] for rl in remittance.lines}

    assert carcs(claim([line("G0008"), line("G0009")]))["G0009"] == ["236"]  # code pair, indicator 0
    assert carcs(claim([line("A4253", ("I10",))]))["A4253"] == ["11"]  # diagnosis does not support it
    assert carcs(claim([line("J1100")], age=70))["J1100"] == ["6"]  # age
    assert carcs(claim([line("G0444", ("N40.0",))], sex="F"))["G0444"] == ["7"]  # sex
    assert carcs(claim([line("J1100", units=3)]))["J1100"] == ["151"]  # units above the limit
    paid = adjudicate(claim([line("A4253")]), quiet, everything, seed)
    assert [a.group for a in paid.lines[0].adjustments] == ["PR"] and not paid.denied  # coinsurance only
    modifier = dataclasses.replace(line("Q2035"), modifiers=("59",))  # indicator 1: a modifier bypasses it
    assert carcs(claim([line("G0444"), modifier]))["Q2035"] == []


def test_a_claims_fate_depends_on_its_own_id_not_on_the_others_adjudicated_with_it(payer):
    seed, rules = payer
    claims, supported = random_claims(40, 1, seed=1)
    alone = [adjudicate(c, rules, supported[c.claim_id], seed) for c in claims]
    reversed_order = [adjudicate(c, rules, supported[c.claim_id], seed) for c in reversed(claims)][::-1]
    assert alone == reversed_order


def test_two_codings_of_one_encounter_meet_the_same_review_of_each_code_they_share(payer):
    """The paired comparison of champion and challenger: adding a line to a claim must not change whether the
    payer's review picks its other lines (the record supports none of them, so a picked line is denied)."""
    seed, rules = payer
    quiet = dataclasses.replace(rules, eligibility_rate=0.0, duplicate_rate=0.0, timely_filing_rate=0.0)
    shared = ("A4253", "J1100")  # no pair edit between them or with G0444
    reviewed_alone = reviewed_beside = 0
    for k in range(200):
        lines = [ClaimLine(f"c{k}-{j}", code, (), Decimal(1), fee(code), "20260115", ("E11.9",))
                 for j, code in enumerate(shared, 1)]  # fmt: skip
        extra = ClaimLine(f"c{k}-0", "G0444", (), Decimal(1), fee("G0444"), "20260115", ("E11.9",))
        one = Claim(f"c{k}", "plan_a", "outpatient", 40, "F", "20260115", ("E11.9",), tuple(lines))
        other = dataclasses.replace(one, lines=(extra, *lines))

        def denied(claim: Claim) -> dict[str, bool]:
            remittance = adjudicate(claim, quiet, frozenset(), seed)
            return {rl.procedure: any(a.carc == "50" for a in rl.adjustments) for rl in remittance.lines if
                    rl.procedure in shared}  # fmt: skip

        alone, beside = denied(one), denied(other)
        assert alone == beside, f"claim c{k}"
        reviewed_alone += sum(alone.values())
        reviewed_beside += sum(beside.values())
    assert 0.2 < reviewed_alone / 400 < 0.4  # the review rate still holds per line (0.3)


def test_the_risk_model_flags_every_planted_rule_on_a_later_month_and_few_clean_lines(payer):
    seed, rules = payer
    history, held_out = [], []
    for month in range(1, 7):
        claims, supported = random_claims(150, month, seed=month)
        remittances = [adjudicate(c, rules, supported[c.claim_id], seed) for c in claims]
        (held_out if month == 6 else history).append((claims, remittances))
    model = DenialRiskModel()
    for claims, remittances in history:
        model.fit(claims, remittances)
    claims, remittances = held_out[0]
    flagged = {r.line_control: r for c in claims for r in model.line_risks(c) if r.risk >= 0.5}
    planted = {"236": 0, "11": 0, "6": 0, "7": 0}
    caught = dict(planted)
    clean_lines = clean_flagged = 0
    for remittance in remittances:
        for rl in remittance.lines:
            reasons = {a.carc for a in rl.adjustments if a.is_denial}
            for carc in planted.keys() & reasons:
                planted[carc] += 1
                caught[carc] += rl.line_control in flagged
            if not reasons:
                clean_lines += 1
                clean_flagged += rl.line_control in flagged
    assert all(n >= 3 for n in planted.values()), planted  # each rule fired on the held-out month
    assert all(caught[c] / planted[c] >= 0.8 for c in planted), (caught, planted)
    assert clean_flagged / clean_lines <= 0.15, (clean_flagged, clean_lines)
    some = next(iter(flagged.values()))
    assert some.reason.startswith("history: ") and some.seen >= model.min_count and 0 < some.denied <= some.seen


def test_line_risk_reads_nothing_adjudicated():
    """A risk computed before submission: the features are the claim's; remittances only label history."""
    import inspect

    from medcoder.claims import risk

    parameters = inspect.signature(DenialRiskModel.line_risks).parameters
    assert list(parameters) == ["self", "claim", "scores"] and parameters["claim"].annotation in (Claim, "Claim")
    assert "float" in str(parameters["scores"].annotation)  # the coder's scores, known before the claim goes out
    assert "remittance" not in inspect.getsource(risk._specific_keys) + inspect.getsource(risk._diagnosis_keys)


def test_the_simulated_denial_rate_is_measured_over_claims(payer):
    seed, rules = payer
    claims, supported = random_claims(200, 1, seed=9)
    rates = denial_rates(adjudicate(c, rules, supported[c.claim_id], seed) for c in claims)
    assert rates.claims == 200 and 0 < rates.coding_denial_rate <= rates.denial_rate < 1
    assert rates.clean_claim_rate == pytest.approx(1 - rates.denial_rate)


@pytest.mark.parametrize("edit, field", [
    ("review_rate: 0.3", "review_rate: 3"),
    ('code_pairs: [["G0008", "G0009", 0], ["G0444", "Q2035", 1]]', 'code_pairs: [["G0008", "G0009", 5]]'),
    ('sex_codes: {"N40": "M"}', 'sex_codes: {"N40": "X"}'),
    ("coinsurance: 0.2", "coinsurance: 0.2\n    surprise: 1"),
])  # fmt: skip
def test_a_bad_payer_definition_names_the_file_and_the_field(tmp_path, edit, field):
    path = tmp_path / "payers.yaml"
    path.write_text(PAYERS.replace(edit, field), encoding="utf-8")
    with pytest.raises(PayerConfigError, match=str(path)) as raised:
        load_payers(path)
    assert f"payers.plan_a.{edit.split(':')[0]}" in str(raised.value) or "unknown field" in str(raised.value)


def test_a_line_that_breaks_a_users_edit_is_certain_and_names_the_edit_before_any_history(payer, tmp_path):
    from medcoder.claims.edits import read_ptp_edits
    from medcoder.claims.risk import pre_submission_risks

    seed, rules = payer
    claims, supported = random_claims(150, 1, seed=1)
    model = DenialRiskModel().fit(claims, [adjudicate(c, rules, supported[c.claim_id], seed) for c in claims])
    path = tmp_path / "ptp.csv"
    path.write_text("column_1,column_2,effective_date,deletion_date,modifier_indicator\nA4253,J1100,20250101,,0\n")
    lines = (ClaimLine("x-1", "A4253", (), Decimal(1), fee("A4253"), "20260115", ("E11.9",)),
             ClaimLine("x-2", "J1100", (), Decimal(1), fee("J1100"), "20260115", ("E11.9",)))  # fmt: skip
    claim = Claim("x", "plan_a", "outpatient", 40, "F", "20260115", ("E11.9",), lines)
    first, second = pre_submission_risks(claim, model, read_ptp_edits(path))
    assert second.risk == 1.0 and second.reason == "edit: NCCI PTP: column 2 of A4253 (modifier indicator 0)"
    assert first == model.line_risks(claim)[0]  # no edit: the learnt risk


def test_a_saved_risk_model_gives_the_same_risks_and_reasons(payer, tmp_path):
    from medcoder.claims.risk import load_risk_model, save_risk_model

    seed, rules = payer
    claims, supported = random_claims(150, 1, seed=2)
    model = DenialRiskModel().fit(claims, [adjudicate(c, rules, supported[c.claim_id], seed) for c in claims])
    again = load_risk_model(save_risk_model(model, tmp_path / "risk.json"))
    later, _ = random_claims(30, 2, seed=3)
    assert [again.line_risks(c) for c in later] == [model.line_risks(c) for c in later]
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a denial-risk model"):
        load_risk_model(tmp_path / "other.json")


def test_a_code_pair_denied_the_one_time_it_was_billed_is_flagged_and_one_paid_is_not(payer):
    """A pair edit is a rule that denies every line of the pair or none: a pair billed once and denied for the
    pair (CARC 236) is risky on the next claim, though the statistical patterns need five past lines; the same
    pair billed once and paid is not (and twice denied is riskier than once)."""
    seed, rules = payer
    quiet = dataclasses.replace(rules, eligibility_rate=0.0, duplicate_rate=0.0, timely_filing_rate=0.0, review_rate=0)
    no_edit = dataclasses.replace(quiet, code_pairs=())

    def pair_claim(claim_id: str) -> Claim:
        lines = tuple(ClaimLine(f"{claim_id}-{j}", code, (), Decimal(1), fee(code), "20260115", ("E11.9",))
                      for j, code in enumerate(("G0008", "G0009"), 1))  # fmt: skip
        return Claim(claim_id, "plan_a", "outpatient", 40, "F", "20260115", ("E11.9",), lines, claim_id)

    background, supported = random_claims(150, 1, seed=4)
    background = [c for c in background if not {"G0008", "G0009"} <= {x.procedure for x in c.lines}]
    everything = frozenset(PROCEDURES + DIAGNOSES)
    history = [(c, adjudicate(c, quiet, supported[c.claim_id], seed)) for c in background]

    def next_risk(past: int, rules_then: object) -> object:
        pairs = [pair_claim(f"p{k}") for k in range(past)]
        remittances = [r for _, r in history] + [adjudicate(c, rules_then, everything, seed) for c in pairs]
        model = DenialRiskModel().fit([c for c, _ in history] + pairs, remittances)
        return {r.procedure: r for r in model.line_risks(pair_claim("next"))}["G0009"]

    once, twice, paid = next_risk(1, quiet), next_risk(2, quiet), next_risk(1, no_edit)
    assert once.risk >= 0.5 and once.kind == "pair", once
    assert once.reason == "history: pair plan_a G0009 G0008: 1 of 1 lines denied (CARC 236)"
    assert twice.risk > once.risk
    assert paid.risk < 0.5, paid


def test_a_flagged_claim_goes_out_as_the_record_supports_it_and_a_flagged_pair_as_a_distinct_service(payer):
    """The routing policy of the denial loop's challenger: a claim the pre-submission check flags goes to a
    coder, who bills what the record supports and marks a code pair the history flags with modifier 59, which
    the payer's indicator-1 edit accepts; an unflagged claim goes out as built."""
    from medcoder.claims.risk import pre_submission_risks
    from medcoder.claims.simulate import claim_for, reviewed_before_submission
    from medcoder.data.schema import CodeAssignment, NoteRecord

    seed, rules = payer
    quiet = dataclasses.replace(rules, eligibility_rate=0.0, duplicate_rate=0.0, timely_filing_rate=0.0, review_rate=0)
    gold = tuple(CodeAssignment(system, code, ()) for system, code in
                 (("ICD-10-CM", "E11.9"), ("HCPCS", "G0444"), ("HCPCS", "Q2035")))  # fmt: skip
    record = NoteRecord(id="n1", text="...", codes=gold, encounter_date="2026-06-15", setting="outpatient", age=40,
                        sex="F", payer="plan_a")  # fmt: skip
    past = [dataclasses.replace(claim_for(record, [(c.system, c.code) for c in gold], f"p{k}"), encounter_id=f"p{k}")
            for k in range(3)]  # fmt: skip
    model = DenialRiskModel().fit(past, [adjudicate(c, quiet, frozenset({"G0444", "Q2035"}), seed) for c in past])

    def check(claim: Claim) -> list:
        return pre_submission_risks(claim, model)

    over_coded = claim_for(record, [("ICD-10-CM", "E11.9"), ("HCPCS", "G0444"), ("HCPCS", "Q2035"), ("HCPCS", "A4253")])
    sent = reviewed_before_submission(over_coded, record, check, 0.5)
    assert [(line.procedure, line.modifiers) for line in sent.lines] == [("G0444", ()), ("Q2035", ("59",))]
    paid = adjudicate(sent, quiet, frozenset({"G0444", "Q2035", "E11.9"}), seed)
    assert not paid.coding_denied
    built = claim_for(record, [("ICD-10-CM", "E11.9"), ("HCPCS", "G0444"), ("HCPCS", "Q2035")])
    assert adjudicate(built, quiet, frozenset({"G0444", "Q2035", "E11.9"}), seed).coding_denied  # as built: 236
    alone = claim_for(record, [("ICD-10-CM", "E11.9"), ("HCPCS", "G0444")])
    assert reviewed_before_submission(alone, record, check, 0.5) is alone  # nothing flagged: out as built


def visit_claims(n: int, month: int, seed: int) -> tuple[list[Claim], dict[str, frozenset[str]], dict[str, dict]]:
    """Office visits whose level the coder scored: a level scored under 0.5 is the record's level half the time,
    one scored 0.9 or more nearly always (what a calibrated E/M head gives). (claims, supported codes, scores)."""
    rng = np.random.default_rng(seed)
    claims, supported, scores = [], {}, {}
    for k in range(n):
        claim_id = f"m{month}-v{k}"
        level = str(rng.choice(["99213", "99214"]))
        score = float(rng.choice([0.42, 0.95]))
        right = rng.random() < (0.5 if score < 0.5 else 0.99)
        line = ClaimLine(f"{claim_id}-1", level, (), Decimal(1), fee(level), f"2026{month:02d}15", ("I10",))
        claims.append(Claim(claim_id, "plan_a", "outpatient", 50, "F", line.service_date, ("I10",), (line,), claim_id))
        supported[claim_id] = frozenset({"I10", level if right else "99212"})
        scores[claim_id] = {level: score}
    return claims, supported, scores


def test_the_coders_confidence_in_a_visit_level_is_a_learnt_pattern_of_level_of_service_denials(payer):
    """The payer's review denies a visit level the record does not support (CARC 150) at random: no history of
    codes predicts which, the coder's own score does. Low-scored levels of a later month are riskier than
    high-scored ones, whatever the level, and the reason names the band; without scores the pattern is absent."""
    seed, rules = payer
    quiet = dataclasses.replace(rules, eligibility_rate=0.0, duplicate_rate=0.0, timely_filing_rate=0.0)
    claims, supported, scores = [], {}, {}
    for month in range(1, 7):
        c, s, sc = visit_claims(120, month, seed=month)
        claims += c
        supported |= s
        scores |= sc
    remittances = [adjudicate(c, quiet, supported[c.claim_id], seed) for c in claims]
    assert any(a.carc == "150" for r in remittances for a in r.all_adjustments())
    model = DenialRiskModel().fit(claims, remittances, scores)
    later, _, later_scores = visit_claims(40, 7, seed=70)
    low = [model.line_risks(c, later_scores[c.claim_id])[0] for c in later if later_scores[c.claim_id][
        c.lines[0].procedure] < 0.5]  # fmt: skip
    high = [model.line_risks(c, later_scores[c.claim_id])[0] for c in later if later_scores[c.claim_id][
        c.lines[0].procedure] >= 0.9]  # fmt: skip
    assert low and high
    assert min(r.risk for r in low) > 2 * max(r.risk for r in high)
    assert all(r.kind == "score" and "score plan_a visit 0.00-0.50" in r.reason and "CARC 150" in r.reason
               for r in low)  # fmt: skip
    unscored = model.line_risks(later[0])[0]
    assert unscored.kind != "score" and "score" not in unscored.reason
