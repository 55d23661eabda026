from dataclasses import replace

import pytest
import torch

from mumo.errors import ConfigError
from mumo.explain.hooks import capture
from mumo.models import create_model
from mumo.models.encoders import GridCNN, grid_centres
from mumo.tasks import load_config
from mumo.types import VQABatch
from tests.models.test_mcan_vqa import SHRINK


def test_odd_sizes_keep_their_last_pixels():
    # 75 px through four halvings: 38 -> 19 -> 10 -> 5 (rounding down would give 4x4 and drop the border)
    torch.manual_seed(0)
    cnn = GridCNN(channels=[4, 4, 4, 4], pool=4, out_dim=8).eval()
    image = torch.rand(1, 3, 75, 75)
    edited = image.clone()
    edited[..., 73:, 73:] = 1 - edited[..., 73:, 73:]  # only the bottom-right 2x2 pixels change
    with torch.no_grad():
        regions, grid = cnn(image)
        regions_edited, _ = cnn(edited)
    assert grid == (5, 5)
    assert regions.shape == (1, 25, 4)
    changed = (regions - regions_edited).abs().sum(-1)[0]  # (R,)
    assert changed[-1] > 0  # the bottom-right cell sees them
    assert changed[0] == 0  # the top-left cell does not


def test_skip_appends_the_first_block_pooled_to_the_grid():
    torch.manual_seed(0)
    cnn = GridCNN(channels=[3, 5, 6], pool=3, out_dim=8, skip=True).eval()
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), capture(cnn.body[cnn.first_block_end - 1]) as first:
        regions, grid = cnn(image)
        plain = GridCNN(channels=[3, 5, 6], pool=3, out_dim=8)
        plain.load_state_dict({k: v for k, v in cnn.state_dict().items() if not k.startswith("proj.")}, strict=False)
    assert grid == (4, 4)
    assert cnn.out_channels == 6 + 3 and cnn.proj.in_features == 9
    assert regions.shape == (2, 16, 9)
    pooled = torch.nn.functional.adaptive_max_pool2d(first.last, grid).flatten(2).transpose(1, 2)  # (B, 16, 3)
    torch.testing.assert_close(regions[..., 6:], pooled)
    torch.testing.assert_close(regions[..., :6], plain.eval()(image)[0])


def test_grid_centres_row_major_in_unit_square():
    centres = grid_centres(2, 3)
    expected = torch.tensor([[-2 / 3, -0.5], [0.0, -0.5], [2 / 3, -0.5], [-2 / 3, 0.5], [0.0, 0.5], [2 / 3, 0.5]])
    torch.testing.assert_close(centres, expected)


@pytest.mark.parametrize("position", [False, True])
def test_grid_position_tells_the_model_where_a_region_is(position):
    # Attention is blind to order: without the position embedding, shuffling the regions changes nothing.
    cfg = load_config("mcan-cpu", [*SHRINK, f"model.grid_position={str(position).lower()}"])
    torch.manual_seed(0)
    model = create_model(cfg.model, vocab=["<pad>", "<unk>", "a", "b"], num_answers=5).eval()
    batch = VQABatch(torch.rand(1, 3, 32, 32), torch.tensor([[2, 3, 0]]), torch.tensor([0]), torch.zeros(1, 5))
    with torch.no_grad():
        trunk = model.trunk(batch)
        shuffled = replace(trunk, image=trunk.image[:, torch.randperm(trunk.image.shape[1])])
        a, b = model.head(trunk).logits, model.head(shuffled).logits
    assert torch.allclose(a, b, atol=1e-5) != position
    if position:
        model.train()
        model(batch).logits.sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.position.parameters())


@pytest.mark.parametrize("option", ["model.grid_position=true", "model.cnn_skip=true"])
def test_grid_options_need_the_grid_cnn(option):
    with pytest.raises(ConfigError, match="image_encoder=cnn"):
        load_config("mcan-cpu", [option, "model.image_encoder=regions"])
