"""The n-gram layer: starts as the identity, mixes exactly its window of note tokens, learns what a mean hides."""

from __future__ import annotations

import pytest
import torch

from medcoder.models.coder import MedicalCoder
from medcoder.models.label_attention import LabelAttention
from medcoder.models.ngram import NgramMixer


def test_a_fresh_layer_is_the_identity() -> None:
    torch.manual_seed(0)
    layer = NgramMixer(hidden_size=8, kernel_size=3)
    hidden = torch.randn(2, 10, 8)
    mask = torch.ones(2, 10, dtype=torch.bool)
    assert torch.equal(layer(hidden, mask), hidden)


def test_it_mixes_its_window_of_note_tokens_and_nothing_else() -> None:
    torch.manual_seed(0)
    layer = NgramMixer(hidden_size=8, kernel_size=3)
    torch.nn.init.normal_(layer.window.weight)  # as after training
    hidden = torch.randn(1, 12, 8)
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 0] = mask[0, 11] = False  # [CLS] and [SEP]
    base = layer(hidden, mask)
    near, far, special = hidden.clone(), hidden.clone(), hidden.clone()
    near[0, 6] += 1.0  # right neighbour of token 5
    far[0, 7] += 1.0  # two to the right: outside a 3-token window
    special[0, 0] += 1.0  # [CLS] next to token 1
    assert not torch.allclose(layer(near, mask)[0, 5], base[0, 5])
    assert torch.equal(layer(far, mask)[0, 5], base[0, 5])
    assert torch.equal(layer(special, mask)[0, 1], base[0, 1])
    assert torch.equal(base[0, 0], hidden[0, 0])  # non-note positions pass through unchanged


@pytest.mark.parametrize("kernel", [0, 2, 4])
def test_even_or_empty_windows_fail_with_a_sentence(kernel: int) -> None:
    with pytest.raises(ValueError, match="ngram_kernel must be an odd number"):
        NgramMixer(hidden_size=8, kernel_size=kernel)


def test_label_attention_reads_a_code_a_span_mean_hides_only_with_the_layer() -> None:
    """Toy "BMI <value>": a 3-token span whose middle token decides between two codes, in
    noisy states. Without the layer
    the pooled span mixes the deciding token with its two noisy neighbours, with it the neighbours
    carry the deciding token too. Trained the same way, only the model with the layer learns the codes."""

    def batch(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = torch.randn(n, 6, 16, generator=generator) * 2.0
        value = torch.randint(0, 2, (n,), generator=generator)
        hidden[:, 2, :] = 0.0
        hidden[:, 2, 0] = value.float() * 2 - 1  # the deciding token: one clean direction
        return hidden, torch.nn.functional.one_hot(value, 2).float()

    def train(with_layer: bool) -> float:
        torch.manual_seed(0)
        attention = LabelAttention(hidden_size=16, num_labels=2, attention_size=8)
        layer = NgramMixer(16, 3) if with_layer else None
        params = list(attention.parameters()) + (list(layer.parameters()) if layer else [])
        optimizer = torch.optim.Adam(params, lr=1e-2)
        generator = torch.Generator().manual_seed(1)

        def span_mask(n: int) -> torch.Tensor:  # attention sees only the span, as if supervised onto it
            mask = torch.zeros(n, 6, dtype=torch.bool)
            mask[:, 1:4] = True
            return mask

        mask = span_mask(64)
        for _ in range(150):
            hidden, target = batch(64, generator)
            states = layer(hidden, mask) if layer else hidden
            loss = torch.nn.functional.binary_cross_entropy_with_logits(attention(states, mask)[0], target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        hidden, target = batch(512, torch.Generator().manual_seed(2))
        mask = span_mask(512)
        with torch.no_grad():
            states = layer(hidden, mask) if layer else hidden
            return float(torch.nn.functional.binary_cross_entropy_with_logits(attention(states, mask)[0], target))

    with_layer, without = train(with_layer=True), train(with_layer=False)
    assert with_layer < 0.5 * without  # measured 0.10 against 0.63 (chance: 0.69)


def test_the_coder_builds_it_from_config_and_trains_it_with_the_heads() -> None:
    plain = MedicalCoder(num_labels=3, encoder="tiny-random-bert", finetune="frozen")
    assert plain.ngram is None and plain.config["ngram_kernel"] is None  # earlier checkpoints still load
    net = MedicalCoder(num_labels=3, encoder="tiny-random-bert", finetune="frozen", ngram_kernel=3)
    assert net.config["ngram_kernel"] == 3
    head_ids = {id(p) for p in net.head_parameters()}
    assert all(id(p) in head_ids for p in net.ngram.parameters())
