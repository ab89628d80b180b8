"""What length batching buys the evidence verifier: one padded batch per note vs batches of similar length.

    .venv/bin/python scripts/bench_verifier_batching.py [--notes 30] [--reps 3] [--threads 2]
                                                         [--batch-tokens 512]

The verifier embeds every sentence of a note it grounds (`SentenceEncoder`, the packaged MiniLM).
A note's sentences run from 3 to 64 tokens; as one batch they all pad to the longest. On the same
generated notes, in one process, repetitions interleaved so machine noise hits both alike, this
prints the median seconds per note of
- one batch per note (what the encoder did before `BATCH_TOKENS`), and
- length batches of at most `--batch-tokens` padded tokens (what it does now),
their ratio, and the largest difference between the two embeddings (they must agree).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from medcoder.data.synth import generate_notes  # noqa: E402
from medcoder.inference.grounding.verifier import (  # noqa: E402
    BATCH_TOKENS,
    SentenceEncoder,
    packaged_sentence_encoder_path,
)

_SENTENCE = re.compile(r"[^\n.;]+")


def note_sentences(n_notes: int, seed: int) -> list[list[str]]:
    """The sentences (or lines) of `n_notes` generated notes, two words or more, one list per note."""
    notes = generate_notes(n_notes, seed)
    return [[s.strip() for s in _SENTENCE.findall(n.text) if len(s.split()) >= 2] for n in notes]


def timed(encoder: SentenceEncoder, notes: list[list[str]]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    out = [encoder.encode(sentences) for sentences in notes]
    return (time.perf_counter() - start) / len(notes), np.concatenate(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notes", type=int, default=30)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-tokens", type=int, default=BATCH_TOKENS)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    notes = note_sentences(args.notes, args.seed)
    encoder = SentenceEncoder(packaged_sentence_encoder_path())
    encoder([s for note in notes[:2] for s in note])  # warm-up
    per_note = {"one_batch": [], "length_batches": []}
    for _ in range(args.reps):
        encoder.batch_tokens = 10**9  # every note's sentences in one batch (at most batch_size texts)
        seconds, one = timed(encoder, notes)
        per_note["one_batch"].append(seconds)
        encoder.batch_tokens = args.batch_tokens
        seconds, batched = timed(encoder, notes)
        per_note["length_batches"].append(seconds)
    one_batch, length_batches = (statistics.median(per_note[k]) for k in ("one_batch", "length_batches"))
    print(f"verifier/notes {len(notes)}")
    print(f"verifier/sentences_per_note {sum(map(len, notes)) / len(notes):.1f}")
    print(f"verifier/one_batch_s_per_note {one_batch:.4f}")
    print(f"verifier/length_batches_s_per_note {length_batches:.4f}")
    print(f"verifier/length_batching_speedup {one_batch / length_batches:.2f}")
    print(f"verifier/max_embedding_difference {float(np.abs(one - batched).max()):.2e}")


if __name__ == "__main__":
    main()
