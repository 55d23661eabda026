"""Grad-CAM: a hand-built model with a known map, Captum parity, hooks and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.errors import MumoError
from mumo.explain.gradcam import cam_from_gradients, grad_cam, normalize_maps
from mumo.explain.hooks import capture
from mumo.explain.targets import AnswerLogit, AnswerLogProb, NegativeEntropy, TargetLogLikelihood
from mumo.models import create_model
from mumo.types import VQABatch, VQAOutput
from tests.conftest import tiny_config


class ColourModel(nn.Module):
    """Features = the image's RGB channels on a 4x4 grid; answer c's logit = Σ_k W_ck Σ_ij A_k,ij.

    Then ∂logit_c/∂A_k,ij = W_ck everywhere, so Grad-CAM weights are w_k = W_ck and the map is
    Σ_k W_ck A_k: for answer "red" (W = [1, 0, 0]) exactly the red channel.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.AvgPool2d(4)  # (B, 3, 16, 16) -> (B, 3, 4, 4)
        self.classifier = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.eye(3))  # answers: red, green, blue

    def explain_layer(self) -> nn.Module:
        return self.features

    def forward(self, batch: VQABatch) -> VQAOutput:
        a = self.features(batch.images)  # (B, 3, 4, 4)
        return VQAOutput(logits=self.classifier(a.sum((2, 3)))[batch.image_index])


def _two_squares() -> VQABatch:
    images = torch.zeros(1, 3, 16, 16)
    images[0, 0, :4, :4] = 1.0  # red square top-left
    images[0, 2, 12:, 12:] = 1.0  # blue square bottom-right
    return VQABatch(images, torch.ones(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long))


def test_gradcam_on_a_hand_built_model_gives_the_known_map():
    model, batch = ColourModel(), _two_squares()
    red = grad_cam(model, batch, AnswerLogit(torch.tensor([0]))).maps[0]  # (4, 4)
    blue = grad_cam(model, batch, AnswerLogit(torch.tensor([2]))).maps[0]
    expected_red = torch.zeros(4, 4)
    expected_red[0, 0] = 1.0
    torch.testing.assert_close(red, expected_red)
    assert blue.argmax() == 15 and blue.sum() == pytest.approx(1.0)
    # green explains nothing: an all-zero map, which normalisation keeps at zero
    green = grad_cam(model, batch, AnswerLogit(torch.tensor([1]))).maps
    assert normalize_maps(green).abs().sum() == 0


def test_cam_from_gradients_channels_last_matches_channels_first():
    act = torch.randn(2, 5, 3, 4)  # (B, K, H, W)
    grad = torch.randn(2, 5, 3, 4)
    first = cam_from_gradients(act, grad, relu=False)  # (B, H, W)
    last = cam_from_gradients(act.flatten(2).transpose(1, 2), grad.flatten(2).transpose(1, 2), relu=False)  # (B, R)
    torch.testing.assert_close(first.flatten(1), last)
    with pytest.raises(ValueError):
        cam_from_gradients(torch.randn(3, 4), torch.randn(3, 4))


def _tiny_mcan(*extra: str) -> nn.Module:
    torch.manual_seed(0)
    cfg = tiny_config(*extra)
    return create_model(cfg.model, vocab=["<pad>", "<unk>", "a", "b", "c"], num_answers=7).eval()


def _batch(n_images: int = 3) -> VQABatch:
    g = torch.Generator().manual_seed(1)
    index = torch.tensor([0, 0, 1, 2, 2])[: max(n_images, 5)] if n_images == 3 else torch.arange(n_images)
    n = len(index)
    return VQABatch(
        torch.rand(n_images, 3, 64, 64, generator=g), torch.randint(2, 5, (n, 6), generator=g), index,
        torch.eye(7)[torch.randint(0, 7, (n,), generator=g)],
    )  # fmt: skip


def test_gradcam_matches_captum_layer_gradcam():
    from captum.attr import LayerGradCam

    model, batch = _tiny_mcan(), _batch(n_images=4)  # one question per image: the conv layer is per question
    answers = torch.tensor([0, 3, 6, 2])

    def forward(images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return model(VQABatch(images, tokens, torch.arange(images.shape[0]))).logits

    captum_maps = LayerGradCam(forward, model.image_encoder.body).attribute(
        batch.images, target=answers, additional_forward_args=(batch.tokens,)
    )  # (B, 1, h, w)
    ours = grad_cam(model, batch, AnswerLogit(answers), layer="image_encoder.body", relu=False).maps  # (B, h, w)
    torch.testing.assert_close(ours, captum_maps[:, 0], rtol=1e-5, atol=1e-6)
    assert ours.abs().sum() > 0


def test_gradcam_default_layer_gives_one_map_per_question_on_the_grid():
    model, batch = _tiny_mcan(), _batch()
    res = grad_cam(model, batch, AnswerLogProb())
    assert res.maps.shape == (5, 16) and res.grid == (4, 4)
    assert res.grid_maps().shape == (5, 4, 4)
    assert (res.maps >= 0).all()
    # rows are independent: explaining question 2 alone gives the same map as in the batch
    single = VQABatch(batch.images[1:2], batch.tokens[2:3], torch.zeros(1, dtype=torch.long))
    torch.testing.assert_close(grad_cam(model, single, AnswerLogProb()).maps[0], res.maps[2], rtol=1e-4, atol=1e-6)


def test_targets_entropy_and_likelihood_are_differentiable_scores():
    model, batch = _tiny_mcan(), _batch()
    for target in (NegativeEntropy(), TargetLogLikelihood(), AnswerLogit()):
        res = grad_cam(model, batch, target, relu=False)
        assert torch.isfinite(res.maps).all() and res.maps.abs().sum() > 0
    with pytest.raises(ValueError, match="targets"):
        TargetLogLikelihood()(model(batch), VQABatch(batch.images, batch.tokens, batch.image_index))


def test_inputs_are_unchanged_and_mode_is_kept():
    model, batch = _tiny_mcan(), _batch()
    before = [t.clone() for t in (batch.images, batch.tokens, batch.image_index, batch.targets)]
    grad_cam(model, batch, AnswerLogit())
    for b, a in zip(before, (batch.images, batch.tokens, batch.image_index, batch.targets), strict=True):
        assert torch.equal(b, a)
    assert not model.training
    model.train()
    grad_cam(model, batch, AnswerLogit())
    assert model.training


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) for m in model.modules())


def test_hooks_are_released_after_exceptions_and_repeated_runs():
    model, batch = _tiny_mcan(), _batch()
    base = _hook_count(model)
    for _ in range(100):
        grad_cam(model, batch, AnswerLogit())
    assert _hook_count(model) == base

    def broken(output: VQAOutput, batch: VQABatch) -> torch.Tensor:
        raise RuntimeError("target failed")

    with pytest.raises(RuntimeError, match="target failed"):
        grad_cam(model, batch, broken)
    assert _hook_count(model) == base
    with pytest.raises(KeyError), capture(model.region_dropout):
        raise KeyError("inside the block")
    assert _hook_count(model) == base


def test_layer_errors_are_clear():
    model, batch = _tiny_mcan(), _batch()
    with pytest.raises(MumoError, match="no layer 'nope'"):
        grad_cam(model, batch, AnswerLogit(), layer="nope")
    with pytest.raises(MumoError, match="did not run"):
        grad_cam(model, batch, AnswerLogit(), layer="log_variance" if model.log_variance else nn.Linear(2, 2))
