"""MCAN attention as maps: AttFlat weights and guided attention on the grid; region models; errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.errors import MumoError
from mumo.explain.attention import attention_maps
from mumo.explain.gradcam import grad_cam
from mumo.explain.targets import AnswerLogit
from mumo.models import create_model
from mumo.types import VQABatch, VQAOutput
from tests.conftest import tiny_config


def _model(*extra: str) -> nn.Module:
    torch.manual_seed(0)
    return create_model(tiny_config(*extra).model, vocab=["<pad>", "<unk>", "a", "b"], num_answers=5).eval()


def test_image_and_guided_maps_on_the_grid():
    model = _model()
    tokens = torch.tensor([[2, 3, 2, 0, 0], [3, 3, 0, 0, 0], [2, 2, 2, 2, 3]])  # padded questions
    batch = VQABatch(torch.rand(2, 3, 64, 64), tokens, torch.tensor([0, 1, 1]))
    maps = attention_maps(model, batch)
    assert maps.image.shape == (3, 16) and maps.grid == (4, 4)
    torch.testing.assert_close(maps.image.sum(-1), torch.ones(3))
    assert maps.guided.shape == (3, 1, 2, 5, 16)  # (N, layers, heads, L, R)
    assert maps.guided[0, :, :, 3:].abs().sum() == 0  # padding tokens get no weight
    # every region's weights over the real tokens sum to one
    torch.testing.assert_close(maps.guided[1].sum(-2), torch.ones(1, 2, 16))
    torch.testing.assert_close(maps.output.logits, model(batch).logits)


def test_region_feature_models_give_one_value_per_region():
    model = _model("model.image_encoder=regions", "model.region_dim=6")
    feats = torch.rand(2, 7, 6)
    feats[1, 5:] = 0.0  # padding regions
    batch = VQABatch(feats, torch.tensor([[2, 3], [3, 2]]), torch.tensor([0, 1]))
    maps = attention_maps(model, batch)
    assert maps.image.shape == (2, 7)
    assert maps.image[1, 5:].abs().max() < 1e-6  # padded regions are never attended
    cam = grad_cam(model, batch, AnswerLogit())
    assert cam.maps.shape == (2, 7) and torch.isfinite(cam.maps).all()


class NoAttention(nn.Module):
    def forward(self, batch: VQABatch) -> VQAOutput:
        return VQAOutput(logits=torch.zeros(batch.tokens.shape[0], 3))


def test_a_model_without_attention_is_told_which_methods_apply():
    batch = VQABatch(torch.rand(1, 3, 8, 8), torch.ones(1, 2, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(MumoError, match="gradcam, ucam"):
        attention_maps(NoAttention(), batch)
