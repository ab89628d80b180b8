"""End to end on a tiny model: the loss falls, evidence lands on the right characters, checkpoints
reload, bf16 runs, and unsupported combinations fail before the first step."""

from __future__ import annotations

import functools
from dataclasses import replace

import lightning as L
import numpy as np
import pytest
import torch
from test_model_corpus import make_corpus

from medcoder.data.datamodule import CodingDataModule
from medcoder.data.schema import CodeAssignment, write_notes
from medcoder.inference.predict import predict_with_scores
from medcoder.models.coder import MedicalCoder
from medcoder.models.lit_module import CoderLitModule, linear_warmup

torch.set_num_threads(1)
CHUNKING = dict(chunk_size=32, chunk_overlap=8, max_chunks=4)


def write_corpus(root, strip_evidence: bool = False, em_evidence: bool = False) -> str:
    for split, n, seed in (("train", 64, 0), ("val", 16, 1), ("test", 8, 2)):
        records = make_corpus(n, seed, em_evidence=em_evidence)
        if strip_evidence:
            records = [replace(r, codes=tuple(CodeAssignment(c.system, c.code) for c in r.codes)) for r in records]
        write_notes(records, root / f"{split}.jsonl")
    return str(root)


def make_datamodule(data_dir: str) -> CodingDataModule:
    dm = CodingDataModule(dataset="embedded", data_dir=data_dir, encoder="tiny-random-bert", batch_size=8,
                          label_systems=["ICD-10-CM"], **CHUNKING)  # fmt: skip
    dm.setup("fit")
    return dm


def make_model(dm: CodingDataModule, **overrides) -> CoderLitModule:
    options = dict(
        net=functools.partial(
            MedicalCoder, encoder="tiny-random-bert", finetune="full", attention_size=32, head_dropout=0.0
        ),
        labels=dm.label_space.to_list(),
        optimizer=functools.partial(torch.optim.AdamW, lr=3e-3),
        encoder_lr=3e-3,
        attention_loss_weight=1.0,
        **CHUNKING,
    )
    options.update(overrides)
    torch.manual_seed(0)
    return CoderLitModule(**options)


def trainer(**kwargs) -> L.Trainer:
    options = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    options.update(kwargs)
    return L.Trainer(**options)


class LossHistory(L.Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    dm = make_datamodule(write_corpus(tmp_path_factory.mktemp("corpus"), em_evidence=True))
    model = make_model(dm, em_attention_loss_weight=1.0)
    history = LossHistory()
    fit = trainer(max_epochs=12, callbacks=[history])
    fit.fit(model, datamodule=dm)
    return dm, model, fit, history


def test_loss_falls(trained) -> None:
    _, _, _, history = trained
    assert len(history.losses) == 96
    assert np.mean(history.losses[-8:]) < 0.5 * np.mean(history.losses[:8])


def test_validation_metrics_and_scores_are_kept(trained) -> None:
    dm, model, fit, _ = trained
    for key in (
        "val/loss",
        "val/micro_f1",
        "val/map",
        "val/macro_f1",
        "val/evidence_f1",
        "train/loss",
        "train/em_attention_loss",
    ):
        assert key in fit.callback_metrics, key
    assert fit.callback_metrics["val/map"] > 0.6  # far above chance on this easy corpus
    assert model.val_scores.shape == (16, len(dm.label_space))
    np.testing.assert_array_equal(model.val_targets, dm.label_space.encode_many(dm.records["val"]))


def test_predicted_evidence_lands_on_the_gold_characters(trained) -> None:
    dm, model, _, _ = trained
    records = dm.records["train"][:16]
    predictions = predict_with_scores(model, records, threshold=0.5)[0]
    assert [p.id for p in predictions] == [r.id for r in records]
    exact = on_gold = gold_total = 0
    for record, prediction in zip(records, predictions):
        predicted = {c.code: c for c in prediction.codes}
        for gold in record.codes_of("ICD-10-CM"):
            gold_total += 1
            (gold_span,) = [c.evidence[0] for c in record.codes if c.code == gold]
            code = predicted.get(gold)
            if code is None or not code.grounded:
                continue
            exact += list(code.evidence) == [gold_span]
            on_gold += all(s < gold_span[1] and gold_span[0] < e for s, e in code.evidence)
    assert on_gold >= 0.9 * gold_total, f"{on_gold}/{gold_total} gold codes grounded on their gold span"
    assert exact >= 0.6 * gold_total, f"{exact}/{gold_total} gold codes with exactly their gold span"


def test_em_attention_moves_onto_the_em_evidence_and_grounds_the_level(trained) -> None:
    """The em_attention term pulls the E/M pool onto the gold E/M evidence (the assessment sentences),
    and the level's predicted evidence then sits there."""
    dm, model, _, _ = trained
    untrained = make_model(dm, em_attention_loss_weight=1.0)  # the same initial weights
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        before = untrained.losses(untrained(batch), batch)["em_attention_loss"]
        after = model.eval().losses(model(batch), batch)["em_attention_loss"]
    assert torch.isfinite(after) and after < 0.5 * before, (float(before), float(after))
    records = dm.records["val"]
    predictions = predict_with_scores(model, records)[0]
    leveled = [(r, p) for r, p in zip(records, predictions) if p.em_code is not None]
    assert len(leveled) >= 0.8 * len(records)
    for record, prediction in leveled:
        (em,) = [c for c in record.codes if c.system == "CPT"]
        start, end = prediction.em_evidence[0]  # the best window
        assert any(s <= start and end <= e for s, e in em.evidence), record.id


def test_em_attention_loss_is_zero_without_em_evidence(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path))  # E/M codes without evidence spans, as in CodiEsp
    model = make_model(dm, em_attention_loss_weight=0.5)
    history = LossHistory()
    fit = trainer(max_steps=2, callbacks=[history], limit_val_batches=1)
    fit.fit(model, datamodule=dm)
    assert fit.callback_metrics["train/em_attention_loss"] == 0 and np.isfinite(history.losses).all()
    with pytest.raises(ValueError, match="em_attention_loss_weight must be >= 0"):
        make_model(dm, em_attention_loss_weight=-0.1)


def test_distractor_mentions_never_ground_a_code(trained) -> None:
    dm, model, _, _ = trained
    records = dm.records["val"]
    for record, prediction in zip(records, predict_with_scores(model, records, threshold=0.5)[0]):
        predicted = {c.code: c for c in prediction.codes}
        for mention in record.mentions:  # negated, family or hypothetical, never a gold code here
            code = predicted.get(mention.code)
            assert code is None or not code.grounded, (record.id, mention.status)


def test_checkpoint_reloads_to_the_same_predictions(trained, tmp_path) -> None:
    dm, model, fit, _ = trained
    path = tmp_path / "coder.ckpt"
    fit.save_checkpoint(path)
    reloaded = CoderLitModule.load_trained(str(path))
    records = dm.records["test"]
    before, scores_before = predict_with_scores(model, records)
    after, scores_after = predict_with_scores(reloaded, records)
    np.testing.assert_allclose(scores_after, scores_before, atol=1e-6)
    assert after == before
    assert reloaded.label_space == model.label_space and reloaded.chunking == model.chunking


def test_bf16_mixed_precision_trains(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path))
    model = make_model(dm)
    history = LossHistory()
    trainer(max_steps=3, precision="bf16-mixed", callbacks=[history], limit_val_batches=1).fit(model, datamodule=dm)
    assert len(history.losses) == 3 and np.isfinite(history.losses).all()


def test_attention_supervision_without_evidence_fails_before_training(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path, strip_evidence=True))
    model = make_model(dm, attention_loss_weight=0.5)
    with pytest.raises(ValueError, match="no evidence spans to supervise attention"):
        trainer(max_steps=1).fit(model, datamodule=dm)


def test_mismatched_labels_or_chunking_fail_before_training(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path))
    with pytest.raises(ValueError, match="differ from the datamodule's label space"):
        trainer(max_steps=1).fit(make_model(dm, labels=list(reversed(dm.label_space.to_list()))), datamodule=dm)
    with pytest.raises(ValueError, match="chunking"):
        trainer(max_steps=1).fit(make_model(dm, chunk_overlap=4), datamodule=dm)


def test_unsupported_settings_fail_at_construction(tmp_path) -> None:
    labels = [["ICD-10-CM", "I10"], ["ICD-10-CM", "E11.65"]]
    base = dict(labels=labels, optimizer=functools.partial(torch.optim.AdamW, lr=1e-3))
    with pytest.raises(ValueError, match="needs encoder_lr"):
        CoderLitModule(net=functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="full"), **base)
    with pytest.raises(ValueError, match="set encoder_lr to null"):
        CoderLitModule(
            net=functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="frozen"), encoder_lr=1e-5, **base
        )
    with pytest.raises(ValueError, match="exceeds the encoder's 512 positions"):
        CoderLitModule(net=functools.partial(MedicalCoder, encoder="tiny-random-bert"), chunk_size=1024, **base)
    with pytest.raises(ValueError, match="predicts 3 labels but 2"):
        CoderLitModule(net=MedicalCoder(num_labels=3, encoder="tiny-random-bert"), **base)


def test_full_finetuning_uses_its_own_encoder_learning_rate() -> None:
    model = CoderLitModule(
        net=functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="full"),
        labels=[["ICD-10-CM", "I10"]], optimizer=functools.partial(torch.optim.AdamW, lr=1e-3), encoder_lr=5e-5,
    )  # fmt: skip
    heads, encoder = model.configure_optimizers()["optimizer"].param_groups
    assert heads["lr"] == 1e-3 and encoder["lr"] == 5e-5
    assert {id(p) for p in encoder["params"]} == {id(p) for p in model.net.encoder.parameters()}


def test_linear_warmup_schedule() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = linear_warmup(optimizer, num_training_steps=100, warmup_fraction=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(0.5) and lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5) and lrs[99] == pytest.approx(1 / 90)  # (100 - 99) / (100 - 10)


class ModeProbe(L.Callback):
    """Records, at the first training step, any module Lightning would run in eval mode (docs/STACK.md, eval-mode)."""

    def __init__(self) -> None:
        self.eval_modules: list[str] | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.eval_modules is None:
            self.eval_modules = [name for name, m in pl_module.named_modules() if not m.training]


def test_lora_coder_trains_with_every_module_in_train_mode(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path))
    net = functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="lora", lora_r=4, lora_dropout=0.1)
    model = make_model(dm, net=net, encoder_lr=None)
    probe = ModeProbe()
    trainer(max_steps=2, callbacks=[probe], limit_val_batches=1).fit(model, datamodule=dm)
    assert probe.eval_modules == []


def test_hydra_builds_datamodule_and_module_from_config(tmp_path) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "data": {"_target_": "medcoder.data.datamodule.CodingDataModule", "dataset": "embedded",
                 "data_dir": write_corpus(tmp_path), "encoder": "tiny-random-bert", "label_systems": ["ICD-10-CM"],
                 "top_k": 3, **CHUNKING},
        "model": {"_target_": "medcoder.models.lit_module.CoderLitModule",
                  "net": {"_target_": "medcoder.models.coder.MedicalCoder", "_partial_": True,
                          "encoder": "tiny-random-bert", "finetune": "lora", "lora_target_modules": ["query", "key"]},
                  "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 1e-3},
                  "scheduler": {"_target_": "medcoder.models.lit_module.linear_warmup", "_partial_": True,
                                "warmup_fraction": 0.1},
                  **CHUNKING},
    })  # fmt: skip
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(cfg.model, labels=dm.label_space.to_list())
    assert len(model.label_space) == 3 and model.net.config["lora_target_modules"] == ["query", "key"]
    history = LossHistory()
    trainer(max_steps=2, callbacks=[history], limit_val_batches=1).fit(model, datamodule=dm)
    assert len(history.losses) == 2


@pytest.mark.slow
def test_ddp_validation_matches_single_device(trained, monkeypatch) -> None:
    """Two CPU processes (gloo) each validate a shard; gathered by note index, the metrics equal
    a single-device run's, and DDP training runs with the bucketing batch sampler.

    Both workers talk over the loopback interface: left to itself, gloo binds to whatever the host
    name resolves to, and in a sandboxed CI container a worker died with SIGABRT (docs/STACK.md, gloo)."""
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    dm, model, _, _ = trained
    single = trainer().validate(model, datamodule=dm, verbose=False)[0]
    ddp = trainer(strategy="ddp_spawn", devices=2).validate(model, datamodule=dm, verbose=False)[0]
    for key in ("val/map", "val/micro_f1", "val/macro_f1", "val/evidence_f1"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key
    fit = trainer(strategy="ddp_spawn", devices=2, max_steps=2, limit_val_batches=1)
    before = [p.detach().clone() for p in model.net.head_parameters()]
    fit.fit(model, datamodule=dm)
    # ddp_spawn trains in worker processes and loads their weights back into this model (its loop
    # counters stay in the workers), so "training ran" is checked on the weights
    assert any(not torch.equal(b, p.detach()) for b, p in zip(before, model.net.head_parameters()))
