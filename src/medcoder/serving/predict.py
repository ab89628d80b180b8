"""`medcoder predict`: code a JSONL file of notes with a packaged model, one contract line per input line.

    medcoder predict --input notes.jsonl --output predictions.jsonl [--model models:/medcoder@champion]

`--model` takes a registry URI (`models:/<name>@<alias>`, `models:/<name>/<version>`), a run URI
(`runs:/<run_id>/model`), an MLflow model folder, or an exported-coder folder (`export_coder`).
Every input line gets exactly one output line, in input order: a prediction, or an error entry
for a line that cannot be coded (bad JSON, empty text, ...). Output is written to a temporary file
of its own (unique name, same folder) and renamed at the end, so a crash never leaves a half-written
file that looks complete. While it runs, the run holds an exclusive lock on `.<output name>.lock`
beside the output (POSIX `flock`, released when the process ends, however it ends): a second run
to the same output is refused instead of racing it. `--output` may not be the `--input` file (it
would be replaced by its own predictions) nor a folder.

Trust: a registered version (`models:/<name>@<alias>` or `/<version>`) is downloaded and checked
against the seal recorded at registration (`medcoder.registry.seal`) before anything in it is
read; a changed, added or removed file is refused by name. No model's own code is ever imported
here: this medcoder runs every model from its sealed export, so a `runs:/` URI or a folder (which
nothing registered vouches for) cannot run code either, and its predictions name it by content
(`sha256:<manifest hash>`), never by what its `MLmodel` claims.

Errors a user can fix (no such model or alias, a tampered artifact, a missing input file) are
raised as ValueError/FileNotFoundError with one clear sentence; `medcoder`'s main prints that line
and exits with status 2. Torch and MLflow are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

from medcoder.defaults import REGISTRY_URI
from medcoder.paths import default_tracking_uri

if TYPE_CHECKING:  # torch is imported only when the command runs
    from medcoder.export.artifact import ExportedCoder

BLOCK_SIZE = 64  # notes handed to the model at a time: bounds memory on files of any size
T = TypeVar("T")


class ModelNotFoundError(ValueError):
    """The model named by --model cannot be found or loaded; the message says what to do."""


# ---------------------------------------------------------------- loading
def check_store(tracking_uri: str) -> None:
    """A sqlite store that does not exist would be created empty by MLflow: say so instead."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(unquote(tracking_uri[len("sqlite:///") :]))
        if not db.is_file():
            raise ModelNotFoundError(
                f"no MLflow store at {db} (set MLFLOW_TRACKING_URI, or train a model first); "
                "or pass --model with an exported model folder"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def registered_version(uri: str, tracking_uri: str) -> tuple[str, str] | None:
    """(registered name, version) that a models:/ URI points at; None for URIs without a registry entry."""
    import mlflow
    from mlflow.exceptions import MlflowException

    match = REGISTRY_URI.match(uri)
    if match is None:
        return None
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    name = match["name"]
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"]).version
        else:
            version = client.get_model_version(name, match["version"]).version
    except MlflowException as exc:
        # MLflow 3.17 reports a missing alias as INVALID_PARAMETER_VALUE, a missing model or version as
        # RESOURCE_DOES_NOT_EXIST; anything else (a broken store) is reported with MLflow's own first line.
        if exc.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ModelNotFoundError(f"cannot look up {uri} in {tracking_uri}: {_first_line(exc)}") from None
        what = f"alias {match['alias']!r}" if match["alias"] else f"version {match['version']}"
        raise ModelNotFoundError(
            f"registered model {name!r} has no {what} in {tracking_uri}: register and promote a model first "
            "(medcoder register / medcoder promote), or pass --model runs:/<run_id>/model or a model folder"
        ) from None
    return name, str(version)


def _load_registered(name: str, version: str, tracking_uri: str, max_chars: int | None) -> ExportedCoder:
    """A registered version, downloaded and checked against the seal recorded at registration BEFORE
    anything in it is read (`registry.seal.fetch_verified`); then only its sealed export is loaded."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from medcoder.export.artifact import load_exported
    from medcoder.registry.register import sealed_folder
    from medcoder.registry.seal import fetch_verified

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    with tempfile.TemporaryDirectory(prefix="medcoder-predict-") as tmp:
        try:
            local = fetch_verified(client, client.get_model_version(name, version), tmp)
        except (MlflowException, OSError) as exc:
            raise ModelNotFoundError(f"cannot download models:/{name}/{version}: {_first_line(exc)}") from None
        return load_exported(sealed_folder(local), model_name=name, model_version=version, max_chars=max_chars)


def _load_unregistered(spec: str, max_chars: int | None) -> ExportedCoder:
    """A runs:/ (or other MLflow) URI or an MLflow model folder: its sealed export only (manifest checked).

    Nothing registered vouches for such a model, so none of its code (`pyfunc_model.py`, shipped
    code) is imported: medcoder's own installed code runs the export, and predictions name the model
    by its content (`sha256:<manifest hash>`), never by what its `MLmodel` claims.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from medcoder.export.artifact import load_exported
    from medcoder.registry.register import sealed_folder

    if Path(spec).is_dir():
        return load_exported(sealed_folder(spec), max_chars=max_chars)
    with tempfile.TemporaryDirectory(prefix="medcoder-predict-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=spec, dst_path=tmp)
        except (MlflowException, OSError) as exc:
            raise ModelNotFoundError(f"cannot load model {spec}: {_first_line(exc)}") from None
        return load_exported(sealed_folder(local), max_chars=max_chars)


def load_model(
    spec: str, *, max_chars: int | None = None, batch_size: int = 8, tracking_uri: str | None = None
) -> ExportedCoder:
    """The ExportedCoder behind `spec` (see the module docstring for what `spec` may be).

    No code from a model folder is ever imported here: a registered version is verified against
    its registration seal, and every model is run by this medcoder from its sealed export.
    """
    from medcoder.export.artifact import load_exported
    from medcoder.inference.manifest import MANIFEST_NAME

    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if max_chars is not None and max_chars < 1:
        raise ValueError(f"--max-chars must be >= 1, got {max_chars}")
    path = Path(spec)
    if spec.startswith(("models:/", "runs:/")) or (not path.exists() and re.match(r"^[a-z][a-z0-9+.-]*:/", spec)):
        import mlflow

        tracking_uri = tracking_uri or default_tracking_uri()
        check_store(tracking_uri)
        mlflow.set_tracking_uri(tracking_uri)
        registered = registered_version(spec, tracking_uri)
        if registered is None:
            coder = _load_unregistered(spec, max_chars)
        else:  # load the version just resolved, so an alias that moves meanwhile cannot mislabel the output
            coder = _load_registered(*registered, tracking_uri, max_chars)
    elif (path / MANIFEST_NAME).is_file():
        coder = load_exported(path, max_chars=max_chars)
    elif (path / "MLmodel").is_file():
        coder = _load_unregistered(spec, max_chars)
    elif path.exists():
        raise ModelNotFoundError(
            f"--model {spec}: neither an exported model folder ({MANIFEST_NAME}) nor an MLflow model (MLmodel)"
        )
    else:
        raise ModelNotFoundError(f"--model {spec}: no such folder, and not a models:/ or runs:/ URI")
    coder.batch_size = batch_size
    return coder


# ---------------------------------------------------------------- the command
def _blocks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while block := list(islice(iterator, size)):
        yield block


def check_paths(input_path: Path, output_path: Path) -> None:
    """One-line errors for an --input that is missing and an --output that cannot be written safely."""
    if not input_path.is_file():
        raise FileNotFoundError(f"--input {input_path}: file not found")
    if output_path.is_dir():
        raise ValueError(f"--output {output_path} is a folder; give the path of the JSONL file to write")
    same = output_path.samefile(input_path) if output_path.exists() else output_path.resolve() == input_path.resolve()
    if same:
        raise ValueError(
            f"--output {output_path} is the --input file: its notes would be replaced by their predictions; "
            "write to another file"
        )


@contextlib.contextmanager
def exclusive_output(output_path: Path) -> Iterator[IO[str]]:
    """A unique temporary file beside `output_path`, renamed onto it when the block ends without error,
    under an exclusive lock that refuses a second writer of the same output (module docstring)."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with open(output_path.with_name(f".{output_path.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(
                f"--output {output_path}: another medcoder predict is writing it; "
                "wait for it to finish or choose another output file"
            ) from None
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent)
        tmp = Path(tmp_name)
        try:
            with open(fd, "w", encoding="utf-8") as out:
                yield out
            os.replace(tmp, output_path)
        finally:
            tmp.unlink(missing_ok=True)


class _Progress:
    """Notes done, notes/s and errors so far, as a rich status line on stderr; silent unless stderr is a
    terminal, so logs and pipes get only the summary line."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.completed:,.0f} notes, {task.fields[rate]} notes/s, {task.fields[errors]} errors so far"),
            TimeElapsedColumn(),
            console=Console(file=sys.stderr),
            disable=not enabled,
        )
        self.task = self.progress.add_task("predict", total=None, rate="-", errors=0)

    def __enter__(self) -> _Progress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def update(self, counts: Counter[str]) -> None:
        done = sum(counts.values())
        elapsed = self.progress.tasks[0].elapsed or 0.0
        rate = f"{done / elapsed:.1f}" if elapsed > 0 else "-"
        self.progress.update(self.task, completed=done, rate=rate, errors=done - counts["coded"])


def predict_file(
    coder: ExportedCoder, input_path: Path, output_path: Path, *, progress: bool = False, claim_check: Any = None,
    audit: Any = None, risk: Any = None,
) -> Counter[str]:  # fmt: skip
    """Write one contract line per input line; returns counts of "coded" and of each error kind.

    `progress` shows a status line on stderr (used when stderr is a terminal). With `claim_check`
    (`claims.contract_risk.ClaimCheck`), each note with a payer gets its claim's denial risk (`denial_risk`).
    With `risk` (`risk.section.RiskSettings`), each note gets its CMS-HCC risk adjustment (`risk_adjustment`).
    With `audit` (`audit.store.AuditLog`), each block's codes are written to it as `suggest` entries before
    their lines are written: no prediction leaves without its record.
    """
    from medcoder.audit.suggestions import suggestion_entries
    from medcoder.claims.contract_risk import with_denial_risk
    from medcoder.inference.inputs import InputNote, read_input_lines

    check_paths(input_path, output_path)
    counts: Counter[str] = Counter()
    with exclusive_output(output_path) as out, _Progress(progress) as bar:
        for block in _blocks(read_input_lines(input_path, max_chars=coder.max_chars), BLOCK_SIZE):
            lines = coder.predict_records(block)
            if claim_check is not None:
                lines = [with_denial_risk(line, item, claim_check) if isinstance(item, InputNote) else line
                         for item, line in zip(block, lines, strict=True)]  # fmt: skip
            if risk is not None:  # last: its review reasons come last (inference.routing.REASON_ORDER)
                from medcoder.risk.section import with_risk_adjustment

                lines = [with_risk_adjustment(line, item, risk) if isinstance(item, InputNote) else line
                         for item, line in zip(block, lines, strict=True)]  # fmt: skip
            if audit is not None:
                audit.append(entry for item, line in zip(block, lines, strict=True) if isinstance(item, InputNote)
                             for entry in suggestion_entries(line, item.text, setting=item.setting,
                                                             threshold=coder.threshold,
                                                             manifest_sha256=coder.manifest_sha256))  # fmt: skip
            for line in lines:
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                counts[line["error"]["kind"] if "error" in line else "coded"] += 1
            bar.update(counts)
    return counts


def cmd_predict(args: argparse.Namespace) -> int:
    input_path, output_path = Path(args.input), Path(args.output)
    check_paths(input_path, output_path)  # before the model loads: a wrong path costs no minutes
    claim_check = None
    if args.denial_risk or args.ptp or args.mue:  # read before the model loads: a bad file costs no minutes
        from medcoder.claims.contract_risk import ClaimCheck
        from medcoder.claims.edits import read_mue_edits, read_ptp_edits
        from medcoder.claims.risk import load_risk_model
        from medcoder.registry.denial_risk import fetch_denial_risk

        history = None
        if args.denial_risk:
            with tempfile.TemporaryDirectory(prefix="medcoder-denial-risk-") as tmp:
                history = load_risk_model(fetch_denial_risk(args.denial_risk, Path(tmp)))
        claim_check = ClaimCheck(history,
                                 read_ptp_edits(args.ptp) if args.ptp else None,
                                 read_mue_edits(args.mue) if args.mue else None, args.risk_flag)  # fmt: skip
    audit = None
    if args.audit is not None:  # opened (and migrated) before the model loads: a bad URL costs no minutes
        from medcoder.audit.store import AuditLog

        audit = AuditLog(args.audit)
    coder = load_model(args.model, max_chars=args.max_chars, batch_size=args.batch_size)
    risk = None
    if args.risk_adjustment:
        from medcoder.risk.section import RiskSettings

        weights = coder.verifier.weights if coder.verifier is not None else None
        risk = RiskSettings(args.hcc_model, weights.stated_bar if weights is not None else None)
    counts = predict_file(
        coder, input_path, output_path, progress=sys.stderr.isatty(), claim_check=claim_check, audit=audit, risk=risk
    )
    errors = {kind: n for kind, n in sorted(counts.items()) if kind != "coded"}
    detail = ", ".join(f"{kind}: {n}" for kind, n in errors.items())
    model = coder.model_info
    print(
        f"{sum(counts.values())} input lines: {counts['coded']} notes coded, {sum(errors.values())} error entries"
        f"{f' ({detail})' if detail else ''} with {model['name']} version {model['version']} -> {output_path}",
        file=sys.stderr,
    )
    return 0
