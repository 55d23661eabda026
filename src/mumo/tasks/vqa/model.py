"""The VQA model a run trains (with its attention-training wrapper) and loading a trained one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.config import ConfigError, RunConfig
from mumo.devices import resolve_device
from mumo.models import create_model
from mumo.runs import Run
from mumo.train.checkpoint import (
    load_weights,
)
from mumo.types import VQABatch


def trainable_model(cfg: RunConfig, vocab: list[str], num_answers: int, *, example: VQABatch | None) -> nn.Module:
    """The model the loop trains and checkpoints: the VQA model, wrapped with its attention supervision
    (and discriminator) when ``train.attention_loss`` is set (see :mod:`mumo.tasks.vqa.attention`).

    ``example``: one batch, to size the discriminator (None when loading: sized from the config's grid).
    """
    model = create_model(cfg.model, vocab=vocab, num_answers=num_answers)
    if cfg.train.attention_loss == "none":
        return model
    from mumo.tasks.vqa.attention import AttentionSupervisedVQA, feature_shape

    if not hasattr(model, "explain_layer"):
        raise ConfigError(f"train.attention_loss={cfg.train.attention_loss} needs a model with image attention")
    if example is None:
        cells, features = _grid_cells(cfg), model.image_encoder.out_channels
    else:
        cells, features = feature_shape(model, example)
    return AttentionSupervisedVQA(model, cfg, cells=cells, features=features)


def _grid_cells(cfg: RunConfig) -> int:
    """Image regions R of a grid-CNN model (each pooling halves the size, rounding up)."""
    if cfg.model.image_encoder != "cnn":
        raise ConfigError("attention-supervised training is implemented for the grid CNN front-end")
    side = cfg.data.image_size
    for _ in range(cfg.model.cnn_pool):
        side = -(-side // 2)
    return side * side


def load_artifacts(run_dir: Path) -> dict[str, Any]:
    """The run's vocabulary and answers; checks that it is a VQA run."""
    run = Run(run_dir)
    run.require_kind("vqa", "a VQA model")
    return run.artifacts


def load_model(run_dir: Path, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run = Run(run_dir)
    art = load_artifacts(run_dir)
    cfg = run.config(RunConfig)
    model = trainable_model(cfg, art["vocab"], len(art["answers"]), example=None)
    load_weights(model, run.checkpoint(which))
    model = getattr(model, "vqa", model)  # drop the attention-training wrapper
    return model.to(resolve_device(device)).eval()
