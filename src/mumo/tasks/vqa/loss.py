"""The VQA training loss: soft-target BCE, or an aleatoric loss for models with a variance head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mumo.config import ConfigError
from mumo.types import VQABatch, VQAOutput
from mumo.uncertainty.losses import kendall_gal_logit_noise_ce, ucam_aleatoric_ce


def vqa_loss(
    model: nn.Module, batch: VQABatch, reduction: str = "sum", aleatoric: str = "none", aleatoric_samples: int = 20
) -> tuple[torch.Tensor, dict[str, float]]:
    """The VQA training loss.

    - ``aleatoric="none"``: soft-target binary cross-entropy on the answer logits (MCAN: summed over
      batch x classes, or averaged over questions with ``reduction="mean"``);
    - ``"kendall-gal"``: Kendall & Gal's logit-noise softmax loss with the soft targets as weights;
    - ``"ucam"``: U-CAM's aleatoric loss L_u + gce + var + dep (a batch mean, times N for "sum").
    """
    return loss_from_output(model(batch), batch, reduction, aleatoric, aleatoric_samples)


def loss_from_output(
    out: VQAOutput, batch: VQABatch, reduction: str = "sum", aleatoric: str = "none", aleatoric_samples: int = 20
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`vqa_loss` of an output already computed."""
    logits = out.logits  # (N, C)
    n = logits.shape[0]
    if aleatoric == "none":
        loss = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="sum")
        return (loss / n if reduction == "mean" else loss), {}
    if out.log_variance is None:
        raise ConfigError(f"aleatoric loss {aleatoric!r} needs a model built with model.aleatoric={aleatoric}")
    if aleatoric == "kendall-gal":
        loss = kendall_gal_logit_noise_ce(
            logits, out.log_variance, batch.targets, num_samples=aleatoric_samples, reduction=reduction
        )
        return loss, {}
    terms = ucam_aleatoric_ce(logits, out.log_variance.exp(), batch.targets, num_samples=aleatoric_samples)
    return (terms.total * n if reduction == "sum" else terms.total), {}
