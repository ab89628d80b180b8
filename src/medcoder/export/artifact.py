"""A trained coder as a self-contained, sealed folder, and that folder loaded back for prediction.

Layout of an exported coder (every file is listed in MANIFEST.sha256.json):

    coder.json            format, net config (encoder path RELATIVE to the folder, finetune "frozen"),
                          chunking, label space, threshold, E/M classes, code-set versions,
                          routing policy, run id, max_chars, library versions
    encoder/              the transformer with LoRA MERGED into its weights (model.safetensors,
                          config.json) and its tokenizer
    heads.safetensors     label attention, evidence tagger and E/M head weights
    icd11_map.tsv         the ICD-11 table the model translates with (a copy: the package may change)
                          (coder.json's `verifier` holds the evidence verifier's weights and the SHA-256
                          of the packaged sentence encoder it reads with; the encoder is not copied)
    lexical.safetensors   only for a blended model: the TF-IDF part (hash buckets, idf, weights;
                          no words), with its weight in coder.json "blend" (medcoder.models.blend)
    MANIFEST.sha256.json  SHA-256 of every file (medcoder.inference.manifest)

Why merged weights and not the LoRA adapter: `adapter_config.json` records the training machine's
absolute base-model path, and the serving side would need peft and the base model as well
(docs/STACK.md, pyfunc-pickle). A merged encoder is a plain transformers model that loads offline, anywhere, and
runs as fast as the base model. transformers 5 always writes safetensors (its `save_pretrained` no
longer has a `safe_serialization` switch), so no pickle is ever loaded from an artifact.

`load_exported` verifies the manifest BEFORE it reads anything else, so a changed or added file is
refused with an error naming that file instead of being executed or silently used.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import json
import logging
import numbers
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from medcoder.codes import code_set_versions, describe, is_valid_code
from medcoder.codes.age_sex import PatientFacts
from medcoder.codes.em import EM_CLASSES
from medcoder.codes.formats import CPT, HCPCS, ICD10CM
from medcoder.codes.icd11 import PACKAGED_TABLE_NAME, Icd11Translator, read_packaged_table
from medcoder.data.chunking import Chunking, covering
from medcoder.data.labels import LabelSpace
from medcoder.data.predictions import NotePrediction
from medcoder.data.schema import NoteRecord
from medcoder.inference.contract import ContractError, render_prediction
from medcoder.inference.grounding.verifier import SupportVerifier, VerifierError, verifier_config, verifier_from_config
from medcoder.inference.inputs import DEFAULT_MAX_CHARS, InputError, InputNote, validate_input
from medcoder.inference.manifest import verify_manifest, write_manifest
from medcoder.inference.predict import predict_notes
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.blend import ScoreBlend
from medcoder.models.coder import MedicalCoder
from medcoder.models.lexical import LinearTfidfScorer
from medcoder.paths import resources_dir

if TYPE_CHECKING:  # Lightning is not needed to load an export
    from medcoder.models.lit_module import CoderLitModule

log = logging.getLogger(__name__)

FORMAT = "medcoder-coder/1"
CONFIG_NAME = "coder.json"
ENCODER_DIR = "encoder"
HEADS_NAME = "heads.safetensors"
LEXICAL_NAME = "lexical.safetensors"
ICD11_NAME = PACKAGED_TABLE_NAME
MODEL_NAME = "medcoder"
# Code sets the model's output is validated against; they must match between export and serving.
OUTPUT_CODE_SETS: tuple[str, ...] = (ICD10CM, CPT, HCPCS)
# Characters of notes handed to the model at once: ~8 notes of a few pages, or one very long note.
GROUP_CHARS = 50_000
_VERSIONED_LIBRARIES = ("medcoder", "torch", "transformers", "tokenizers", "safetensors", "peft")


class ArtifactError(ValueError):
    """An exported-coder folder that cannot be used (wrong format, inconsistent content)."""


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


# ---------------------------------------------------------------- export
def merged_encoder(net: MedicalCoder) -> torch.nn.Module:
    """A copy of the net's encoder with LoRA folded into the base weights (the net is not changed)."""
    encoder = copy.deepcopy(net.encoder)
    if net.finetune == "lora":
        encoder = encoder.merge_and_unload()
    return encoder.eval()


def export_coder(
    coder: CoderLitModule,
    out_dir: Path,
    *,
    threshold: float,
    routing: RoutingPolicy,
    run_id: str | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    verifier: SupportVerifier | None = None,
    blend: ScoreBlend | None = None,
) -> Path:
    """Write `coder` as a sealed exported-coder folder at `out_dir` (new or empty) and return it.

    `threshold` is the decision threshold tuned on val (on the blended scores when `blend` is given);
    `routing` the review policy served with it; `verifier` the evidence verifier fitted on val (None: grounding
    by the context check alone); `blend` a TF-IDF model whose scores are averaged in.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    if not isinstance(routing, RoutingPolicy):
        raise TypeError(f"routing must be a RoutingPolicy, got {type(routing).__name__}")
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    if blend is not None and blend.lexical.num_labels != len(coder.label_space):
        raise ValueError(
            f"the blend's TF-IDF model scores {blend.lexical.num_labels} labels, the coder {len(coder.label_space)}"
        )
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not an empty folder: export into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    net: MedicalCoder = coder.net

    # 1. Encoder (LoRA merged) and tokenizer: a plain transformers folder.
    merged_encoder(net).save_pretrained(out / ENCODER_DIR)
    net.tokenizer.save_pretrained(out / ENCODER_DIR)

    # 2. Heads: every weight of the net outside the encoder.
    heads = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items() if not k.startswith("encoder.")}
    save_file(heads, str(out / HEADS_NAME), metadata={"format": FORMAT})

    # 3. Everything needed to rebuild the net and to render its predictions.
    net_config = {key: value for key, value in net.config.items() if not key.startswith("lora_")}
    net_config.update(encoder=ENCODER_DIR, finetune="frozen")
    versions = code_set_versions()
    translator = Icd11Translator.packaged()
    config = {
        "format": FORMAT,
        "net": net_config,
        "chunking": dataclasses.asdict(coder.chunking),
        "labels": coder.label_space.to_list(),
        "threshold": float(threshold),
        "em_classes": list(EM_CLASSES),
        "code_sets": {**{s: versions[s] for s in OUTPUT_CODE_SETS}, "ICD-11": f"MMS {translator.release}"},
        "routing": {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(routing).items()},
        "run_id": run_id,
        "max_chars": max_chars,
        "trained_finetune": net.finetune,
        "verifier": verifier_config(verifier) if verifier is not None else None,
        "libraries": _library_versions(),
        "blend": None,
    }
    if blend is not None:
        config["blend"] = {"weight": float(blend.weight), "lexical": blend.lexical.save(out / LEXICAL_NAME)}
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(resources_dir() / PACKAGED_TABLE_NAME, out / ICD11_NAME)

    # 4. Seal.
    write_manifest(out)
    log.info("exported coder (%d labels, threshold %.3f) to %s", len(coder.label_space), threshold, out)
    return out


# ---------------------------------------------------------------- load
def read_config(root: Path) -> dict[str, Any]:
    """An export folder's coder.json, checked for the format and the fields a coder is rebuilt from."""
    path = root / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ArtifactError(f"{path}: format {found!r} is not {FORMAT!r}; export the model again with this medcoder")
    missing = [k for k in ("net", "chunking", "labels", "threshold", "em_classes", "code_sets", "routing", "max_chars")
               if k not in config]  # fmt: skip
    if missing:
        raise ArtifactError(f"{path}: missing field(s) {', '.join(missing)}")
    return config


def _inside(root: Path, relative: Any, field: str) -> Path:
    """`root/relative` for a relative path that stays inside the artifact folder."""
    rel = PurePosixPath(str(relative))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ArtifactError(
            f"{root / CONFIG_NAME}: field {field}: {relative!r} must be a path inside the artifact folder"
        )
    return root.joinpath(*rel.parts)


def _check_compatible(config: dict[str, Any], where: Path) -> None:
    """The E/M head and the output code sets must mean here what they meant at export."""
    if list(config["em_classes"]) != list(EM_CLASSES):
        raise ArtifactError(
            f"{where}: field em_classes: the model's E/M classes differ from this medcoder's {list(EM_CLASSES)}"
        )
    here = code_set_versions()
    for system in OUTPUT_CODE_SETS:
        theirs = config["code_sets"].get(system)
        if theirs != here[system]:
            raise ArtifactError(
                f"{where}: field code_sets.{system}: the model was exported with {theirs!r} but this installation "
                f"validates codes with {here[system]!r}; serve it with the medcoder (code sets) it was exported with"
            )


@dataclass
class ExportedCoder:
    """A loaded exported coder: the net in eval mode plus everything that renders its predictions."""

    net: MedicalCoder
    label_space: LabelSpace
    chunking: Chunking
    threshold: float
    routing: RoutingPolicy
    translator: Icd11Translator
    model_info: dict[str, Any]  # the contract's `model` object
    max_chars: int
    manifest_sha256: str
    batch_size: int = 8
    verifier: SupportVerifier | None = None
    guidelines: bool = True  # the ICD-10-CM rule layer (medcoder.inference.guidelines); off only to measure it
    blend: ScoreBlend | None = None  # a TF-IDF model averaged into the code scores (None: neural only)

    def predict_with_scores(self, records: Sequence[NoteRecord]) -> tuple[list[NotePrediction], np.ndarray]:
        """Predictions at the exported threshold and the (n, L) code probabilities (same path as training).

        Every accepted note is read to its end: the chunking covers `max_chars` characters
        (`chunking.covering`), however few chunks the model trained with, and a note that still had
        to be cut says so (`read_chars`, routed to review). Notes go to the model in groups of at most
        `GROUP_CHARS` characters (and `batch_size` notes), so memory stays bounded for long notes.
        """
        chunking = covering(self.chunking, self.max_chars)
        predictions: list[NotePrediction] = []
        scores: list[np.ndarray] = []
        for group in _char_groups(records, GROUP_CHARS):
            p, s = predict_notes(self.net, group, self.label_space.labels, chunking, self.threshold, self.batch_size,
                                 verifier=self.verifier, guidelines=self.guidelines, blend=self.blend)  # fmt: skip
            predictions += p
            scores.append(s)
        return predictions, np.concatenate(scores) if scores else np.zeros((0, len(self.label_space)), dtype=np.float32)

    def predict_records(self, notes: Iterable[Any]) -> list[dict[str, Any]]:
        """One contract dict per input, in input order.

        Each input is an `InputNote`/`InputError` (from `read_input_lines`) or a raw record (dict, or a
        JSON line as str/bytes) that is checked here on its own: a bad record becomes its error entry
        and the rest of the batch is coded as usual.
        """
        items = [self._checked(obj, position) for position, obj in enumerate(notes, start=1)]
        items = _flag_duplicates(items)
        coded = self._predict_guarded([it for it in items if isinstance(it, InputNote)])
        out: list[dict[str, Any]] = []
        for item in items:
            result = coded.get(item.id) if isinstance(item, InputNote) else item
            if isinstance(result, NotePrediction):
                result = self._render(item, result)
            out.append(result if isinstance(result, dict) else result.to_dict())
        return out

    # ---- pieces of predict_records
    def _checked(self, obj: Any, position: int) -> InputNote | InputError:
        if isinstance(obj, (InputNote, InputError)):
            return obj
        return validate_input(obj, self.max_chars, line=position)

    def _predict_guarded(self, notes: list[InputNote]) -> dict[str, NotePrediction | InputError]:
        """Code all notes in one pass; if that fails, one at a time, so one bad note costs one entry."""
        records = [note_record(n) for n in notes]
        if not records:
            return {}
        try:
            predictions, _ = self.predict_with_scores(records)
            return {p.id: p for p in predictions}
        except Exception as exc:  # noqa: BLE001 (retried note by note below)
            if len(records) == 1:
                return {records[0].id: _model_error(records[0].id, exc)}
            log.warning(
                "coding a batch of %d notes failed (%s); coding them one at a time", len(records), type(exc).__name__
            )
        out: dict[str, NotePrediction | InputError] = {}
        for record in records:
            try:
                out[record.id] = self.predict_with_scores([record])[0][0]
            except Exception as exc:  # noqa: BLE001 (becomes this note's error entry)
                out[record.id] = _model_error(record.id, exc)
        return out

    def _render(self, note: InputNote, prediction: NotePrediction) -> dict[str, Any] | InputError:
        try:
            return render_prediction(
                note.id, note.text, prediction, model_info=self.model_info, policy=self.routing,
                translator=self.translator, is_valid=is_valid_code, describe=describe, setting=note.setting,
                patient=PatientFacts(note.age, note.sex, note.encounter_date, note.prior_visit_date),
            )  # fmt: skip
        except ContractError as exc:  # a coder bug: never emit the line, never fail the batch
            return _model_error(note.id, exc)


def note_record(note: InputNote) -> NoteRecord:
    """What the coder and its guideline layer read of a checked input note: the text, the setting, age and sex, and
    the payer (whose billing rules pick some codes, `guidelines.vaccine_administration_by_payer`)."""
    return NoteRecord(id=note.id, text=note.text, setting=note.setting, age=note.age, sex=note.sex, payer=note.payer)


def _char_groups(records: Sequence[NoteRecord], max_chars: int) -> list[list[NoteRecord]]:
    """Consecutive groups of at most `max_chars` characters in all (a longer note is a group of its own)."""
    groups: list[list[NoteRecord]] = []
    size = 0
    for record in records:
        if not groups or size + len(record.text) > max_chars:
            groups.append([])
            size = 0
        groups[-1].append(record)
        size += len(record.text)
    return groups


def _model_error(note_id: str, exc: BaseException) -> InputError:
    """The error entry of a note the model failed on; only the exception type is logged (no text)."""
    log.error("the model failed on note %s (%s)", note_id, type(exc).__name__)
    return InputError(
        note_id, "model_error", f"the model failed on this note ({type(exc).__name__}); see the server log"
    )


def _flag_duplicates(items: list[InputNote | InputError]) -> list[InputNote | InputError]:
    """A second note with an id already in the batch is a `duplicate_id` error (outputs are keyed by id)."""
    first: dict[str, int] = {}
    out: list[InputNote | InputError] = []
    for position, item in enumerate(items, start=1):
        if isinstance(item, InputNote):
            if item.id in first:
                item = InputError(
                    item.id, "duplicate_id", f"id already used by input record {first[item.id]}", item.line
                )
            else:
                first[item.id] = position
        out.append(item)
    return out


def load_exported(
    artifact_dir: str | Path,
    *,
    model_name: str = MODEL_NAME,
    model_version: str | None = None,
    max_chars: int | None = None,
    batch_size: int = 8,
) -> ExportedCoder:
    """Verify, then load an exported coder folder, fully offline.

    `model_name`/`model_version` go into every prediction's `model` object (the registry knows them,
    the folder does not); without a version the model is identified by its content,
    `sha256:<first 12 hex digits of the manifest hash>`. `max_chars` overrides the exported limit.
    """
    if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1):
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    root = Path(artifact_dir)
    manifest_sha256 = verify_manifest(root)  # FIRST: nothing below reads an unverified byte
    config = read_config(root)
    _check_compatible(config, root / CONFIG_NAME)

    net_config = dict(config["net"])
    net_config["encoder"] = str(_inside(root, net_config.get("encoder"), "net.encoder"))
    try:
        net = MedicalCoder(**net_config)
    except TypeError as exc:
        raise ArtifactError(f"{root / CONFIG_NAME}: field net: {exc}") from None
    heads = load_file(str(root / HEADS_NAME))
    missing, unexpected = net.load_state_dict(heads, strict=False)
    missing = [k for k in missing if not k.startswith("encoder.")]
    if missing or unexpected:
        raise ArtifactError(
            f"{root / HEADS_NAME}: weights do not fit the net in {CONFIG_NAME} "
            f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
        )
    net.requires_grad_(False).eval()

    table, release = read_packaged_table(root / ICD11_NAME)
    label_space = LabelSpace.from_list(config["labels"])
    if len(label_space) != net.config["num_labels"]:
        raise ArtifactError(
            f"{root / CONFIG_NAME}: {len(label_space)} labels but the net predicts {net.config['num_labels']}"
        )
    blend = _read_blend(root, config.get("blend"), len(label_space))
    routing_fields = {k: tuple(v) if isinstance(v, list) else v for k, v in config["routing"].items()}
    verifier = None
    if config.get("verifier") is not None:
        try:
            verifier = verifier_from_config(config["verifier"], label_space.labels, str(root / CONFIG_NAME))
        except VerifierError as exc:
            raise ArtifactError(str(exc)) from None
    model_info = {
        "name": model_name,
        "version": model_version or f"sha256:{manifest_sha256[:12]}",
        "run_id": config.get("run_id"),
        "code_sets": dict(config["code_sets"]),
    }
    return ExportedCoder(
        net=net,
        label_space=label_space,
        chunking=Chunking(**config["chunking"]),
        threshold=float(config["threshold"]),
        routing=RoutingPolicy(**routing_fields),
        translator=Icd11Translator(table, release, source=str(root / ICD11_NAME)),
        model_info=model_info,
        max_chars=int(config["max_chars"] if max_chars is None else max_chars),
        manifest_sha256=manifest_sha256,
        batch_size=batch_size,
        verifier=verifier,
        blend=blend,
    )


def read_export_blend(folder: str | Path) -> ScoreBlend | None:
    """The TF-IDF part and weight of an export folder's blend (None for a neural-only model), without loading
    the encoder: a fine-tune from the export can keep it (`init_from_blend: keep`)."""
    root = Path(folder)
    config = read_config(root)
    return _read_blend(root, config.get("blend"), len(config["labels"]))


def _read_blend(root: Path, blend: Any, num_labels: int) -> ScoreBlend | None:
    """The TF-IDF part of a blended model (coder.json "blend"), or None for a neural-only model."""
    if blend is None:
        return None
    where = root / CONFIG_NAME
    try:
        header = dict(blend["lexical"])
        path = _inside(root, header["file"], "blend.lexical.file")
        scorer = LinearTfidfScorer.load(path, header)
        result = ScoreBlend(scorer, float(blend["weight"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: field blend: {exc}") from None
    if scorer.num_labels != num_labels:
        raise ArtifactError(
            f"{where}: field blend: the TF-IDF model scores {scorer.num_labels} labels, the coder {num_labels}"
        )
    return result
