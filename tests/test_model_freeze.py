"""Frozen parts keep their weights through a fit, and a fit with the E/M level's parts frozen leaves every
note's E/M probabilities as they were while the code heads still learn (the denial-feedback fine-tune)."""

from __future__ import annotations

import functools

import pytest
import torch
from test_model_training import make_datamodule, make_model, trainer, write_corpus

from medcoder.models.coder import EM_LEVEL_PARTS, FREEZABLE_PARTS, MedicalCoder


def em_and_code_probabilities(model, dm) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        token_mask = batch["token_offsets"][..., 0] >= 0
        out = model.net(batch["input_ids"], batch["attention_mask"], token_mask)
    model.train()
    return torch.softmax(out.em_logits, -1), torch.sigmoid(out.code_logits)


def test_freezing_the_em_level_parts_holds_the_em_level_and_trains_the_code_heads(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path, em_evidence=True))
    net = functools.partial(MedicalCoder, encoder="tiny-random-bert", finetune="full", attention_size=32,
                            head_dropout=0.0, ngram_kernel=3)  # fmt: skip
    model = make_model(dm, net=net, frozen_parts=list(EM_LEVEL_PARTS))
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    em_before, codes_before = em_and_code_probabilities(model, dm)

    trainer(max_epochs=2).fit(model, datamodule=dm)

    after = model.net.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not {k for k in moved if k.split(".")[0] in EM_LEVEL_PARTS}, "a frozen part's weight changed"
    assert {k.split(".")[0] for k in moved} == {"label_attention", "evidence_tagger"}
    em_after, codes_after = em_and_code_probabilities(model, dm)
    torch.testing.assert_close(em_after, em_before)
    assert (codes_after - codes_before).abs().max() > 1e-3  # the code heads learnt


def test_unknown_or_all_parts_are_refused(tmp_path) -> None:
    dm = make_datamodule(write_corpus(tmp_path))
    with pytest.raises(ValueError, match=r"cannot freeze \['decoder'\]: the net's parts are encoder, ngram"):
        make_model(dm, frozen_parts=["decoder"])
    with pytest.raises(ValueError, match="leaves no weight to train"):
        make_model(dm, frozen_parts=list(FREEZABLE_PARTS))
