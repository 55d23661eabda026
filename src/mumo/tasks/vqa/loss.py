"""The VQA training loss: soft-target BCE or softmax cross-entropy, or an aleatoric loss for models with a variance
head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mumo.config import ConfigError
from mumo.types import VQABatch, VQAOutput
from mumo.uncertainty.losses import kendall_gal_logit_noise_ce, soft_cross_entropy, ucam_aleatoric_ce


def vqa_loss(
    model: nn.Module,
    batch: VQABatch,
    reduction: str = "sum",
    aleatoric: str = "none",
    aleatoric_samples: int = 20,
    loss: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The VQA training loss.

    - ``aleatoric="none"``, ``loss="bce"``: soft-target binary cross-entropy on the answer logits (MCAN: summed
      over batch x classes, or averaged over questions with ``reduction="mean"``);
    - ``aleatoric="none"``, ``loss="softmax"``: soft-target softmax cross-entropy, −Σ_c t̂_c log softmax(z)_c with
      the targets normalised to sum 1 (a question with none in the vocabulary adds 0), summed or averaged over
      questions;
    - ``"kendall-gal"``: Kendall & Gal's logit-noise softmax loss with the soft targets as weights;
    - ``"ucam"``: U-CAM's aleatoric loss L_u + gce + var + dep (a batch mean, times N for "sum").
    """
    return loss_from_output(model(batch), batch, reduction, aleatoric, aleatoric_samples, loss)


def loss_from_output(
    out: VQAOutput,
    batch: VQABatch,
    reduction: str = "sum",
    aleatoric: str = "none",
    aleatoric_samples: int = 20,
    loss: str = "bce",
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`vqa_loss` of an output already computed."""
    logits = out.logits  # (N, C)
    n = logits.shape[0]
    if aleatoric == "none":
        if loss == "softmax":
            targets = batch.targets / batch.targets.sum(-1, keepdim=True).clamp_min(1e-12)  # (N, C), rows sum to 1
            value = soft_cross_entropy(logits, targets).sum()
        else:
            value = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="sum")
        return (value / n if reduction == "mean" else value), {}
    if out.log_variance is None:
        raise ConfigError(f"aleatoric loss {aleatoric!r} needs a model built with model.aleatoric={aleatoric}")
    if aleatoric == "kendall-gal":
        loss = kendall_gal_logit_noise_ce(
            logits, out.log_variance, batch.targets, num_samples=aleatoric_samples, reduction=reduction
        )
        return loss, {}
    terms = ucam_aleatoric_ce(logits, out.log_variance.exp(), batch.targets, num_samples=aleatoric_samples)
    return (terms.total * n if reduction == "sum" else terms.total), {}
