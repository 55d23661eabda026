"""Gaussian pixel noise on [0, 1] images: the evaluation shift and the training augmentation share it.

- :func:`add_pixel_noise` — N(0, std²) on every pixel, clipped to [0, 1] and re-quantised to 8 bits, as a
  saved noisy image would be. :func:`mumo.data.shift.ood.gaussian_noise_split` shifts a whole split with it.
- :func:`random_pixel_noise` — the augmentation (``objective.augment_pixel_noise``): each image gets its own
  std, drawn uniformly from [0, max_std], so the model sees clean, mildly and strongly noisy images (Gaussian
  noise augmentation: Lopes et al. 2019, arXiv:1906.02611; Rusak et al. 2020, arXiv:2001.06057).
"""

from __future__ import annotations

import torch


def add_pixel_noise(pixels: torch.Tensor, std: float | torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``pixels`` (B, 3, H, W) in [0, 1] plus N(0, std²) noise, clipped and rounded to multiples of 1/255.

    ``std``: one value, or one per image, (B, 1, 1, 1). Never in place.
    """
    noise = torch.randn(pixels.shape, generator=generator, dtype=pixels.dtype)  # (B, 3, H, W)
    return (pixels + std * noise.to(pixels.device)).clamp_(0, 1).mul_(255).round_().div_(255)


def random_pixel_noise(images: torch.Tensor, max_std: float, generator: torch.Generator) -> torch.Tensor:
    """``images`` (B, 3, H, W) in [0, 1], each with N(0, s²) noise, s ~ U[0, max_std] drawn per image."""
    std = torch.rand(images.shape[0], 1, 1, 1, generator=generator, dtype=images.dtype) * max_std  # (B, 1, 1, 1)
    return add_pixel_noise(images, std.to(images.device), generator)
