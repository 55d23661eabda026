import math

import pytest
import torch

from mumo.errors import MumoError
from mumo.uncertainty.scores import (
    expected_entropy,
    max_probability,
    mutual_information,
    predictive_entropy,
    predictive_variance,
    uncertainty_scores,
    variation_ratio,
)


def test_two_passes_in_total_disagreement_give_mutual_information_ln2():
    probs = torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]])  # (T=2, B=1, C=2)
    assert torch.allclose(mutual_information(probs), torch.tensor([math.log(2)]))
    assert torch.allclose(predictive_entropy(probs), torch.tensor([math.log(2)]))
    assert torch.allclose(expected_entropy(probs), torch.tensor([0.0]))
    assert torch.allclose(variation_ratio(probs), torch.tensor([0.5]))


def test_agreeing_passes_have_no_epistemic_uncertainty():
    p = torch.tensor([0.2, 0.3, 0.5])
    probs = p.expand(5, 1, 3).clone()
    h = -(p * p.log()).sum()
    assert torch.allclose(mutual_information(probs), torch.zeros(1), atol=1e-7)
    assert torch.allclose(expected_entropy(probs), h[None])
    assert torch.allclose(predictive_entropy(probs), h[None])
    assert torch.allclose(predictive_variance(probs, "mean"), torch.zeros(1))
    assert variation_ratio(probs).item() == 0.0


def test_decomposition_identity_on_random_samples():
    torch.manual_seed(0)
    probs = torch.randn(30, 64, 7).softmax(-1)
    total, alea, epi = predictive_entropy(probs), expected_entropy(probs), mutual_information(probs)
    assert torch.allclose(total, alea + epi, atol=1e-6)
    assert (epi >= 0).all()


def test_hand_computed_variance_and_variation_ratio():
    probs = torch.tensor([[[0.9, 0.1]], [[0.7, 0.3]], [[0.2, 0.8]]])  # votes: 0, 0, 1
    assert torch.allclose(variation_ratio(probs), torch.tensor([1 - 2 / 3]))
    col = torch.tensor([0.9, 0.7, 0.2])
    assert torch.allclose(predictive_variance(probs), col.var(unbiased=False)[None])
    assert predictive_variance(probs, "none").shape == (1, 2)
    assert torch.allclose(max_probability(probs), torch.tensor([0.6]))


def test_every_score_is_per_example():
    scores = uncertainty_scores(torch.rand(4, 3, 5).softmax(-1))
    assert set(scores) >= {"predictive_entropy", "expected_entropy", "mutual_information", "variation_ratio"}
    assert all(v.shape == (3,) for v in scores.values())


def test_bad_inputs_are_reported():
    with pytest.raises(MumoError, match="NaN"):
        predictive_entropy(torch.full((2, 1, 3), float("nan")))
    with pytest.raises(MumoError, match=r"\(T, B, C\)"):
        mutual_information(torch.rand(3, 4))
    with pytest.raises(MumoError, match="reduction"):
        predictive_variance(torch.rand(2, 1, 3), "median")
