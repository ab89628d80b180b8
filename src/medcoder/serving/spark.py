"""`medcoder score-spark`: score a Parquet table of notes on Apache Spark with a registered coder.

    medcoder score-spark --input notes.parquet --output predictions.parquet [--model models:/medcoder@champion]
                         [--master local[*]] [--id-column note_id [visit_id ...]] [--text-column text]

Why Spark: notes that already live in a data lake are scored where they are, in parallel over the
table's partitions, with the model the registry serves, instead of being exported to JSONL for
`medcoder predict` on one machine. Users who run their own Spark cluster call `contract_udf` (docs/SCALE.md).

How, in order:
1. the registered version is resolved once, downloaded and checked against the seal recorded at
   registration (`serving.command.prepare`, as `medcoder serve` does): `mlflow.pyfunc.spark_udf` imports
   the model's own code, so only a checked copy may reach it (a run or a folder has no seal: refused);
2. the checked copy is wrapped in `ContractJson`, a small pyfunc saved "from code" (`spark_model.py`) to a
   temporary folder, which loads the coder's pyfunc and returns each prediction-contract line as one JSON
   string;
3. `mlflow.pyfunc.spark_udf(spark, <that folder>, result_type="string")` runs it on the executors over a
   struct of the contract's input fields (`id` is the first id column as a string); the output table is
   the input's id columns plus `prediction`, one row per input row.

Why a JSON string column and not a struct: the coder's pyfunc returns a list of dicts (output schema
`Map(str -> Any)`), and MLflow 3.17's spark_udf turns such a list into a DataFrame of its keys. With
`result_type="string"` it then keeps only the leftmost column (the id), the inferred map type fails,
and a struct result type fails on the first null nested value (an `em` of null, an error entry with no
`codes`): a batch mixing predictions and error entries has no struct. A JSON string is every row's
contract line exactly as `medcoder predict` writes it (docs/schemas), which Spark reads with
`get_json_object` / `from_json`.

Bad rows are checked by the coder's pyfunc one by one (`ExportedCoder.predict_records`, the checks of
`medcoder.inference.inputs`), so an empty or missing text, a missing id or an over-long note becomes
that row's error entry with the same kind and message as in `medcoder predict`. What differs, because
a pyfunc call sees one block of `BLOCK_SIZE` rows and not a file: a row without an id is keyed
`line:<n>` by its place in its block (the id columns of its output row are null: add a column such as
a row number to `--id-column` to find it), and a repeated id is flagged only within a block, so keep
ids unique. Nothing derived from note text is logged or printed: counts, ids and times only.

Throughput: `score_parquet` (and `score_records`, for a list of records) returns a `SparkScoring` whose
`notes_per_s` times the scoring job alone (Spark started, model checked): reading, scoring and writing
the table, model loading in the Python workers included. `make bench` reports it as
`scale/spark_notes_per_s`; the command prints it.

pyspark is an optional dependency (`pip install 'medcoder[spark]'`): it is imported only here, inside
functions, and the command says how to install it when it is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd

from medcoder.defaults import CHAMPION_URI, REGISTRY_URI
from medcoder.serving.predict import BLOCK_SIZE

if TYPE_CHECKING:  # pyspark is optional: imported only when Spark scoring runs
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"
CODER_ARTIFACT = "coder_model"  # ContractJson's artifact: the checked registered model folder
MODEL_CODE_FILE = Path(__file__).with_name("spark_model.py")  # ContractJson "from code"


class ContractJson(mlflow.pyfunc.PythonModel):
    """The checked coder pyfunc, each of its contract lines returned as one JSON string (module docstring).

    Rows are handed to the coder `BLOCK_SIZE` at a time, as `medcoder predict` does: an Arrow batch holds
    up to 10,000 rows by default, more than the pyfunc accepts in one call.
    """

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.coder = mlflow.pyfunc.load_model(context.artifacts[CODER_ARTIFACT], model_config=context.model_config)

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> list[str]:
        lines: list[dict[str, Any]] = []
        for start in range(0, len(model_input), BLOCK_SIZE):
            lines += self.coder.predict(model_input.iloc[start : start + BLOCK_SIZE])
        return [json.dumps(line, ensure_ascii=False) for line in lines]


def checked_contract_model(model: str, work_dir: Path, tracking_uri: str | None = None) -> Path:
    """`model` (a registered version) checked against its seal and wrapped in `ContractJson` under `work_dir`."""
    from mlflow.models import ModelSignature
    from mlflow.pyfunc.scoring_server import SERVING_MODEL_CONFIG
    from mlflow.types import ColSpec, Schema

    from medcoder.export.mlflow_model import CODE_PATHS
    from medcoder.serving.app import MODEL_DIR_ENV
    from medcoder.serving.command import prepare

    served = prepare(model, work_dir, tracking_uri)
    checked = Path(served[MODEL_DIR_ENV])
    # the block bounds the work of one call; the request-size limits guard an HTTP server, not this
    config = {
        **json.loads(served[SERVING_MODEL_CONFIG]),
        "max_request_notes": BLOCK_SIZE,
        "max_request_chars": sys.maxsize,
    }
    log.info(
        "%s checked against its registration seal: %s version %s", model, config["model_name"], config["model_version"]
    )
    path = work_dir / "contract_json"
    mlflow.pyfunc.save_model(
        path=str(path), python_model=str(MODEL_CODE_FILE), artifacts={CODER_ARTIFACT: str(checked)},
        code_paths=list(CODE_PATHS), pip_requirements=str(checked / "requirements.txt"), model_config=config,
        signature=ModelSignature(outputs=Schema([ColSpec("string")])),  # one JSON string per row; no input schema
    )  # fmt: skip
    return path


def contract_udf(spark: SparkSession, model: str = CHAMPION_URI, tracking_uri: str | None = None) -> Any:
    """A Spark UDF: struct(id, text, setting?, age?, sex?) -> the note's contract line as a JSON string.

    spark_udf copies the model folder it is given, so the temporary folder is gone when this returns.
    """
    with tempfile.TemporaryDirectory(prefix="medcoder-spark-") as tmp:
        path = checked_contract_model(model, Path(tmp), tracking_uri)
        return mlflow.pyfunc.spark_udf(spark, str(path), result_type="string", env_manager="local")


@dataclass(frozen=True)
class NoteColumns:
    """Which input columns hold the contract's input fields. The first id column, as a string, is the note's
    `id`; every id column is copied to the output so a row can be joined back to its source."""

    ids: tuple[str, ...]
    text: str
    setting: str | None = None
    age: str | None = None
    sex: str | None = None

    def fields(self) -> dict[str, str]:
        """contract field -> input column, for the fields the input has."""
        optional = {"setting": self.setting, "age": self.age, "sex": self.sex}
        return {"id": self.ids[0], "text": self.text, **{f: c for f, c in optional.items() if c is not None}}

    def check(self, available: list[str]) -> None:
        if PREDICTION_COLUMN in self.ids:
            raise ValueError(f"--id-column {PREDICTION_COLUMN}: that is the name of the output's prediction column")
        missing = [c for c in dict.fromkeys([*self.ids, *self.fields().values()]) if c not in available]
        if missing:
            raise ValueError(f"no column(s) {', '.join(missing)} in the input; it has {', '.join(available)}")


@dataclass(frozen=True)
class SparkScoring:
    """What one scoring run did: rows scored, seconds of the Spark job, and rows per outcome."""

    notes: int
    seconds: float
    outcomes: dict[str, int]  # "coded" and each error kind -> rows

    @property
    def notes_per_s(self) -> float:
        return self.notes / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        errors = {kind: n for kind, n in sorted(self.outcomes.items()) if kind != "coded"}
        detail = ", ".join(f"{kind}: {n}" for kind, n in errors.items())
        return (
            f"scored {self.notes} notes in {self.seconds:.1f} s ({self.notes_per_s:.1f} notes/s): "
            f"{self.outcomes.get('coded', 0)} coded, {sum(errors.values())} error entries"
            + (f" ({detail})" if detail else "")
        )


def _outcomes(scored: DataFrame) -> dict[str, int]:
    from pyspark.sql import functions as F

    kind = F.coalesce(F.get_json_object(PREDICTION_COLUMN, "$.error.kind"), F.lit("coded")).alias("outcome")
    return {row["outcome"]: row["count"] for row in scored.select(kind).groupBy("outcome").count().collect()}


def score_parquet(
    spark: SparkSession, input_path: str, output_path: str, *, model: str, columns: NoteColumns,
    partitions: int | None = None, overwrite: bool = False, tracking_uri: str | None = None,
) -> SparkScoring:  # fmt: skip
    """Score the Parquet table at `input_path` and write the id columns plus `prediction` to `output_path`.

    The table is spread over at least `partitions` partitions (default: Spark's default parallelism,
    one per core of `local[N]`), so every core scores notes; each partition's worker loads the model once.
    """
    from pyspark.sql import functions as F

    frame = spark.read.parquet(input_path)
    columns.check(frame.columns)
    wanted = partitions or spark.sparkContext.defaultParallelism
    if frame.rdd.getNumPartitions() < wanted:
        frame = frame.repartition(wanted)
    record = F.struct(*[F.col(column).cast("string").alias(field) if field == "id" else F.col(column).alias(field)
                        for field, column in columns.fields().items()])  # fmt: skip
    udf = contract_udf(spark, model, tracking_uri)
    start = time.perf_counter()
    frame.select(*columns.ids, udf(record).alias(PREDICTION_COLUMN)).write.mode(
        "overwrite" if overwrite else "errorifexists"
    ).parquet(output_path)
    seconds = time.perf_counter() - start
    outcomes = _outcomes(spark.read.parquet(output_path))
    return SparkScoring(sum(outcomes.values()), seconds, outcomes)


def score_records(
    spark: SparkSession, records: list[dict[str, Any]], *, model: str = CHAMPION_URI, tracking_uri: str | None = None
) -> SparkScoring:
    """Score contract input records (`{id, text, setting?, age?, sex?}`) through a Parquet table in a temporary
    folder, output discarded: the run `make bench` reports as `scale/spark_notes_per_s` (`.notes_per_s`)."""
    frame = pd.DataFrame(records)
    optional = {field: field for field in ("setting", "age", "sex") if field in frame.columns}
    with tempfile.TemporaryDirectory(prefix="medcoder-spark-") as tmp:
        frame.to_parquet(Path(tmp) / "notes.parquet")
        return score_parquet(
            spark, str(Path(tmp) / "notes.parquet"), str(Path(tmp) / "scored"), model=model,
            columns=NoteColumns(("id",), "text", **optional), tracking_uri=tracking_uri,
        )  # fmt: skip


def spark_session(master: str) -> tuple[SparkSession, bool]:
    """The Spark session already active in this process (not ours to stop), else a new one on `master`
    (True: the caller stops it). Local workers run this interpreter (PYSPARK_PYTHON, unless it is set), so
    they import this medcoder and its libraries."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ValueError("medcoder score-spark needs pyspark: pip install 'medcoder[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    if master.startswith("local"):  # read by pyspark when the context starts (not spark.pyspark.python)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        return SparkSession.builder.master(master).appName("medcoder-score-spark").getOrCreate(), True
    except Exception as exc:  # noqa: BLE001 (no Java, a bad master URL: one sentence, not a JVM trace)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"cannot start Spark on --master {master}: {first} (Spark needs Java 17 or newer)") from None


def _check_paths(input_path: str, output_path: str, overwrite: bool) -> None:
    """One-line errors for local paths before Spark starts (a remote path, `scheme://`, is Spark's to check)."""
    if "://" not in input_path and not Path(input_path).exists():
        raise FileNotFoundError(f"--input {input_path}: no such file or folder")
    if "://" not in output_path and Path(output_path).exists():
        if Path(output_path).resolve() == Path(input_path).resolve():
            raise ValueError(f"--output {output_path} is the --input table: write the predictions elsewhere")
        if not overwrite:
            raise ValueError(f"--output {output_path} exists: remove it, choose another path, or pass --overwrite")


def cmd_score_spark(args: argparse.Namespace) -> int:
    if args.partitions is not None and args.partitions < 1:
        raise ValueError(f"--partitions must be at least 1, got {args.partitions}")
    if REGISTRY_URI.match(args.model) is None:  # before Spark starts: a wrong --model costs no JVM start
        raise ValueError(
            f"--model {args.model}: score-spark scores registered versions only (models:/<name>@<alias> or "
            "models:/<name>/<version>), whose registration seal it checks before Spark imports the model's code"
        )
    _check_paths(args.input, args.output, args.overwrite)
    columns = NoteColumns(tuple(args.id_column), args.text_column, args.setting_column, args.age_column,
                          args.sex_column)  # fmt: skip
    spark, owned = spark_session(args.master)
    try:
        run = score_parquet(
            spark, args.input, args.output, model=args.model, columns=columns, partitions=args.partitions,
            overwrite=args.overwrite, tracking_uri=args.tracking_uri,
        )  # fmt: skip
    finally:
        if owned:
            spark.stop()
    print(f"{run.summary()} -> {args.output}", file=sys.stderr)
    return 0
