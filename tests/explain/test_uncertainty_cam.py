"""U-CAM: the uncertainty term is exactly the difference to Grad-CAM of the loss; variants; errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.errors import MumoError
from mumo.explain.gradcam import grad_cam, normalize_maps
from mumo.explain.targets import TargetLogLikelihood
from mumo.explain.uncertainty_cam import uncertainty_cam
from mumo.models import create_model
from mumo.types import VQABatch
from tests.conftest import tiny_config


def _model(*extra: str) -> nn.Module:
    torch.manual_seed(0)
    cfg = tiny_config(*extra)
    return create_model(cfg.model, vocab=["<pad>", "<unk>", "a", "b", "c"], num_answers=7).eval()


def _batch() -> VQABatch:
    g = torch.Generator().manual_seed(3)
    index = torch.tensor([0, 0, 1, 2, 2])
    return VQABatch(
        torch.rand(3, 3, 64, 64, generator=g), torch.randint(2, 5, (5, 6), generator=g), index,
        torch.eye(7)[torch.randint(0, 7, (5,), generator=g)],
    )  # fmt: skip


def _plain_loss_map(model: nn.Module, batch: VQABatch) -> torch.Tensor:
    """Raw Grad-CAM of the summed cross-entropy (the negated log-likelihood's map)."""
    return -grad_cam(model, batch, TargetLogLikelihood(), relu=False).maps


def test_ucam_loss_is_gradcam_of_the_loss_plus_the_uncertainty_term():
    model, batch = _model("model.aleatoric=ucam"), _batch()
    with torch.no_grad():
        model.log_variance.bias.fill_(1.0)  # a clearly non-zero variance
    full = uncertainty_cam(model, batch, variant="loss", samples=8, relu=False).maps
    aleatoric = uncertainty_cam(model, batch, variant="aleatoric", samples=8, relu=False).maps
    torch.testing.assert_close(full, _plain_loss_map(model, batch) + aleatoric, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(full, 2 * _plain_loss_map(model, batch), rtol=1e-3, atol=1e-5)  # the term matters


def test_zero_variance_gives_the_plain_loss_map():
    model, batch = _model("model.aleatoric=ucam"), _batch()
    with torch.no_grad():
        model.log_variance.weight.zero_()
        model.log_variance.bias.fill_(-100.0)  # softplus(-100) ~ 0: σ² = 0
    plain = _plain_loss_map(model, batch)
    full = uncertainty_cam(model, batch, variant="loss", samples=8, relu=False).maps
    # σ = 0: the distorted losses equal L_u and var + dep vanish, so L_U = 2 L_u
    torch.testing.assert_close(full, 2 * plain, rtol=1e-4, atol=1e-6)
    relu_maps = uncertainty_cam(model, batch, variant="loss", samples=8).maps
    torch.testing.assert_close(normalize_maps(relu_maps), normalize_maps(plain.clamp_min(0)), rtol=1e-4, atol=1e-5)


def test_negate_flips_the_sign():
    model, batch = _model("model.aleatoric=ucam"), _batch()
    a = uncertainty_cam(model, batch, variant="aleatoric", samples=4, relu=False).maps
    b = uncertainty_cam(model, batch, variant="aleatoric", samples=4, relu=False, negate=True).maps
    torch.testing.assert_close(a, -b)


def test_predictive_variant_is_seeded_restores_modes_and_needs_dropout():
    model, batch = _model(), _batch()
    r1 = uncertainty_cam(model, batch, variant="predictive", samples=6, seed=1)
    r2 = uncertainty_cam(model, batch, variant="predictive", samples=6, seed=1)
    r3 = uncertainty_cam(model, batch, variant="predictive", samples=6, seed=2)
    torch.testing.assert_close(r1.maps, r2.maps)
    assert not torch.allclose(r1.maps, r3.maps)
    assert r1.maps.shape == (5, 16) and r1.grid == (4, 4)
    assert not model.training and not any(m.training for m in model.modules())
    assert torch.allclose(r1.output.logits.exp().sum(-1), torch.ones(5))  # log p̄ of the MC mean
    with pytest.raises(MumoError, match=r"no nn\.Dropout"):
        uncertainty_cam(_model("model.dropout=0.0"), batch, variant="predictive", samples=2)


@pytest.mark.parametrize("negate", [False, True])
def test_predictive_variant_pass_by_pass_equals_the_gradient_of_all_passes_at_once(negate):
    """Memory of one pass at a time, same map as differentiating H[p̄] through all T graphs together."""
    from mumo.explain.gradcam import cam_from_gradients
    from mumo.explain.hooks import capture
    from mumo.uncertainty.mc_dropout import mc_dropout

    model, batch = _model(), _batch()
    result = uncertainty_cam(model, batch, variant="predictive", samples=5, seed=4, relu=False, negate=negate)
    with torch.enable_grad(), capture(model.explain_layer()) as cap, mc_dropout(model, seed=4) as sampler:
        probs = []
        for t in range(5):
            sampler.first, sampler.count = t, 1
            probs.append(model(batch).logits.softmax(-1))  # (N, C)
        p_bar = torch.stack(probs).mean(0)  # (N, C)
        entropy = -(p_bar * torch.log(p_bar.clamp_min(1e-12))).sum()
        grads = torch.autograd.grad((-1.0 if negate else 1.0) * entropy, cap.activations)  # T x (N, R, K)
    expected = cam_from_gradients(torch.stack(cap.activations).detach().mean(0), torch.stack(grads).sum(0), relu=False)
    torch.testing.assert_close(result.maps, expected, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(result.output.logits, torch.log(p_bar.detach()))


def test_errors_name_the_fix():
    model, batch = _model(), _batch()
    with pytest.raises(MumoError, match=r"model\.aleatoric=ucam"):
        uncertainty_cam(model, batch, variant="loss")
    with pytest.raises(MumoError, match="predictive"):
        uncertainty_cam(model, batch, variant="nope")
    with pytest.raises(MumoError, match="MC samples"):
        uncertainty_cam(model, batch, samples=0)


def test_inputs_unchanged_and_hooks_released():
    model, batch = _model("model.aleatoric=ucam"), _batch()
    before = batch.images.clone(), batch.tokens.clone(), batch.targets.clone()
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    for variant in ("loss", "aleatoric", "predictive"):
        uncertainty_cam(model, batch, variant=variant, samples=3)
    assert torch.equal(before[0], batch.images) and torch.equal(before[1], batch.tokens)
    assert torch.equal(before[2], batch.targets)
    assert sum(len(m._forward_hooks) for m in model.modules()) == hooks
