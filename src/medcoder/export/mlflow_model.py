"""The packaged coder as an MLflow pyfunc model: the class, and logging it into a run.

The pyfunc is a thin shell around `ExportedCoder`: `load_context` verifies and loads the exported
folder (an MLflow artifact), `predict` turns each input record into one prediction-contract dict.
It is logged "from code" (`pyfunc_model.py`), with the folder passed as `artifacts`.

Input: a list of records `{id, text, setting?, age?, sex?}` (what `mlflow models serve` hands over
for `{"inputs": [...]}`), or a pandas DataFrame of them (CSV requests, `mlflow.evaluate`,
`spark_udf`), one row per record. Each record is checked on its own: an empty, whitespace-only,
over-long, non-string or unencodable text gives that record's error entry, never a failed batch.

Why `_skip_type_hint_validation`: the `list[PredictionRecord]` type hint gives the model its
signature, with the field names of `medcoder.inference.schema.PredictionInput` (and makes the server
expect `{"inputs": [...]}`), but MLflow 3.17's own validation of that hint would (a) reject a whole
batch for one record that is not an object, and (b) turn a multi-column DataFrame into a list of its
FIRST COLUMN (its DataFrame conversion only recognises
a bare `dict` element type). `ExportedCoder.predict_records` validates every record itself, so
MLflow's check is switched off the way MLflow switches it off for its own model classes.

Bad requests as a whole (not a list of records, or more work than one request may ask for,
`inputs.request_problem`) raise `MlflowException(INVALID_PARAMETER_VALUE)` whose message names
counts and types, never the data. (`mlflow models serve` still prefixes such a message with the
request data and answers malformed JSON with the body; `medcoder serve` guards against both,
see `medcoder.serving`.) The limits can be changed at load:
`model_config={"max_request_notes": ..., "max_request_chars": ...}`.

The contract's `model.version` is not known when the model is logged (registration comes later):
`load_model(uri, model_config={"model_name": ..., "model_version": ...})` sets it, as
`medcoder predict` does for `models:/` URIs; else the `registered_model_meta` file MLflow writes into
a registered version it downloads names it (what `mlflow models serve -m models:/...` and
`build-docker` hand over; `medcoder.export.registration`); otherwise the content hash identifies it.

What travels with the model, so it loads where this repository is not: the `medcoder` package
itself (`code_paths`: MLflow puts it on `sys.path` before it runs `pyfunc_model.py`), and a
`requirements.txt` of the runtime libraries pinned to the exporting versions WITHOUT local build
labels (`torch==2.13.0`, not `2.13.0+cpu`), all of them on the public index. medcoder is not a
requirement: it is not on any index, and the copy in the model is the code that was tested with it.
"""

import importlib.metadata
import math
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models.model import ModelInfo
from packaging.version import Version

import medcoder
from medcoder.export.artifact import FORMAT, MODEL_NAME, ExportedCoder, export_coder, load_exported
from medcoder.export.fast_packaging import read_fast_path, with_packaged_fast_path
from medcoder.export.registration import registered_version
from medcoder.inference.inputs import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_REQUEST_CHARS,
    DEFAULT_MAX_REQUEST_NOTES,
    request_problem,
)
from medcoder.inference.manifest import verify_manifest
from medcoder.inference.routing import RoutingPolicy
from medcoder.inference.schema import PredictionRecord

PYFUNC_CODE_FILE = Path(__file__).with_name("pyfunc_model.py")
ARTIFACT_KEY = "coder"
# Synthetic (no patient data): stored with the model as its input example and serving example.
INPUT_EXAMPLE: list[dict[str, Any]] = [
    {"id": "example-1", "text": "Assessment: essential hypertension, stable on lisinopril.", "setting": "outpatient"},
]
# What the serving environment needs besides medcoder's own code (which travels as code_paths): the
# distributions medcoder imports on the load-and-predict path, pinned to the versions that exported it.
RUNTIME_LIBRARIES: tuple[str, ...] = (
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "mlflow",
    "numpy",
    "pandas",
    "simple-icd-10-cm",
    "scikit-learn",
    "seqeval",
    "pydantic",
    "accelerate",
    # not medcoder's own import: Starlette (under MLflow's scoring server) imports it on the load path whenever it
    # is installed, and medcoder installs it for the review app's forms; pinned so the environment is the same
    "python-multipart",
)
FAST_PATH_LIBRARIES: tuple[str, ...] = ("onnxruntime",)  # what loading a packaged ONNX encoder imports
CODE_PATHS: tuple[str, ...] = (str(Path(medcoder.__file__).resolve().parent),)


def pip_requirements(fast_path: bool = False) -> list[str]:
    """The runtime libraries pinned to the installed public versions (local labels such as `+cpu` dropped);
    onnxruntime too for a model that packages the ONNX fast path (medcoder.export.fast_packaging)."""
    names = (*RUNTIME_LIBRARIES, *FAST_PATH_LIBRARIES) if fast_path else RUNTIME_LIBRARIES
    return [f"{name}=={Version(importlib.metadata.version(name)).public}" for name in names]


def _is_missing(value: Any) -> bool:
    """A DataFrame's marker for "this record has no such field" (None, NaN, pd.NA)."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _row_record(row: dict[Any, Any]) -> dict[Any, Any]:
    """A DataFrame row as the record it came from: missing cells dropped, whole-number ages as int
    (an int column with a gap becomes float in pandas)."""
    record = {}
    for key, value in row.items():
        if _is_missing(value):
            continue
        if isinstance(value, np.generic):  # numpy scalar -> Python
            value = value.item()
        if key == "age" and isinstance(value, float) and value.is_integer():
            value = int(value)
        record[key] = value
    return record


def rows_from_input(model_input: Any) -> list[Any]:
    """The records of a pyfunc input: a list (or tuple) as is, a DataFrame row by row, a dict as one record."""
    if isinstance(model_input, pd.DataFrame):
        return [_row_record(row) for row in model_input.to_dict(orient="records")]
    if isinstance(model_input, dict):
        return [model_input]
    if isinstance(model_input, (list, tuple)):
        return list(model_input)
    raise TypeError(
        f"model input must be a list of records {{id, text, setting?, age?, sex?}} or a DataFrame of them, "
        f"got {type(model_input).__name__}"
    )


class MedcoderPyfunc(mlflow.pyfunc.PythonModel):
    """The exported coder behind MLflow's pyfunc interface (see the module docstring)."""

    _skip_type_hint_validation = True  # records are validated one by one in predict (module docstring)

    def __init__(self) -> None:
        self.coder: ExportedCoder | None = None
        self.max_request_notes, self.max_request_chars = DEFAULT_MAX_REQUEST_NOTES, DEFAULT_MAX_REQUEST_CHARS

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        config = context.model_config or {}
        self.max_request_notes = int(config.get("max_request_notes") or DEFAULT_MAX_REQUEST_NOTES)
        self.max_request_chars = int(config.get("max_request_chars") or DEFAULT_MAX_REQUEST_CHARS)
        coder_dir = Path(context.artifacts[ARTIFACT_KEY])
        model_dir = coder_dir.parent.parent  # MLflow keeps artifacts at <model>/artifacts/<key>
        coder = load_exported(
            coder_dir,
            model_name=config.get("model_name") or MODEL_NAME,
            model_version=config.get("model_version") or registered_version(model_dir),
        )
        self.coder = with_packaged_fast_path(coder, coder_dir)  # the ONNX encoder when packaged (fast_packaging)

    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input: list[PredictionRecord],
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        from mlflow.exceptions import MlflowException

        if self.coder is None:
            raise RuntimeError("the model is not loaded: load it with mlflow.pyfunc.load_model")
        try:
            rows = rows_from_input(model_input)
        except TypeError as err:
            raise MlflowException.invalid_parameter_value(str(err)) from None
        problem = request_problem(rows, self.max_request_notes, self.max_request_chars)
        if problem is not None:
            raise MlflowException.invalid_parameter_value(problem)
        return self.coder.predict_records(rows)


def _pyfunc_arguments(artifact_dir: str | Path) -> dict[str, Any]:
    """What `log_model` and `save_model` both get; the manifest is verified before anything is logged."""
    manifest_sha256 = verify_manifest(artifact_dir)
    return {
        "python_model": str(PYFUNC_CODE_FILE),
        "artifacts": {ARTIFACT_KEY: str(Path(artifact_dir))},
        "pip_requirements": pip_requirements(fast_path=read_fast_path(artifact_dir) is not None),
        "code_paths": list(CODE_PATHS),
        "input_example": INPUT_EXAMPLE,
        # every key a loader may set (MLflow ignores load-time keys that were not logged)
        "model_config": {
            "model_name": MODEL_NAME,
            "model_version": None,
            "max_request_notes": DEFAULT_MAX_REQUEST_NOTES,
            "max_request_chars": DEFAULT_MAX_REQUEST_CHARS,
        },
        "metadata": {"medcoder_format": FORMAT, "medcoder_manifest_sha256": manifest_sha256},
    }


def log_packaged_model(
    artifact_dir: str | Path, *, name: str = "model", registered_model_name: str | None = None
) -> ModelInfo:
    """Log an exported-coder folder as a pyfunc model into the active run (or a new one).

    The manifest hash is stored in the model's metadata (`medcoder_manifest_sha256`) so a registry
    can record exactly which content a version serves.
    """
    return mlflow.pyfunc.log_model(
        name=name, registered_model_name=registered_model_name, **_pyfunc_arguments(artifact_dir)
    )


def save_packaged_model(artifact_dir: str | Path, path: str | Path) -> Path:
    """The same pyfunc model written to a local folder (no tracking store needed)."""
    mlflow.pyfunc.save_model(path=str(path), **_pyfunc_arguments(artifact_dir))
    return Path(path)


def export_and_log(
    coder: Any,
    *,
    threshold: float,
    routing: RoutingPolicy,
    max_chars: int = DEFAULT_MAX_CHARS,
    name: str = "model",
    registered_model_name: str | None = None,
    verifier: Any = None,
    blend: Any = None,
) -> ModelInfo:
    """Export `coder` (a CoderLitModule) and log it at artifact path `name` of the ACTIVE run.

    What the training job calls after evaluation, with the best checkpoint and the val-tuned
    threshold, so that `runs:/<run_id>/model` of every training run is a servable model. `verifier`: the
    evidence verifier fitted on val that grounds its codes; `blend`: an
    optional `medcoder.models.blend.ScoreBlend` packaged with it (the threshold is then the blend's).
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("export_and_log logs into the active MLflow run: call it inside mlflow.start_run(...)")
    with tempfile.TemporaryDirectory(prefix="medcoder-export-") as tmp:
        folder = export_coder(
            coder,
            Path(tmp) / ARTIFACT_KEY,
            threshold=threshold,
            routing=routing,
            run_id=run.info.run_id,
            max_chars=max_chars,
            verifier=verifier,
            blend=blend,
        )
        return log_packaged_model(folder, name=name, registered_model_name=registered_model_name)
