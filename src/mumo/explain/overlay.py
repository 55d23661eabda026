"""The visualisation layer of explanation maps: a grid map as a heatmap over its image, with the answer it explains.

Maps stay torch tensors up to here. `save_overlay` draws on its own ``matplotlib.figure.Figure`` (Agg canvas, no
pyplot), like `mumo.metrics.plots`, and leaves its inputs untouched.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mumo.errors import MumoError
from mumo.metrics.figures import new_figure, save_figure

HEAT_ALPHA = 0.5  # opacity of the heatmap over the image
HEAT_CMAP = "jet"  # high = red, low = dark blue
TITLE_WIDTH = 48  # characters per line of the wrapped question
FONT_SIZE = 9  # points, title and caption
LINE_INCHES = 0.18  # height of one text line at FONT_SIZE
IMAGE_INCHES = 3.6  # longest side of the drawn image
MARGIN = 0.2  # inches around the image and between it and the text


def upsample_map(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear upsampling of a grid map to image size, min-max normalised.

    Args:
        cam: Map on the feature grid, (rows, cols).
        size: (H, W) of the image.

    Returns:
        The map in [0, 1], (H, W) float32; all zeros for a constant map.

    Raises:
        MumoError: On a non-(rows, cols) map, NaN/inf values or a size that is not two positive integers.
    """
    if cam.ndim != 2 or cam.numel() == 0:
        raise MumoError(f"cam must have shape (rows, cols), got {tuple(cam.shape)}")
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise MumoError(f"size must be two positive integers (H, W), got {size!r}")
    x = cam.detach().to(torch.float32)  # (rows, cols)
    if not torch.isfinite(x).all():
        raise MumoError("cam holds NaN or infinite values")
    up = F.interpolate(x[None, None], size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)[0, 0]
    lo, hi = up.min(), up.max()  # (H, W) -> scalars
    if hi <= lo:
        return torch.zeros_like(up)
    return (up - lo) / (hi - lo)  # (H, W)


def _image_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) tensor or (H, W, 3) array, uint8 or float in [0, 1] -> (H, W, 3) float64 copy in [0, 1]."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise MumoError(f"image tensor must have shape (3, H, W), got {tuple(image.shape)}")
        arr = image.detach().cpu().permute(1, 2, 0).numpy()  # (H, W, 3)
    elif isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3:
            raise MumoError(f"image array must have shape (H, W, 3), got {tuple(image.shape)}")
        arr = image
    else:
        raise MumoError(f"image must be a torch tensor (3, H, W) or a NumPy array (H, W, 3), not {type(image)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    out = np.asarray(arr, dtype=np.float64)
    if not np.isfinite(out).all() or out.min() < 0 or out.max() > 1:
        raise MumoError("a float image must hold values in [0, 1] (or pass it as uint8)")
    return out


def _grid_map(cam: torch.Tensor, grid: tuple[int, int] | None) -> torch.Tensor:
    """(R,) with grid (rows, cols), or (rows, cols) -> (rows, cols)."""
    if cam.ndim == 2:
        if grid is not None and tuple(grid) != tuple(cam.shape):
            raise MumoError(f"cam has shape {tuple(cam.shape)} but grid says {tuple(grid)}")
        return cam
    if cam.ndim != 1:
        raise MumoError(f"cam must have shape (R,) with a grid or (rows, cols), got {tuple(cam.shape)}")
    if grid is None:
        raise MumoError("a flat (R,) cam needs grid=(rows, cols)")
    rows, cols = grid
    if rows * cols != cam.shape[0]:
        raise MumoError(f"cam has {cam.shape[0]} cells, grid {rows}x{cols} has {rows * cols}")
    return cam.reshape(rows, cols)  # (rows, cols), a view: nothing is written to it


def _format_uncertainty(uncertainty: float | torch.Tensor | Mapping[str, float | torch.Tensor]) -> str:
    if isinstance(uncertainty, Mapping):
        return ", ".join(f"{name} {float(v):.3f}" for name, v in uncertainty.items())
    return f"uncertainty {float(uncertainty):.3f}"


def check_writable_path(path: Path) -> None:
    """Raise MumoError unless ``path`` can be written: its directory exists and is writable, and it is no directory."""
    parent = path.parent
    if not parent.is_dir():
        raise MumoError(f"cannot write {path}: its directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MumoError(f"cannot write {path}: its directory {parent} is not writable")
    if path.is_dir():
        raise MumoError(f"cannot write {path}: it is a directory")


def save_overlay(
    path: str | os.PathLike,
    image: torch.Tensor | np.ndarray,
    cam: torch.Tensor,
    *,
    question: str,
    answer: str,
    probability: float | torch.Tensor | None = None,
    uncertainty: float | torch.Tensor | Mapping[str, float | torch.Tensor] | None = None,
    method: str = "",
    grid: tuple[int, int] | None = None,
) -> Path:
    """Write a PNG of an explanation map over its image, titled with the question and the explained answer.

    The map is upsampled to the image size (bilinear, `upsample_map`) and drawn as a semi-transparent heatmap
    (red = high). The title holds the question; the caption the answer, its probability, its uncertainty and the
    method.

    Args:
        path: PNG file to write; its directory must exist.
        image: (3, H, W) tensor or (H, W, 3) array, uint8 or float in [0, 1].
        cam: Map on the feature grid, (R,) with ``grid``, or (rows, cols).
        question: The question text.
        answer: The explained answer.
        probability: The answer's probability.
        uncertainty: One score, or named scores such as ``{"total": .., "epistemic": ..}``.
        method: Name of the explanation method, e.g. ``"Grad-CAM"``.
        grid: (rows, cols) of a flat ``cam``.

    Returns:
        The path of the written PNG.

    Raises:
        MumoError: On a missing or unwritable directory (checked before drawing), or invalid image or map.
    """
    path = Path(path)
    check_writable_path(path)
    img = _image_hwc(image)  # (H, W, 3)
    h, w = img.shape[:2]
    heat = upsample_map(_grid_map(cam, grid), (h, w)).numpy()  # (H, W) in [0, 1]

    caption = [f"A: {answer}"]
    if probability is not None:
        caption[0] += f" (p = {float(probability):.3f})"
    if uncertainty is not None:
        caption.append(_format_uncertainty(uncertainty))
    if method:
        caption.append(method)

    title = textwrap.wrap(f"Q: {question}", TITLE_WIDTH) or ["Q:"]
    # explicit layout in inches: title lines, the image (longest side IMAGE_INCHES), caption lines
    scale = IMAGE_INCHES / max(h, w)
    img_w, img_h = w * scale, h * scale
    top, bottom = MARGIN + LINE_INCHES * len(title), MARGIN + LINE_INCHES * len(caption)
    fig_w, fig_h = IMAGE_INCHES + 2 * MARGIN, top + img_h + bottom
    fig = new_figure((fig_w, fig_h))
    ax = fig.add_axes(((fig_w - img_w) / 2 / fig_w, bottom / fig_h, img_w / fig_w, img_h / fig_h))
    ax.imshow(img, interpolation="nearest", aspect="auto")
    ax.imshow(heat, cmap=HEAT_CMAP, vmin=0.0, vmax=1.0, alpha=HEAT_ALPHA, interpolation="nearest", aspect="auto")
    ax.set_axis_off()
    fig.text(0.5, 1 - MARGIN / 2 / fig_h, "\n".join(title), ha="center", va="top", fontsize=FONT_SIZE)
    fig.text(0.5, MARGIN / 2 / fig_h, "\n".join(caption), ha="center", va="bottom", fontsize=FONT_SIZE)
    try:
        return save_figure(fig, path)
    except OSError as exc:
        raise MumoError(f"cannot write {path}: {exc}") from None
