"""Grad-CAM for multi-input models (Selvaraju et al.; reference §4.1), as torch tensors.

For a scalar target y and a layer output A:

- a feature map (B, K, H, W): w_k = mean_{ij} ∂y/∂A_{k,ij}, map = Σ_k w_k A_k -> (B, H, W);
- region / grid-cell features (N, R, K), channels last: w_k = mean_r ∂y/∂A_{r,k},
  map = Σ_k w_k A_{·,k} -> (N, R), one value per region (grid cells in row-major order).

then ReLU (optional). Maps stay in the autograd graph with ``create_graph=True`` (training uses it);
the model's train/eval mode is left as the caller set it (MC-dropout CAMs need dropout on).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mumo.explain.hooks import capture, resolve_layer
from mumo.types import VQAOutput

Target = Callable[[Any, Any], torch.Tensor]  # (output, batch) -> (N,)


def cam_from_gradients(activation: torch.Tensor, gradient: torch.Tensor, *, relu: bool = True) -> torch.Tensor:
    """Grad-CAM map from a layer's activation and the target's gradient w.r.t. it.

    (B, K, H, W) -> (B, H, W); (N, R, K) -> (N, R).
    """
    if activation.dim() == 4:
        weights = gradient.mean(dim=(2, 3))  # (B, K)
        cam = torch.einsum("bk,bkhw->bhw", weights, activation)  # (B, H, W)
    elif activation.dim() == 3:
        weights = gradient.mean(dim=1)  # (N, K)
        cam = torch.einsum("nk,nrk->nr", weights, activation)  # (N, R)
    else:
        raise ValueError(f"Grad-CAM needs a (B, K, H, W) or (N, R, K) activation, not shape {tuple(activation.shape)}")
    return torch.relu(cam) if relu else cam


def normalize_maps(maps: torch.Tensor) -> torch.Tensor:
    """Min-max normalise every map to [0, 1] over its spatial dims: (N, ...) -> (N, ...).

    A constant map becomes all zeros.
    """
    flat = maps.flatten(1)  # (N, S)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values  # (N, 1)
    span = hi - lo
    out = torch.where(span > 0, (flat - lo) / span.clamp_min(1e-12), torch.zeros_like(flat))
    return out.view_as(maps)


@dataclass
class CamResult:
    """Maps for every row of the batch, the forward output they explain, and the feature grid."""

    maps: torch.Tensor  # (N, R) per region / grid cell, or (B, H, W) for a conv feature map
    output: VQAOutput
    grid: tuple[int, int] | None = None  # (rows, cols) when maps are grid cells in row-major order

    def grid_maps(self) -> torch.Tensor:
        """Maps as (N, rows, cols)."""
        if self.maps.dim() == 3:
            return self.maps
        if self.grid is None:
            raise ValueError("these maps are per region, not on a grid")
        return self.maps.view(self.maps.shape[0], *self.grid)


def grad_cam(
    model: nn.Module,
    batch: Any,
    target: Target,
    *,
    layer: nn.Module | str | None = None,
    relu: bool = True,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> CamResult:
    """Grad-CAM of ``target`` (per-row scores, summed) at ``layer`` (default: the model's explanation layer).

    Inputs are not modified. With ``create_graph=True`` the maps stay differentiable; with
    ``retain_graph=True`` the forward graph survives, so ``output`` can still be back-propagated.
    """
    module = resolve_layer(model, layer)
    with torch.enable_grad(), capture(module) as cap:
        output = model(batch)
        maps = cam_of(target(output, batch).sum(), cap.last, relu=relu, create_graph=create_graph,
                      retain_graph=retain_graph)  # fmt: skip
    return CamResult(maps=maps, output=output, grid=getattr(output, "grid", None))


def cam_of(
    score: torch.Tensor,
    activation: torch.Tensor,
    *,
    relu: bool = True,
    create_graph: bool = False,
    retain_graph: bool = False,
) -> torch.Tensor:
    """Grad-CAM map of a scalar ``score`` at an ``activation`` already in its graph (see :func:`capture`)."""
    (gradient,) = torch.autograd.grad(
        score, activation, create_graph=create_graph, retain_graph=retain_graph or create_graph
    )
    return cam_from_gradients(activation if create_graph else activation.detach(), gradient, relu=relu)
