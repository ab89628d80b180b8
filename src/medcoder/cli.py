"""The `medcoder` command: corpus generation, baseline, comparison records, prediction, registry and card operations.

Each subcommand is a thin argparse wrapper over a library function, so everything a user can do here
is also callable (and tested) from Python. Arguments are declared here and implementations are
imported only when their subcommand runs, so `medcoder synth` does not pay for importing MLflow or
torch. Errors a user can fix (bad paths, invalid records, unknown models) print one line and exit 2,
never a stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from medcoder.data.schema import RecordError
from medcoder.defaults import CHAMPION_URI, EMBEDDED_NOTES, EMBEDDED_SEED


def _cmd_synth(args: argparse.Namespace) -> int:
    from medcoder.data.synth import corpus_is_current, write_corpus

    if args.notes < 1:
        raise ValueError(f"--notes must be at least 1, got {args.notes}")
    if args.if_stale and corpus_is_current(Path(args.out), args.notes, args.seed):
        print(f"{args.out}: already this generator's corpus ({args.notes} notes, seed {args.seed})")
        return 0
    counts = write_corpus(Path(args.out), n_notes=args.notes, seed=args.seed)
    for split, n in counts.items():
        print(f"{split}: {n} notes -> {Path(args.out) / (split + '.jsonl')}")
    return 0


def _lazy(target: str):
    """A subcommand handler that imports `module:function` only when the subcommand runs."""

    def run(args: argparse.Namespace) -> int:
        module, function = target.split(":")
        return getattr(importlib.import_module(module), function)(args)

    return run


def _tracking_uri_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking and registry URI (default MLFLOW_TRACKING_URI or <project>/mlflow.db)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medcoder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write the embedded synthetic corpus (train/val/test.jsonl)")
    synth.add_argument("--out", required=True, help="output directory")
    synth.add_argument(
        "--notes",
        type=int,
        default=EMBEDDED_NOTES,
        help=f"number of notes in all splits (default {EMBEDDED_NOTES}, as make train)",
    )
    synth.add_argument(
        "--seed", type=int, default=EMBEDDED_SEED, help="random seed; the same seed gives identical files"
    )
    synth.add_argument(
        "--if-stale",
        action="store_true",
        help="write only when OUT does not already hold this generator's corpus for --notes and --seed",
    )
    synth.set_defaults(func=_cmd_synth)

    from medcoder.data.sources import DATASETS

    baseline = sub.add_parser(
        "baseline", help="TF-IDF + logistic regression baseline, scored and logged like a model run"
    )
    baseline.add_argument(
        "--dataset", choices=DATASETS, default="embedded", help="dataset to train and score on (default embedded)"
    )
    baseline.add_argument(
        "--data-dir",
        default=None,
        help="dataset folder (required for embedded: the folder `medcoder synth --out` wrote)",
    )
    baseline.add_argument(
        "--codiesp-dir", default=None, help="CodiEsp folder (default <shared data>/codiesp); same as --data-dir"
    )
    baseline.add_argument(
        "--systems",
        nargs="+",
        default=None,
        metavar="SYSTEM",
        help="code systems in the label space, or 'all' (default: the dataset's training setup, "
        "embedded: ICD-10-CM CPT HCPCS, codiesp: ICD-10-CM)",
    )
    baseline.add_argument(
        "--top-k",
        type=int,
        default=None,
        help="keep the K most frequent train codes, 0 keeps all (default: embedded all, codiesp 50)",
    )
    baseline.add_argument(
        "--C",
        dest="C",
        type=float,
        nargs="+",
        default=[1.0, 10.0, 100.0, 1000.0],
        help="inverse regularisation strength(s); several are selected on val (default 1 10 100 1000)",
    )
    baseline.add_argument(
        "--class-weight", choices=["none", "balanced"], default="none", help="per-code class weights (default none)"
    )
    baseline.add_argument(
        "--experiment", default="medcoder", help="MLflow experiment (default medcoder, next to medcoder-train runs)"
    )
    _tracking_uri_option(baseline)
    baseline.add_argument("--no-mlflow", action="store_true", help="do not log to MLflow")
    baseline.set_defaults(func=_lazy("medcoder.evaluation.baseline:cmd_baseline"))

    loop = sub.add_parser("denial-loop", help="the denial-feedback loop on the simulated payers (make denial-loop)")
    steps = loop.add_subparsers(dest="step", required=True)
    simulate = steps.add_parser("simulate", help="code a year of new notes, bill, adjudicate, correct, appeal")
    simulate.add_argument("--out", default="outputs/denial", help="folder for everything the loop writes")
    simulate.add_argument(
        "--model", default=CHAMPION_URI, help=f"the model that codes the practice (default {CHAMPION_URI})"
    )
    simulate.add_argument("--notes", type=int, default=2000, help="new notes over the year (default 2000)")
    simulate.add_argument("--seed", type=int, default=7, help="seed of the new notes and the coder (default 7)")
    simulate.add_argument(
        "--feedback-months", type=int, default=6,
        help="months learnt from; the rest are held out (default 6: half the year, so the paired interval has as "
        "many held-out claims as the history it is learnt from; docs/DENIALS.md)",
    )  # fmt: skip
    simulate.add_argument(
        "--site", default="none",
        help="the practice's documentation dialect (medcoder.data.synth.sites: new_practice, a site whose clinicians "
        "use words the corpus's authors never do), default none: the corpus's own authors",
    )  # fmt: skip
    simulate.add_argument("--payers", default=None, help="payer definitions (default configs/payer/simulated.yaml)")
    simulate.add_argument(
        "--review-share", type=float, default=0.5, help="share of encounters a coder reviews (default 0.5)"
    )
    simulate.add_argument("--overturn-rate", type=float, default=0.5, help="share of right-coded denials overturned")
    simulate.add_argument("--replay-dir", default=None, help="the champion's training corpus, replayed in retraining")
    simulate.add_argument(
        "--replay-notes", type=int, default=600, help="training notes replayed (every label kept; default 600)"
    )
    simulate.add_argument("--feedback-repeat", type=int, default=3, help="times each feedback note is read (default 3)")
    simulate.add_argument(
        "--test-notes", type=int, default=200,
        help="held-out notes in the retraining run's test split (default 200; compare scores every held-out note)",
    )  # fmt: skip
    _tracking_uri_option(simulate)
    simulate.add_argument("--ptp", default=None, help="NCCI PTP edits file (CSV/TSV; docs/DENIALS.md), optional")
    simulate.add_argument("--mue", default=None, help="MUE edits file (CSV/TSV; docs/DENIALS.md), optional")
    simulate.set_defaults(func=_lazy("medcoder.jobs.denial_loop:cmd_simulate"))
    compare_step = steps.add_parser("compare", help="champion vs challenger on the held-out months; gate; record")
    compare_step.add_argument("--out", default="outputs/denial", help="the folder simulate wrote")
    compare_step.add_argument("--run-id", default=None, help="the challenger's run (default: the newest init_from run)")
    compare_step.add_argument("--payers", default=None, help="payer definitions (default configs/payer/simulated.yaml)")
    compare_step.add_argument("--gate", default=None, help="gate file (default configs/registry/denial_feedback.yaml)")
    compare_step.add_argument("--record-dir", default=None, help="folder of the record (default <project>/experiments)")
    compare_step.add_argument("--no-promote", action="store_true", help="record the decision without moving @champion")
    _tracking_uri_option(compare_step)
    compare_step.add_argument("--ptp", default=None, help="NCCI PTP edits file (CSV/TSV; docs/DENIALS.md), optional")
    compare_step.add_argument("--mue", default=None, help="MUE edits file (CSV/TSV; docs/DENIALS.md), optional")
    compare_step.set_defaults(func=_lazy("medcoder.jobs.denial_loop:cmd_compare"))

    compare = sub.add_parser(
        "compare", help="write the experiment record of the latest neural run against the TF-IDF baseline"
    )
    compare.add_argument(
        "--dataset",
        choices=["embedded", "codiesp"],
        default="embedded",
        help="dataset whose runs to compare (default embedded, as make train leaves them; codiesp: make codiesp)",
    )
    compare.add_argument(
        "--experiment", default="medcoder", help="MLflow experiment holding both runs (default medcoder)"
    )
    _tracking_uri_option(compare)
    compare.add_argument(
        "--out",
        default=None,
        help="folder for <date>-<dataset>-lora-vs-tfidf.md, or a .md file path (default <project>/experiments)",
    )
    compare.set_defaults(func=_lazy("medcoder.evaluation.comparison:cmd_compare"))

    predict = sub.add_parser("predict", help="code a JSONL file of notes with a packaged model (prediction contract)")
    predict.add_argument(
        "--input", required=True, help="JSONL file, one note per line: {id, text, setting?, age?, sex?}"
    )
    predict.add_argument(
        "--output", required=True, help="JSONL file to write, one prediction or error entry per input line"
    )
    predict.add_argument(
        "--model",
        default=CHAMPION_URI,
        help="models:/<name>@<alias>, models:/<name>/<version>, runs:/<run_id>/model, or a model folder "
        f"(default {CHAMPION_URI})",
    )
    predict.add_argument(
        "--max-chars", type=int, default=None, help="longest note text accepted (default: the model's limit)"
    )
    predict.add_argument("--batch-size", type=int, default=8, help="notes per forward pass (default 8)")
    predict.add_argument(
        "--denial-risk", default=None, help="a denial-risk history: a file (medcoder denial-loop simulate writes "
        "one), runs:/<run_id>/<path>, or models:/<name>@<alias> for the history that version was gated with (its "
        "denial_risk tag); notes with a payer get their claim's risk per billed line, and a likely denial is routed "
        "to review",
    )  # fmt: skip
    predict.add_argument("--ptp", default=None, help="NCCI PTP edits to check each claim against (docs/DENIALS.md)")
    predict.add_argument("--mue", default=None, help="MUE edits to check each claim against (docs/DENIALS.md)")
    predict.add_argument("--risk-flag", type=float, default=0.5, help="line risk routed to review (default 0.5)")
    predict.add_argument(
        "--audit", default=None, help="audit log to write a `suggest` entry per code to: a SQLAlchemy URL "
        "(sqlite:///audit.db, postgresql://...) or a file path (SQLite); docs/AUDIT.md",
    )  # fmt: skip
    from medcoder.inference.schema import DEFAULT_HCC_MODEL, HCC_MODELS

    predict.add_argument(
        "--risk-adjustment", action="store_true", help="add each note's CMS-HCC risk adjustment: HCCs with their "
        "evidence, risk score and the change to its submitted_codes; high-risk HCCs routed to review (docs/RISK.md)",
    )  # fmt: skip
    predict.add_argument("--hcc-model", choices=tuple(HCC_MODELS), default=DEFAULT_HCC_MODEL,
                         help=f"CMS-HCC model (default {DEFAULT_HCC_MODEL})")  # fmt: skip
    predict.set_defaults(func=_lazy("medcoder.serving.predict:cmd_predict"))

    spark = sub.add_parser("score-spark", help="score a Parquet table of notes on Apache Spark (docs/SCALE.md)")
    spark.add_argument("--input", required=True, help="Parquet file or folder, one note per row")
    spark.add_argument("--output", required=True, help="Parquet folder to write: the id columns plus `prediction`")
    spark.add_argument(
        "--model",
        default=CHAMPION_URI,
        help=f"models:/<name>@<alias> or models:/<name>/<version> (default {CHAMPION_URI})",
    )
    spark.add_argument("--master", default="local[*]", help="Spark master URL (default local[*]: every core here)")
    spark.add_argument(
        "--id-column", nargs="+", default=["id"], help="id column(s) copied to the output; the first is the note's "
        "id (default id)",
    )  # fmt: skip
    spark.add_argument("--text-column", default="text", help="column of note text (default text)")
    spark.add_argument("--setting-column", default=None, help="column of the setting (outpatient/inpatient), optional")
    spark.add_argument("--age-column", default=None, help="column of the patient's age in years, optional")
    spark.add_argument("--sex-column", default=None, help="column of the patient's sex (F/M/U), optional")
    spark.add_argument("--partitions", type=int, default=None, help="partitions to score in (default: one per core)")
    spark.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    _tracking_uri_option(spark)
    spark.set_defaults(func=_lazy("medcoder.serving.spark:cmd_score_spark"))

    from medcoder.inference.inputs import DEFAULT_MAX_REQUEST_CHARS, DEFAULT_MAX_REQUEST_NOTES

    serve = sub.add_parser(
        "serve", help="serve a registered version over HTTP, checked against its registration seal first"
    )
    serve.add_argument(
        "--model",
        default=CHAMPION_URI,
        help=f"models:/<name>@<alias> or models:/<name>/<version> (default {CHAMPION_URI})",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)"
    )
    serve.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    serve.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its own copy of the model (default 1)"
    )
    serve.add_argument("--timeout", type=int, default=60, help="seconds before a request is answered 504 (default 60)")
    serve.add_argument(
        "--max-request-notes",
        type=int,
        default=DEFAULT_MAX_REQUEST_NOTES,
        help=f"most notes in one request, 413 beyond (default {DEFAULT_MAX_REQUEST_NOTES})",
    )
    serve.add_argument(
        "--max-request-chars",
        type=int,
        default=DEFAULT_MAX_REQUEST_CHARS,
        help=f"most characters of note text in one request, 413 beyond (default {DEFAULT_MAX_REQUEST_CHARS})",
    )
    serve.add_argument(
        "--audit", default=None, help="audit log every answered code is written to first, as a `suggest` entry: a "
        "SQLAlchemy URL or a SQLite file path (docs/AUDIT.md)",
    )  # fmt: skip
    _tracking_uri_option(serve)
    serve.set_defaults(func=_lazy("medcoder.serving.command:cmd_serve"))

    data = sub.add_parser("data", help="public reference datasets: what is present, where to get it, verified fetch")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    status = data_sub.add_parser(
        "status", help="each dataset: present and complete (SHA-256), license, official source"
    )
    status.add_argument(
        "--data-dir", default=None, help="reference-data folder (default MEDCODER_DATA_DIR, else <project>/data)"
    )
    status.set_defaults(func=_lazy("medcoder.data.reference:cmd_status"))
    fetch = data_sub.add_parser(
        "fetch", help="download or unpack a dataset into the data folder and verify its checksums"
    )
    fetch.add_argument("name", help="dataset name (see `medcoder data status`)")
    fetch.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="URL_OR_PATH",
        help="http(s) URL or local archive/folder/file; repeat for datasets published in several files",
    )
    fetch.add_argument(
        "--data-dir", default=None, help="reference-data folder (default MEDCODER_DATA_DIR, else <project>/data)"
    )
    fetch.set_defaults(func=_lazy("medcoder.data.reference:cmd_fetch"))

    card = sub.add_parser("card", help="write the model card of a registered model version (Markdown + HTML)")
    card.add_argument(
        "--model",
        default=CHAMPION_URI,
        help=f"models:/<name>@<alias> or models:/<name>/<version> (default {CHAMPION_URI})",
    )
    card.add_argument("--out", required=True, help="output directory for model_card.md, model_card.html and plots/")
    _tracking_uri_option(card)
    card.add_argument(
        "--no-publish",
        action="store_true",
        help="only write the files: do not log them to the run or change the registry",
    )
    card.add_argument(
        "--hti1", default=None, help="the organisation's HTI-1 answers (YAML; default configs/card/hti1.yaml)"
    )
    card.set_defaults(func=_lazy("medcoder.cards.model_card:cmd_card"))

    cards = sub.add_parser("cards", help="regenerate the statistics blocks of the data cards (data_cards/*.md)")
    cards.add_argument("--cards-dir", default=None, help="folder of the card files (default <project>/data_cards)")
    cards.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="CARD",
        help="regenerate only these cards, by file name (e.g. embedded-corpus.md codiesp.md)",
    )
    cards.add_argument(
        "--notes",
        type=int,
        default=EMBEDDED_NOTES,
        help=f"embedded corpus size (default {EMBEDDED_NOTES}, as make train)",
    )
    cards.add_argument(
        "--seed", type=int, default=EMBEDDED_SEED, help=f"embedded corpus seed (default {EMBEDDED_SEED}, as make train)"
    )
    cards.add_argument("--codiesp-dir", default=None, help="CodiEsp folder (default <shared data>/codiesp)")
    cards.add_argument("--mdace-dir", default=None, help="MDACE folder (default <shared data>/mdace)")
    cards.add_argument("--mimic-iv-dir", default=None, help="MIMIC-IV hosp folder (default: the loader's)")
    cards.add_argument("--mimic-iii-dir", default=None, help="MIMIC-III folder (default: the loader's)")
    cards.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF baseline numbers (fast)")
    cards.set_defaults(func=_lazy("medcoder.cards.data_cards:cmd_cards"))

    register = sub.add_parser("register", help="register a run's packaged model as a new version and set @challenger")
    register.add_argument(
        "--run-id",
        required=True,
        help="the MLflow run whose packaged model (artifact 'model') to register, or 'latest' for the "
        "newest finished medcoder-train run",
    )
    register.add_argument(
        "--experiment", default="medcoder", help="experiment searched by --run-id latest (default medcoder)"
    )
    register.add_argument("--name", default="medcoder", help="registered model name (default medcoder)")
    register.add_argument(
        "--fast-path",
        choices=("onnx-fp32", "onnx-int8"),  # medcoder.export.fast_path.FAST_PATHS (not imported here: torch)
        help="package the encoder as ONNX (float32 or dynamic int8) with the model, its code-set agreement "
        "with the float path recorded on the version (docs/SCALE.md)",
    )
    register.set_defaults(func=_lazy("medcoder.registry.register:cmd_register"))

    promote = sub.add_parser(
        "promote", help="gate @challenger against @champion on a pinned set; move @champion if it passes"
    )
    promote.add_argument("--eval-set", required=True, help="pinned evaluation set: contract JSONL with gold codes")
    promote.add_argument("--name", default="medcoder", help="registered model name (default medcoder)")
    promote.add_argument("--gates", default=None, help="gates YAML (default configs/registry/default.yaml)")
    promote.add_argument("--batch-size", type=int, default=32, help="notes per predict call (default 32)")
    promote.add_argument(
        "--audit", default=None, help="audit log the decision is written to as a `promote` entry "
        "(default <project>/audit.db; docs/AUDIT.md)",
    )  # fmt: skip
    promote.set_defaults(func=_lazy("medcoder.registry.promote:cmd_promote"))

    gaps = sub.add_parser(
        "care-gaps", help="documented values without their diagnosis, with draft queries (docs/GAPS.md)"
    )
    gaps.add_argument("--input", required=True, help="notes: prediction input or data-contract JSONL")
    gaps.add_argument("--out", required=True, help="JSONL file of the gaps")
    gaps.add_argument("--predictions", default=None, help="`medcoder predict` output: its codes instead of the notes'")
    gaps.add_argument("--queries", action="store_true", help="add a drafted physician query to each gap")
    gaps.set_defaults(func=_lazy("medcoder.gaps.cli:cmd_care_gaps"))

    query = sub.add_parser("query", help="send a drafted physician query and record its answer (docs/GAPS.md)")
    query_sub = query.add_subparsers(dest="query_command", required=True)
    send = query_sub.add_parser("send", help="record that a drafted query was sent to the provider")
    answer = query_sub.add_parser("answer", help="record the provider's answer; a diagnosis becomes a correction")
    for q in (send, answer):
        q.add_argument("--gaps", required=True, help="`medcoder care-gaps --queries` output holding the query")
        q.add_argument("--notes", required=True, help="the notes file the gaps were found in")
        q.add_argument("--query-id", required=True, help="the drafted query's query_id")
        _audit_db_option(q)
    send.add_argument("--user", default=None, help="who sends it (default MEDCODER_USER, else the OS user)")
    send.set_defaults(func=_lazy("medcoder.gaps.query_cli:cmd_query_send"))
    answer.add_argument("--option", required=True, help="the option the provider chose, as the query words it")
    answer.add_argument("--provider", required=True, help="the answering provider's id")
    answer.add_argument("--model-version", required=True, help="the model version whose coding the query follows")
    answer.add_argument("--corrections", required=True, help="coder-correction JSONL to append the answer's record to")
    answer.add_argument("--free-text", default=None, help="an 'Other' answer's words (only their hash is kept)")
    answer.set_defaults(func=_lazy("medcoder.gaps.query_cli:cmd_query_answer"))

    audit = sub.add_parser("audit", help="the audit trail: verify its hash chain (docs/AUDIT.md)")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="walk the hash chain; exit 1 at the first broken link")
    _audit_db_option(verify)
    verify.add_argument(
        "--expect-head", default=None, help="SEQ:HASH, a head an earlier verify printed: also catches entries "
        "removed from the end",
    )  # fmt: skip
    verify.set_defaults(func=_lazy("medcoder.audit.cli:cmd_verify"))
    report = audit_sub.add_parser("report", help="the compliance report of one model version (HTML)")
    _audit_db_option(report)
    report.add_argument("--name", default="medcoder", help="registered model name (default medcoder)")
    report.add_argument("--version", required=True, help="the model version its suggestions name")
    report.add_argument("--out", required=True, help="HTML file to write")
    report.set_defaults(func=_lazy("medcoder.audit.cli:cmd_report"))

    review = sub.add_parser("review", help="human review of the coder's suggestions (docs/REVIEW.md)")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    user = review_sub.add_parser(
        "add-user", help="add a review account (password from $MEDCODER_REVIEW_PASSWORD, else asked twice)"
    )
    user.add_argument("name")
    user.add_argument("--role", required=True, choices=("coder", "auditor", "admin"))
    _audit_db_option(user)
    user.set_defaults(func=_lazy("medcoder.review.cli:cmd_add_user"))
    serve_review = review_sub.add_parser("serve", help="serve the review app on notes and their predictions")
    _review_inputs(serve_review)
    serve_review.add_argument("--corrections", default="corrections.jsonl", help="coder corrections (JSONL) go here")
    serve_review.add_argument("--host", default="127.0.0.1")
    serve_review.add_argument("--port", type=int, default=8000)
    serve_review.set_defaults(func=_lazy("medcoder.review.cli:cmd_serve"))
    claims = sub.add_parser("claims", help="claims released by review")
    claims_sub = claims.add_subparsers(dest="claims_command", required=True)
    export = claims_sub.add_parser("export", help="the released claim lines with their attestation (CSV)")
    _review_inputs(export)
    export.add_argument("--out", required=True, help="CSV file to write")
    export.add_argument("--x12-dir", default=None, help="also write one 837P per payer here (needs --charges)")
    export.add_argument("--charges", default=None, help="the practice's charges: CSV with columns code, charge")
    export.set_defaults(func=_lazy("medcoder.review.cli:cmd_export"))
    return parser


def _review_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notes", required=True, help="the notes (prediction-contract input JSONL)")
    parser.add_argument("--predictions", required=True, help="their `medcoder predict` output")
    _audit_db_option(parser)


def _audit_db_option(parser: argparse.ArgumentParser) -> None:
    """`--db`: the audit log (and its review accounts), a SQLAlchemy URL or a SQLite file path."""
    parser.add_argument(
        "--db", default=None, help="the audit log: a SQLAlchemy URL or a SQLite file (default <project>/audit.db)"
    )


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever `sys.stderr` is when a record is emitted (tests swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # logging.StreamHandler.__init__ assigns it; the property wins
        pass


def configure_logging() -> None:
    """Show medcoder's progress lines (INFO) on stderr, once per process.

    Only the `medcoder` logger gets a handler: library chatter stays at its own defaults, and records
    still propagate, so anything that listens at the root (pytest, an embedding application) sees them.
    """
    logger = logging.getLogger("medcoder")
    if any(isinstance(h, _StderrHandler) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        return int(args.func(args) or 0)
    except (RecordError, FileNotFoundError, ValueError) as err:
        print(f"medcoder {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
