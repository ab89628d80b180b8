"""export_coder / load_exported: merged weights give the checkpoint's probabilities, the folder is
self-contained and sealed, tampering is refused, and predictions follow the contract record by record."""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from export_support import MAX_CHARS, TinyCoder, tiny_coder
from safetensors.torch import load_file

from medcoder.codes import code_set_versions, is_valid_code
from medcoder.codes.em import EM_CLASSES
from medcoder.data.chunking import covering
from medcoder.export.artifact import ArtifactError, ExportedCoder, export_coder, load_exported
from medcoder.inference.contract import validate_contract_line
from medcoder.inference.manifest import MANIFEST_NAME, TamperedArtifactError, write_manifest
from medcoder.inference.predict import predict_notes
from medcoder.inference.routing import RoutingPolicy
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyCoder:
    return tiny_coder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def checkpoint_coder(tiny: TinyCoder) -> CoderLitModule:
    return CoderLitModule.load_trained(str(tiny.checkpoint))


@pytest.fixture(scope="session")
def exported(tiny: TinyCoder) -> ExportedCoder:
    return load_exported(tiny.export_dir)


# ---------------------------------------------------------------- merge correctness
def test_lora_was_trained_so_the_merge_test_can_fail(checkpoint_coder: CoderLitModule, tiny: TinyCoder) -> None:
    lora_b = [p for name, p in checkpoint_coder.net.encoder.named_parameters() if "lora_B" in name]
    assert lora_b and all(p.abs().max() > 1e-4 for p in lora_b), "LoRA B is still zero: merging would be a no-op"
    merged = load_file(str(tiny.export_dir / "encoder" / "model.safetensors"))
    base = checkpoint_coder.net.encoder.get_base_model().state_dict()
    query = "encoder.layer.0.attention.self.query"
    unmerged = base[f"{query}.base_layer.weight"]  # peft keeps the frozen weight under base_layer
    assert not torch.allclose(merged[f"{query}.weight"], unmerged), "the saved query weight has no LoRA update"


def test_exported_probabilities_equal_the_checkpoints(checkpoint_coder, exported, tiny) -> None:
    ckpt_predictions, ckpt_scores = predict_notes(
        checkpoint_coder.net,
        tiny.records,
        checkpoint_coder.label_space.labels,
        covering(checkpoint_coder.chunking, exported.max_chars),
        tiny.threshold,
    )
    export_predictions, export_scores = exported.predict_with_scores(tiny.records)
    assert export_scores.shape == (len(tiny.records), len(exported.label_space))
    np.testing.assert_allclose(export_scores, ckpt_scores, atol=1e-5, rtol=0)
    assert [p.code_set() for p in export_predictions] == [p.code_set() for p in ckpt_predictions]
    assert sum(len(p.codes) for p in export_predictions) > 0, "no code fired: the comparison would be vacuous"


def test_a_fully_fine_tuned_coder_exports_without_peft(tiny: TinyCoder, tmp_path) -> None:
    torch.manual_seed(1)
    net = MedicalCoder(num_labels=5, encoder="tiny-random-bert", finetune="full", attention_size=16)
    with torch.no_grad():  # move the encoder away from its seeded init, as training would
        net.encoder.encoder.layer[0].attention.self.query.weight.add_(0.05)
    coder = CoderLitModule(net=net, labels=[["ICD-10-CM", c] for c in ("I10", "E11.9", "E78.5", "J45.909", "N39.0")],
                           optimizer=functools.partial(torch.optim.AdamW, lr=1e-3), encoder_lr=1e-4,
                           chunk_size=128, chunk_overlap=16, max_chunks=3)  # fmt: skip
    export_coder(coder, tmp_path / "full", threshold=0.5, routing=RoutingPolicy())
    loaded = load_exported(tmp_path / "full")
    _, expected = predict_notes(
        coder.net, tiny.records[:6], coder.label_space.labels, covering(coder.chunking, loaded.max_chars), 0.5
    )  # the export reads whole notes
    _, actual = loaded.predict_with_scores(tiny.records[:6])
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=0)


def test_export_leaves_the_trained_coder_unmerged(checkpoint_coder, tmp_path) -> None:
    before = {k: v.clone() for k, v in checkpoint_coder.net.state_dict().items()}
    export_coder(checkpoint_coder, tmp_path / "again", threshold=0.4, routing=RoutingPolicy())
    after = checkpoint_coder.net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


# ---------------------------------------------------------------- what the folder holds
def test_folder_is_self_contained_and_records_what_serving_needs(tiny: TinyCoder, checkpoint_coder) -> None:
    root = tiny.export_dir
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert {"coder.json", "heads.safetensors", "icd11_map.tsv", MANIFEST_NAME,
            "encoder/config.json", "encoder/model.safetensors", "encoder/tokenizer.json"} <= files  # fmt: skip
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pkl", ".ckpt")) or "adapter" in f], files
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    assert {e["path"] for e in manifest["files"]} == files - {MANIFEST_NAME}

    config = json.loads((root / "coder.json").read_text())
    assert config["net"]["encoder"] == "encoder" and config["net"]["finetune"] == "frozen"
    assert not [k for k in config["net"] if k.startswith("lora_")]
    assert config["trained_finetune"] == "lora"
    assert config["labels"] == checkpoint_coder.label_space.to_list()
    assert config["threshold"] == pytest.approx(tiny.threshold)
    assert config["chunking"] == {"chunk_size": 128, "chunk_overlap": 16, "max_chunks": 3}
    assert config["em_classes"] == list(EM_CLASSES)
    assert config["code_sets"]["ICD-10-CM"] == code_set_versions()["ICD-10-CM"]
    assert (
        RoutingPolicy(**{k: tuple(v) if isinstance(v, list) else v for k, v in config["routing"].items()})
        == RoutingPolicy()
    )
    assert config["max_chars"] == MAX_CHARS and config["run_id"] is None


def test_export_refuses_a_non_empty_folder_and_a_bad_threshold(checkpoint_coder, tmp_path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        export_coder(checkpoint_coder, tmp_path / "taken", threshold=0.5, routing=RoutingPolicy())
    with pytest.raises(ValueError, match="threshold"):
        export_coder(checkpoint_coder, tmp_path / "new", threshold=1.0, routing=RoutingPolicy())


# ---------------------------------------------------------------- tampering
def _copy(tiny: TinyCoder, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny.export_dir, tmp_path / "coder"))


def test_a_flipped_byte_in_any_file_is_refused_naming_the_file(tiny: TinyCoder, tmp_path: Path) -> None:
    root = _copy(tiny, tmp_path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    assert len(files) >= 6
    for path in files:
        original = path.read_bytes()
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))
        rel = path.relative_to(root).as_posix()
        with pytest.raises(TamperedArtifactError, match="content changed") as err:
            load_exported(root)
        assert err.value.path == rel and rel in str(err.value)
        path.write_bytes(original)
    assert load_exported(root).manifest_sha256  # restored: loads again


def test_extra_and_missing_files_and_an_edited_manifest_are_refused(tiny: TinyCoder, tmp_path: Path) -> None:
    root = _copy(tiny, tmp_path)
    (root / "encoder" / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    with pytest.raises(TamperedArtifactError, match="extra file"):
        load_exported(root)
    (root / "encoder" / "adapter_model.safetensors").unlink()
    heads = (root / "heads.safetensors").read_bytes()
    (root / "heads.safetensors").unlink()
    with pytest.raises(TamperedArtifactError, match="heads.safetensors: listed in the manifest but missing"):
        load_exported(root)
    (root / "heads.safetensors").write_bytes(heads)
    manifest = json.loads((root / MANIFEST_NAME).read_text())
    manifest["files"][0]["sha256"] = "0" * 64
    (root / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(TamperedArtifactError, match="manifest was edited"):
        load_exported(root)


def test_a_resealed_artifact_for_other_code_sets_is_refused(tiny: TinyCoder, tmp_path: Path) -> None:
    """Sealing is integrity, not compatibility: a model built for another ICD-10-CM release must not serve here."""
    root = _copy(tiny, tmp_path)
    config = json.loads((root / "coder.json").read_text())
    config["code_sets"]["ICD-10-CM"] = "FY2019"
    (root / "coder.json").write_text(json.dumps(config))
    write_manifest(root)
    with pytest.raises(ArtifactError, match=r"code_sets\.ICD-10-CM.*FY2019"):
        load_exported(root)


# ---------------------------------------------------------------- contract output, record by record
def test_predict_records_gives_one_valid_line_per_input_in_order(exported: ExportedCoder, tiny: TinyCoder) -> None:
    notes = tiny.records[:4]
    good = [{"id": r.id, "text": r.text, "setting": r.setting, "age": r.age, "sex": r.sex} for r in notes]
    bad = [
        {"id": "empty", "text": ""},
        {"id": "blank", "text": " \n\t "},
        {"id": "long", "text": "x" * (MAX_CHARS + 1)},
        {"id": "number", "text": 42},
        {"id": "surrogate", "text": "pain \ud800 in chest"},
        {"text": "no id here"},
        "not an object",
        {"id": notes[0].id, "text": "the same id again"},
    ]
    inputs = [good[0], bad[0], good[1], *bad[1:], good[2], good[3]]
    out = exported.predict_records(inputs)

    assert [line["id"] for line in out] == [
        notes[0].id,
        "empty",
        notes[1].id,
        "blank",
        "long",
        "number",
        "surrogate",
        "line:8",
        "line:9",
        notes[0].id,
        notes[2].id,
        notes[3].id,
    ]
    kinds = [line["error"]["kind"] for line in out if "error" in line]
    assert kinds == ["empty_text", "empty_text", "too_long", "not_a_string", "invalid_utf8", "missing_id",
                     "invalid_json", "duplicate_id"]  # fmt: skip
    texts = {r.id: r.text for r in notes}
    for line in out:
        validate_contract_line(
            line, note_text=texts.get(line["id"]) if "error" not in line else None, is_valid=is_valid_code
        )
        if "error" in line:
            assert "chest" not in line["error"]["message"] and "no id here" not in line["error"]["message"]
    coded = [line for line in out if "error" not in line]
    assert len(coded) == 4 and sum(len(line["codes"]) for line in coded) > 0
    assert coded[0]["model"] == {
        "name": "medcoder", "version": f"sha256:{exported.manifest_sha256[:12]}", "run_id": None,
        "code_sets": json.loads((tiny.export_dir / "coder.json").read_text())["code_sets"],
    }  # fmt: skip


def test_a_note_the_model_fails_on_becomes_a_model_error_entry(
    exported: ExportedCoder, tiny: TinyCoder, monkeypatch
) -> None:
    """Real failure injection: the net raises on any batch holding the poisoned token; the rest is coded."""
    poison = exported.net.tokenizer.convert_tokens_to_ids("banana")
    assert poison != exported.net.tokenizer.unk_token_id
    real_forward = exported.net.forward

    def forward(input_ids, attention_mask, token_mask):
        if (input_ids == poison).any():
            raise RuntimeError("injected failure")
        return real_forward(input_ids, attention_mask, token_mask)

    monkeypatch.setattr(exported.net, "forward", forward)
    notes = [{"id": r.id, "text": r.text} for r in tiny.records[:3]]
    notes.insert(1, {"id": "poisoned", "text": "Plays the banana. Essential hypertension."})
    out = exported.predict_records(notes)
    assert [line["id"] for line in out] == [notes[0]["id"], "poisoned", notes[2]["id"], notes[3]["id"]]
    assert out[1]["error"]["kind"] == "model_error" and "RuntimeError" in out[1]["error"]["message"]
    assert all("codes" in line for i, line in enumerate(out) if i != 1)


def test_max_chars_override_applies(tiny: TinyCoder) -> None:
    small = load_exported(tiny.export_dir, max_chars=50, model_name="m", model_version="3")
    text = tiny.records[0].text
    assert len(text) > 50
    [line] = small.predict_records([{"id": "a", "text": text}])
    assert line["error"]["kind"] == "too_long"
    [ok] = small.predict_records([{"id": "b", "text": "Essential hypertension."}])
    assert ok["model"]["name"] == "m" and ok["model"]["version"] == "3"
