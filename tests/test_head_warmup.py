"""Head warm-up (LP-FT): the heads learn from cached encoder states, the encoder is left exactly as it
was (weights and train mode), and a resumed fit does not warm up again over trained heads."""

from __future__ import annotations

import functools

import pytest
import torch
from test_model_training import make_datamodule, make_model, trainer, write_corpus

from medcoder.models.coder import MedicalCoder
from medcoder.models.head_warmup import HeadWarmup


def lora_model(dm):
    net = functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="lora", lora_r=4, lora_alpha=8,
                            lora_target_modules=["query", "value"], attention_size=32, head_dropout=0.0)  # fmt: skip
    return make_model(dm, net=net, encoder_lr=None)


@pytest.fixture(scope="module")
def warmed(tmp_path_factory):
    dm = make_datamodule(write_corpus(tmp_path_factory.mktemp("corpus")))
    model = lora_model(dm)
    encoder_before = {k: v.clone() for k, v in model.net.encoder.state_dict().items()}
    heads_before = [p.detach().clone() for p in model.net.head_parameters()]
    warmup = HeadWarmup(epochs=8, lr=1e-2)
    fit = trainer(max_epochs=0, callbacks=[warmup])  # fit runs on_fit_start, then no training step
    fit.fit(model, datamodule=dm)
    return dm, model, warmup, encoder_before, heads_before


def test_warmup_loss_falls(warmed) -> None:
    _, _, warmup, _, _ = warmed
    assert len(warmup.epoch_losses) == 8
    assert warmup.epoch_losses[-1] < 0.7 * warmup.epoch_losses[0]


def test_warmup_trains_heads_only(warmed) -> None:
    _, model, _, encoder_before, heads_before = warmed
    after = model.net.encoder.state_dict()
    assert all(torch.equal(encoder_before[k], after[k]) for k in encoder_before)
    assert all(not torch.equal(b, p) for b, p in zip(heads_before, model.net.head_parameters()))


def test_warmup_gives_modes_back(warmed) -> None:
    _, model, _, _, _ = warmed
    lora_dropouts = [m for name, m in model.net.encoder.named_modules() if name.endswith("lora_dropout.default")]
    assert lora_dropouts and all(m.training for m in lora_dropouts)  # docs/STACK.md, eval-mode
    assert model.net.encoder.training and model.net.label_attention.training


def test_warmed_heads_score_better_than_random_ones(warmed) -> None:
    dm, model, _, _, _ = warmed
    fresh = lora_model(dm)
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        warm_loss = model.losses(model(batch), batch)["code_loss"]
        fresh_loss = fresh.losses(fresh(batch), batch)["code_loss"]
    assert warm_loss < 0.8 * fresh_loss


def test_resumed_fit_skips_warmup(warmed, tmp_path) -> None:
    dm, model, _, _, _ = warmed
    first = trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, enable_checkpointing=True,
                    default_root_dir=tmp_path)  # fmt: skip
    first.fit(model, datamodule=dm)
    warmup = HeadWarmup(epochs=3)
    resumed = trainer(max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[warmup])
    resumed.fit(
        lora_model(dm),
        datamodule=dm,
        ckpt_path=first.checkpoint_callback.best_model_path or first.checkpoint_callback.last_model_path,
    )
    assert warmup.epoch_losses == []


@pytest.mark.parametrize("kwargs", [{"epochs": -1}, {"lr": 0.0}])
def test_bad_arguments_fail_with_a_sentence(kwargs) -> None:
    with pytest.raises(ValueError, match="head warm-up"):
        HeadWarmup(**kwargs)
