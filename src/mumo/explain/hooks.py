"""Context-managed activation capture for explanation methods.

Hooks are registered on entry and always removed on exit, also after an exception; nothing is
stored on the model. Captured activations stay in the autograd graph, so a method can take
``torch.autograd.grad(score, activation)`` (Grad-CAM, U-CAM) or keep the graph for training
(``create_graph=True``) without any backward hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mumo.errors import MumoError
from mumo.types import Explainable


@dataclass
class Captured:
    """Outputs of one module, one entry per call during the ``with`` block."""

    module: nn.Module
    activations: list[torch.Tensor] = field(default_factory=list)

    @property
    def last(self) -> torch.Tensor:
        """The activation of the most recent call."""
        if not self.activations:
            raise MumoError(
                f"the target layer {type(self.module).__name__} did not run in the forward pass: "
                "choose a layer on the path from the inputs to the output"
            )
        return self.activations[-1]


def _default_select(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]  # e.g. GridCNN returns (regions, grid)
    raise MumoError(f"cannot take a feature map from a layer that returns {type(output).__name__}")


@contextlib.contextmanager
def capture(module: nn.Module, *, select: Callable[[Any], torch.Tensor] = _default_select) -> Iterator[Captured]:
    """Record ``select(output)`` of ``module`` on every forward call inside the block.

    The recorded tensors are the ones the rest of the network consumes (not copies), so gradients
    with respect to them are the gradients of the layer's output.
    """
    captured = Captured(module)

    def hook(_module: nn.Module, _inputs: tuple[Any, ...], output: Any) -> Any:
        if isinstance(output, torch.Tensor) and not output.requires_grad and torch.is_grad_enabled():
            # nothing upstream is trainable (e.g. a fixed pooling of the pixels): make the layer output
            # a leaf so gradients w.r.t. it still exist; nothing upstream could receive them anyway
            output = output.detach().requires_grad_()
            captured.activations.append(output)
            return output
        captured.activations.append(select(output))
        return None

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


def resolve_layer(model: nn.Module, layer: nn.Module | str | None) -> nn.Module:
    """A layer given as a module, a dotted name (``"image_encoder.body"``), or None for the model's default.

    The default is ``model.explain_layer()`` when the model declares one (:class:`~mumo.types.Explainable`).
    """
    if isinstance(layer, nn.Module):
        return layer
    if layer is None:
        if not isinstance(model, Explainable):
            raise MumoError(
                f"{type(model).__name__} declares no default explanation layer; pass one (a module or dotted name)"
            )
        return model.explain_layer()
    try:
        return model.get_submodule(layer)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        raise MumoError(f"the model has no layer {layer!r}; some layers: {', '.join(names[:12])}") from None
