"""Map-vs-mask scores: Spearman parity with scipy, hand-checked pointing game and energy, degenerate rows."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from scipy.stats import spearmanr

from mumo.errors import MumoError
from mumo.metrics.attention import (
    energy_in_mask,
    mean_ignoring_nan,
    pointing_game,
    rank_correlation,
    summarize_map_scores,
)


def test_rank_correlation_matches_scipy_with_ties():
    gen = torch.Generator().manual_seed(0)
    maps = torch.randint(0, 5, (200, 16), generator=gen).float()  # (N, R) many ties
    truth = torch.randint(0, 3, (200, 16), generator=gen).float() / 2  # (N, R) coverage-like, many ties
    maps[:100] += torch.rand(100, 16, generator=gen)  # half the rows without ties in the map
    maps[0] = 1.0  # constant map
    truth[1] = 0.0  # empty mask
    rho = rank_correlation(maps, truth)
    assert rho.shape == (200,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on the constant rows
        expected = torch.tensor([spearmanr(m.numpy(), t.numpy()).statistic for m, t in zip(maps, truth, strict=True)])
    assert torch.isnan(rho[0]) and torch.isnan(rho[1])
    torch.testing.assert_close(rho, expected.to(rho.dtype), equal_nan=True, rtol=0, atol=1e-12)


def test_rank_correlation_extremes_and_empty():
    x = torch.arange(9.0).reshape(1, 9)
    assert rank_correlation(x, x).item() == pytest.approx(1.0)
    assert rank_correlation(-x, x).item() == pytest.approx(-1.0)
    assert rank_correlation(torch.zeros(0, 9), torch.zeros(0, 9)).shape == (0,)


def test_mean_ignoring_nan():
    assert mean_ignoring_nan(torch.tensor([0.5, math.nan, 1.0, math.nan])) == (0.75, 2)
    mean, undefined = mean_ignoring_nan(torch.tensor([math.nan]))
    assert math.isnan(mean) and undefined == 1


def test_pointing_game_single_argmax():
    truth = torch.tensor([[0.0, 0.5, 0.0, 0.0]] * 4)  # (4, 4) the mask is cell 1
    maps = torch.tensor(
        [
            [0.1, 0.9, 0.2, 0.0],  # hit
            [0.9, 0.1, 0.2, 0.0],  # miss
            [0.5, 0.5, 0.0, 0.0],  # tie: the first maximal cell (0) is pointed at -> miss
            [0.0, 0.5, 0.5, 0.0],  # tie: first maximal cell (1) -> hit
        ]
    )
    hits = pointing_game(maps, truth)
    assert hits.dtype == torch.bool
    assert hits.tolist() == [True, False, False, True]
    assert not pointing_game(maps[:1], torch.zeros(1, 4)).item()  # empty mask: always a miss


def test_energy_in_mask():
    truth = torch.tensor([[1.0, 0.5, 0.0, 0.0]] * 3)  # (3, 4)
    maps = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0],  # half the mass in the mask
            [2.0, -5.0, 2.0, 0.0],  # negative cells carry no energy: 2 / 4
            [-1.0, -1.0, -1.0, -1.0],  # no positive mass: 0 by rule
        ]
    )
    torch.testing.assert_close(energy_in_mask(maps, truth), torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    weighted = energy_in_mask(maps, truth, weighted=True)  # cell 1 only half covered
    torch.testing.assert_close(weighted, torch.tensor([0.375, 0.5, 0.0], dtype=torch.float64))
    with pytest.raises(MumoError, match=r"\[0, 1\]"):
        energy_in_mask(maps, truth * 3, weighted=True)


def test_summarize_map_scores():
    truth = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    maps = torch.tensor([[4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    s = summarize_map_scores(maps, truth)
    assert set(s) == {"rank_correlation", "pointing_game", "energy_in_mask", "count", "undefined"}
    assert s["count"] == 3 and s["undefined"] == 1  # the constant map
    rho0 = spearmanr([4, 3, 2, 1], [1, 0, 0, 0]).statistic
    assert s["rank_correlation"] == pytest.approx((rho0 + 1.0) / 2)
    assert s["pointing_game"] == pytest.approx(2 / 3)  # the constant map points at cell 0, outside its mask
    assert s["energy_in_mask"] == pytest.approx((0.4 + 0.5 + 1.0) / 3)


def test_inputs_not_mutated():
    gen = torch.Generator().manual_seed(1)
    maps, truth = torch.randn(5, 16, generator=gen), torch.rand(5, 16, generator=gen)
    m0, t0 = maps.clone(), truth.clone()
    for fn in (rank_correlation, pointing_game, energy_in_mask, summarize_map_scores):
        fn(maps, truth)
    assert torch.equal(maps, m0) and torch.equal(truth, t0)


@pytest.mark.parametrize(
    ("maps", "truth", "message"),
    [
        (torch.zeros(2, 4), torch.zeros(2, 5), "shape"),
        (torch.zeros(4), torch.zeros(4), "shape"),
        (torch.zeros(2, 4), -torch.ones(2, 4), "non-negative"),
        (torch.full((2, 4), math.nan), torch.zeros(2, 4), "NaN"),
    ],
)
def test_bad_input(maps, truth, message):
    with pytest.raises(MumoError, match=message):
        rank_correlation(maps, truth)


def test_summarize_empty():
    with pytest.raises(MumoError, match="empty"):
        summarize_map_scores(torch.zeros(0, 4), torch.zeros(0, 4))
