"""Promotion cannot be fooled by its evaluation set: a set without gold codes (or with too few) is
refused before any model is scored, a set holding the challenger's or the champion's training notes
(by note id, or by text however re-spaced, re-cased and renamed) is refused, and what was checked is
recorded on the version. Against a registry built here: the tiny model logged by runs that log
their datasets the way `medcoder-train` does (`tracking.log_dataset_digests`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow
import pytest
from export_support import TinyCoder, tracking
from mlflow.tracking import MlflowClient

from medcoder import tracking as medcoder_tracking
from medcoder.audit.store import AuditLog
from medcoder.data.schema import NoteRecord, records_digest, write_notes
from medcoder.data.synth import generate_corpus
from medcoder.evaluation.contract import load_eval_set
from medcoder.export.mlflow_model import log_packaged_model
from medcoder.registry.eval_guard import EvalSetRefused, gold_counts
from medcoder.registry.gates import Gates
from medcoder.registry.promote import promote
from medcoder.registry.register import register_run


class Env:
    def __init__(
        self, client: MlflowClient, runs: dict[str, str], corpora: dict[str, dict[str, list[NoteRecord]]], root: Path
    ):
        self.client, self.runs, self.corpora, self.root = client, runs, corpora, root

    def eval_set(self, name: str, records: list[NoteRecord]):
        path = self.root / f"{name}.jsonl"
        write_notes(records, path)
        return load_eval_set(path)

    def held_out(self) -> list[NoteRecord]:
        """Labelled notes no run trained or tuned on: the test splits of both corpora (each split holds about ten
        notes, and the gates need ten labelled notes to decide)."""
        return self.corpora["a"]["test"] + self.corpora["b"]["test"]

    def register(self, run: str, name: str) -> str:
        return str(register_run(self.runs[run], name=name, client=self.client).version)


def _renamed(corpus: dict[str, list[NoteRecord]], prefix: str) -> dict[str, list[NoteRecord]]:
    """The embedded corpus numbers notes n000001... whatever the seed: another corpus gets other ids."""
    return {split: [dataclasses.replace(r, id=prefix + r.id) for r in records] for split, records in corpus.items()}


@pytest.fixture(scope="module")
def env(tiny: TinyCoder, tmp_path_factory) -> Env:
    root = tmp_path_factory.mktemp("eval-guard")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    # "a" is what the tiny model was trained on; "b" another corpus, for a challenger that never saw "a"
    corpora = {"a": generate_corpus(60, seed=3), "b": _renamed(generate_corpus(60, seed=4), "b-")}
    runs = {}
    with tracking(uri):
        medcoder_tracking.configure_mlflow("eval-guard-tests", uri)
        for run_name, corpus in (("a", corpora["a"]), ("b", corpora["b"]), ("no-fingerprints", None)):
            with mlflow.start_run() as run:
                if corpus is not None:
                    medcoder_tracking.log_dataset_digests(corpus, "embedded")
                log_packaged_model(tiny.export_dir, name="model")
            runs[run_name] = run.info.run_id
    return Env(MlflowClient(tracking_uri=uri, registry_uri=uri), runs, corpora, root)


def _nothing_recorded(env: Env, name: str, version: str) -> None:
    tags = env.client.get_model_version(name, version).tags
    assert not any(key.startswith("promotion.") for key in tags)
    assert "champion" not in env.client.get_registered_model(name).aliases


def test_an_eval_set_without_gold_codes_or_with_too_few_is_refused_before_scoring(env: Env) -> None:
    version = env.register("a", "guard-gold")
    stripped = [dataclasses.replace(r, codes=(), mentions=()) for r in env.held_out()]
    with pytest.raises(
        EvalSetRefused, match=rf"has no gold codes in its {len(stripped)} notes; promotion needs a labelled set"
    ) as err:
        promote("guard-gold", env.eval_set("stripped", stripped), Gates(), client=env.client)
    assert "\n" not in str(err.value)
    with pytest.raises(
        EvalSetRefused, match=r"has 3 labelled notes and \d+ gold codes; the gates need at least 10 and 20"
    ):
        promote("guard-gold", env.eval_set("few", env.corpora["a"]["test"][:3]), Gates(), client=env.client)
    _nothing_recorded(env, "guard-gold", version)


def test_an_eval_set_of_the_challengers_training_notes_is_refused(env: Env) -> None:
    version = env.register("a", "guard-train")
    train = env.corpora["a"]["train"][:12]
    disguised = [
        dataclasses.replace(r, id=f"fresh-{i}", text="  " + r.text.upper().replace(" ", "\n "))
        for i, r in enumerate(train)
    ]
    with pytest.raises(
        EvalSetRefused,
        match=r"12 of the evaluation set's 12 notes are training notes of the challenger "
        r"\(guard-train v1, run \w+\) \(0 by note id, 12 by text",
    ):
        promote("guard-train", env.eval_set("disguised", disguised), Gates(), client=env.client)
    held = env.held_out()
    val = env.corpora["a"]["val"]  # what the threshold was tuned on counts too
    reused_ids = [dataclasses.replace(r, id=t.id) for r, t in zip(held, val)] + held[len(val) :]
    reused = min(len(held), len(val))
    with pytest.raises(
        EvalSetRefused, match=rf"{reused} of the evaluation set's {len(held)} notes .* \({reused} by note id, 0 by text"
    ):
        promote("guard-train", env.eval_set("reused-ids", reused_ids), Gates(), client=env.client)
    _nothing_recorded(env, "guard-train", version)


def test_the_champions_training_notes_are_refused_and_a_clean_set_is_recorded(env: Env) -> None:
    name = "guard-champion"
    first = env.register("a", name)
    held_out = env.eval_set("held-out", env.held_out())
    audit = AuditLog(f"sqlite:///{env.root / 'audit.db'}")
    assert promote(name, held_out, Gates(), client=env.client, audit=audit).passed
    (entry,) = audit.rows()  # every promotion decision is in the audit trail, who, which version, and why
    assert (entry["action"], entry["model_name"], entry["model_version"], entry["decision"]) == (
        "promote",
        name,
        str(first),
        "promoted",
    )
    assert entry["reason"].startswith(f"eval set {held_out.sha256[:12]}: ") and audit.verify().intact
    tags = env.client.get_model_version(name, first).tags
    provenance = json.loads(tags["promotion.eval_set.provenance"])
    assert provenance["records_sha256"] == records_digest(held_out.records) == tags["promotion.eval_set_sha256"]
    gold_codes = gold_counts(held_out.records).gold_codes  # E/M levels are scored apart, not counted
    assert gold_codes >= 20
    n = len(held_out.records)
    assert (provenance["notes"], provenance["labelled_notes"], provenance["gold_codes"]) == (n, n, gold_codes)
    checked = provenance["training_overlap"]["challenger"]
    trained_on = len(env.corpora["a"]["train"]) + len(env.corpora["a"]["val"])
    assert checked["method"] == "note ids and text fingerprints" and checked["training_notes"] == trained_on
    assert checked["overlapping_notes"] == 0 and checked["run_id"] == env.runs["a"]

    env.register("b", name)  # never saw corpus "a": only the champion did
    champion_val = env.corpora["a"]["val"] + env.corpora["b"]["test"]
    seen = len(env.corpora["a"]["val"])
    with pytest.raises(
        EvalSetRefused,
        match=rf"{seen} of the evaluation set's {len(champion_val)} notes are training notes of the champion",
    ):
        promote(name, env.eval_set("champion-val", champion_val), Gates(), client=env.client)
    assert str(env.client.get_registered_model(name).aliases["champion"]) == first


def test_a_challenger_whose_run_logged_no_fingerprints_cannot_be_checked(env: Env) -> None:
    version = env.register("no-fingerprints", "guard-none")
    with pytest.raises(EvalSetRefused, match=r"its run logged no dataset/fingerprints.json; train it again"):
        promote("guard-none", env.eval_set("test-a", env.held_out()), Gates(), client=env.client)
    _nothing_recorded(env, "guard-none", version)


def test_without_distractor_mentions_the_distractor_gate_must_be_switched_off(env: Env) -> None:
    name = "guard-distractors"
    env.register("a", name)
    assert promote(name, env.eval_set("test-a2", env.held_out()), Gates(), client=env.client).passed
    env.register("b", name)
    no_mentions = env.eval_set("no-mentions", [dataclasses.replace(r, mentions=()) for r in env.held_out()])
    with pytest.raises(EvalSetRefused, match=r"no distractor mentions .* \(max_distractor_fp_rate_increase: null\)"):
        promote(name, no_mentions, Gates(), client=env.client)
    decision = promote(name, no_mentions, Gates(max_distractor_fp_rate_increase=None), client=env.client)
    assert "max_distractor_fp_rate_increase" not in set(decision.table["gate"])
