"""The attention-vs-explanation game: discriminator losses on fixed inputs, who gets which gradient."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mumo.explain.attention_game import (
    MapDiscriminator,
    PixelDiscriminator,
    discriminator_loss,
    explanation_distribution,
    generator_loss,
    kl_attention_loss,
    mse_attention_loss,
)


class Constant(nn.Module):
    """A 'discriminator' whose logit is a learnable constant b plus a fixed multiple of the input sum."""

    def __init__(self, b: float) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b + 0.0 * x.sum(-1)


def test_discriminator_loss_on_fixed_inputs():
    d = Constant(0.0)  # D = 0.5 everywhere: each BCE term is log 2
    real, fake = torch.rand(4, 16), torch.rand(4, 16)
    assert discriminator_loss(d, real, fake).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(d, fake).item() == pytest.approx(math.log(2))
    d = Constant(2.0)  # D = sigmoid(2): real term −log σ(2), fake term −log(1 − σ(2))
    s = torch.sigmoid(torch.tensor(2.0)).item()
    assert discriminator_loss(d, real, fake).item() == pytest.approx(-math.log(s) - math.log(1 - s), rel=1e-6)
    assert generator_loss(d, fake).item() == pytest.approx(-math.log(s), rel=1e-6)


def test_each_player_gets_only_its_own_gradient():
    torch.manual_seed(0)
    d = MapDiscriminator(cells=16, dropout=0.0)
    attention = torch.rand(5, 16, requires_grad=True)
    real = torch.rand(5, 16, requires_grad=True)
    discriminator_loss(d, real, attention).backward()
    assert attention.grad is None and real.grad is None  # D's loss never reaches the attention
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    d.zero_grad(set_to_none=True)
    generator_loss(d, attention).backward()
    assert all(p.grad is None for p in d.parameters())  # the generator loss never trains D
    assert attention.grad is not None and attention.grad.abs().sum() > 0


def test_discriminators_learn_to_separate_sharp_explanations_from_flat_attention():
    torch.manual_seed(0)
    real = torch.softmax(torch.randn(64, 16) * 4, -1)  # peaked maps
    fake = torch.softmax(torch.randn(64, 16) * 0.1, -1)  # nearly uniform maps
    feats = torch.rand(64, 16, 8)
    for d, r, f in (
        (MapDiscriminator(cells=16), real, fake),
        (PixelDiscriminator(cells=16, features=8), real[..., None] * feats, fake[..., None] * feats),
    ):
        opt = torch.optim.Adam(d.parameters(), lr=1e-2)
        first = None
        for _ in range(150):
            loss = discriminator_loss(d, r, f)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.5 * first
    assert PixelDiscriminator(cells=16, features=8)(real[..., None] * feats).shape == (64, 16)


def test_explanation_distribution_and_mse():
    maps = torch.tensor([[0.0, 2.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [-1.0, 1.0, 0.0, 0.0]])
    dist, valid = explanation_distribution(maps)
    torch.testing.assert_close(dist[0], torch.tensor([0.0, 0.5, 0.5, 0.0]))
    torch.testing.assert_close(dist[1], torch.full((4,), 0.25))  # nothing explains it: uniform, invalid
    torch.testing.assert_close(dist[2], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    assert valid.tolist() == [True, False, True]
    attention = torch.full((3, 4), 0.25, requires_grad=True)
    loss = mse_attention_loss(attention, dist, valid)
    torch.testing.assert_close(loss, torch.tensor([0.25, 0.0, 0.75]))
    loss.sum().backward()
    assert attention.grad[1].abs().sum() == 0  # invalid rows are not trained


def test_kl_attention_loss_values_invalid_rows_and_gradient():
    target = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.25, 0.25, 0.25, 0.25]])
    attention = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1]], requires_grad=True)
    valid = torch.tensor([True, True, False])
    loss = kl_attention_loss(attention, target, valid)  # (3,)
    assert loss.shape == (3,)
    assert loss[0].item() == pytest.approx(0.0, abs=1e-6)  # α = t; zero-target cells where α = 0 add nothing
    assert loss[1].item() == pytest.approx(math.log(1 / 0.4))
    assert loss[2].item() == 0.0  # invalid row
    loss.sum().backward()
    assert attention.grad[1, 3] < 0 and (attention.grad[1, :3] == 0).all()  # only the target's cell is pulled up
    assert (attention.grad[2] == 0).all()
