"""Where inference runs: ``auto`` picks the first CUDA GPU when there is one, else the CPU.

Training places itself through ``accelerate`` (``train.cpu`` forces the CPU); this is for loading a
trained run to evaluate, predict or fit a density. MC-dropout masks come from a generator on the
chosen device, so the same seed gives the same samples on one device, not across CPU and GPU.
"""

from __future__ import annotations

import os

import torch

from mumo.errors import ConfigError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` as a torch device; a clear error when absent."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) are visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' asked for, but this PyTorch has no MPS backend here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    return device


def is_main_process() -> bool:
    """Rank 0 of a torchrun / accelerate launch, or a plain single process (read from the environment)."""
    return int(os.environ.get("RANK", "0")) == 0
