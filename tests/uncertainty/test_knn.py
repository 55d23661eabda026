"""The deep nearest-neighbour score and the split-conformal threshold."""

from __future__ import annotations

import math

import pytest
import torch

from mumo.errors import MumoError
from mumo.uncertainty.knn import conformal_threshold, knn_distance, normalise


def test_normalise_gives_unit_rows_and_refuses_bad_features():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    assert torch.allclose(normalise(x), torch.tensor([[0.6, 0.8], [0.0, 1.0]]))
    for bad in (torch.zeros(0, 3), torch.zeros(3), torch.tensor([[float("nan"), 1.0]])):
        with pytest.raises(MumoError):
            normalise(bad)


def test_knn_distance_is_the_distance_to_the_kth_nearest_normalised_neighbour():
    bank = normalise(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    x = torch.tensor([[2.0, 0.0]])  # normalised: (1, 0); distances 0, sqrt(2), 2
    assert knn_distance(bank, x, 1).item() == pytest.approx(0.0, abs=1e-6)
    assert knn_distance(bank, x, 2).item() == pytest.approx(math.sqrt(2), abs=1e-6)
    assert knn_distance(bank, x, 3).item() == pytest.approx(2.0, abs=1e-6)
    with pytest.raises(MumoError, match="k must lie in"):
        knn_distance(bank, x, 4)
    with pytest.raises(MumoError, match="dimensions"):
        knn_distance(bank, torch.ones(1, 3), 1)


def test_knn_distance_does_not_depend_on_the_chunk_size():
    g = torch.Generator().manual_seed(0)
    bank, x = normalise(torch.randn(50, 8, generator=g)), torch.randn(37, 8, generator=g)
    assert torch.allclose(knn_distance(bank, x, 5, chunk=4), knn_distance(bank, x, 5, chunk=1000))


def test_conformal_threshold_is_the_ceil_n_plus_1_times_1_minus_alpha_th_smallest():
    ref = torch.arange(1.0, 201.0).flip(0)  # 200 scores, given in any order
    assert conformal_threshold(ref, 0.01) == 199.0  # ceil(201 * 0.99) = 199
    assert conformal_threshold(ref, 0.1) == 181.0  # ceil(201 * 0.9) = 181
    assert conformal_threshold(torch.arange(1.0, 100.0), 0.01) == 99.0  # n = 99: the largest
    assert conformal_threshold(torch.arange(1.0, 31.0), 1 / 31) == 30.0  # alpha = 1/(n + 1): the largest
    with pytest.raises(MumoError, match="at least 99"):
        conformal_threshold(torch.arange(1.0, 98.0), 0.01)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(MumoError, match="alpha"):
            conformal_threshold(ref, bad)
    with pytest.raises(MumoError, match="finite"):
        conformal_threshold(torch.tensor([1.0, float("inf")]), 0.5)


def test_conformal_threshold_refuses_at_most_alpha_of_exchangeable_inputs():
    """Over many draws the fraction of fresh in-distribution scores above the threshold stays at or below alpha
    (its expectation is exactly bounded; the mean of 400 trials is within noise of it)."""
    g = torch.Generator().manual_seed(1)
    alpha, refused = 0.05, []
    for _ in range(400):
        ref, fresh = torch.randn(99, generator=g), torch.randn(200, generator=g)
        refused.append((fresh > conformal_threshold(ref, alpha)).float().mean().item())
    mean = sum(refused) / len(refused)
    assert 0.03 < mean <= alpha + 0.005, mean
