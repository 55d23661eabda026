"""Overlays: valid PNGs with the heat where the map is high, untouched inputs, clear errors for bad paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mumo.errors import MumoError
from mumo.explain.overlay import save_overlay, upsample_map


def _hot_top_left() -> torch.Tensor:
    cam = torch.zeros(4, 4)  # (rows, cols)
    cam[0, 0], cam[0, 1], cam[1, 0] = 1.0, 0.6, 0.6
    return cam


def test_upsample_map_peaks_where_the_map_is_high():
    up = upsample_map(_hot_top_left(), (64, 75))
    assert up.shape == (64, 75)
    assert up.min().item() == 0.0 and up.max().item() == pytest.approx(1.0)
    y, x = divmod(int(up.argmax()), 75)
    assert y < 16 and x < 19
    assert up[:32, :37].mean() > 5 * up[32:, 37:].mean()
    assert torch.equal(upsample_map(torch.full((3, 3), 2.0), (9, 9)), torch.zeros(9, 9))


def test_save_overlay_writes_png_with_heat_in_the_hot_quadrant(tmp_path):
    image = torch.full((3, 64, 64), 0.5)  # (3, H, W) flat gray: all colour comes from the heatmap
    cam = _hot_top_left().flatten().requires_grad_()  # (R,) as a CAM method returns it
    image0, cam0 = image.clone(), cam.detach().clone()
    path = save_overlay(
        tmp_path / "overlay.png",
        image,
        cam,
        question="what is the shape of the red object in the upper left part of this picture?",
        answer="circle",
        probability=torch.tensor(0.93),
        uncertainty={"total": 0.41, "epistemic": torch.tensor(0.12)},
        method="Grad-CAM",
        grid=(4, 4),
    )
    assert path == tmp_path / "overlay.png"
    assert torch.equal(image, image0) and torch.equal(cam.detach(), cam0)
    with Image.open(path) as png:
        assert png.format == "PNG"
        rgb = np.asarray(png.convert("RGB")).astype(int)  # (H, W, 3)
    red = (rgb[..., 0] - rgb[..., 2]) > 60  # jet's high end over gray
    blue = (rgb[..., 2] - rgb[..., 0]) > 60  # jet's low end over gray (text and margins are gray-scale)
    assert red.sum() > 100 and blue.sum() > 100
    ry, rx = np.argwhere(red).mean(axis=0)
    by, bx = np.argwhere(blue).mean(axis=0)
    assert ry < by and rx < bx  # the heat sits up and left of the cold area


def test_save_overlay_other_inputs(tmp_path):
    image = np.full((75, 75, 3), 200, dtype=np.uint8)  # (H, W, 3) as loaded from disk
    image0 = image.copy()
    path = save_overlay(tmp_path / "a.png", image, torch.rand(4, 4), question="", answer="yes", uncertainty=0.2)
    assert np.array_equal(image, image0)
    with Image.open(path) as png:
        assert png.width > 0 and png.height > 0
    uint8 = torch.full((3, 64, 64), 255, dtype=torch.uint8)
    save_overlay(str(tmp_path / "b.png"), uint8, torch.ones(16), question="q?", answer="no", grid=(4, 4))
    assert (tmp_path / "b.png").is_file()


def test_save_overlay_missing_directory(tmp_path):
    target = tmp_path / "missing" / "overlay.png"
    with pytest.raises(MumoError, match="missing") as err:
        save_overlay(target, torch.rand(3, 8, 8), torch.rand(2, 2), question="q", answer="a")
    assert str(target.parent) in str(err.value)
    assert not target.parent.exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MumoError, match="does not exist"):
        save_overlay(blocker / "overlay.png", torch.rand(3, 8, 8), torch.rand(2, 2), question="q", answer="a")


@pytest.mark.parametrize(
    ("image", "cam", "grid", "message"),
    [
        (torch.rand(3, 8, 8), torch.rand(16), None, "grid"),
        (torch.rand(3, 8, 8), torch.rand(15), (4, 4), "15 cells"),
        (torch.rand(3, 8, 8), torch.rand(4, 4), (2, 8), "grid says"),
        (torch.rand(8, 8, 3), torch.rand(4, 4), None, r"\(3, H, W\)"),
        (torch.rand(3, 8, 8) * 2, torch.rand(4, 4), None, r"\[0, 1\]"),
        (torch.rand(3, 8, 8), torch.full((4, 4), float("nan")), None, "NaN"),
    ],
)
def test_save_overlay_bad_input(tmp_path, image, cam, grid, message):
    with pytest.raises(MumoError, match=message):
        save_overlay(tmp_path / "x.png", image, cam, question="q", answer="a", grid=grid)
    assert not (tmp_path / "x.png").exists()
