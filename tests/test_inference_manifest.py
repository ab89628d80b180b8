"""Artifact manifest: a sealed folder verifies; one changed byte, a removed file, an added file, an
edited manifest or a symbolic link is caught and the file at fault is named."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from medcoder.hashing import file_sha256
from medcoder.inference.manifest import MANIFEST_NAME, TamperedArtifactError, verify_manifest, write_manifest


@pytest.fixture
def artifact(tmp_path):
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "model.safetensors").write_bytes(os.urandom(3 * (1 << 20) + 17))  # several read chunks
    (root / "config.json").write_text('{"labels": ["E11.65", "I10"]}')
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "vocab.txt").write_text("[PAD]\n[CLS]\n")
    (root / "empty.txt").write_bytes(b"")
    write_manifest(root)
    return root


def test_a_sealed_artifact_verifies_and_its_hash_is_content_addressed(artifact, tmp_path):
    manifest = json.loads((artifact / MANIFEST_NAME).read_text())
    assert [e["path"] for e in manifest["files"]] == [
        "config.json",
        "empty.txt",
        "tokenizer/vocab.txt",
        "weights/model.safetensors",
    ]
    weights = artifact / "weights" / "model.safetensors"
    assert manifest["files"][3] == {
        "path": "weights/model.safetensors",
        "sha256": file_sha256(weights),
        "size": weights.stat().st_size,
    }
    digest = verify_manifest(artifact)
    assert digest == manifest["manifest_sha256"]
    assert verify_manifest(artifact, expected_hash=digest) == digest
    copy = shutil.copytree(artifact, tmp_path / "copy")
    assert verify_manifest(copy) == digest
    write_manifest(copy)  # resealing identical content gives the identical manifest
    assert (copy / MANIFEST_NAME).read_bytes() == (artifact / MANIFEST_NAME).read_bytes()


def test_one_changed_byte_is_caught(artifact):
    weights = artifact / "weights" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[2 * (1 << 20) + 5] ^= 0x01  # same size: only the hash can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(TamperedArtifactError, match="weights/model.safetensors: SHA-256 differs") as info:
        verify_manifest(artifact)
    assert info.value.path == "weights/model.safetensors"


def test_a_removed_file_is_caught(artifact):
    (artifact / "tokenizer" / "vocab.txt").unlink()
    with pytest.raises(TamperedArtifactError, match="tokenizer/vocab.txt: listed in the manifest but missing"):
        verify_manifest(artifact)


def test_an_added_file_is_caught(artifact):
    (artifact / "weights" / "adapter.bin").write_bytes(b"\x00")
    with pytest.raises(TamperedArtifactError, match="weights/adapter.bin: not listed in the manifest"):
        verify_manifest(artifact)


def test_a_changed_size_is_caught_before_hashing(artifact):
    (artifact / "config.json").write_text('{"labels": ["E11.65", "I10", "Z99.999"]}')
    with pytest.raises(TamperedArtifactError, match="config.json: size"):
        verify_manifest(artifact)


def test_an_edited_manifest_is_caught(artifact):
    weights = artifact / "weights" / "model.safetensors"
    weights.write_bytes(b"swapped weights")
    manifest = json.loads((artifact / MANIFEST_NAME).read_text())
    manifest["files"][3].update(sha256=file_sha256(weights), size=weights.stat().st_size)  # forged entry
    (artifact / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(TamperedArtifactError, match="manifest was edited"):
        verify_manifest(artifact)


def test_a_forged_but_consistent_manifest_is_caught_by_the_registered_hash(artifact):
    registered = verify_manifest(artifact)
    (artifact / "weights" / "model.safetensors").write_bytes(b"swapped weights")
    write_manifest(artifact)  # an attacker can reseal; the hash recorded at registration still differs
    with pytest.raises(TamperedArtifactError, match=f"is not the expected {registered}"):
        verify_manifest(artifact, expected_hash=registered)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"format": "other/1", "files": [], "manifest_sha256": ""}',
        '{"format": "medcoder-manifest/1", "manifest_sha256": "x", '
        '"files": [{"path": "../outside", "sha256": "0", "size": 1}]}',
    ],
)
def test_a_malformed_manifest_is_caught(artifact, content):
    (artifact / MANIFEST_NAME).write_text(content)
    with pytest.raises(TamperedArtifactError, match="not a valid medcoder-manifest/1 manifest"):
        verify_manifest(artifact)


def test_a_missing_manifest_is_caught(artifact):
    (artifact / MANIFEST_NAME).unlink()
    with pytest.raises(TamperedArtifactError, match="manifest is missing"):
        verify_manifest(artifact)


def test_symbolic_links_are_refused(artifact, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    (artifact / "link.bin").symlink_to(outside)
    with pytest.raises(TamperedArtifactError, match="link.bin: is a symbolic link"):
        verify_manifest(artifact)
    with pytest.raises(ValueError, match="link.bin is a symbolic link"):
        write_manifest(artifact)
