"""U-CAM: Grad-CAM of an uncertainty-augmented loss (mumo's operational definition, reference §4.2).

U-CAM(x, q) = ReLU(Σ_k w_k V_k), w_k = spatial mean of ∂L/∂V_k, with V the image features that
enter the fusion (MCAN: the regions entering the co-attention, one copy per question). Variants:

- ``loss``: L = L_U = L_u + gce + var + dep, U-CAM's aleatoric loss (reference §3.4) against the
  ground-truth soft targets (or the predicted answer when there are none). Needs a model trained
  with ``model.aleatoric=ucam``.
- ``aleatoric``: only the uncertainty part, gce + var + dep (what U-CAM's ``evalVis.py`` shows as
  the aleatoric map). Same head needed.
- ``predictive``: L = H[p̄], the entropy of the mean softmax over T MC-dropout passes, with the
  gradients accumulated over the passes. mumo's reading of P-GCA, not the paper's equations (which
  are not public); works for any model with dropout.

Following the public code (``evalVis.py``), the sign is that of the *loss* gradient: the map shows
where the features raise the loss / uncertainty. Pass ``negate=True`` for the cells that lower it
(for the plain loss that is standard Grad-CAM of the log-likelihood, reference §4.1). Per example the
losses are summed, not averaged, so raw maps do not shrink with the batch size.

Because the map is linear in the gradient, before the ReLU
``U-CAM_loss = Grad-CAM(L_u) + U-CAM_aleatoric`` exactly; with σ² = 0 the distorted losses equal
L_u and the uncertainty terms vanish, so U-CAM is a multiple of the plain-loss map.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mumo.errors import MumoError
from mumo.explain.gradcam import CamResult, cam_from_gradients
from mumo.explain.hooks import capture, resolve_layer
from mumo.types import VQAOutput
from mumo.uncertainty.losses import ucam_aleatoric_ce
from mumo.uncertainty.mc_dropout import check_num_samples, mc_dropout

UCAM_VARIANTS = ("loss", "aleatoric", "predictive")


def _targets(output: VQAOutput, batch: Any) -> torch.Tensor:
    """(N, C) the ground-truth soft targets, or one-hot predicted answers when there are none."""
    if getattr(batch, "targets", None) is not None:
        return batch.targets.to(output.logits.device)
    return F.one_hot(output.logits.argmax(-1), output.logits.shape[-1]).to(output.logits.dtype)


def uncertainty_loss(output: VQAOutput, batch: Any, variant: str, *, samples: int, seed: int) -> torch.Tensor:
    """The summed per-example loss U-CAM back-propagates (variants ``loss`` / ``aleatoric``)."""
    if output.log_variance is None or output.log_variance.shape[-1] != 1:
        raise MumoError(
            f"U-CAM variant {variant!r} needs U-CAM's aleatoric head (train with model.aleatoric=ucam); "
            "the 'predictive' variant works with any model that has dropout"
        )
    gen = torch.Generator(device=output.logits.device).manual_seed(seed)
    terms = ucam_aleatoric_ce(
        output.logits, output.log_variance.exp(), _targets(output, batch), num_samples=samples, generator=gen
    )
    n = output.logits.shape[0]
    part = terms.total if variant == "loss" else terms.aleatoric
    return part * n  # the terms are batch means: x N = per-example sum


def uncertainty_cam(
    model: nn.Module,
    batch: Any,
    *,
    variant: str = "predictive",
    layer: nn.Module | str | None = None,
    samples: int = 20,
    seed: int = 0,
    scope: str = "all",
    relu: bool = True,
    negate: bool = False,
) -> CamResult:
    """U-CAM maps of a batch (see the module docstring for the variants).

    ``samples``: T logit-noise samples for ``loss``/``aleatoric``, T dropout passes for ``predictive``
    (seeded masks, in MC-dropout ``scope``). The model's train/eval flags are restored afterwards.
    """
    if variant not in UCAM_VARIANTS:
        raise MumoError(f"unknown U-CAM variant {variant!r}; choose one of: {', '.join(UCAM_VARIANTS)}")
    check_num_samples(samples)
    module = resolve_layer(model, layer)
    sign = -1.0 if negate else 1.0
    if variant != "predictive":
        with torch.enable_grad(), capture(module) as cap:
            output = model(batch)
            loss = uncertainty_loss(output, batch, variant, samples=samples, seed=seed)
            (grad,) = torch.autograd.grad(sign * loss, cap.last)
        maps = cam_from_gradients(cap.last.detach(), grad, relu=relu)
        return CamResult(maps=maps, output=output, grid=output.grid)
    # H[p̄] with p̄ = mean_t p_t, differentiated pass by pass: dH/dp_t = (dH/dp̄) / T, and dH/dp̄ depends on p̄
    # alone. So the T passes run once without a graph for p̄, then again one at a time with their graph, each
    # backpropagating <dH/dp̄, p_t> / T: the same gradient with one pass's activations in memory, not T.
    with torch.no_grad(), mc_dropout(model, seed=seed, scope=scope) as sampler:
        probs = []
        for t in range(samples):
            sampler.first, sampler.count = t, 1
            probs.append(model(batch).logits.softmax(-1))  # (N, C)
        p_bar = torch.stack(probs).mean(0)  # (N, C) mean over the T passes
    with torch.enable_grad():
        p = p_bar.detach().requires_grad_()
        entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()  # Σ_n H[p̄_n]
        (d_entropy,) = torch.autograd.grad(sign * entropy, p)  # (N, C)
    gradient = activation = grid = None
    with mc_dropout(model, seed=seed, scope=scope) as sampler:  # a fresh sampler: the same masks again
        for t in range(samples):
            sampler.first, sampler.count = t, 1
            with torch.enable_grad(), capture(module) as cap:
                out = model(batch)
                (grad,) = torch.autograd.grad((d_entropy * out.logits.softmax(-1)).sum() / samples, cap.last)
            gradient = grad if gradient is None else gradient + grad  # (N, R, K) accumulated over the passes
            a = cap.last.detach()  # equal across passes before dropout
            activation = a / samples if activation is None else activation + a / samples
            grid = out.grid
    maps = cam_from_gradients(activation, gradient, relu=relu)
    mean_output = VQAOutput(
        logits=torch.log(p_bar.clamp_min(1e-12)), grid=grid
    )  # log p̄ stands in for logits: its argmax is the MC answer
    return CamResult(maps=maps, output=mean_output, grid=grid)
