"""Putting a generated face back into its frame, and looping a short video: pure helpers for dubbing.

- :func:`crop_box`: the pixel box :func:`mumo.data.av.faces.crop_faces` cuts for a face box (chin padding and
  clipping included), so a 96x96 crop can go back exactly where it came from;
- :func:`blend_mask`: a feathered mask over the lower face only (the half a lip-sync generator redraws), 0 on
  the box's edges and above its middle, rising smoothly to 1 inside, so no seam or box edge shows;
- :func:`paste_face`: the generated crop resized into its box and blended over the frame with that mask; every
  pixel where the mask is 0 (everything outside the lower face) keeps its exact input value;
- :func:`ping_pong_indices`: source frame indices that play a video forward, backward, forward... to a length.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from mumo.errors import MumoError

FEATHER = 0.15  # the mask's ramps, as a share of the box's width (sides, bottom) and height (top of the mouth)


def crop_box(box: torch.Tensor | tuple[float, ...], height: int, width: int, pad_bottom: int = 10) -> tuple[int, ...]:
    """``(x0, y0, x1, y1)`` pixels (end exclusive) that ``crop_faces`` cuts for a face box ``(x0, y0, x1, y1)`` in a
    ``height`` x ``width`` frame: rounded, ``pad_bottom`` rows added below, clipped to the frame."""
    x0, y0, x1, y1 = (int(v) for v in torch.as_tensor(box, dtype=torch.float32)[:4].round().long().tolist())
    x0, x1 = max(x0, 0), min(x1, width)
    y0, y1 = max(y0, 0), min(y1 + pad_bottom, height)
    if x1 <= x0 or y1 <= y0:
        raise MumoError(f"face box {list(box)[:4]} lies outside the {width}x{height} frame")
    return x0, y0, x1, y1


def _ramp(n: int, rise: float) -> np.ndarray:
    """(n,) smoothstep from 0 at 0 to 1 at ``rise`` pixels (pixel centres), 1 beyond."""
    t = np.clip((np.arange(n, dtype=np.float32) + 0.5) / max(rise, 1e-6), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def blend_mask(height: int, width: int, feather: float = FEATHER) -> np.ndarray:
    """(height, width) float32 mask in [0, 1] over a face box: 0 on the upper half, rising smoothly from the
    middle row and from the left, right and bottom edges over ``feather`` of the box's size, 1 inside.

    Its outermost pixels are already small (half a pixel into a smoothstep), never a hard 0-to-1 step.
    """
    if height < 2 or width < 2:
        raise MumoError(f"a face box must be at least 2x2 pixels, not {width}x{height}")
    if not 0.0 < feather <= 0.5:
        raise MumoError(f"feather must be in (0, 0.5], not {feather}")
    top = height // 2  # the generator redraws rows S // 2 onwards
    f_x, f_y = feather * width, min(feather * height, (height - top) / 2)
    rows = np.zeros(height, np.float32)
    lower = height - top
    rows[top:] = np.minimum(_ramp(lower, f_y), _ramp(lower, f_y)[::-1])  # (lower,) up from the middle and the bottom
    cols = np.minimum(_ramp(width, f_x), _ramp(width, f_x)[::-1])  # (W,)
    return rows[:, None] * cols[None, :]  # (H, W)


def paste_face(frame: torch.Tensor, face: torch.Tensor, box: tuple[int, int, int, int],
               feather: float = FEATHER) -> torch.Tensor:  # fmt: skip
    """A copy of ``frame`` with ``face`` resized into ``box`` and blended over its lower face.

    Args:
        frame: (H, W, 3) uint8 RGB.
        face: (S, S, 3) uint8 or (3, S, S) float in [0, 1]: the generated crop of ``box``.
        box: ``(x0, y0, x1, y1)`` pixels from :func:`crop_box`.
        feather: the mask's ramps (:func:`blend_mask`).

    Returns:
        (H, W, 3) uint8; identical to ``frame`` wherever the mask is 0 (outside the box, its upper half, its
        outermost rows and columns where the ramp rounds to 0 weight).
    """
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != torch.uint8:
        raise MumoError(f"frame must be (H, W, 3) uint8, not {tuple(frame.shape)} {frame.dtype}")
    x0, y0, x1, y1 = box
    if face.dtype == torch.uint8:
        face = face.permute(2, 0, 1).float().div(255.0)  # (3, S, S)
    resized = F.interpolate(face[None].float(), size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False,
                            antialias=True)[0].clamp(0, 1).mul(255).permute(1, 2, 0)  # fmt: skip  # (h, w, 3)
    mask = torch.from_numpy(blend_mask(y1 - y0, x1 - x0, feather))[..., None]  # (h, w, 1)
    region = frame[y0:y1, x0:x1].float()  # (h, w, 3)
    blended = (region + mask * (resized - region)).round().clamp(0, 255).to(torch.uint8)
    out = frame.clone()
    out[y0:y1, x0:x1] = torch.where(mask > 0, blended, frame[y0:y1, x0:x1])  # mask 0: the input byte, exactly
    return out


def ping_pong_indices(n_source: int, n_out: int) -> torch.Tensor:
    """(n_out,) indices into ``n_source`` frames: 0, 1, ..., n-1, n-2, ..., 1, 0, 1, ... (the turning frames are
    not repeated); the first ``n_out`` of them when the source is longer; all 0 for one frame (a still image)."""
    if n_source < 1 or n_out < 0:
        raise MumoError(f"need n_source >= 1 and n_out >= 0, not {n_source} and {n_out}")
    if n_source == 1:
        return torch.zeros(n_out, dtype=torch.long)
    period = 2 * (n_source - 1)
    k = torch.arange(n_out) % period  # (n_out,)
    return torch.where(k < n_source, k, period - k)
