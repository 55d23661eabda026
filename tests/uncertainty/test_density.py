"""Class-conditional Gaussian feature density (DDU) against hand-worked and scipy values."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import multivariate_normal, norm

from mumo.errors import MumoError
from mumo.uncertainty.density import (
    JITTERS,
    ClassGaussians,
    feature_density_score,
    feature_log_density,
    fit_class_gaussians,
)


def test_one_dimensional_two_classes_by_hand():
    # class 0 at -1 and 1 (mean 0, population variance 1); class 1 at 9 and 11 (mean 10, variance 1)
    z = torch.tensor([[-1.0], [1.0], [9.0], [11.0]])
    g = fit_class_gaussians(z, torch.tensor([0, 0, 1, 1]))
    assert g.classes.tolist() == [0, 1]
    assert g.means.squeeze(-1).tolist() == [0.0, 10.0]
    var = 1.0 + JITTERS[0] * 1.0  # jitter is relative to the mean feature variance (1)
    assert g.scale_tril.squeeze().pow(2).tolist() == pytest.approx([var, var])
    x = torch.tensor([[0.0], [5.0], [30.0]])
    sd = math.sqrt(var)
    expected = [math.log(norm.pdf(v, 0, sd) + norm.pdf(v, 10, sd)) for v in (0.0, 5.0, 30.0)]
    assert feature_log_density(g, x).tolist() == pytest.approx(expected, rel=1e-9)
    score = feature_density_score(g, x)
    assert score.dtype == torch.float32 and score[0] < score[1] < score[2]  # further away = higher


def test_multivariate_matches_scipy():
    gen = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(50, 3, generator=gen) * torch.tensor([1.0, 2.0, 0.5]),
                   torch.randn(40, 3, generator=gen) + 4])  # fmt: skip
    labels = torch.tensor([0] * 50 + [1] * 40)
    g = fit_class_gaussians(z, labels)
    x = torch.randn(7, 3, generator=gen) * 3
    expected = torch.zeros(7, dtype=torch.float64)
    for k in range(2):
        cov = (g.scale_tril[k] @ g.scale_tril[k].T).numpy()
        expected += torch.from_numpy(multivariate_normal(g.means[k].numpy(), cov).pdf(x.numpy()))
    assert torch.allclose(feature_log_density(g, x), expected.log(), rtol=1e-8)
    # the fitted covariance is the class's population covariance plus the jitter
    c0 = torch.cov(z[:50].double().T, correction=0)
    assert torch.allclose(g.scale_tril[0] @ g.scale_tril[0].T - c0, g.jitter * torch.eye(3, dtype=torch.float64))


def test_small_classes_are_left_out_and_singular_covariances_get_jitter():
    # 4 points of class 0 in 5 dimensions: a rank-deficient covariance; class 1 has a single point
    gen = torch.Generator().manual_seed(1)
    z = torch.cat([torch.randn(4, 5, generator=gen), torch.randn(1, 5, generator=gen)])
    g = fit_class_gaussians(z, torch.tensor([0, 0, 0, 0, 1]))
    assert g.classes.tolist() == [0]
    assert torch.isfinite(feature_log_density(g, torch.randn(3, 5, generator=gen))).all()
    # constant features: zero covariance, still a proper (very narrow) density
    const = fit_class_gaussians(torch.ones(6, 2), torch.zeros(6, dtype=torch.long))
    assert torch.isfinite(feature_log_density(const, torch.ones(1, 2))).all()


def test_bad_input_is_a_clear_error():
    z = torch.randn(6, 2)
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    with pytest.raises(MumoError, match="NaN or infinite values in 1 of 6 rows"):
        fit_class_gaussians(z.index_put((torch.tensor([2]), torch.tensor([1])), torch.tensor(float("nan"))), labels)
    with pytest.raises(MumoError, match="one label per feature row"):
        fit_class_gaussians(z, labels[:5])
    with pytest.raises(MumoError, match="no class has 2 or more"):
        fit_class_gaussians(z[:2], torch.tensor([0, 1]))
    with pytest.raises(MumoError, match="holds no rows"):
        fit_class_gaussians(torch.empty(0, 2), torch.empty(0, dtype=torch.long))
    g = fit_class_gaussians(z, labels)
    with pytest.raises(MumoError, match="fitted on 2"):
        feature_log_density(g, torch.randn(3, 4))
    with pytest.raises(MumoError, match="NaN or infinite"):
        feature_density_score(g, torch.tensor([[0.0, float("inf")]]))


def test_tied_covariance_is_the_pooled_within_class_covariance():
    gen = torch.Generator().manual_seed(2)
    z = torch.cat([torch.randn(30, 4, generator=gen), torch.randn(20, 4, generator=gen) * 2 + 3])
    labels = torch.tensor([0] * 30 + [1] * 20)
    g = fit_class_gaussians(z, labels, covariance="tied")
    assert g.scale_tril.shape == (1, 4, 4)
    centred = torch.cat([z[:30] - z[:30].mean(0), z[30:] - z[30:].mean(0)]).double()
    pooled = centred.T @ centred / 50
    assert torch.allclose(g.scale_tril[0] @ g.scale_tril[0].T, pooled + g.jitter * torch.eye(4, dtype=torch.float64))
    x = torch.randn(5, 4, generator=gen)
    cov = (g.scale_tril[0] @ g.scale_tril[0].T).numpy()
    expected = sum(multivariate_normal(g.means[k].numpy(), cov).pdf(x.numpy()) for k in range(2))
    assert torch.allclose(feature_log_density(g, x), torch.from_numpy(expected).log(), rtol=1e-8)
    # auto: per-class covariances unless they would exceed the memory bound
    assert fit_class_gaussians(z, labels).scale_tril.shape == (2, 4, 4)
    assert fit_class_gaussians(z, labels, max_bytes=100).scale_tril.shape == (1, 4, 4)
    with pytest.raises(MumoError, match="covariance must be"):
        fit_class_gaussians(z, labels, covariance="diagonal")


def test_parameters_round_trip_through_named_tensors():
    z, labels = torch.randn(40, 3), torch.tensor([0, 1] * 20)
    for covariance in ("class", "tied"):
        g = fit_class_gaussians(z, labels, covariance=covariance)
        back = ClassGaussians.from_tensors(g.to_tensors())
        assert torch.equal(back.scale_tril, g.scale_tril) and back.jitter == g.jitter
        assert torch.equal(feature_log_density(back, z), feature_log_density(g, z))
    with pytest.raises(MumoError, match="missing jitter"):
        ClassGaussians.from_tensors({k: v for k, v in g.to_tensors().items() if k != "jitter"})
    with pytest.raises(MumoError, match="inconsistent"):
        ClassGaussians.from_tensors({**g.to_tensors(), "scale_tril": torch.eye(3)[None].repeat(5, 1, 1)})
