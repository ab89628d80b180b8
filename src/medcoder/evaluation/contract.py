"""Score a model's prediction-contract lines, as a serving team would see them.

Training logs metrics computed on the coder's raw scores inside the training process. Promotion
must not trust those: the thing that gets served is the packaged pyfunc, with its own threshold,
routing policy and code-set filter. `medcoder.registry.scoring` fetches a registered version
(checked against its seal before any of its code is imported) and hands its model to this module, which
1. predicts on a pinned evaluation set (contract JSONL with gold codes; its `records_digest` sha256
   is recorded with every result so two evaluations are comparable only when the digests match);
2. checks every output line with `validate_contract_line` and turns it back into a `NotePrediction`;
3. scores with `medcoder.metrics.evaluate_split`, the code every model is scored with.

What the contract can and cannot measure. It returns only the codes the model emits (score above
its own threshold, valid, not dropped by routing), so a code is "predicted" exactly when it is in
the output. micro/macro P/R/F1, exact match, evidence, ungrounded, distractor, invalid-code,
over-generation and E/M metrics are therefore defined. Ranking metrics (mAP, precision@k, recall@k,
R-precision), AUC and calibration need every label's score on every note, which the contract does
not expose: they are left out (`SCORE_MATRIX_METRICS`), never reported as numbers.

Label scope. With `label_space=None` every code in the gold set or the output counts (a gold code
the model cannot predict is a miss on the claim): use it to compare two models, whose own label
spaces may differ. Visit-level E/M codes (`medcoder.codes.em.is_visit_em`) are left out of that scope: the contract
returns the visit level in `em`, and `em_accuracy`/`em_macro_f1` score it, so counting it again as
a note-level label would score it twice (or as a miss for every coder that puts it in `em`).
Passing the model's training label space (`split.run_label_space`) restricts scoring to it, as the
training run does, which reproduces the run's logged test metrics.

Notes the model answers with an error entry (empty text, too long) or with a line that breaks the
contract count as predicting nothing; their number is reported (`contract_error_rate`,
`contract_violation_rate`) and violations can be gated. A batch whose output does not have one line
per input is not scorable at all: ContractError.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from medcoder.codes import UnsupportedCodeSystemError, is_valid_code
from medcoder.codes.em import is_visit_em
from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction, PredictedCode
from medcoder.data.schema import NoteRecord, load_notes, records_digest
from medcoder.inference.contract import ContractError, validate_contract_line
from medcoder.metrics import evaluate_split
from medcoder.metrics.classification import PRECISION_AT, RECALL_AT

log = logging.getLogger(__name__)

# evaluate_split keys that need the full (notes x labels) score matrix: not measurable from the contract.
SCORE_MATRIX_METRICS: tuple[str, ...] = (
    *(f"precision_at_{k}" for k in PRECISION_AT),
    *(f"recall_at_{k}" for k in RECALL_AT),
    "r_precision",
    "map",
    "auc_micro",
    "auc_macro",
    "expected_calibration_error",
)
DEFAULT_BATCH_SIZE = 32
INPUT_FIELDS: tuple[str, ...] = ("setting", "age", "sex")  # optional fields the pyfunc accepts besides id, text


class ContractModel(Protocol):
    """What a loaded pyfunc offers: contract input dicts in, one contract line per input out."""

    def predict(self, model_input: Any) -> Any: ...


# ---------------------------------------------------------------- the pinned evaluation set
@dataclass(frozen=True)
class EvalSet:
    """A pinned evaluation set: its file, its validated records and their sha256 (`records_digest`)."""

    path: Path
    records: tuple[NoteRecord, ...]
    sha256: str


def load_eval_set(path: str | Path) -> EvalSet:
    """Load and validate a contract JSONL evaluation set (RecordError names file, line and field)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: evaluation set not found")
    records = tuple(load_notes(path))
    if not records:
        raise ValueError(f"{path}: evaluation set has no records")
    return EvalSet(path=path, records=records, sha256=records_digest(records))


def contract_input(record: NoteRecord) -> dict[str, Any]:
    """What the model sees of a gold record: id, text and the optional fields; never the codes."""
    out: dict[str, Any] = {"id": record.id, "text": record.text}
    for name in INPUT_FIELDS:
        value = getattr(record, name)
        if value is not None:
            out[name] = value
    return out


# ---------------------------------------------------------------- contract lines -> predictions
def prediction_from_line(line: Mapping[str, Any]) -> NotePrediction:
    """A valid contract prediction line back to a NotePrediction (evidence as spans, E/M kept apart)."""
    codes = tuple(
        PredictedCode(
            system=c["system"],
            code=c["code"],
            score=float(c["score"]),
            grounded=bool(c["grounded"]),
            evidence=tuple((int(e["start"]), int(e["end"])) for e in c["evidence"]),
        )
        for c in line["codes"]
    )
    em = line.get("em")
    truncated = [int(r.split(":", 1)[1]) for r in line["review"]["reasons"] if r.startswith("truncated:")]
    return NotePrediction(
        id=line["id"],
        codes=codes,
        read_chars=truncated[0] if truncated else None,
        em_code=None if em is None else em["code"],
        em_score=None if em is None else float(em["score"]),
        em_evidence=() if em is None else tuple((int(e["start"]), int(e["end"])) for e in em["evidence"]),
    )


def _valid_for_output(system: str, code: str) -> bool:
    try:
        return is_valid_code(system, code)
    except UnsupportedCodeSystemError:
        return False


@dataclass
class ContractScore:
    """Metrics of one model's contract output on one set, with what could not be scored and why.

    violations: note id -> ContractError message (never note text); error_entries: note id -> kind.
    """

    metrics: dict[str, float]
    per_code: pd.DataFrame
    violations: dict[str, str]
    error_entries: dict[str, str]


def score_contract_lines(
    records: Sequence[NoteRecord],
    lines: Sequence[Mapping[str, Any] | str],
    label_space: LabelSpace | None = None,
) -> ContractScore:
    """Score contract output lines against gold records; `lines[i]` must answer `records[i]`.

    label_space: None scores every code in the gold records or the output (see module docstring).
    """
    if len(lines) != len(records):
        raise ContractError(
            f"the model returned {len(lines)} output lines for {len(records)} input notes; "
            "the contract is one line per input, in input order"
        )
    predictions: list[NotePrediction] = []
    violations: dict[str, str] = {}
    error_entries: dict[str, str] = {}
    review_required = 0
    for record, line in zip(records, lines):
        try:
            validate_contract_line(line, note_text=record.text)
            if isinstance(line, (str, bytes)):  # a JSON line as `medcoder predict` writes it
                line = json.loads(line)
            if line["id"] != record.id:
                raise ContractError(f"line for id {line['id']!r} is in the place of note {record.id!r}")
        except ContractError as err:
            violations[record.id] = str(err)
            predictions.append(NotePrediction(id=record.id))
            continue
        if "error" in line:
            error_entries[record.id] = line["error"]["kind"]
            predictions.append(NotePrediction(id=record.id))
            continue
        review_required += bool(line["review"]["required"])
        predictions.append(prediction_from_line(line))
    for note_id, message in list(violations.items())[:5]:
        log.warning("contract violation for note %s: %s", note_id, message)

    if label_space is None:
        gold = {(c.system, c.code) for r in records for c in r.codes}
        emitted = {(c.system, c.code) for p in predictions for c in p.codes}
        label_space = LabelSpace(tuple(sorted(label for label in gold | emitted if not is_visit_em(*label))))
    # 1.0 where the model returned the code: "returned" is the decision, so any threshold in (0, 1) reads it.
    returned = np.zeros((len(records), len(label_space)), dtype=np.float64)
    for i, p in enumerate(predictions):
        for c in p.codes:
            if (c.system, c.code) in label_space:
                returned[i, label_space.index((c.system, c.code))] = 1.0
    result = evaluate_split(records, label_space, returned, 0.5, predictions=predictions, is_valid=_valid_for_output)

    metrics = {k: v for k, v in result.metrics.items() if k not in SCORE_MATRIX_METRICS}
    if metrics.get("distractor_pairs") == 0:  # no distractor mention in scope: the rate is undefined, not 0
        metrics["distractor_false_positive_rate"] = math.nan
    n = len(records)
    metrics.update(
        {
            "notes": float(n),
            "labels": float(len(label_space)),
            "contract_violations": float(len(violations)),
            "contract_violation_rate": len(violations) / n,
            "contract_error_entries": float(len(error_entries)),
            "contract_error_rate": len(error_entries) / n,
            "review_required_rate": review_required / n,
        }
    )
    per_code = result.per_code.drop(columns=["average_precision"])  # needs scores, not decisions
    return ContractScore(metrics=metrics, per_code=per_code, violations=violations, error_entries=error_entries)


def predict_contract(
    model: ContractModel, records: Sequence[NoteRecord], batch_size: int = DEFAULT_BATCH_SIZE
) -> list[dict[str, Any]]:
    """Run `model.predict` on contract inputs in batches; returns every output line in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lines: list[dict[str, Any]] = []
    for start in range(0, len(records), batch_size):
        batch = [contract_input(r) for r in records[start : start + batch_size]]
        out = model.predict(batch)
        if isinstance(out, pd.DataFrame):  # a pyfunc without type hints returns a frame of lines
            out = out.to_dict(orient="records")
        out = list(out)
        if len(out) != len(batch):
            raise ContractError(
                f"the model returned {len(out)} output lines for a batch of {len(batch)} notes "
                f"(notes {batch[0]['id']} .. {batch[-1]['id']}); the contract is one line per input"
            )
        lines.extend(out)
    return lines
