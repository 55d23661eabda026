"""Aleatoric-uncertainty losses for classification (reference §3.3-3.4).

Two different losses, named for what they are:

- :func:`kendall_gal_logit_noise_ce` — Kendall & Gal (2017): Gaussian noise on the logits with a
  learned per-class variance, x̂_t = f + σ ⊙ ε_t, and the loss −log (1/T) Σ_t softmax(x̂_t)_c, computed
  with logsumexp. With soft VQA targets the per-answer terms are weighted by the soft score (a mumo
  extension; with one-hot targets it is exactly the paper's loss).
- :func:`ucam_aleatoric_ce` — the variant in U-CAM's public code (after Dorman's blog post): one
  variance per example, undistorted CE L_u, distorted CEs L_{d,t} = CE(logits + ε_t), and
  L_U = L_u + mean_t L_{d,t} + mean_t[−ELU(L_u − L_{d,t})] + (exp(σ²) − 1). Not the K&G loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def _noise(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def kendall_gal_logit_noise_ce(
    logits: torch.Tensor,
    log_variance: torch.Tensor,
    targets: torch.Tensor,
    *,
    num_samples: int = 20,
    reduction: str = "sum",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Kendall & Gal's heteroscedastic classification loss.

    Args:
        logits: (N, C) f.
        log_variance: (N, C) or (N, 1) s = log σ².
        targets: (N, C) soft targets (one-hot for plain classification).
        num_samples: T noise samples.
        reduction: "sum" over examples or "mean".
        generator: for the noise ε ~ N(0, I).
    """
    sigma = torch.exp(0.5 * log_variance)  # (N, C) or (N, 1)
    eps = _noise((num_samples, *logits.shape), logits, generator)  # (T, N, C)
    noisy = logits + sigma * eps  # (T, N, C)
    log_probs = noisy - torch.logsumexp(noisy, dim=-1, keepdim=True)  # (T, N, C) log softmax
    log_mean_prob = torch.logsumexp(log_probs, dim=0) - math.log(num_samples)  # (N, C) log (1/T) Σ_t p_t
    per_example = -(targets * log_mean_prob).sum(-1)  # (N,)
    return per_example.sum() if reduction == "sum" else per_example.mean()


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Σ_c −log_softmax(z)_c · target_c per example: (..., C), (N, C) -> (...)."""
    return -(F.log_softmax(logits, dim=-1) * targets).sum(-1)


@dataclass
class UCAMLoss:
    """The four terms of U-CAM's aleatoric loss, each averaged over the batch, and their sum."""

    total: torch.Tensor  # L_u + distorted + variance_term + depressor
    undistorted: torch.Tensor  # L_u
    distorted: torch.Tensor  # mean_t L_{d,t} ("gce")
    variance_term: torch.Tensor  # mean_t[−ELU(L_u − L_{d,t})] ("var")
    depressor: torch.Tensor  # exp(σ²) − 1 ("dep")

    @property
    def aleatoric(self) -> torch.Tensor:
        """gce + var + dep: the part U-CAM's aleatoric map back-propagates."""
        return self.distorted + self.variance_term + self.depressor


def ucam_aleatoric_ce(
    logits: torch.Tensor,
    variance: torch.Tensor,
    targets: torch.Tensor,
    *,
    num_samples: int = 100,
    generator: torch.Generator | None = None,
) -> UCAMLoss:
    """U-CAM's aleatoric loss.

    The −ELU term is taken per example, −ELU(L_u − L_{d,t}) on (T, N), then averaged; U-CAM's public code
    (``misc/aleatoric_loss.py``) applies it to the difference of the batch-mean cross-entropies. The two agree
    for one example per batch (docs/uncertainty.md, "Aleatoric heads and losses").

    Args:
        logits: (N, C).
        variance: (N, 1) σ² ≥ 0, one per example (U-CAM: softplus(Linear(C -> 1)(logits))).
        targets: (N, C) soft targets.
        num_samples: T distortions (U-CAM uses 100).
        generator: for ε_t ~ N(0, σ) per class (σ = sqrt(variance), the standard deviation).
    """
    std = variance.clamp_min(0).sqrt()  # (N, 1)
    undistorted = soft_cross_entropy(logits, targets)  # (N,)
    eps = _noise((num_samples, *logits.shape), logits, generator) * std  # (T, N, C)
    distorted = soft_cross_entropy(logits + eps, targets)  # (T, N)
    variance_term = -F.elu(undistorted - distorted)  # (T, N)
    depressor = torch.expm1(variance.squeeze(-1))  # (N,)
    terms = [undistorted.mean(), distorted.mean(), variance_term.mean(), depressor.mean()]
    return UCAMLoss(sum(terms), *terms)  # type: ignore[arg-type]


def noisy_logit_probs(
    logits: torch.Tensor,
    log_variance: torch.Tensor | None,
    *,
    num_samples: int = 50,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Predictive probabilities under the learned logit noise, E_ε softmax(f + σ ε): (..., C) -> (..., C).

    With ``log_variance=None`` this is the plain softmax.
    """
    if log_variance is None:
        return logits.softmax(-1)
    sigma = torch.exp(0.5 * log_variance)
    eps = _noise((num_samples, *logits.shape), logits, generator)  # (S, ..., C)
    return (logits + sigma * eps).softmax(-1).mean(0)
