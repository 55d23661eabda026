"""MCAN's own attention as maps over the image grid (or regions).

- ``image``: the image-side attentional reduction (AttFlat) weights, averaged over glimpses: where
  the answer's image summary came from, a distribution over the R regions (N, R).
- ``guided``: the question-guided attention of every decoder layer and head, turned around: for each
  question token, the weight every image region puts on it, (N, layers, heads, L, R). Padding tokens
  carry zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from einops import rearrange
from torch import nn

from mumo.errors import MumoError
from mumo.types import VQAOutput


@dataclass
class AttentionMaps:
    """Attention maps of one batch; ``grid`` (rows, cols) when the regions form a grid."""

    image: torch.Tensor  # (N, R) AttFlat weights, sums to 1 over R
    guided: torch.Tensor | None  # (N, layers, heads, L, R)
    output: VQAOutput
    grid: tuple[int, int] | None = None


def attention_maps(model: nn.Module, batch: Any) -> AttentionMaps:
    """Run the model once with ``output_attentions=True`` and return its image attention maps.

    Raises:
        MumoError: the model does not return image attention (use a gradient method instead).
    """
    try:
        out = model(batch, output_attentions=True)
    except TypeError:
        out = None
    if out is None or "image_flat" not in getattr(out, "attentions", {}):
        raise MumoError(f"{type(model).__name__} returns no image attention; methods that apply to it: gradcam, ucam")
    return image_attention(out)


def image_attention(out: VQAOutput) -> AttentionMaps:
    """The maps from an output that already holds attentions."""
    image = out.attentions["image_flat"].mean(-1)  # (N, R): mean over glimpses
    guided = out.attentions.get("guided")
    if guided is not None:
        guided = rearrange(guided, "n l h r t -> n l h t r")  # (N, layers, heads, L, R)
    return AttentionMaps(image=image, guided=guided, output=out, grid=out.grid)
