"""Phase 2 from cached frozen-layer states: the same states as the whole encoder gives, the frozen
layers run once per note and never in a training or validation step, and nothing is cached when no
layer is frozen."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from test_model_training import make_datamodule, make_model, trainer, write_corpus

from medcoder.models.coder import MedicalCoder
from medcoder.models.encoder_layers import frozen_layer_count
from medcoder.models.frozen_layers import FrozenLayerCache, cache_split
from medcoder.models.head_warmup import HeadWarmup


def lora_model(dm, lora_layers):
    net = functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="lora", lora_r=4, lora_alpha=8,
                            lora_target_modules=["query", "value", "dense"], lora_layers=lora_layers,
                            attention_size=32, head_dropout=0.0)  # fmt: skip
    return make_model(dm, net=net, encoder_lr=None)


@pytest.fixture(scope="module")
def dm(tmp_path_factory):
    return make_datamodule(write_corpus(tmp_path_factory.mktemp("corpus")))


def test_only_the_layers_below_the_lowest_adapter_count_as_frozen(dm) -> None:
    assert frozen_layer_count(lora_model(dm, [-1]).net.encoder) == 1  # the tiny BERT has 2 layers
    assert frozen_layer_count(lora_model(dm, None).net.encoder) == 0
    assert frozen_layer_count(make_model(dm).net.encoder) == 0  # full fine-tuning


def test_states_from_the_cache_are_the_whole_encoders(dm) -> None:
    model = lora_model(dm, [-1])
    with torch.no_grad():  # the adapters start as the identity: move them so the upper layer's LoRA counts
        for name, p in model.net.encoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    model.train()
    model.net.eval()  # as the head warm-up reads the cache: the module in training, the net in eval mode
    frozen = cache_split(model.net, dm.train_dataloader(), 1, torch.device("cpu"))
    model.frozen_states = {"train": frozen}
    batches = list(dm.train_dataloader())
    assert len(frozen.chunks) == len(dm.records["train"])
    assert any(b["attention_mask"].flatten(0, 1).any(1).logical_not().any() for b in batches)  # padded chunks too
    with torch.no_grad():
        for batch in batches:
            whole = model.net.encode(batch["input_ids"], batch["attention_mask"])
            torch.testing.assert_close(model.encode(batch, "train"), whole, atol=1e-5, rtol=1e-5)
            assert not model.encode(batch, "test").equal(torch.zeros_like(whole))  # no cache: the whole encoder


def test_a_fit_runs_the_frozen_layers_once_per_note_and_not_in_its_steps(dm) -> None:
    model = lora_model(dm, [-1])
    base = model.net.encoder.get_base_model()
    calls = {"embeddings": 0}
    base.embeddings.register_forward_hook(lambda *_: calls.__setitem__("embeddings", calls["embeddings"] + 1))
    cache, warmup = FrozenLayerCache(), HeadWarmup(epochs=1, lr=1e-2)
    steps = []
    fit = trainer(max_epochs=2, callbacks=[cache, warmup], num_sanity_val_steps=2)
    cached_batches = len(dm.train_dataloader()) + len(dm.val_dataloader())

    class Steps(L.Callback):
        def on_train_batch_end(self, *args) -> None:
            steps.append(calls["embeddings"])

    fit.callbacks.append(Steps())
    fit.fit(model, datamodule=dm)
    assert steps and set(steps) == {cached_batches}  # the embeddings ran for the cache, never in a step
    assert model.frozen_states == {}  # given back after the fit


def test_nothing_is_cached_when_every_layer_trains(dm) -> None:
    model = lora_model(dm, None)
    fit = trainer(max_epochs=0, callbacks=[FrozenLayerCache()])
    fit.fit(model, datamodule=dm)
    assert model.frozen_states == {}


def test_training_steps_drop_out_the_cached_states_at_the_encoders_hidden_dropout(dm) -> None:
    model = lora_model(dm, [-1])
    model.frozen_states = {"train": cache_split(model.net, dm.train_dataloader(), 1, torch.device("cpu"))}
    assert model.frozen_states["train"].dropout == pytest.approx(0.1)  # the tiny BERT's hidden_dropout_prob
    batch = next(iter(dm.train_dataloader()))
    model.train()
    model.net.encoder.get_base_model().encoder.layer[1].eval()  # the adapted layer's own dropout (and LoRA's) off
    with torch.no_grad():
        assert not model.encode(batch, "train").equal(model.encode(batch, "train"))  # the cached states' dropout
        model.frozen_states["train"].dropout = 0.0
        assert model.encode(batch, "train").equal(model.encode(batch, "train"))
