"""Feature-space shift: noise on a module's output only inside the block, seeded, hook released."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.uncertainty.shift import feature_noise


class _Pair(nn.Module):
    """Returns a tuple whose first item is the features (like the grid CNN's (regions, grid))."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        return x * 1.0, (2, 3)


def test_noise_has_the_asked_std_and_is_seeded():
    lin = nn.Identity()
    x = torch.zeros(200, 300)
    with feature_noise(lin, 0.5, seed=3):
        a = lin(x)
    with feature_noise(lin, 0.5, seed=3):
        b = lin(x)
    assert torch.equal(a, b)  # same seed, same noise
    assert a.std().item() == pytest.approx(0.5, rel=0.02) and a.mean().abs().item() < 0.01
    with feature_noise(lin, 0.5, seed=4):
        assert not torch.equal(lin(x), a)
    assert torch.equal(lin(x), x)  # released on exit: clean again


def test_tuple_outputs_keep_their_other_items_and_the_input_is_untouched():
    m = _Pair()
    x = torch.ones(4, 5)
    with feature_noise(m, 1.0):
        feats, grid = m(x)
    assert grid == (2, 3) and feats.shape == x.shape and not torch.equal(feats, x)
    assert torch.equal(x, torch.ones(4, 5))  # never in place


def test_hook_is_released_when_the_block_raises():
    lin = nn.Identity()
    with pytest.raises(RuntimeError), feature_noise(lin, 1.0):
        raise RuntimeError("boom")
    assert not lin._forward_hooks
