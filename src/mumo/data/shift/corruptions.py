"""ImageNet-C corruptions (Hendrycks & Dietterich 2019, arXiv:1903.12261) on [0, 1] image batches.

Shifts a model was not trained for, to ask whether its uncertainty still finds its errors: noise
(``gaussian_noise``, ``shot_noise``, ``impulse_noise``), blur (``gaussian_blur``), weather
(``brightness``) and digital (``contrast``, ``jpeg_compression``, ``pixelate``), each at severities 1-5
with the parameters of the ImageNet-C code. Gaussian blur's sigma is scaled by the image side / 224 (the
ImageNet-C crop), so a blur covers the same fraction of a 64-px image as of a 224-px one; the other
parameters do not depend on the image size.

Written here rather than taken from the ``imagecorruptions`` package: its last release (1.1.2) calls
scikit-image's removed ``multichannel`` argument and depends on the non-headless ``opencv-python``, which
clashes with the headless OpenCV mumo installs. Every corruption returns a valid 8-bit image (clipped to
[0, 1], rounded to multiples of 1/255), as a saved corrupted image would be.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from mumo.data.shift.augment import add_pixel_noise
from mumo.errors import ConfigError

SEVERITIES = (1, 2, 3, 4, 5)


def _shot_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    return torch.poisson(x * c, generator=g) / c


def _impulse_noise(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    hit = torch.rand(x.shape, generator=g) < c  # (B, 3, H, W): each value, channels apart, as scikit-image does
    salt = torch.rand(x.shape, generator=g) < 0.5
    return torch.where(hit, salt.to(x.dtype), x)


def _gaussian_blur(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    sigma = c * x.shape[-1] / 224
    return torch.from_numpy(gaussian_filter(x.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest"))


def _brightness(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    # HSV value + c with hue and saturation kept: RGB scales by V'/V; black (S = 0) becomes grey V'
    v = x.amax(1, keepdim=True)  # (B, 1, H, W)
    v_new = (v + c).clamp(max=1)
    return torch.where(v > 0, x * v_new / v.clamp(min=1e-12), v_new.expand_as(x))


def _contrast(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    means = x.mean((2, 3), keepdim=True)  # (B, 3, 1, 1)
    return (x - means) * c + means


def _per_image(x: torch.Tensor, edit: Callable[[Image.Image], Image.Image]) -> torch.Tensor:
    out = []
    for img in (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy():  # (H, W, 3) each
        out.append(np.asarray(edit(Image.fromarray(img)).convert("RGB")))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).to(x.dtype) / 255


def _jpeg_compression(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    def edit(img: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(c))
        return Image.open(buf)

    return _per_image(x, edit)


def _pixelate(x: torch.Tensor, c: float, g: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _per_image(x, lambda img: img.resize((int(w * c), int(h * c)), Image.BOX).resize((w, h), Image.NEAREST))


# name -> (ImageNet-C's parameter at severities 1-5, the corruption)
_CORRUPTIONS: dict[str, tuple[tuple[float, ...], Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]]] = {
    "gaussian_noise": ((0.08, 0.12, 0.18, 0.26, 0.38), add_pixel_noise),  # std
    "shot_noise": ((60, 25, 12, 5, 3), _shot_noise),  # photons per unit intensity
    "impulse_noise": ((0.03, 0.06, 0.09, 0.17, 0.27), _impulse_noise),  # fraction of salt-and-pepper values
    "gaussian_blur": ((1, 2, 3, 4, 6), _gaussian_blur),  # sigma in pixels of a 224-px image
    "brightness": ((0.1, 0.2, 0.3, 0.4, 0.5), _brightness),  # added to the HSV value
    "contrast": ((0.4, 0.3, 0.2, 0.1, 0.05), _contrast),  # factor on the deviation from the channel mean
    "jpeg_compression": ((25, 18, 15, 10, 7), _jpeg_compression),  # JPEG quality
    "pixelate": ((0.6, 0.5, 0.4, 0.3, 0.25), _pixelate),  # downscaling factor
}
CORRUPTIONS = tuple(_CORRUPTIONS)


def check_corruption(name: str, severity: int) -> None:
    """Raises ConfigError for an unknown corruption or a severity outside 1-5."""
    if name not in _CORRUPTIONS:
        raise ConfigError(f"unknown corruption {name!r}; choose one of: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ConfigError(f"corruption severity must be one of 1-5, not {severity!r}")


def corrupt(pixels: torch.Tensor, name: str, severity: int, generator: torch.Generator) -> torch.Tensor:
    """``pixels`` (B, 3, H, W) in [0, 1] on the CPU under corruption ``name`` at ``severity`` (1-5).

    Never in place; seeded through ``generator`` (the noises draw from it, the others are deterministic).
    """
    check_corruption(name, severity)
    params, apply = _CORRUPTIONS[name]
    out = apply(pixels.float(), params[severity - 1], generator)  # (B, 3, H, W)
    return out.clamp(0, 1).mul(255).round().div(255).to(pixels.dtype)
