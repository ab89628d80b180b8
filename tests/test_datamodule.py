"""CodingDataModule: label space, gold tags and evidence tokens, E/M targets, bucketing, padding, errors."""

from __future__ import annotations

import random

import pytest
import torch
from test_model_corpus import make_corpus
from torch.utils.data import RandomSampler

from medcoder.codes.em import EM_CLASSES
from medcoder.data.datamodule import BucketBatchSampler, CodingDataModule
from medcoder.data.schema import parse_record, write_notes
from medcoder.data.spans import IGNORE, B, I, O

torch.set_num_threads(1)


def write_splits(root, train, val=None, test=None) -> str:
    write_notes(train, root / "train.jsonl")
    write_notes(val if val is not None else train[:4], root / "val.jsonl")
    write_notes(test if test is not None else train[:4], root / "test.jsonl")
    return str(root)


def datamodule(data_dir: str, **kwargs) -> CodingDataModule:
    options = dict(encoder="tiny-random-bert", chunk_size=16, chunk_overlap=4, max_chunks=6, batch_size=4)
    options.update(kwargs)
    dm = CodingDataModule(dataset="embedded", data_dir=data_dir, **options)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> str:
    return write_splits(tmp_path_factory.mktemp("corpus"), make_corpus(24, seed=0), make_corpus(8, seed=1))


def test_label_space_keeps_systems_and_top_k_but_not_em_levels(corpus_dir: str) -> None:
    dm = datamodule(corpus_dir, label_systems=None)
    assert all(system == "ICD-10-CM" for system, _ in dm.label_space.labels)  # office E/M is the E/M head's
    assert len(dm.label_space) == 5
    top = datamodule(corpus_dir, top_k=2)
    assert top.label_space.labels == dm.label_space.labels[:2]


def test_gold_tags_cover_exactly_the_evidence(corpus_dir: str) -> None:
    dm = datamodule(corpus_dir)
    batch = next(iter(dm.val_dataloader()))
    records = dm.records["val"]
    for b, i in enumerate(batch["index"].tolist()):
        record = records[i]
        evidence = [span for c in record.codes for span in c.evidence]
        offsets = batch["token_offsets"][b].reshape(-1, 2).tolist()
        tags = batch["bio_tags"][b].reshape(-1).tolist()
        for (start, end), tag in zip(offsets, tags):
            if start < 0:
                assert tag == IGNORE
            else:
                inside = any(start < e and s < end for s, e in evidence)
                assert (tag in (B, I)) == inside
        # every mention (negated, family, ...) is O
        for m in record.mentions:
            assert all(t == O for (s, e), t in zip(offsets, tags) if s >= 0 and s < m.end and m.start < e)


def test_evidence_index_points_at_each_codes_evidence_tokens(corpus_dir: str) -> None:
    dm = datamodule(corpus_dir)
    batch = next(iter(dm.val_dataloader()))
    offsets = batch["token_offsets"].reshape(batch["labels"].shape[0], -1, 2)
    assert batch["evidence_index"].shape[0] > 0
    for b, label, t in batch["evidence_index"].tolist():
        record = dm.records["val"][batch["index"][b]]
        system, code = dm.label_space.labels[label]
        (span,) = [c.evidence for c in record.codes if (c.system, c.code) == (system, code)]
        start, end = offsets[b, t].tolist()
        assert batch["labels"][b, label] == 1
        assert any(start < e and s < end for s, e in span)


def test_em_evidence_index_points_at_the_gold_em_codes_evidence_tokens(tmp_path) -> None:
    dm = datamodule(write_splits(tmp_path, make_corpus(12, seed=0, em_evidence=True)))
    batch = next(iter(dm.train_dataloader()))
    n = batch["labels"].shape[0]
    offsets = batch["token_offsets"].reshape(n, -1, 2)
    pairs = {tuple(p) for p in batch["em_evidence_index"].tolist()}
    for b, i in enumerate(batch["index"].tolist()):
        record = dm.records["train"][i]
        (em,) = [c for c in record.codes if c.system == "CPT"]
        expected = {(b, t) for t, (start, end) in enumerate(offsets[b].tolist())
                    if start >= 0 and any(start < e and s < end for s, e in em.evidence)}  # fmt: skip
        assert expected and {p for p in pairs if p[0] == b} == expected
        # E/M evidence is not tagger evidence: "Assessment:" is O, only the ICD codes' phrases are B/I
        icd = [span for c in record.codes if c.system == "ICD-10-CM" for span in c.evidence]
        tags = batch["bio_tags"][b].reshape(-1).tolist()
        em_only = [t for _, t in expected if not any(offsets[b, t, 0] < e and s < offsets[b, t, 1] for s, e in icd)]
        assert em_only and all(tags[t] == O for t in em_only)
    without = next(iter(datamodule(write_splits(tmp_path / "plain", make_corpus(12, seed=0))).train_dataloader()))
    assert without["em_evidence_index"].shape == (0, 2)


def test_em_targets(corpus_dir: str) -> None:
    dm = datamodule(corpus_dir)
    batch = next(iter(dm.val_dataloader()))
    for b, i in enumerate(batch["index"].tolist()):
        (level,) = dm.records["val"][i].codes_of("CPT")
        assert EM_CLASSES[batch["em_labels"][b]] == level


def test_dynamic_padding_and_truncation_report(tmp_path) -> None:
    records = make_corpus(6, seed=2)
    long_text = " ".join(["Vitals are stable."] * 80)
    records.append(parse_record({"id": "long1", "text": long_text, "codes": []}))
    dm = datamodule(write_splits(tmp_path, records), batch_size=8)
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape[1] == 6  # the long note fills max_chunks
    assert dm.truncated_ids["train"] == ["long1"]
    short = datamodule(write_splits(tmp_path / "s", make_corpus(6, seed=3)), batch_size=8)
    assert next(iter(short.train_dataloader()))["input_ids"].shape[1] < 6


def test_note_with_an_unevidenced_code_gets_no_tag_supervision(tmp_path) -> None:
    text = "Assessment: essential hypertension. Denies chest pain."
    record = parse_record({"id": "x1", "text": text, "codes": [
        {"system": "ICD-10-CM", "code": "I10", "evidence": [[12, 34]]},
        {"system": "ICD-10-CM", "code": "R07.9"},  # no span: "O" on its text would be wrong
    ]})  # fmt: skip
    dm = datamodule(write_splits(tmp_path, [record] + make_corpus(3, seed=4)))
    (note,) = [n for n in dm.encoded("train") if dm.records["train"][n.index].id == "x1"]
    assert all(t == IGNORE for chunk in note.bio_tags for t in chunk)
    assert note.evidence  # I10's evidence still supervises its attention


def test_two_office_em_levels_on_one_note_is_an_error(tmp_path) -> None:
    record = parse_record({"id": "bad-em", "text": "Office visit.", "codes": [
        {"system": "CPT", "code": "99213"}, {"system": "CPT", "code": "99214"}]})  # fmt: skip
    dm = datamodule(write_splits(tmp_path, make_corpus(3, seed=5) + [record]))
    with pytest.raises(ValueError, match="bad-em has 2 office E/M codes"):
        dm.encoded("train")


def test_bucket_sampler_is_complete_deterministic_and_groups_lengths() -> None:
    lengths = [((i * 37) % 101) for i in range(200)]

    def sampler(seed: int = 7) -> BucketBatchSampler:
        order = RandomSampler(range(200), generator=torch.Generator().manual_seed(seed))
        return BucketBatchSampler(order, batch_size=8, lengths=lengths, seed=seed, bucket_batches=5)

    first = sampler()
    epoch0 = list(first)
    assert sorted(i for batch in epoch0 for i in batch) == list(range(200))
    assert len(epoch0) == len(first) == 25
    assert epoch0 == list(sampler())  # same seed, same batches
    first.set_epoch(1)
    assert list(first) != epoch0

    def mean_spread(batches) -> float:
        return sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)

    order = random.Random(0).sample(range(200), 200)
    unbucketed = [order[j : j + 8] for j in range(0, 200, 8)]
    assert mean_spread(epoch0) < mean_spread(unbucketed) / 3


def test_bucket_sampler_length_with_and_without_drop_last() -> None:
    lengths = list(range(45))
    keep = BucketBatchSampler(range(45), batch_size=4, lengths=lengths, bucket_batches=5)  # buckets of 20, 20, 5
    drop = BucketBatchSampler(range(45), batch_size=4, drop_last=True, lengths=lengths, bucket_batches=5)
    assert len(keep) == len(list(keep)) == 5 + 5 + 2
    assert len(drop) == len(list(drop)) == 5 + 5 + 1
    assert all(len(b) == 4 for b in drop)


def test_bad_settings_fail_at_construction(corpus_dir: str) -> None:
    with pytest.raises(ValueError, match="exceeds the encoder's 512 positions"):
        CodingDataModule(data_dir=corpus_dir, encoder="tiny-random-bert", chunk_size=1024)
    with pytest.raises(ValueError, match="chunk_overlap"):
        CodingDataModule(data_dir=corpus_dir, encoder="tiny-random-bert", chunk_size=16, chunk_overlap=14)
    dm = CodingDataModule(data_dir=corpus_dir, encoder="tiny-random-bert", label_systems=["CPT"])
    with pytest.raises(ValueError, match="no codes of systems"):
        dm.setup("fit")
