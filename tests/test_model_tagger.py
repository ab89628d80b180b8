"""The evidence tagger: a window tagger sees exactly its window, and the linear default stays loadable."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medcoder.models.coder import MedicalCoder
from medcoder.models.tagger import WindowTagger, build_tagger


def test_window_tagger_reads_its_window_and_nothing_beyond() -> None:
    torch.manual_seed(0)
    tagger = WindowTagger(input_size=8, num_tags=3, kernel_size=5, hidden_size=16)
    hidden = torch.randn(1, 12, 8)
    base = tagger(hidden)
    assert base.shape == (1, 12, 3)
    near, far = hidden.clone(), hidden.clone()
    near[0, 7] += 1.0  # two tokens right of token 5: inside its window
    far[0, 8] += 1.0  # three tokens right: outside
    assert not torch.allclose(tagger(near)[0, 5], base[0, 5])
    assert torch.equal(tagger(far)[0, 5], base[0, 5])


@pytest.mark.parametrize("kernel, hidden", [(4, 16), (0, 16), (5, 0), (3, None)])
def test_bad_tagger_shapes_fail_with_a_sentence(kernel, hidden) -> None:
    with pytest.raises(ValueError, match="tagger_"):
        build_tagger(8, 3, kernel, hidden)


def test_default_tagger_is_the_linear_one_of_earlier_checkpoints() -> None:
    net = MedicalCoder(num_labels=3, encoder="tiny-random-bert", finetune="frozen")
    assert isinstance(net.evidence_tagger, nn.Linear)
    windowed = MedicalCoder(
        num_labels=3, encoder="tiny-random-bert", finetune="frozen", tagger_kernel=5, tagger_hidden=8
    )
    assert isinstance(windowed.evidence_tagger, WindowTagger)
    assert windowed.config["tagger_kernel"] == 5 and windowed.config["tagger_hidden"] == 8
