"""MCAN's optimiser and learning-rate schedule (reference §2.3)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mumo.config import TrainConfig


def build_optimizer(models: nn.Module | Sequence[nn.Module], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam with MCAN's betas and eps over the trainable parameters of ``models``, in order; no weight decay
    unless configured."""
    models = [models] if isinstance(models, nn.Module) else models
    return torch.optim.Adam(
        [p for m in models for p in m.parameters() if p.requires_grad],
        lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps, weight_decay=cfg.weight_decay,
    )  # fmt: skip


def lr_factor(epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` during ``epoch`` (0-based).

    Warm-up: (epoch + 1) / (warmup_epochs + 1) for the first ``warmup_epochs`` epochs (MCAN: 1/4, 2/4,
    3/4); then 1; times ``decay_rate`` for every e in ``decay_epochs`` once e epochs are done, i.e. from the
    (e + 1)-th epoch on, as mcan-vqa's ``if epoch in LR_DECAY_LIST`` with its 0-based ``epoch``: MCAN's [10, 12]
    trains epochs 11 and 12 at 0.2x and epoch 13 at 0.04x. (Before this was corrected, mumo decayed one epoch
    earlier; the shipped presets were shifted with it, so they train as they did.)
    """
    factor = (epoch + 1) / (cfg.warmup_epochs + 1) if epoch < cfg.warmup_epochs else 1.0
    for e in cfg.decay_epochs:
        if epoch >= e:
            factor *= cfg.decay_rate
    return factor


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr
