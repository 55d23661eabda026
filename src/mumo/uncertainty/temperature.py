"""Temperature scaling (Guo et al. 2017): the post-hoc calibration baseline.

One scalar T > 0 divides every logit, p = softmax(z / T), fitted on held-out data by minimising the
negative log-likelihood. T > 1 softens over-confident predictions, T < 1 sharpens; the argmax, and so
the accuracy, never changes. The NLL is convex in 1 / T, so a bounded 1-D search finds the optimum.

Pure functions on logits (N, C) and integer labels (N,).
"""

from __future__ import annotations

import math

import torch

from mumo.errors import MumoError

BOUNDS = (0.05, 20.0)  # the search range for T


def _check(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2 or labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise MumoError(f"need logits (N, C) and labels (N,), got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if logits.shape[0] == 0:
        raise MumoError("cannot fit a temperature on zero samples")
    if not torch.isfinite(logits).all():
        raise MumoError("the logits hold NaN or infinite values")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise MumoError(f"labels must lie in [0, {logits.shape[1]})")


def temperature_nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under softmax(logits / T)."""
    _check(logits, labels)
    if not temperature > 0:
        raise MumoError(f"the temperature must be > 0, not {temperature}")
    z = logits.double() / temperature  # (N, C)
    return float(torch.nn.functional.cross_entropy(z, labels.long()))


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, *, bounds: tuple[float, float] = BOUNDS) -> float:
    """The T in ``bounds`` that minimises the NLL of softmax(logits / T) on (logits, labels).

    A held-out set the model gets entirely right has no finite optimum (sharper is always better); the
    search then stops at the lower bound, which is returned.

    Raises:
        MumoError: empty input, NaN / infinite logits, labels out of range, or bad bounds.
    """
    _check(logits, labels)
    lo, hi = bounds
    if not 0 < lo < hi:
        raise MumoError(f"temperature bounds must satisfy 0 < low < high, got {bounds}")
    z, y = logits.detach().double().cpu(), labels.detach().long().cpu()

    def nll(log_t: float) -> float:
        return float(torch.nn.functional.cross_entropy(z / math.exp(log_t), y))

    from scipy.optimize import minimize_scalar  # here, not at import: SciPy costs ~0.4 s to import

    res = minimize_scalar(nll, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-5})
    return float(math.exp(res.x))
