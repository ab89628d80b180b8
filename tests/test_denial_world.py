"""The denial loop's world: claims billed from a coder's codes go through real 835 files and back, and the
retraining corpus learns corrections as labels and upheld denials as negatives, never overturned ones."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from medcoder.claims.corrections import Correction, EvidenceOffsets
from medcoder.claims.payer import load_payers
from medcoder.claims.simulate import adjudicate_claims, month_of
from medcoder.data.labels import LabelSpace
from medcoder.data.schema import CodeAssignment, load_notes, write_notes
from medcoder.data.synth import generate_notes
from medcoder.jobs.denial_loop import feedback_corpus, simulate
from medcoder.jobs.denial_world import (
    CodedNote,
    bill_and_adjudicate,
    feedback_labels,
    read_coded,
    split_months,
    world_notes,
    write_coded,
)

PAYERS = Path(__file__).resolve().parents[1] / "configs" / "payer" / "simulated.yaml"


@pytest.fixture(scope="module")
def world():
    return world_notes(generate_notes, 80, 5)


def gold_coded(records) -> dict[str, CodedNote]:
    return {r.id: CodedNote(r.id, r.codes) for r in records}


def correction(note: str, action: str, code: str, **extra) -> Correction:
    return Correction(encounter_id=note, note_id=note, model_version="v1", system="ICD-10-CM", action=action, code=code,
                      coder_id="c1", timestamp=datetime(2026, 1, 5, tzinfo=UTC), **extra)  # fmt: skip


def test_world_notes_never_share_an_id_with_the_training_corpus_and_split_by_month(world):
    assert all(r.id.startswith("w5-") for r in world) and len({r.id for r in world}) == len(world)
    feedback, held_out = split_months(world, 9)
    assert feedback == sorted(feedback) and max(feedback) < min(held_out)
    assert {month_of(r) for r in world} == set(feedback) | set(held_out)


def test_claims_go_through_835_files_and_come_back_as_adjudicated(world, tmp_path):
    seed, payers = load_payers(PAYERS)
    claims, read_back = bill_and_adjudicate(world, gold_coded(world), payers, seed, tmp_path / "x12")
    direct = adjudicate_claims(world, claims, payers, seed)
    assert claims and list(tmp_path.joinpath("x12").glob("*.835"))
    strip = lambda r: dataclasses.replace(r, source="")  # noqa: E731
    assert sorted(map(strip, read_back), key=lambda r: r.claim_id) == sorted(
        map(strip, direct), key=lambda r: r.claim_id
    )


def test_feedback_labels_apply_corrections_drop_upheld_negatives_and_keep_the_label_space():
    note = CodedNote("n1", (CodeAssignment("ICD-10-CM", "I10", ((0, 3),)), CodeAssignment("ICD-10-CM", "E78.5"),
                            CodeAssignment("CPT", "36415"), CodeAssignment("CPT", "99214")))  # fmt: skip
    space = LabelSpace((("ICD-10-CM", "I10"), ("ICD-10-CM", "E78.5"), ("ICD-10-CM", "E11.9"), ("CPT", "36415")))
    fixes = [
        correction("n1", "delete", "E78.5"),
        correction("n1", "add", "E11.9", evidence=EvidenceOffsets(start=10, end=25)),
        correction("n1", "add", "Z99.89"),
    ]  # fmt: skip  (outside the label space)
    labels = {(c.system, c.code): c.evidence for c in feedback_labels(note, fixes, {"36415"}, space)}
    assert labels == {("ICD-10-CM", "I10"): ((0, 3),), ("ICD-10-CM", "E11.9"): ((10, 25),), ("CPT", "99214"): ()}


def test_the_retraining_corpus_replays_the_training_notes_and_never_learns_an_overturned_denial(world, tmp_path):
    seed, payers = load_payers(PAYERS)
    feedback, _ = split_months(world, 9)
    past = [r for r in world if month_of(r) in feedback]
    coded = gold_coded(world)
    claims, remittances = bill_and_adjudicate(past, coded, payers, seed)
    line = next(rl for rem in remittances for rl in rem.lines)
    claim = next(c for c in claims if any(ln.line_control == line.line_control for ln in c.lines))
    replay, trained_on = tmp_path / "replay", world_notes(generate_notes, 8, 6)  # the champion's own corpus
    write_notes(trained_on[:5], replay / "train.jsonl")
    write_notes(trained_on[5:8], replay / "val.jsonl")
    (tmp_path / "corrections.jsonl").write_text("", encoding="utf-8")

    def corpus(outcome: str) -> list:
        appeal = {"claim_id": claim.claim_id, "line_control": line.line_control, "carc": "50", "outcome": outcome,
                  "decided_at": "2026-02-01"}  # fmt: skip
        (tmp_path / "appeals.jsonl").write_text(json.dumps(appeal) + "\n", encoding="utf-8")
        out = tmp_path / outcome
        space = LabelSpace.from_records(world)
        counts = feedback_corpus(out, world, coded, {r.id for r in past}, tmp_path / "corrections.jsonl",
                                 tmp_path / "appeals.jsonl", claims, remittances, replay, space,
                                 test_notes=4)  # fmt: skip
        assert counts["val"] == 3 and counts["test"] == 4 < len(world) - len(past)
        held_out = {r.id for r in world if r.id not in {p.id for p in past}}
        assert {r.id for r in load_notes(out / "test.jsonl")} <= held_out
        with pytest.raises(ValueError, match="test_notes must be at least 1, got 0"):
            feedback_corpus(out, world, coded, {r.id for r in past}, tmp_path / "corrections.jsonl",
                            tmp_path / "appeals.jsonl", claims, remittances, replay, space, test_notes=0)  # fmt: skip
        return load_notes(out / "train.jsonl")

    upheld = corpus("upheld")
    learnt = next(r for r in upheld if r.id == claim.encounter_id)
    assert line.procedure not in {c.code for c in learnt.codes} and len(upheld) == 6  # 5 replayed + the denied note
    assert [r.id for r in corpus("overturned")] == [r.id for r in trained_on[:5]]  # nothing learnt from an overturn


def test_a_coders_codes_keep_their_scores_through_the_world_file(world, tmp_path):
    """The claim check reads the coder's score per billed code: written with the codes, read back the same."""
    record = next(r for r in world if r.codes)
    scores = {c.code: round(0.3 + 0.1 * k, 4) for k, c in enumerate(record.codes)}
    coded = {record.id: CodedNote(record.id, record.codes, scores)}
    write_coded(coded, tmp_path / "coded.jsonl")
    assert read_coded(tmp_path / "coded.jsonl") == coded


def test_the_routing_policy_names_each_claim_it_sends_to_a_coder_and_only_those(world):
    """compare's count of routed claims comes from the policy itself: a history that calls one payer's line of
    one code certain to be denied sends exactly the claims billing it to a coder, and names each once."""
    from medcoder.claims.risk import DenialRiskModel
    from medcoder.claims.simulate import claim_for
    from medcoder.jobs.denial_loop import routing_policy

    seed, payers = load_payers(PAYERS)
    coded = gold_coded(world)
    claims = [c for r in world if (c := claim_for(r, coded[r.id].labels())) is not None]
    payer, code = next((c.payer, line.procedure) for c in claims for line in c.lines)
    history = DenialRiskModel()
    for name in payers:  # each payer denied 1 line in 100
        history.payer_lines[name], history.payer_denied[name] = 1000, 10
    history.seen[("code", payer, code)] = history.denied[("code", payer, code)] = 10
    expected = sorted(c.claim_id for c in claims if c.payer == payer and code in {x.procedure for x in c.lines})
    sent: list[str] = []
    billed, _ = bill_and_adjudicate(world, coded, payers, seed, review=routing_policy(history, coded, sent))
    assert sorted(sent) == expected and len(expected) < len(billed)


def test_the_loop_fetches_a_model_again_into_the_folder_an_earlier_run_left(logged, tmp_path):
    """compare after a second retraining (or `make denial-loop` run twice) fetches into the same
    <out>/models/<role>: the earlier copy is replaced, not an error."""
    from export_support import REGISTERED_NAME

    from medcoder.jobs.denial_loop import load_coder

    spec, work = f"models:/{REGISTERED_NAME}@champion", tmp_path / "out" / "models" / "challenger"
    first = load_coder(spec, work, logged.tracking_uri)[1]
    (work / "left-over.txt").write_text("from an earlier run", encoding="utf-8")
    assert load_coder(spec, work, logged.tracking_uri)[1] == first
    assert not (work / "left-over.txt").exists()


def test_simulate_refuses_a_bad_test_split_size_before_it_codes_a_note(tmp_path):
    # the model URI names nothing: the size check must stop the run before the fetch and the minutes of coding
    with pytest.raises(ValueError, match="test_notes must be at least 1, got 0"):
        simulate(tmp_path / "out", "models:/no-such-model@champion", None, notes=10, seed=0, feedback_months=1,
                 payers_path=tmp_path / "payers.yaml", review_share=0.5, overturn_rate=0.5,
                 replay_dir=tmp_path / "replay", test_notes=0)  # fmt: skip
    assert not (tmp_path / "out").exists()
