"""The model card: every number read back from MLflow, every HTI-1 attribute answered, nothing missing
silently, a self-contained HTML page, published to the run and the registry.

Real MLflow in a private sqlite store (no mocks), and a real run: the card is tested against what the
training job logs, never against a hand-made imitation of it (a card that read `labels.top_k` while the
job logged other names once passed tests built that way). Built once for the module:
- v1: `medcoder-train` on a tiny random BERT and its generated corpus (tests/train_support.py),
  registered as `medcoder register` does and promoted by `medcoder promote`'s gates (@champion);
- the external CodiEsp run: `medcoder baseline --dataset codiesp`, the first step of `make codiesp`,
  on the CodiEsp-layout fixture (tests/fixtures/codiesp);
- v2: a bare run (one metric, no artifacts), hand-made on purpose: it has nothing to show.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from train_support import TINY, compose_train, corpus_dir

import medcoder.jobs.train as train_job
from medcoder import tracking
from medcoder.cards import hti1
from medcoder.cards.facts import parse_model_uri
from medcoder.cards.model_card import write_model_card
from medcoder.cli import main as medcoder_main
from medcoder.data.schema import NoteRecord, load_notes
from medcoder.registry.alias_history import read_alias_history, record_alias_change
from medcoder.registry.promote import promote
from medcoder.registry.register import KEY_METRICS, register_run

CODIESP_FIXTURE = Path(__file__).parent / "fixtures" / "codiesp"
RELEASE_USER = "release-bot"  # MEDCODER_USER of the registration and the promotion: the alias history's `by`
SPLITS = ("train", "val", "test")


def note_excerpts(notes: list[NoteRecord]) -> set[str]:
    """40-character windows of the notes' text: if the card held note text, it would hold some of these."""
    return {n.text[i : i + 40] for n in notes[:20] for i in (60, 200) if len(n.text) > i + 40}


# ---------------------------------------------------------------- the runs and the registry
@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("MLFLOW_TRACKING_URI", uri)  # where medcoder-train logs (configs/logger/mlflow.yaml)
        mp.setenv("MEDCODER_USER", RELEASE_USER)
        yield uri


@pytest.fixture(scope="module")
def registry(store, tmp_path_factory) -> dict:
    """medcoder v1 (@champion, the tiny training job's run), the external CodiEsp baseline run, and medcoder
    v2 (a bare run with no artifacts). Trains once for the module (about 1-2 minutes on two cores)."""
    root = tmp_path_factory.mktemp("train")
    cfg = compose_train(root, TINY + [f"logger.mlflow.artifact_location={root / 'artifacts'}"])
    train_job.train(cfg)
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("medcoder").experiment_id], "tags.task = 'train'")
    run_id = run.info.run_id

    # as `make codiesp` starts: the balanced TF-IDF baseline on CodiEsp, logged next to the training runs
    codiesp = ["baseline", "--dataset", "codiesp", "--codiesp-dir", str(CODIESP_FIXTURE), "--class-weight", "balanced"]
    assert medcoder_main([*codiesp, "--C", "10", "--tracking-uri", store]) == 0
    (external,) = client.search_runs([run.info.experiment_id], "tags.dataset = 'codiesp'")

    # `medcoder register`, then `medcoder promote` with the shipped gates on the corpus's held-out test split
    # (a first promotion: the absolute gates only, which the tiny model passes)
    v1 = register_run(run_id, client=client)
    decision = promote(eval_set=corpus_dir(root) / "test.jsonl", client=client)
    assert decision.passed, decision.reasons

    # a careless user copies note text onto the run after training: the card must not repeat it
    notes = {split: list(load_notes(corpus_dir(root) / f"{split}.jsonl")) for split in SPLITS}
    planted = notes["train"][0].text[:120]
    client.set_tag(run_id, "notes.sample", planted)
    client.log_text(run_id, f"first note: {planted}", "debug/notes_sample.txt")

    tracking.configure_mlflow("card-test-bare", store)
    with mlflow.start_run(run_name="bare") as bare:
        tracking.log_metrics({"micro_f1": 0.5}, "test")
    v2 = client.create_model_version("medcoder", source=f"runs:/{bare.info.run_id}/model", run_id=bare.info.run_id)
    client.set_model_version_tag("medcoder", v2.version, "test/micro_f1", "0.7")  # disagrees with the run (0.5)
    return {
        "client": client,
        "run_id": run_id,
        "external_id": external.info.run_id,
        "bare_id": bare.info.run_id,
        "v1": str(v1.version),
        "v2": str(v2.version),
        "planted": planted,
        "needles": {planted} | set().union(*(note_excerpts(n) for n in notes.values())),
    }


@pytest.fixture(scope="module")
def card(registry, store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("card")
    answers = out / "hti1.yaml"  # what the deploying organisation fills in
    answers.write_text('developer: "Coding ML team, coding-ml@example.org"\nfunding_source: ""\n', encoding="utf-8")
    result = write_model_card("models:/medcoder@champion", out, tracking_uri=store, hti1_path=answers,
                              audit_url=str(out / "no-audit.db"))  # fmt: skip
    return {"result": result, "md": result.markdown_path.read_text(), "html": result.html_path.read_text(), "out": out}


@pytest.fixture(scope="module")
def bare_card(registry, store, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("bare")
    return write_model_card(
        f"models:/medcoder/{registry['v2']}", out, tracking_uri=store, publish=False
    ).markdown_path.read_text()


def run_metrics(registry: dict, key: str = "run_id") -> dict[str, float]:
    return registry["client"].get_run(registry[key]).data.metrics


# ---------------------------------------------------------------- parsing the card back
def section(markdown: str, heading: str) -> str:
    """The text under `heading` up to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = markdown.index(heading + "\n")
    rest = markdown[start + len(heading) :]
    end = re.search(rf"\n#{{1,{level}}} ", rest)
    return rest[: end.start()] if end else rest


def metric_rows(text: str) -> dict[str, list[str]]:
    """`| `key` | v1 | v2 | meaning |` rows -> {key: [v1, v2]}."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\| `([a-z0-9_/]+)` \| (.*) \|$", line)
        if match:
            rows[match[1]] = [cell.strip() for cell in match[2].split(" | ")][:-1]
    return rows


def assert_same(cell: str, value: float) -> None:
    assert float(cell) == pytest.approx(value, abs=5e-5), (cell, value)


def assert_shows(cell: str, value: float | None) -> None:
    """The cell says what MLflow holds: the value, NaN spelled out, or Not available when it was not logged."""
    if value is None:
        assert cell == "Not available", cell
    elif math.isnan(value):
        assert cell == "NaN (undefined on this split)", cell
    else:
        assert_same(cell, value)


def markdown_text(text: str) -> str:
    """Text as the card escapes it in a table cell (the subgroup names here hold underscores, nothing else)."""
    return text.replace("_", r"\_")


def plot_links(markdown: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\((plots/[^)]+\.png)\)", markdown)


# ---------------------------------------------------------------- HTI-1
def test_hti1_lists_31_attributes_in_the_rules_9_groups():
    assert len(hti1.SOURCE_ATTRIBUTES) == 31
    assert len(hti1.GROUPS) == 9
    sizes = [sum(a.group_number == g for a in hti1.SOURCE_ATTRIBUTES) for g in range(1, 10)]
    assert sizes == [4, 4, 2, 4, 2, 4, 5, 4, 2]
    assert len(hti1.KEYS) == 31
    assert hti1.SOURCE_ATTRIBUTES[20].paragraph == "(b)(11)(iv)(B)(7)(i)"
    assert hti1.SOURCE_ATTRIBUTES[20].name.startswith("Validity of intervention in test data")


def test_every_hti1_attribute_has_a_heading_and_a_value(card):
    md, html = card["md"], card["html"]
    body = section(md, "## ONC HTI-1 source attributes")
    for attribute in hti1.SOURCE_ATTRIBUTES:
        heading = f"#### ({attribute.group_number})({attribute.item}) {attribute.name}"
        assert heading in body
        assert section(body, heading).strip(), f"empty value for {attribute.key}"
        assert f"<h4>({attribute.group_number})({attribute.item})" in html
    for group in hti1.GROUPS:
        assert group in body
    # the organisation's answer (configs/card/hti1.yaml) is used; an empty one is open, said where and listed
    assert "Coding ML team, coding-ml@example.org" in section(body, "#### (1)(i) " + hti1.SOURCE_ATTRIBUTES[0].name)
    assert "Not available (open: `funding_source` in configs/card/hti1.yaml)" in body
    still_open = body.split("Still open: ", 1)[1].split(".\n", 1)[0]
    assert "`funding_source`" in still_open and "`developer`" not in still_open


# ---------------------------------------------------------------- numbers equal MLflow
def test_headline_hallucination_and_evidence_numbers_equal_the_run_metrics(card, registry):
    metrics = run_metrics(registry)
    performance = section(card["md"], "## Performance")
    rows = metric_rows(performance)
    for key in (
        "micro_f1",
        "macro_f1",
        "map",
        "precision_at_5",
        "r_precision",
        "auc_macro",
        "invalid_code_rate",
        "ungrounded_code_rate",
        "distractor_false_positive_rate",
        "over_generation_ratio",
        "expected_calibration_error",
        "evidence_exact_span_f1",
        "evidence_position_independent_token_f1",
    ):
        val, test = rows[key]
        assert_same(val, metrics[f"val/{key}"])
        assert_same(test, metrics[f"test/{key}"])
    assert metrics["test/distractor_pairs"] > 0  # the test notes hold distractor mentions: the rate measures something
    distractors = section(performance, "### Distractor false positives by mention status")
    for status in ("negated", "family", "historical", "hypothetical"):
        pairs, coded = (int(metrics[f"test/distractor_{what}_{status}"]) for what in ("pairs", "false_positives"))
        rates = [
            f"{metrics[f'{split}/distractor_false_positive_rate_{status}']:.4f}"
            if metrics[f"{split}/distractor_pairs_{status}"]
            else "no mentions"  # not a 0.0000 rate
            for split in ("test", "val")
        ]
        assert f"| {status} | {pairs} | {coded} | {rates[0]} | {rates[1]} |" in distractors


def test_a_status_without_mentions_reads_no_mentions_not_a_zero_rate(registry, store, tmp_path):
    """CodiEsp records no mentions: the baseline run on it logged zero pairs for every status."""
    client, external = registry["client"], registry["external_id"]
    assert run_metrics(registry, "external_id")["test/distractor_pairs_hypothetical"] == 0
    # a baseline run logs no packaged model (`medcoder register` would refuse it): a version made by hand
    version = client.create_model_version("medcoder", source=f"runs:/{external}/model", run_id=external)
    md = write_model_card(f"models:/medcoder/{version.version}", tmp_path, tracking_uri=store, publish=False)
    distractors = section(md.markdown_path.read_text(), "### Distractor false positives by mention status")
    assert "| hypothetical | 0 | 0 | no mentions | no mentions |" in distractors


def test_training_data_and_lineage_come_from_the_run_and_registry(card, registry):
    client = registry["client"]
    run = client.get_run(registry["run_id"]).data
    version_tags = client.get_model_version("medcoder", registry["v1"]).tags
    md = card["md"]
    training = section(md, "## Training data")
    for split in SPLITS:
        assert (
            f"| {split} | {run.params[f'dataset.{split}.notes']} | `{run.tags[f'dataset.{split}.sha256']}` |"
            in training
        )
    lineage = section(md, "## Model lineage")
    assert f"`{run.tags['git.commit']}`" in lineage
    # what `medcoder register` read from the sealed artifact and the code sets
    assert f"| Manifest sha256 | `{version_tags['manifest_sha256']}` |" in lineage
    assert f"| Model seal sha256 (whole model folder) | `{version_tags['model_seal.sha256']}` |" in lineage
    for system, release in json.loads(version_tags["code_sets"]).items():
        assert f"{system} `{release}`" in lineage
    # register repeats the key test metrics, the split digests and the commit on the version: each one checked
    repeated = [k for k in KEY_METRICS if k in version_tags] + [f"dataset.{s}.sha256" for s in SPLITS] + ["git_commit"]
    assert all(key in version_tags for key in repeated)
    assert f"| Registry tags agree with the run | yes ({len(repeated)} tags checked) |" in lineage


def test_the_label_space_and_subgroups_the_job_logged_are_rendered(card, registry, tmp_path):
    """The names the training job logs are the names the card reads: nothing the run knows is Not available."""
    client, run_id = registry["client"], registry["run_id"]
    params = client.get_run(run_id).data.params
    md = card["md"]
    for known in ("| Code systems | Not available", "top k) | Not available", "label space | Not available",
                  "the Not available codes", "no demographic subgroup table"):  # fmt: skip
        assert known not in md, known
    assert f"| Code systems | {', '.join(json.loads(params['labels.systems']))} |" in md
    assert f"| Most frequent training codes kept (top k) | {params['labels.top_k']} |" in md
    assert f"| Codes in the label space | {params['labels.n_labels']} |" in md
    # the fairness section's subgroup table is the run's, with the largest gaps named (or why none is)
    path = client.download_artifacts(run_id, "tables/test_f1_by_subgroup.csv", str(tmp_path))
    table = pd.read_csv(path, dtype={"field": str, "group": str})
    subgroups = section(md, "### Subgroups")
    for field, group in zip(table["field"], table["group"], strict=True):
        assert f"| {markdown_text(field)} | {markdown_text(group)} | " in subgroups
    gaps = ("Largest micro-F1 gap per field", "No field has two groups of at least")
    assert "| sex |" in subgroups and any(said in subgroups for said in gaps)


def test_known_failure_modes_name_the_worst_codes_of_the_per_code_table(card, registry, tmp_path):
    client = registry["client"]
    per_code = pd.read_csv(
        client.download_artifacts(registry["run_id"], "tables/test_per_code.csv", str(tmp_path)), dtype={"code": str}
    )
    present = per_code[per_code["support"] > 0]
    worst = present.sort_values(["f1", "support"], ascending=[True, False], kind="stable").iloc[0]
    failures = section(card["md"], "### Known failure modes")
    first = failures.strip().splitlines()[0]
    assert first.startswith(f"- Weak code `{worst['code']}`")
    assert f"test F1 {worst['f1']:.4f}" in first
    metrics = run_metrics(registry)
    statuses = [s for s in ("negated", "family", "historical") if metrics.get(f"test/distractor_pairs_{s}", 0) > 0]
    # highest rate first, ties by status name (the card's order; the tiny run may score every status at 0)
    top = min(statuses, key=lambda s: (-metrics[f"test/distractor_false_positive_rate_{s}"], s))
    assert f"highest first: {top} {metrics[f'test/distractor_false_positive_rate_{top}']:.4f}" in failures


def test_external_validation_reads_the_codiesp_run(card, registry):
    internal, ext = run_metrics(registry), run_metrics(registry, "external_id")
    external = section(card["md"], "## External validation")
    assert registry["external_id"] in external
    assert "latest finished run tagged dataset=codiesp in experiment 'medcoder'" in external
    rows = metric_rows(external)
    for key in ("micro_f1", "micro_precision", "macro_f1", "map", "auc_macro", "ungrounded_code_rate",
                "invalid_code_rate", "expected_calibration_error"):  # fmt: skip
        assert_shows(rows[key][0], internal[f"test/{key}"])
        assert_shows(rows[key][1], ext.get(f"test/{key}"))
    assert any(math.isfinite(ext[f"test/{k}"]) for k in ("micro_precision", "ungrounded_code_rate"))  # numbers shown
    # the trained coder also reports its scores alone, before grounding and the guideline rules; the baseline,
    # which has no such layers, did not log them: Not available, not a number
    assert_same(rows["scores_only/micro_f1"][0], internal["test/scores_only/micro_f1"])
    assert "test/scores_only/micro_f1" not in ext and rows["scores_only/micro_f1"][1] == "Not available"
    validity = section(card["md"], f"#### (7)(iii) {hti1.SOURCE_ATTRIBUTES[22].name}")
    assert f"Run `{registry['external_id']}`: `micro_f1` " in validity
    assert_shows(validity.split("`micro_f1` ", 1)[1].split(";", 1)[0], ext["test/micro_f1"])


# ---------------------------------------------------------------- missing items
def test_the_grounding_bars_are_the_fitted_verifier_s(card, registry):
    metrics = run_metrics(registry)
    bars = section(card["md"], "### Grounding bars")
    for name, keys in (
        ("about the code (below: dropped)", ("threshold", "recall", "false_accept_rate")),
        ("grounded (billable without review)", ("grounded_support", "grounded_recall", "grounded_false_accept_rate")),
        ("stated (a low-scored code accepted without review)",
         ("stated_support", "stated_recall", "stated_false_accept_rate")),
    ):  # fmt: skip
        assert f"| {name} | " + " | ".join(f"{metrics[f'verifier/{k}']:.4f}" for k in keys) + " |" in bars


def test_a_bare_run_renders_every_section_with_not_available(bare_card):
    """v2's run is hand-made on purpose: one metric and no artifacts, a run that has nothing to show, so every
    section must say Not available rather than disappear."""
    md = bare_card
    for heading in (
        "## Intended use and decision role",
        "## Training data",
        "## Performance",
        "### Per-code F1",
        "### Calibration",
        "### Decision threshold",
        "### Grounding bars",
        "### F1 by training frequency",
        "### Evidence",
        "### Known failure modes",
        "## External validation",
        "## Monitoring and update process",
        "## Alias history",
        "## Model lineage",
        "## ONC HTI-1 source attributes",
    ):
        assert heading + "\n" in md, heading
    assert "Not available: the run did not log `plots/test_per_code_f1.png`." in md
    assert "Not available: the run did not log `tables/test_f1_by_frequency.csv`." in md
    assert "Not available: no finished run tagged dataset=codiesp in experiment 'card-test-bare': `make codiesp`" in md
    assert "Not available: no per-code table" in section(md, "### Known failure modes")
    assert "Not available: the run fitted no evidence verifier" in section(md, "### Grounding bars")
    assert "Not available: no promotion decision is recorded" in md
    rows = metric_rows(section(md, "### Headline metrics"))
    assert rows["micro_f1"] == ["Not available", "0.5000"]
    assert rows["macro_f1"] == ["Not available", "Not available"]
    hti = section(md, "## ONC HTI-1 source attributes")
    assert hti.count("#### ") == 31
    assert "Coding ML team" not in hti  # the bare card was written without the organisation's answers file
    assert "| Registry tags agree with the run | **NO**: `test/micro_f1`: tag 0.7, run 0.5000 |" in md
    assert (
        f"#### (7)(iii) {hti1.SOURCE_ATTRIBUTES[22].name}\n\nNot available (open: `validity_external` in "
        "configs/card/hti1.yaml)" in hti
    )


# ---------------------------------------------------------------- the HTML page
def test_html_is_self_contained_and_embeds_the_logged_plots(card, registry, tmp_path):
    html, md = card["html"], card["md"]
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script" not in html
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    client, run_id = registry["client"], registry["run_id"]
    logged = Path(client.download_artifacts(run_id, "plots/test_calibration.png", str(tmp_path))).read_bytes()
    assert logged in [base64.b64decode(e) for e in embedded]
    # every plot the card shows is one the run logged, and the job logs every plot the card reads
    linked = plot_links(md)
    assert set(linked) <= {a.path for a in client.list_artifacts(run_id, "plots")}
    assert "Not available: the run did not log" not in md
    assert len(embedded) == len(linked) == len(set(linked)) == 5
    assert html.count("<h2>") == md.count("\n## ")


def test_card_never_contains_note_text(card, registry):
    # the planted note text is on the run (tag and artifact): the card could have copied it
    client, run_id = registry["client"], registry["run_id"]
    assert client.get_run(run_id).data.tags["notes.sample"] == registry["planted"]
    assert "debug/notes_sample.txt" in {a.path for a in client.list_artifacts(run_id, "debug")}
    assert len(registry["needles"]) > 20
    for needle in registry["needles"]:
        assert needle not in card["md"] and needle not in card["html"], needle


# ---------------------------------------------------------------- publishing
def test_card_is_logged_to_the_run_and_set_as_the_version_description(card, registry, tmp_path):
    client, run_id = registry["client"], registry["run_id"]
    logged = {f.path for f in client.list_artifacts(run_id, "card")}
    assert {"card/model_card.md", "card/model_card.html", "card/plots"} <= logged
    published_plots = {f.path for f in client.list_artifacts(run_id, "card/plots")}
    assert published_plots == {f"card/{p}" for p in plot_links(card["md"])}
    assert Path(client.download_artifacts(run_id, "card/model_card.md", str(tmp_path))).read_text() == card["md"]
    version = client.get_model_version("medcoder", registry["v1"])
    assert version.description == card["md"]
    assert version.tags["model_card.artifact"] == f"runs:/{run_id}/card/model_card.md"
    assert (card["out"] / "plots" / "test_calibration.png").is_file()  # the Markdown's relative links resolve


# ---------------------------------------------------------------- promotion and alias history
def test_alias_history_and_promotion_are_recorded_and_rendered(card, registry):
    client, v1 = registry["client"], registry["v1"]
    history = read_alias_history(client)
    # `medcoder register` moved @challenger, then `medcoder promote` moved @champion, both as MEDCODER_USER
    assert [(e["alias"], e["version"], e["by"]) for e in history] == [
        ("challenger", v1, RELEASE_USER),
        ("champion", v1, RELEASE_USER),
    ]
    assert history[1]["reason"].startswith("promoted over no champion on eval set ")
    rendered = section(card["md"], "## Alias history")
    for entry in history:
        assert f"| {entry['at']} | `{entry['alias']}` | `{v1}` | {RELEASE_USER} | {entry['reason']} |" in rendered
    assert f"| `champion` | `{v1}` |" in section(card["md"], "### Current aliases")
    # the decision `promote` recorded on the version, as it recorded it
    tags = client.get_model_version("medcoder", v1).tags
    assert tags["promotion.decision"] == "promoted"
    decision = section(card["md"], "### Promotion decision for this version")
    for field in ("decision", "reason", "at"):
        assert f"| {field} | {tags[f'promotion.{field}']} |" in decision


def test_alias_history_pages_keep_every_entry_in_order(store, registry):
    client = registry["client"]
    client.create_registered_model("history-pages")
    for i in range(12):
        record_alias_change(client, "challenger", str(i + 1), f"candidate {i}", name="history-pages", max_tag_chars=400)
    record_alias_change(client, "challenger", None, "retired", name="history-pages", max_tag_chars=400)
    tags = client.get_registered_model("history-pages").tags
    assert "alias_history.1" in tags and all(len(v) <= 400 for k, v in tags.items() if k.startswith("alias_history"))
    history = read_alias_history(client, "history-pages")
    assert [e["reason"] for e in history] == [f"candidate {i}" for i in range(12)] + ["retired"]
    assert history[-1]["version"] is None


def test_alias_history_refuses_a_change_without_reason(registry):
    with pytest.raises(ValueError, match="a reason is required for moving alias 'champion'"):
        record_alias_change(registry["client"], "champion", "1", "  ")


def test_a_corrupted_alias_history_is_a_clear_error(store, registry):
    client = registry["client"]
    client.create_registered_model("broken-history")
    client.set_registered_model_tag("broken-history", "alias_history", '[{"alias": "champion"}]')
    with pytest.raises(ValueError, match=r"tag 'alias_history', entry 0: missing field\(s\) version, at, by, reason"):
        read_alias_history(client, "broken-history")


# ---------------------------------------------------------------- model URIs and the command line
@pytest.mark.parametrize(
    ("uri", "message"),
    [("runs:/abc/model", "is not models:/<name>@<alias>"), ("models:/medcoder/Production", "uses aliases, not stages")],
)
def test_bad_model_uris_say_what_is_expected(uri, message):
    with pytest.raises(ValueError, match=message):
        parse_model_uri(uri)


def test_a_malformed_table_is_an_error_naming_the_artifact(registry, store, tmp_path):
    tracking.configure_mlflow("card-test-bare", store)
    with mlflow.start_run(run_name="malformed") as run:
        mlflow.log_text("code,f1\nI10,0.5\n", "tables/test_per_code.csv")
    client = registry["client"]
    version = client.create_model_version("medcoder", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    with pytest.raises(
        ValueError,
        match=rf"run {run.info.run_id}: artifact tables/test_per_code.csv lacks column\(s\) system, train_count",
    ):
        write_model_card(f"models:/medcoder/{version.version}", tmp_path, tracking_uri=store, publish=False)


def test_unknown_alias_is_a_one_line_error(registry, store, tmp_path):
    with pytest.raises(ValueError, match="registered model 'medcoder' has no alias 'staging'"):
        write_model_card("models:/medcoder@staging", tmp_path, tracking_uri=store)


def test_cli_writes_the_card_without_publishing(registry, store, tmp_path, capsys):
    argv = [
        "card",
        "--model",
        f"models:/medcoder/{registry['v1']}",
        "--out",
        str(tmp_path / "c"),
        "--tracking-uri",
        store,
        "--no-publish",
    ]
    before = registry["client"].get_model_version("medcoder", registry["v1"]).tags.get("model_card.sha256")
    assert medcoder_main(argv) == 0
    assert (tmp_path / "c" / "model_card.html").is_file()
    assert "model card:" in capsys.readouterr().out
    assert registry["client"].get_model_version("medcoder", registry["v1"]).tags.get("model_card.sha256") == before


# ---------------------------------------------------------------- with the real baseline run
def test_card_of_a_registered_baseline_run(tmp_path, monkeypatch):
    """The layout `medcoder baseline` logs is the layout the card reads (every plot and table present)."""
    from medcoder.data.synth import generate_corpus
    from medcoder.evaluation.baseline import run_baseline

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    splits = generate_corpus(160, seed=2)
    result = run_baseline(splits, top_k=None, C=(10.0,), tracking_uri=store, experiment="baseline")
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.create_registered_model("medcoder")
    version = client.create_model_version("medcoder", source=f"runs:/{result['run_id']}/model", run_id=result["run_id"])
    client.set_registered_model_alias("medcoder", "champion", version.version)

    card = write_model_card("models:/medcoder@champion", tmp_path / "card", tracking_uri=store)
    md, html = card.markdown_path.read_text(), card.html_path.read_text()
    rows = metric_rows(section(md, "### Headline metrics"))
    for key in ("micro_f1", "macro_f1", "map"):
        assert_same(rows[key][0], result["val"].metrics[key])
        assert_same(rows[key][1], result["test"].metrics[key])
    assert len(card.plot_paths) == 5 and "Not available: the run did not log" not in md
    assert f"Threshold used: {result['threshold']}" in md
    needles = set().union(*(note_excerpts(notes) for notes in splits.values()))
    assert needles and not any(n in md or n in html for n in needles)


def test_the_organisations_answers_file_is_checked_key_by_key(tmp_path):
    from medcoder.cards.hti1_answers import deployer_answers

    bad = tmp_path / "hti1.yaml"
    bad.write_text("developer: Team\nfavourite_colour: blue\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'favourite_colour' is not an HTI-1 source attribute"):
        deployer_answers(bad)
    bad.write_text("developer: [a, b]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="'developer': the answer must be text"):
        deployer_answers(bad)
    with pytest.raises(FileNotFoundError, match="no such HTI-1 answers file"):
        deployer_answers(tmp_path / "missing.yaml")
    assert deployer_answers() == {}  # the shipped file: every answer still the organisation's to give


def test_the_subgroup_section_names_the_largest_gap_per_field():
    from medcoder.cards.sections import largest_gaps

    table = pd.DataFrame(
        {"field": ["sex", "sex", "age_band", "age_band", "age_band"], "group": ["F", "M", "0-17", "65+", "18-39"],
         "n_notes": [180, 120, 48, 97, 5], "micro_f1": [0.95, 0.97, 0.90, 0.975, 0.2]}
    )  # fmt: skip
    text = largest_gaps({"subgroup": table})
    first, second = text.split("\n")[2:4]
    # 18-39 has 5 notes: too few to name a gap (the card escapes Markdown's underscore)
    assert first == r"- age\_band: 0-17 0.9000 (48 notes) vs 65+ 0.9750 (97 notes), gap 0.0750"
    assert second.startswith("- sex: F 0.9500 (180 notes) vs M 0.9700")
    assert "No field has two groups" in largest_gaps({"subgroup": table[table["n_notes"] < 20]})
