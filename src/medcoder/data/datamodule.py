"""CodingDataModule: contract records -> tokenised, chunked, padded batches for the neural coder.

What a batch holds (B notes, C chunks, S tokens per chunk, L labels; C and S are the batch maxima):
    input_ids, attention_mask  (B, C, S)     encoder input; all-pad chunks are skipped by the model
    token_offsets              (B, C, S, 2)  character offsets of each token, -1 for special/pad
    token_mask                 (B, C, S)     True on note tokens (what the heads attend over)
    labels                     (B, L)        multi-hot gold codes of the label space
    bio_tags                   (B, C, S)     gold evidence O/B/I; -100 on special/pad tokens and on
                                             every token of a note whose codes are not all evidenced
    em_labels                  (B,)          index into EM_CLASSES (0 = none)
    evidence_index             (N, 3)        (note, label, flat token) triples: tokens in the gold
                                             evidence of each gold code, for attention supervision
    em_evidence_index          (M, 2)        (note, flat token) pairs: tokens in the gold evidence of
                                             the note's E/M code, for the E/M pool's attention
    index                      (B,)          position of each note in its split

Why: notes are tokenised once per split and cached; batches are padded only to their own maxima;
training batches come from length buckets (similar lengths together, bucket order shuffled with
the seed) so padding stays small without making batches predictable.
A note whose gold codes are not all evidenced gets no tag supervision: tagging its unevidenced
code's text as O would teach the tagger that real evidence is not evidence. E/M codes (CPT
99202-99499) are left out of tagging both ways: a visit level rests on the whole note's medical
decision making, not on a phrase. Their evidence (patient status, problems addressed, data, risk)
instead supervises the E/M head's attention pool, which reads the whole note anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from functools import partial
from pathlib import PurePath
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler

from medcoder.codes.em import is_visit_em
from medcoder.data.chunking import Chunking, NoteChunks, chunk_notes, pad_chunks
from medcoder.data.labels import LabelSpace, coding_label_space, em_class_index
from medcoder.data.schema import NoteRecord
from medcoder.data.sources import load_dataset
from medcoder.data.spans import IGNORE, bio_tags_for_spans
from medcoder.data.tokenizer import load_tokenizer, max_positions
from medcoder.defaults import SPLITS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedNote:
    """One note, ready to batch: chunks, targets, and where its code evidence sits."""

    index: int
    chunks: NoteChunks
    labels: np.ndarray  # (L,) float32 multi-hot
    bio_tags: tuple[tuple[int, ...], ...]  # per chunk, aligned with chunks.input_ids
    em_label: int
    evidence: tuple[tuple[int, int, int], ...]  # (label, chunk, position in chunk)
    em_evidence: tuple[tuple[int, int], ...] = ()  # (chunk, position in chunk) in the gold E/M code's evidence


def encode_notes(
    records: Sequence[NoteRecord], chunks: Sequence[NoteChunks], label_space: LabelSpace
) -> list[EncodedNote]:
    """Targets for each tokenised note (`chunks[i]` belongs to `records[i]`)."""
    out: list[EncodedNote] = []
    for i, (record, note) in enumerate(zip(records, chunks)):
        tagged_codes = [c for c in record.codes if not is_visit_em(c.system, c.code)]
        all_evidenced = all(c.evidence for c in tagged_codes)
        spans = [span for c in tagged_codes for span in c.evidence]
        bio = tuple(
            tuple(bio_tags_for_spans(offs, spans)) if all_evidenced else tuple(IGNORE for _ in offs)
            for offs in note.offsets
        )
        evidence: list[tuple[int, int, int]] = []
        for c in record.codes:
            if (c.system, c.code) not in label_space or not c.evidence:
                continue
            label = label_space.index((c.system, c.code))
            evidence.extend((label, ci, pos) for ci, pos in _tokens_in(note, c.evidence))
        em_spans = [span for c in record.codes if is_visit_em(c.system, c.code) for span in c.evidence]
        out.append(EncodedNote(i, note, label_space.encode(record), bio, em_class_index(record), tuple(evidence),
                               tuple(_tokens_in(note, em_spans))))  # fmt: skip
    return out


def _tokens_in(note: NoteChunks, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """(chunk, position) of every note token overlapping one of `spans` (special and pad tokens never do)."""
    return [
        (ci, pos)
        for ci, offs in enumerate(note.offsets)
        for pos, (start, end) in enumerate(offs)
        if start >= 0 and any(start < e and s < end for s, e in spans)
    ]


def collate_notes(notes: Sequence[EncodedNote], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad a list of EncodedNotes into one batch (see the module docstring for the keys)."""
    batch = pad_chunks([n.chunks for n in notes], pad_token_id)
    _, n_chunks, seq_len = batch["input_ids"].shape
    bio = torch.full(batch["input_ids"].shape, IGNORE, dtype=torch.long)
    for b, note in enumerate(notes):
        for c, tags in enumerate(note.bio_tags):
            bio[b, c, : len(tags)] = torch.tensor(tags, dtype=torch.long)
    triples = [(b, label, c * seq_len + pos) for b, n in enumerate(notes) for label, c, pos in n.evidence]
    em_pairs = [(b, c * seq_len + pos) for b, n in enumerate(notes) for c, pos in n.em_evidence]
    batch["token_mask"] = batch["token_offsets"][..., 0] >= 0
    batch["labels"] = torch.from_numpy(np.stack([n.labels for n in notes]))
    batch["bio_tags"] = bio
    batch["em_labels"] = torch.tensor([n.em_label for n in notes], dtype=torch.long)
    batch["evidence_index"] = torch.tensor(triples, dtype=torch.long).reshape(-1, 3)
    batch["em_evidence_index"] = torch.tensor(em_pairs, dtype=torch.long).reshape(-1, 2)
    batch["index"] = torch.tensor([n.index for n in notes], dtype=torch.long)
    return batch


def _plain(value: Any) -> Any:
    """Mappings -> dict, sequences -> list, paths -> str, recursively (for checkpoint-safe hparams)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (isinstance(value, Sequence) and not isinstance(value, (str, bytes))):
        return [_plain(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    return value


class _Notes(Dataset):
    def __init__(self, notes: list[EncodedNote]):
        self.notes = notes

    def __len__(self) -> int:
        return len(self.notes)

    def __getitem__(self, i: int) -> EncodedNote:
        return self.notes[i]


class EpochRandomSampler(RandomSampler):
    """A random order of the dataset that is a function of (seed, epoch) alone, as DistributedSampler's.

    torch's RandomSampler draws each epoch from one generator whose state lives only in memory: a
    run resumed at epoch k would replay epoch 0's order. Here epoch k's order is the same whether the
    run got there directly or from a checkpoint (Lightning restores the epoch and calls `set_epoch`).
    A RandomSampler subclass, so Lightning still sees a shuffled loader and shuffles the DDP shards.
    """

    def __init__(self, data_source: Sized, seed: int = 0):
        super().__init__(data_source)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(len(self.data_source), generator=generator).tolist())


class BucketBatchSampler(BatchSampler):
    """Batches of similar-length notes: take the sampler's (shuffled) order, cut it into buckets of
    `batch_size * bucket_batches` notes, sort each bucket by length, batch it, shuffle the batch order.

    A real `BatchSampler` with a `sampler` argument, so that under DDP Lightning swaps in a
    DistributedSampler and each rank buckets its own shard. Batch order is deterministic given
    (seed, epoch). Lightning calls `set_epoch` on `batch_sampler.sampler`, not on the batch sampler
    (lightning.fabric.utilities.data._set_sampler_epoch), so the epoch is read from the sampler when
    it keeps one (EpochRandomSampler and DistributedSampler do).
    """

    def __init__(
        self,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool = False,
        lengths: Sequence[int] = (),
        seed: int = 0,
        bucket_batches: int = 50,
    ):
        super().__init__(sampler, batch_size, drop_last)
        self.lengths, self.seed, self.bucket_batches = list(lengths), seed, bucket_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def _bucket_sizes(self, n: int) -> list[int]:
        bucket = self.batch_size * self.bucket_batches
        return [min(bucket, n - first) for first in range(0, n, bucket)]

    def __len__(self) -> int:
        per_bucket = (lambda m: m // self.batch_size) if self.drop_last else (lambda m: -(-m // self.batch_size))
        return sum(per_bucket(m) for m in self._bucket_sizes(len(self.sampler)))

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        batches: list[list[int]] = []
        first = 0
        for size in self._bucket_sizes(len(order)):
            members = sorted(order[first : first + size], key=lambda i: self.lengths[i])
            first += size
            for j in range(0, size, self.batch_size):
                if len(members[j : j + self.batch_size]) == self.batch_size or not self.drop_last:
                    batches.append(members[j : j + self.batch_size])
        epoch = getattr(self.sampler, "epoch", self.epoch)
        for k in np.random.default_rng([self.seed, epoch]).permutation(len(batches)):
            yield batches[k]


class CodingDataModule(L.LightningDataModule):
    """Train/val/test batches of one dataset for the neural coder.

    `dataset` names a loader of `medcoder.data.sources` ("embedded", "codiesp", ...); `data_dir` and
    `dataset_options` are passed to it. `encoder` picks the tokenizer (None = packaged MiniLM).
    `label_systems`/`top_k` shape the label space, which is built from the train split in `setup`.
    """

    def __init__(
        self,
        dataset: str = "embedded",
        data_dir: str | None = None,
        dataset_options: dict[str, Any] | None = None,
        encoder: str | None = None,
        chunk_size: int = 256,
        chunk_overlap: int = 32,
        max_chunks: int = 8,
        batch_size: int = 8,
        num_workers: int = 0,
        label_systems: list[str] | None = None,
        top_k: int | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.chunking = Chunking(chunk_size, chunk_overlap, max_chunks)
        limit = max_positions(encoder)
        if chunk_size > limit:
            raise ValueError(
                f"chunk_size {chunk_size} exceeds the encoder's {limit} positions: set chunk_size <= {limit}"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or null, got {top_k}")
        # Plain Python values only (Hydra passes ListConfig/DictConfig): Lightning stores these in every
        # checkpoint, which must load with torch.load(weights_only=True).
        data_dir = None if data_dir is None else str(data_dir)
        dataset_options = _plain(dict(dataset_options or {}))
        label_systems = None if label_systems is None else [str(s) for s in label_systems]
        self.save_hyperparameters(logger=False)
        self.dataset_name = dataset
        self.dataset_options = dict(dataset_options)
        if data_dir is not None:
            self.dataset_options["data_dir"] = data_dir
        self.encoder_name = encoder
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.label_systems = label_systems
        self.top_k = top_k
        self.records: dict[str, list[NoteRecord]] = {}
        self.label_space: LabelSpace | None = None
        self.truncated_ids: dict[str, list[str]] = {}
        self._encoded: dict[str, list[EncodedNote]] = {}
        self._tokenizer = None

    # ------------------------------------------------------------ data
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.encoder_name)
        return self._tokenizer

    def setup(self, stage: str | None = None) -> None:
        """Load all splits and build the label space from train (once; later calls reuse them)."""
        if self.records:
            return
        splits = load_dataset(self.dataset_name, **self.dataset_options)
        missing = [s for s in SPLITS if s not in splits]
        if missing:
            raise ValueError(f"dataset {self.dataset_name!r} returned no {', '.join(missing)} split(s)")
        self.records = {s: list(splits[s]) for s in SPLITS}
        self.label_space = coding_label_space(self.records["train"], self.label_systems, self.top_k)
        if len(self.label_space) == 0:
            raise ValueError(
                f"dataset {self.dataset_name!r}: the train split has no codes of systems {self.label_systems}: "
                "check label_systems"
            )
        log.info("label space: %d labels from %d train notes", len(self.label_space), len(self.records["train"]))

    def encoded(self, split: str) -> list[EncodedNote]:
        """The split's notes, tokenised and with targets (computed on first use, then cached)."""
        if split not in self._encoded:
            if self.label_space is None:
                self.setup()
            records = self.records[split]
            chunks = chunk_notes([r.text for r in records], self.tokenizer, self.chunking)
            self.truncated_ids[split] = [r.id for r, c in zip(records, chunks) if c.truncated]
            if self.truncated_ids[split]:
                ids = self.truncated_ids[split]
                log.warning(
                    "%s: %d of %d notes are longer than max_chunks=%d chunks hold and were cut (e.g. %s)",
                    split,
                    len(ids),
                    len(records),
                    self.chunking.max_chunks,
                    ", ".join(ids[:5]),
                )
            self._encoded[split] = encode_notes(records, chunks, self.label_space)
        return self._encoded[split]

    def evidence_coverage(self, split: str = "train") -> float:
        """Share of the split's gold label-space code assignments that carry evidence spans."""
        assignments = [c for r in self.records[split] for c in r.codes if (c.system, c.code) in self.label_space]
        return sum(1 for c in assignments if c.evidence) / len(assignments) if assignments else 0.0

    # ------------------------------------------------------------ loaders
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        notes = self.encoded(split)
        collate = partial(collate_notes, pad_token_id=self.tokenizer.pad_token_id)  # picklable for workers
        if shuffle:
            dataset = _Notes(notes)
            order = EpochRandomSampler(dataset, seed=self.seed)
            lengths = [n.chunks.n_tokens for n in notes]
            batches = BucketBatchSampler(order, self.batch_size, lengths=lengths, seed=self.seed)
            return DataLoader(dataset, batch_sampler=batches, collate_fn=collate, num_workers=self.num_workers)
        return DataLoader(
            _Notes(notes), batch_size=self.batch_size, shuffle=False, collate_fn=collate, num_workers=self.num_workers
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
