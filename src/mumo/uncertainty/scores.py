"""Uncertainty scores from Monte Carlo samples, as pure functions (reference §3.2).

Every function takes probabilities of shape (T, B, C) — T stochastic passes, B examples, C classes —
and returns one score per example, shape (B,), in nats where it is an entropy. Decomposition:
``predictive_entropy == expected_entropy + mutual_information`` (total = aleatoric + epistemic).
"""

from __future__ import annotations

import torch

from mumo.errors import MumoError

_EPS = 1e-12


def check_probs(probs: torch.Tensor) -> torch.Tensor:
    """Validate (T, B, C) probabilities; raises MumoError on a wrong shape, NaN or inf."""
    if probs.ndim != 3:
        raise MumoError(f"MC probabilities must be (T, B, C), got shape {tuple(probs.shape)}")
    if not torch.isfinite(probs).all():
        raise MumoError("MC probabilities hold NaN or infinite values (did the model produce NaN logits?)")
    return probs


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(_EPS).log()).sum(-1)


def mean_probs(probs: torch.Tensor) -> torch.Tensor:
    """p̄ = mean over passes: (T, B, C) -> (B, C)."""
    return check_probs(probs).mean(0)


def predictive_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Total uncertainty H[p̄]: (T, B, C) -> (B,)."""
    return _entropy(mean_probs(probs))


def expected_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Aleatoric part E_t H[p_t]: (T, B, C) -> (B,)."""
    return _entropy(check_probs(probs)).mean(0)


def mutual_information(probs: torch.Tensor) -> torch.Tensor:
    """Epistemic part (BALD) H[p̄] − E_t H[p_t], clamped at 0: (T, B, C) -> (B,)."""
    return (predictive_entropy(probs) - expected_entropy(probs)).clamp_min(0.0)


def variation_ratio(probs: torch.Tensor) -> torch.Tensor:
    """1 − f_mode / T, f_mode = number of passes voting for the modal class: (T, B, C) -> (B,)."""
    votes = check_probs(probs).argmax(-1)  # (T, B)
    t, _, c = probs.shape
    counts = torch.nn.functional.one_hot(votes, c).sum(0)  # (B, C)
    return 1.0 - counts.max(-1).values.to(probs.dtype) / t


def predictive_variance(probs: torch.Tensor, reduction: str = "predicted") -> torch.Tensor:
    """Variance of p_t across passes (population variance, 1/T).

    Args:
        probs: (T, B, C).
        reduction: ``"predicted"`` — the variance of the class with the largest p̄ (B,);
            ``"mean"`` — averaged over classes (B,); ``"none"`` — per class (B, C).
    """
    var = check_probs(probs).var(0, unbiased=False)  # (B, C)
    if reduction == "none":
        return var
    if reduction == "mean":
        return var.mean(-1)
    if reduction == "predicted":
        return var.gather(-1, probs.mean(0).argmax(-1, keepdim=True)).squeeze(-1)
    raise MumoError(f"reduction must be 'predicted', 'mean' or 'none', not {reduction!r}")


def max_probability(probs: torch.Tensor) -> torch.Tensor:
    """max_c p̄_c, the confidence of the prediction: (T, B, C) -> (B,). Its uncertainty is 1 − this."""
    return mean_probs(probs).max(-1).values


SCORES = {
    "predictive_entropy": predictive_entropy,
    "expected_entropy": expected_entropy,
    "mutual_information": mutual_information,
    "variation_ratio": variation_ratio,
    "predictive_variance": predictive_variance,
    "one_minus_max_probability": lambda p: 1.0 - max_probability(p),
}


def uncertainty_scores(probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every score above for (T, B, C) probabilities, each (B,); higher = more uncertain."""
    return {name: fn(probs) for name, fn in SCORES.items()}
