"""The VQA model a run trains (with the objective that trains its attention, if any) and loading a trained one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.devices import resolve_device
from mumo.errors import CheckpointError, ConfigError
from mumo.models import create_model
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.train.checkpoint import load_weights, read_weights
from mumo.types import Explainable, VQABatch

LEGACY_WRAPPER_PREFIX = "vqa."  # the model's keys in checkpoints of attention-trained runs before the split


def attention_objective(cfg: RunConfig, model: nn.Module, *, example: VQABatch) -> nn.Module | None:
    """The objective that trains ``model``'s attention with its explanation (and holds the discriminator), when
    ``objective.attention_loss`` is set (see :mod:`mumo.tasks.vqa.attention`); None otherwise.

    ``example``: one batch, to size the discriminator from the explanation layer's output.
    """
    if cfg.objective.attention_loss == "none":
        return None
    from mumo.tasks.vqa.attention import AttentionObjective, feature_shape

    if not isinstance(model, Explainable):
        raise ConfigError(f"objective.attention_loss={cfg.objective.attention_loss} needs a model with image attention")
    cells, features = feature_shape(model, example)
    return AttentionObjective(cfg, cells=cells, features=features)


def load_artifacts(run_dir: Path) -> dict[str, Any]:
    """The run's vocabulary and answers; checks that it is a VQA run."""
    run = Run(run_dir)
    run.require_kind("vqa", "a VQA model")
    art = run.artifacts
    for key in ("vocab", "answers"):
        value = art.get(key)
        if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
            raise CheckpointError(f"corrupted run: {run.file('artifacts.json')}: {key!r} is not a list of words")
    return art


def load_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one).

    Runs written before models were checkpointed apart hold the attention-training wrapper in
    ``model.safetensors`` (the VQA model under ``vqa.``, its discriminator beside it): the model's part is read.
    """
    run = Run(run_dir)
    art = load_artifacts(Path(run_dir))
    cfg = run.config(RunConfig)
    model = create_model(cfg.model, vocab=art["vocab"], num_answers=len(art["answers"]))
    ckpt = run.checkpoint(which)
    weights = read_weights(ckpt)
    if any(k.startswith(LEGACY_WRAPPER_PREFIX) for k in weights):
        n = len(LEGACY_WRAPPER_PREFIX)
        weights = {k[n:]: v for k, v in weights.items() if k.startswith(LEGACY_WRAPPER_PREFIX)}
    load_weights(model, ckpt, weights=weights)
    return model.to(resolve_device(device)).eval()
