"""The sections of the model card, each a Markdown string built only from `ModelFacts`.

One function per section, in card order. Numbers are formatted from MLflow values; the prose is
fixed text about what the platform is and how it is meant to be used. A section whose data is
missing still appears, with "Not available" and what would supply it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime

import pandas as pd

from medcoder.cards.facts import ModelFacts, RunFacts
from medcoder.cards.markdown import NOT_AVAILABLE, code, esc, fmt, fmt_count, frame_table, md_table, not_available
from medcoder.metrics.evidence import VARIANTS as EVIDENCE_VARIANTS
from medcoder.metrics.hallucination import DISTRACTOR_STATUSES
from medcoder.paths import project_root

ImageLink = Callable[[str], str]  # artifact path of a plot -> link target written into the document

TOP_FAILURES = 5  # worst codes listed under known failure modes
EVALUATED_SPLITS: tuple[str, ...] = ("val", "test")  # the splits a run is scored on (train is fitted)
SPLIT_TITLES = {"val": "Validation", "test": "Test"}

# metric key -> what it means, in the order the headline table shows them
HEADLINE_METRICS: dict[str, str] = {
    "micro_f1": "F1 over every (note, code) decision",
    "micro_precision": "share of proposed codes that are gold codes",
    "micro_recall": "share of gold codes that are proposed",
    "macro_f1": "mean per-code F1 over codes present in the split",
    "map": "mean average precision of each note's ranking of codes",
    "precision_at_5": "share of gold codes among each note's 5 highest-scored codes",
    "precision_at_8": "same, top 8",
    "precision_at_15": "same, top 15",
    "recall_at_10": "share of a note's gold codes among its 10 highest-scored codes",
    "recall_at_15": "same, top 15",
    "r_precision": "precision at k = the note's number of gold codes",
    "auc_micro": "ROC AUC over all (note, code) pairs",
    "auc_macro": "ROC AUC averaged over codes",
    "exact_match": "share of notes whose proposed code set equals the gold set",
    "em_accuracy": "E/M level accuracy",
    "em_macro_f1": "E/M level macro F1",
}
HALLUCINATION_METRICS: dict[str, str] = {
    "invalid_code_rate": "share of proposed codes that are not valid billable codes of the code set",
    "ungrounded_code_rate": "share of proposed codes without supporting evidence in the note",
    "distractor_false_positive_rate": "share of negated, family, historical, hypothetical (and outpatient "
    "uncertain) mentions that were coded anyway",
    "over_generation_ratio": "proposed codes / gold codes (1 = as many codes as the coders)",
    "expected_calibration_error": "mean gap between score and observed frequency (10 bins)",
}
LAYER_METRICS: dict[str, str] = {
    "model_only/micro_f1": "micro F1 of the grounded codes before the ICD-10-CM guideline rules",
    "scores_only/micro_f1": "micro F1 of the scores at the threshold, before grounding and the guideline rules "
    "(how the TF-IDF baseline is scored; an external dataset annotated by other rules is compared on this)",
    "scores_only/macro_f1": "macro F1 of the same",
}
EVIDENCE_METRICS: dict[str, str] = {
    f"evidence_{variant}_{measure}": f"{variant.replace('_', ' ')} evidence {measure} (MDACE)"
    for variant in EVIDENCE_VARIANTS
    for measure in ("precision", "recall", "f1")
}
PLOT_TITLES: dict[str, str] = {
    "plots/test_per_code_f1.png": "Per-code F1 (test)",
    "plots/test_precision_recall.png": "Precision-recall curve (test)",
    "plots/test_calibration.png": "Calibration curve (test)",
    "plots/val_f1_vs_threshold.png": "Micro-F1 against the decision threshold (validation)",
    "plots/test_f1_by_frequency.png": "F1 by training frequency of the code (test)",
}
DATA_CARDS: dict[str, str] = {
    "embedded": "data_cards/embedded-corpus.md",
    "codiesp": "data_cards/codiesp.md",
    "mimic-iv": "data_cards/mimic.md",
    "mimic-iii": "data_cards/mimic.md",
    "mdace": "data_cards/mdace.md",
}
# What a dataset's notes are, and so how far results on it carry to a deployed setting (HTI-1 (4)(iv), (6)(i)).
DATASET_DESCRIPTIONS: dict[str, str] = {
    "embedded": "Synthetic notes written by `medcoder synth` from templates, not real documentation: they exercise "
    "the whole coding pipeline but do not show how real notes are written, so quality on real notes is "
    "shown only by external and local validation.",
    "codiesp": "Published clinical case reports, machine-translated from Spanish to English (CodiEsp): narrative, "
    "diagnosis-dense and unlike US encounter notes in structure and vocabulary.",
    "mimic-iv": "Discharge summaries of one US academic hospital (Beth Israel Deaconess, Boston): inpatient "
    "documentation; other settings and institutions are not represented.",
    "mimic-iii": "Discharge summaries of ICU stays at one US academic hospital (Beth Israel Deaconess, Boston): "
    "inpatient documentation; other settings are not represented.",
    "mdace": "MIMIC-III inpatient notes with code-evidence annotations (MDACE): inpatient documentation of one US "
    "academic hospital.",
}


# ---------------------------------------------------------------- shared pieces
def metrics_table(runs: Sequence[tuple[str, RunFacts, str]], meanings: dict[str, str]) -> str:
    """Rows = metric keys, columns = (title, run, split) triples: the card's one metric-table layout."""
    columns = ["Metric", *(title for title, _, _ in runs), "Meaning"]
    rows = [
        [code(key), *(fmt(run.metric(split, key)) for _, run, split in runs), meaning]
        for key, meaning in meanings.items()
    ]
    return md_table(columns, rows, right=range(1, len(runs) + 1))


def plot(facts_run: RunFacts, path: str, image: ImageLink) -> str:
    if path not in facts_run.plots:
        return not_available(f"the run did not log `{path}`.")
    return f"![{PLOT_TITLES[path]}]({image(path)})"


def fact_tag(f: ModelFacts, version_key: str, run_key: str | None = None) -> str | None:
    """A registry version tag, else the run's tag (the training job and `register` name some differently)."""
    return f.version_tags.get(version_key) or f.run.tags.get(run_key or version_key)


def dataset_name(run: RunFacts) -> str | None:
    return run.params.get("dataset.name") or run.tags.get("dataset")


def code_systems(run: RunFacts) -> str:
    raw = run.params.get("labels.systems")
    if raw is None:
        return NOT_AVAILABLE
    try:
        systems = json.loads(raw)
    except json.JSONDecodeError:
        return esc(raw)
    return ", ".join(esc(s) for s in systems) if isinstance(systems, list) else esc(systems)


def code_set_versions(f: ModelFacts) -> str:
    raw = f.version_tags.get("code_sets")
    if not raw:
        return NOT_AVAILABLE
    try:
        sets = json.loads(raw)
    except json.JSONDecodeError:
        return f"{esc(raw)} (tag `code_sets` is not valid JSON)"
    if isinstance(sets, dict):
        return ", ".join(f"{esc(system)} {code(version)}" for system, version in sets.items())
    return esc(raw)


def inline_metrics(run: RunFacts, split: str, keys: Sequence[str]) -> str:
    return "; ".join(f"{code(key)} {fmt(run.metric(split, key))}" for key in keys)


def per_code_table(run: RunFacts) -> pd.DataFrame | None:
    return run.tables.get("tables/test_per_code.csv")


# ---------------------------------------------------------------- failure modes (derived from data)
def known_failure_modes(run: RunFacts) -> list[str]:
    """Sentences about where this model fails, each computed from its logged metrics and tables."""
    out: list[str] = []
    per_code = per_code_table(run)
    if per_code is None:
        out.append(not_available("no per-code table (`tables/test_per_code.csv`), so the weakest codes are unknown."))
    else:
        present = per_code[per_code["support"] > 0].sort_values(
            ["f1", "support"], ascending=[True, False], kind="stable"
        )
        for row in present.head(TOP_FAILURES).itertuples(index=False):
            out.append(
                f"Weak code {code(row.code)} ({esc(row.system)}): test F1 {fmt(row.f1)}, "
                f"precision {fmt(row.precision)}, recall {fmt(row.recall)}; test support {fmt_count(row.support)}, "
                f"training count {fmt_count(row.train_count)}."
            )
        never = present[(present["tp"] + present["fp"]) == 0]
        if len(never):
            listed = ", ".join(code(c) for c in never["code"].head(10))
            out.append(
                f"{len(never)} code(s) with test notes were never proposed on test: "
                f"{listed}{' ...' if len(never) > 10 else ''}."
            )
    statuses = []
    for status in DISTRACTOR_STATUSES:
        pairs = run.metric("test", f"distractor_pairs_{status}")
        rate = run.metric("test", f"distractor_false_positive_rate_{status}")
        if pairs and rate is not None and not math.isnan(rate):
            statuses.append((rate, status, pairs))
    if statuses:
        ranked = sorted(statuses, key=lambda s: (-s[0], s[1]))
        out.append(
            "Distractor false-positive rate by mention status, highest first: "
            + "; ".join(f"{status} {fmt(rate)} ({fmt_count(pairs)} mentions)" for rate, status, pairs in ranked)
            + "."
        )
    else:
        out.append(not_available("no distractor mentions were scored on test (`test/distractor_pairs_<status>`)."))
    by_frequency = run.tables.get("tables/test_f1_by_frequency.csv")
    if by_frequency is not None and (by_frequency["support"] > 0).sum() > 1:
        worst = by_frequency[by_frequency["support"] > 0].sort_values("micro_f1", kind="stable").iloc[0]
        out.append(
            f"Weakest training-frequency bucket: codes seen {esc(worst['bucket'])} times in training, "
            f"test micro-F1 {fmt(worst['micro_f1'])} over {fmt_count(worst['n_codes'])} codes."
        )
    by_length = run.tables.get("tables/test_f1_by_note_length.csv")
    if by_length is not None and (by_length["n_notes"] > 0).sum() > 1:
        worst = by_length[by_length["n_notes"] > 0].sort_values("micro_f1", kind="stable").iloc[0]
        out.append(
            f"Weakest note-length bucket: notes of {esc(worst['bucket'])} words, test micro-F1 "
            f"{fmt(worst['micro_f1'])} over {fmt_count(worst['n_notes'])} notes."
        )
    invalid = run.metric("test", "invalid_code_rate")
    if invalid is not None and invalid > 0:
        out.append(f"Invalid codes were emitted (test invalid_code_rate {fmt(invalid)}): the output filter is broken.")
    return out


# ---------------------------------------------------------------- sections
def header(f: ModelFacts, generated_at: datetime) -> str:
    aliases = ", ".join(code(a) for a in f.aliases) or "none"
    rows = [
        ["Registered model", code(f.name)],
        ["Version", code(f.version)],
        ["Aliases of this version", aliases],
        ["Card requested for", code(f.model_uri)],
        ["Model family", code(f.run.tags.get("model_family", NOT_AVAILABLE))],
        ["MLflow run", f"{code(f.run.run_id)} (experiment {esc(f.run.experiment_name)})"],
        ["Registered at", f.created_at.isoformat(timespec="seconds") if f.created_at else NOT_AVAILABLE],
        ["Card generated at", generated_at.isoformat(timespec="seconds")],
    ]
    return "\n\n".join(
        [
            f"# Model card: {esc(f.name)} version {esc(f.version)}",
            md_table(["Item", "Value"], rows),
            "> Every number in this card is read from the MLflow tracking store (run metrics, params, tags and "
            "logged tables; registry tags); none is typed by hand. The card contains no note text.",
        ]
    )


def intended_use(f: ModelFacts) -> str:
    n_labels = f.run.params.get("labels.n_labels", NOT_AVAILABLE)
    dataset = dataset_name(f.run) or NOT_AVAILABLE
    return "\n\n".join(
        [
            "## Intended use and decision role",
            "**Use.** Computer-assisted coding. For one clinical note the model proposes billing codes of the "
            f"systems it was trained on ({code_systems(f.run)}), each with a score, the text spans that support it "
            "and a flag saying whether it is grounded in evidence. It is an assistive tool: **a certified coder "
            "validates every proposed code before a claim is submitted**, and codes the platform routes to review (low "
            "confidence, no supporting evidence) must not be accepted without reading the note.",
            "**Decision role.** Informs and augments the coder's decision; it never replaces it, and it has no role "
            "in clinical management.",
            "**Intended users.** Certified medical coders, coding auditors and clinical documentation integrity "
            "specialists, working in a coding workflow that shows them the note and the evidence.",
            "### Cautioned out-of-scope uses",
            "\n".join(f"- {item}" for item in out_of_scope_uses(f, n_labels, dataset)),
        ]
    )


def out_of_scope_uses(f: ModelFacts, n_labels: str, dataset: str) -> list[str]:
    return [
        "Autonomous coding or billing: submitting claims, or adding or dropping codes, without a certified "
        "coder's review.",
        "Clinical decision making of any kind: diagnosis, treatment, triage, risk scores or quality measures "
        "about a patient.",
        f"Code systems, codes and code-set versions it was not trained on: it can only propose the {esc(n_labels)} "
        f"codes of its label space ({code_systems(f.run)}; code sets {code_set_versions(f)}); every other code is the "
        "coder's to assign.",
        f"Settings and note types unlike its training data ({esc(dataset)}; see Training data): quality there is "
        "unknown until it is measured on local data.",
        "Notes not written in English.",
        "Payer-side decisions about individual patients or providers: audit selection, coverage or payment.",
        "Reading scores as calibrated probabilities without checking the calibration curve below.",
    ]


def training_data(f: ModelFacts) -> str:
    run = f.run
    dataset = dataset_name(run)
    parts = ["## Training data"]
    if dataset is None:
        parts.append(not_available("the run records no dataset (param `dataset.name`, tag `dataset`)."))
    else:
        card = DATA_CARDS.get(dataset)
        if card is None:
            where = "no data card is known for this dataset"
        elif (project_root() / card).is_file():
            where = f"data card: {code(card)} in the medcoder repository"
        else:
            where = f"data card: {code(card)} (not present in this checkout)"
        parts.append(f"Dataset {code(dataset)} ({where}). {DATASET_DESCRIPTIONS.get(dataset, '')}".strip())
    rows = []
    for split in ("train", "val", "test"):
        digest = fact_tag(f, f"dataset.{split}.sha256")
        rows.append(
            [split, fmt_count(run.params.get(f"dataset.{split}.notes")), code(digest) if digest else NOT_AVAILABLE]
        )
    parts.append(
        "Notes per split and the sha256 digest of each split (ids, codes and text): two runs saw the same "
        "data exactly when the digests match. The card itself never reads the notes."
    )
    parts.append(md_table(["Split", "Notes", "sha256"], rows, right=[1]))
    parts.append(
        md_table(
            ["Label space", "Value"],
            [
                ["Code systems", code_systems(run)],
                ["Most frequent training codes kept (top k)", esc(run.params.get("labels.top_k", NOT_AVAILABLE))],
                ["Codes in the label space", esc(run.params.get("labels.n_labels", NOT_AVAILABLE))],
                ["Decision threshold (tuned on validation)", esc(run.params.get("threshold", NOT_AVAILABLE))],
                [
                    "Weight of the TF-IDF model in the scores (chosen on validation)",
                    esc(run.params.get("blend.weight", "none: the neural coder's scores alone")),
                ],
            ],
        )
    )
    return "\n\n".join(parts)


def performance(f: ModelFacts, image: ImageLink) -> str:
    run = f.run
    splits = [(SPLIT_TITLES[s], run, s) for s in EVALUATED_SPLITS]
    by_frequency = run.tables.get("tables/test_f1_by_frequency.csv")
    by_length = run.tables.get("tables/test_f1_by_note_length.csv")
    subgroups = run.subgroup_tables()
    parts = [
        "## Performance",
        "Validation scores chose the decision threshold; test scores were computed once, on notes the model "
        "and the threshold never saw.",
        "### Headline metrics",
        metrics_table(splits, HEADLINE_METRICS),
        "### Per-code F1",
        plot(run, "plots/test_per_code_f1.png", image),
        "### Precision and recall",
        plot(run, "plots/test_precision_recall.png", image),
        "### Calibration",
        f"Expected calibration error: validation {fmt(run.metric('val', 'expected_calibration_error'))}, "
        f"test {fmt(run.metric('test', 'expected_calibration_error'))}.",
        plot(run, "plots/test_calibration.png", image),
        "### Decision threshold",
        f"Threshold used: {esc(run.params.get('threshold', NOT_AVAILABLE))} (a code is proposed when its score is "
        "above it).",
        plot(run, "plots/val_f1_vs_threshold.png", image),
        "### Grounding bars",
        _grounding_bars(run),
        "### F1 by training frequency",
        plot(run, "plots/test_f1_by_frequency.png", image),
        frame_table(by_frequency)
        if by_frequency is not None
        else not_available("the run did not log `tables/test_f1_by_frequency.csv`."),
        "### F1 by note length",
        frame_table(by_length)
        if by_length is not None
        else not_available("the run did not log `tables/test_f1_by_note_length.csv`."),
        "### Evidence",
        "Do the proposed evidence spans match the coders' spans? MDACE's four matching variants.",
        metrics_table(splits, EVIDENCE_METRICS),
        "### Hallucination and over-generation",
        metrics_table(splits, HALLUCINATION_METRICS),
        "### Distractor false positives by mention status",
        _distractor_table(run),
        "### Subgroups",
        "\n\n".join(f"By {esc(group)}:\n\n{frame_table(table)}" for group, table in subgroups.items())
        + "\n\n"
        + largest_gaps(subgroups)
        if subgroups
        else not_available(
            "the run logged no subgroup table (`tables/test_f1_by_<group>.csv`, e.g. by sex, age "
            "band, payer or setting)."
        ),
        "### Known failure modes",
        "\n".join(f"- {line}" for line in known_failure_modes(run)),
    ]
    return "\n\n".join(parts)


MIN_GROUP_NOTES = 20  # a group smaller than this has too few notes for its F1 to name a gap


def largest_gaps(subgroups: dict[str, pd.DataFrame]) -> str:
    """The largest micro-F1 gap between two groups of one field (groups of at least MIN_GROUP_NOTES notes), field
    by field, largest first: what a fairness review looks at first."""
    gaps = []
    for table in subgroups.values():
        for field, rows in table.groupby("field") if "field" in table else ():
            rows = rows[rows["n_notes"] >= MIN_GROUP_NOTES]
            if len(rows) < 2:
                continue
            low, high = rows.loc[rows["micro_f1"].idxmin()], rows.loc[rows["micro_f1"].idxmax()]
            gaps.append((float(high["micro_f1"] - low["micro_f1"]), field, low, high))
    if not gaps:
        return f"No field has two groups of at least {MIN_GROUP_NOTES} notes to compare."
    lines = [f"- {esc(field)}: {esc(low['group'])} {low['micro_f1']:.4f} ({int(low['n_notes'])} notes) vs "
             f"{esc(high['group'])} {high['micro_f1']:.4f} ({int(high['n_notes'])} notes), gap {gap:.4f}"
             for gap, field, low, high in sorted(gaps, key=lambda g: -g[0])]  # fmt: skip
    return f"Largest micro-F1 gap per field (groups of at least {MIN_GROUP_NOTES} notes), largest first:\n\n" + (
        "\n".join(lines)
    )


_GROUNDING_BARS = (
    ("about the code (below: dropped)", "threshold", "recall", "false_accept_rate"),
    ("grounded (billable without review)", "grounded_support", "grounded_recall", "grounded_false_accept_rate"),
    ("stated (a low-scored code accepted without review)", "stated_support", "stated_recall",
     "stated_false_accept_rate"),
)  # fmt: skip


def _grounding_bars(run: RunFacts) -> str:
    """The evidence verifier's bars on support, with their recall of validation's gold evidence and the
    share of its hard negatives they let through (docs/GROUNDING.md)."""
    rows = [[esc(name), fmt(run.metric("verifier", bar)), fmt(run.metric("verifier", recall)),
             fmt(run.metric("verifier", false_accept))]
            for name, bar, recall, false_accept in _GROUNDING_BARS
            if run.metric("verifier", bar) is not None]  # fmt: skip
    if not rows:
        return not_available("the run fitted no evidence verifier (no gold evidence in validation).")
    return (
        "Support bars of the evidence verifier, fitted on validation's gold evidence against hard negatives "
        "(the same spans paired with the most similar wrong labels):\n\n"
        + md_table(["Bar", "Support", "Gold recall", "Hard-negative pass rate"], rows, right=(1, 2, 3))
    )


def _distractor_table(run: RunFacts) -> str:
    """Per status: mentions scored, how many were coded anyway, and the rate ("no mentions" when none)."""

    def rate(split: str, status: str) -> str:
        if not run.metric(split, f"distractor_pairs_{status}"):
            return "no mentions" if run.metric(split, f"distractor_pairs_{status}") == 0 else NOT_AVAILABLE
        return fmt(run.metric(split, f"distractor_false_positive_rate_{status}"))

    rows = [
        [
            esc(status),
            fmt_count(run.metric("test", f"distractor_pairs_{status}")),
            fmt_count(run.metric("test", f"distractor_false_positives_{status}")),
            rate("test", status),
            rate("val", status),
        ]
        for status in DISTRACTOR_STATUSES
    ]
    return md_table(
        ["Status", "Test mentions", "Test coded anyway", "Test rate", "Validation rate"], rows, right=[1, 2, 3, 4]
    )


def external_validation(f: ModelFacts) -> str:
    parts = ["## External validation"]
    ext = f.external
    if ext is None:
        parts.append(not_available(f"{f.external_selection}."))
        return "\n\n".join(parts)
    parts.append(
        md_table(
            ["Item", "Value"],
            [
                ["Run", f"{code(ext.run_id)} ({esc(ext.run_name)})"],
                ["Chosen as", esc(f.external_selection)],
                ["Dataset", esc(ext.tags.get("dataset", NOT_AVAILABLE))],
                ["Model family", code(ext.tags.get("model_family", NOT_AVAILABLE))],
                ["Git commit", code(ext.tags["git.commit"]) if "git.commit" in ext.tags else NOT_AVAILABLE],
                ["Test notes", fmt_count(ext.params.get("dataset.test.notes"))],
                ["Threshold", esc(ext.params.get("threshold", NOT_AVAILABLE))],
            ],
        )
    )
    keys = {**HEADLINE_METRICS, **LAYER_METRICS, **HALLUCINATION_METRICS}
    parts.append(metrics_table([("Internal test", f.run, "test"), ("External test", ext, "test")], keys))
    return "\n\n".join(parts)


def monitoring(f: ModelFacts) -> str:
    tags = f.version_tags
    decision = [
        [esc(k.split(".", 1)[1]), esc(tags[k])]
        for k in ("promotion.decision", "promotion.reason", "promotion.at")
        if k in tags
    ]
    aliases = [[code(alias), code(version)] for alias, version in f.model_aliases.items()]
    return "\n\n".join(
        [
            "## Monitoring and update process",
            "\n".join(
                [
                    "- New versions are registered as `challenger`, scored with the same metrics code on the same "
                    "held-out splits and on the external benchmark, and compared with the `champion` before promotion.",
                    "- A promotion decision is recorded on the version (tags `promotion.decision`, `promotion.reason`, "
                    "`promotion.at`); every alias move is appended to the registry's alias history (below).",
                    "- Serving resolves `models:/medcoder@champion`, so a rollback is one alias move, recorded like "
                    "any other.",
                    "- In production, codes with a low score or without grounded evidence are routed to coder review.",
                    "- `medcoder card` is rerun for every registered version and after every re-evaluation; it rereads "
                    "every number.",
                    "- Monitoring and update schedules: see the HTI-1 attributes (8) and (9) below.",
                ]
            ),
            "### Promotion decision for this version",
            md_table(["Field", "Value"], decision)
            if decision
            else not_available("no promotion decision is recorded on this version (tags `promotion.*`)."),
            "### Current aliases",
            md_table(["Alias", "Version"], aliases)
            if aliases
            else not_available("the registered model has no aliases."),
        ]
    )


def alias_history_section(f: ModelFacts) -> str:
    if not f.alias_history:
        return "## Alias history\n\n" + not_available(
            "no alias change is recorded (registered-model tag `alias_history`)."
        )
    rows = [
        [
            esc(e["at"]),
            code(e["alias"]),
            code(e["version"]) if e["version"] is not None else "(removed)",
            esc(e["by"]),
            esc(e["reason"]),
        ]
        for e in f.alias_history
    ]
    return "## Alias history\n\n" + md_table(["When (UTC)", "Alias", "Version", "By", "Reason"], rows)


def lineage(f: ModelFacts) -> str:
    run = f.run
    libraries = ", ".join(
        f"{esc(k[len('version.') :])} {esc(v)}" for k, v in sorted(run.tags.items()) if k.startswith("version.")
    )
    commit = fact_tag(f, "git_commit", "git.commit")
    manifest = f.version_tags.get("manifest_sha256")
    seal = f.version_tags.get("model_seal.sha256")  # the whole model folder, see medcoder.registry.seal
    rows = [
        ["Registered model version", f"{code(f.name)} {code(f.version)}"],
        ["Version source", code(f.source) if f.source else NOT_AVAILABLE],
        ["MLflow run", code(run.run_id)],
        ["Experiment", f"{esc(run.experiment_name)} ({code(run.experiment_id)})"],
        ["Run name", esc(run.run_name) or NOT_AVAILABLE],
        ["Run started", run.start_time.isoformat(timespec="seconds") if run.start_time else NOT_AVAILABLE],
        ["Git commit", code(commit) if commit else NOT_AVAILABLE],
        ["Uncommitted changes at training time", esc(run.tags.get("git.dirty", NOT_AVAILABLE))],
        ["Manifest sha256", code(manifest) if manifest else NOT_AVAILABLE],
        ["Model seal sha256 (whole model folder)", code(seal) if seal else NOT_AVAILABLE],
        ["Code-set versions", code_set_versions(f)],
        *[
            [f"Dataset digest ({split})", code(d) if (d := fact_tag(f, f"dataset.{split}.sha256")) else NOT_AVAILABLE]
            for split in ("train", "val", "test")
        ],
        ["Python", esc(run.tags.get("python.version", NOT_AVAILABLE))],
        ["Libraries", libraries or NOT_AVAILABLE],
        ["Registry tags agree with the run", registry_consistency(f)],
    ]
    return "## Model lineage\n\n" + md_table(["Item", "Value"], rows)


def registry_consistency(f: ModelFacts) -> str:
    """Do the version tags that repeat run facts (metrics, digests, commit) say what the run says?"""
    checked, mismatches = [], []
    for key, value in sorted(f.version_tags.items()):
        if "/" in key and key in f.run.metrics:
            checked.append(key)
            try:
                same = math.isclose(float(value), f.run.metrics[key], rel_tol=1e-9, abs_tol=1e-12)
            except ValueError:
                same = False
            if not same:
                mismatches.append(f"{code(key)}: tag {esc(value)}, run {fmt(f.run.metrics[key])}")
        elif key.startswith("dataset.") and key in f.run.tags:
            checked.append(key)
            if value != f.run.tags[key]:
                mismatches.append(f"{code(key)} differs")
    if "git_commit" in f.version_tags and "git.commit" in f.run.tags:
        checked.append("git_commit")
        if f.version_tags["git_commit"] != f.run.tags["git.commit"]:
            mismatches.append("`git_commit` differs from the run's `git.commit`")
    if not checked:
        return NOT_AVAILABLE + " (no version tag repeats a run metric, digest or commit)"
    if mismatches:
        return "**NO**: " + "; ".join(mismatches)
    return f"yes ({len(checked)} tags checked)"
