"""Deep nearest-neighbour out-of-distribution score and a threshold with a stated false-refusal rate.

Sun, Ming, Zhu and Li, "Out-of-Distribution Detection with Deep Nearest Neighbors" (ICML 2022): L2-normalise a
model's features, keep those of the training inputs as a bank, and score an input by the Euclidean distance
from its normalised feature to its k-th nearest neighbour in the bank. No density is assumed, so it holds for
features of any shape of distribution; large = far from everything the model was trained on.

The threshold is the split-conformal quantile of scores of held-out in-distribution inputs (validation): with n
reference scores, the ⌈(n + 1)(1 − α)⌉-th smallest. A new in-distribution input, exchangeable with the
reference, scores above it with probability at most α (Vovk et al. 2005; Angelopoulos and Bates,
arXiv:2107.07511 §1.1), so at most a fraction α of in-distribution inputs is refused, in expectation.

Pure functions on tensors; features are (N, F), scores (N,).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mumo.errors import MumoError


def normalise(features: torch.Tensor) -> torch.Tensor:
    """(N, F) features -> (N, F) float32 rows of unit L2 norm (a zero row stays zero)."""
    if features.ndim != 2 or features.shape[0] == 0:
        raise MumoError(f"features must be a non-empty (N, F) tensor, not {tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise MumoError("features hold NaN or infinite values")
    return F.normalize(features.float(), dim=-1)


def knn_distance(bank: torch.Tensor, features: torch.Tensor, k: int = 5, *, chunk: int = 1024) -> torch.Tensor:
    """Distance (N,) from each normalised feature to its ``k``-th nearest neighbour in ``bank``.

    Args:
        bank: (M, F) normalised training features (:func:`normalise`).
        features: (N, F) features to score (normalised here).
        k: which neighbour; 1 = the nearest.
        chunk: rows scored at a time, so memory stays (chunk, M) whatever N is.
    """
    if not 1 <= k <= bank.shape[0]:
        raise MumoError(f"k must lie in [1, {bank.shape[0]}] (the bank's size), not {k}")
    feats = normalise(features)
    if feats.shape[1] != bank.shape[1]:
        raise MumoError(f"features have {feats.shape[1]} dimensions, the bank {bank.shape[1]}")
    out = [torch.cdist(rows, bank).topk(k, largest=False).values[:, -1] for rows in feats.split(chunk)]  # (n,)
    return torch.cat(out)  # (N,)


def conformal_threshold(reference: torch.Tensor, alpha: float = 0.01) -> float:
    """The split-conformal threshold: the ⌈(n + 1)(1 − α)⌉-th smallest of the n ``reference`` scores, above which
    an exchangeable in-distribution input lies with probability at most ``alpha``.

    Raises:
        MumoError: ``alpha`` outside (0, 1), a non-finite score, or too few scores for ``alpha`` (n < 1/α − 1).
    """
    if not 0 < alpha < 1:
        raise MumoError(f"alpha must lie in (0, 1), not {alpha}")
    ref = reference.flatten().float()
    if ref.numel() == 0 or not torch.isfinite(ref).all():
        raise MumoError("the reference scores must be a non-empty set of finite numbers")
    n = ref.numel()
    rank = math.ceil((n + 1) * (1 - alpha) - 1e-9)  # the tolerance keeps alpha = 1/(n + 1) at rank n
    if rank > n:
        raise MumoError(
            f"{n} reference scores cannot bound the false-refusal rate at {alpha:g}: "
            f"at least {math.ceil(1 / alpha - 1)} are needed"
        )
    return float(ref.sort().values[rank - 1])
