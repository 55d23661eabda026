"""Feature-space shift: Gaussian noise on a module's output, as a context manager (hook released on exit).

The protocol of the 2021 MCAN uncertainty study (reference §3.6): add N(0, std²) noise to the image
features fed to the fusion. Works on any module whose output is a tensor or a tuple starting with one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


@contextlib.contextmanager
def feature_noise(module: nn.Module, std: float, *, seed: int = 0) -> Iterator[None]:
    """Within the block, ``module``'s output gets N(0, std²) noise added (seeded, never in place)."""
    gen: dict[str, torch.Generator] = {}

    def hook(_m: nn.Module, _inputs: Any, output: Any) -> Any:
        first = output[0] if isinstance(output, tuple) else output
        key = str(first.device)
        if key not in gen:
            gen[key] = torch.Generator(device=first.device).manual_seed(seed)
        noisy = first + std * torch.randn(first.shape, generator=gen[key], device=first.device, dtype=first.dtype)
        return (noisy, *output[1:]) if isinstance(output, tuple) else noisy

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
