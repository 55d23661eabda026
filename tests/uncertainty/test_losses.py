import math

import torch

from mumo.uncertainty.losses import kendall_gal_logit_noise_ce, noisy_logit_probs, ucam_aleatoric_ce


def test_kendall_gal_loss_matches_a_direct_monte_carlo_computation():
    torch.manual_seed(0)
    logits, log_var = torch.randn(4, 5), torch.randn(4, 5) * 0.5
    targets = torch.nn.functional.one_hot(torch.tensor([0, 3, 1, 4]), 5).float()
    gen = torch.Generator().manual_seed(7)
    loss = kendall_gal_logit_noise_ce(logits, log_var, targets, num_samples=50, generator=gen)
    # direct: draw the same noise, average the softmax probabilities, take -log of the true class
    eps = torch.randn((50, 4, 5), generator=torch.Generator().manual_seed(7))
    p = (logits + log_var.mul(0.5).exp() * eps).softmax(-1).mean(0)  # (N, C)
    direct = -(p.log() * targets).sum()
    assert torch.allclose(loss, direct, atol=1e-5)


def test_kendall_gal_with_zero_variance_is_cross_entropy():
    logits = torch.randn(6, 4)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    targets = torch.nn.functional.one_hot(labels, 4).float()
    loss = kendall_gal_logit_noise_ce(logits, torch.full((6, 4), -80.0), targets, num_samples=3, reduction="mean")
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, labels), atol=1e-5)


def test_kendall_gal_is_stable_for_huge_logits():
    logits = torch.tensor([[1000.0, -1000.0]])
    loss = kendall_gal_logit_noise_ce(logits, torch.zeros(1, 2), torch.tensor([[0.0, 1.0]]), num_samples=10)
    assert torch.isfinite(loss) and loss > 100


def test_ucam_terms_by_hand_with_zero_variance():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0]])
    terms = ucam_aleatoric_ce(logits, torch.zeros(1, 1), targets, num_samples=5)
    ce = -torch.log_softmax(logits, -1)[0, 0]
    assert torch.allclose(terms.undistorted, ce) and torch.allclose(terms.distorted, ce)
    assert torch.allclose(terms.variance_term, torch.zeros(())) and torch.allclose(terms.depressor, torch.zeros(()))
    assert torch.allclose(terms.total, 2 * ce)
    assert torch.allclose(terms.aleatoric, ce)


def test_ucam_depressor_and_gradient_reach_the_variance():
    var = torch.full((2, 1), 0.5, requires_grad=True)
    terms = ucam_aleatoric_ce(torch.randn(2, 3), var, torch.eye(3)[:2], num_samples=20)
    assert torch.allclose(terms.depressor, torch.tensor(math.expm1(0.5)))
    terms.total.backward()
    assert var.grad is not None and var.grad.abs().sum() > 0


def test_noisy_logit_probs():
    logits = torch.tensor([[3.0, 0.0]])
    assert torch.allclose(noisy_logit_probs(logits, None), logits.softmax(-1))
    wide = noisy_logit_probs(
        logits, torch.full((1, 2), 4.0), num_samples=4000, generator=torch.Generator().manual_seed(0)
    )
    assert wide[0, 0] < logits.softmax(-1)[0, 0]  # noise on the logits flattens the prediction
    assert torch.allclose(wide.sum(-1), torch.ones(1))
