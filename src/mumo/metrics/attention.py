"""How well explanation maps (attention, Grad-CAM, U-CAM) agree with ground-truth object masks.

Every function takes maps and ground truth on the model's image-feature grid: ``maps`` (N, R) and ``truth`` (N, R),
one row per question, R = rows * cols cells in row-major order. ``truth`` holds non-negative weights, e.g. the
fraction of each cell covered by the objects the question refers to (`mumo.data.vqa.masks.pool_to_grid`); a cell is
*in the mask* when its weight is > 0. Outputs are per-question tensors; `summarize_map_scores` averages them.

Degenerate rows, by rule:

- `rank_correlation` is NaN where the map or the truth is constant over the row (no ranking to compare, as
  ``scipy.stats.spearmanr``); `mean_ignoring_nan` averages the rest and counts these.
- `pointing_game` takes the single argmax cell, the first one in row-major order on ties (``torch.argmax``).
- `energy_in_mask` is 0 where the map has no positive mass: a map that highlights nothing puts nothing in the
  mask, so a method is not rewarded for returning empty maps on hard questions.
- A row with an empty mask (truth all 0) has NaN correlation, a pointing miss and energy 0.
"""

from __future__ import annotations

import math

import torch

from mumo.errors import MumoError


def _check_pair(maps: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (N, R) maps and (N, R) non-negative truth; return float64 copies (inputs stay untouched)."""
    if maps.ndim != 2 or truth.shape != maps.shape:
        raise MumoError(f"maps and truth must both have shape (N, R), got {tuple(maps.shape)} and {tuple(truth.shape)}")
    if maps.shape[1] == 0:
        raise MumoError("maps have no cells (R = 0)")
    if maps.is_complex() or truth.is_complex():
        raise MumoError("maps and truth must be real-valued")
    m = maps.detach().to(torch.float64)  # (N, R)
    t = truth.detach().to(torch.float64)  # (N, R)
    if not torch.isfinite(m).all():
        raise MumoError("maps hold NaN or infinite values")
    if not torch.isfinite(t).all():
        raise MumoError("truth holds NaN or infinite values")
    if (t < 0).any():
        raise MumoError("truth must be non-negative (cell weights such as mask coverage)")
    return m, t


def _average_ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks along dim 1, ties sharing their average rank (``scipy.stats.rankdata`` 'average')."""
    s = torch.sort(x, dim=1).values.contiguous()  # (N, R)
    x = x.contiguous()
    below = torch.searchsorted(s, x, side="left")  # (N, R) cells strictly smaller
    upto = torch.searchsorted(s, x, side="right")  # (N, R) cells smaller or equal
    return (below + upto + 1).to(torch.float64) / 2  # (N, R) mean of ranks below+1 .. upto


def rank_correlation(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation between each map and its ground truth.

    The Pearson correlation of average ranks (ties share their mean rank), as ``scipy.stats.spearmanr`` computes
    it for one pair of vectors.

    Args:
        maps: Explanation maps, (N, R).
        truth: Ground-truth cell weights, (N, R), non-negative.

    Returns:
        Correlations in [-1, 1], (N,) float64; NaN where the map or the truth is constant over the row.

    Raises:
        MumoError: On mismatched or non-(N, R) shapes, NaN/inf values or negative truth.
    """
    m, t = _check_pair(maps, truth)
    rm = _average_ranks(m)  # (N, R)
    rt = _average_ranks(t)  # (N, R)
    rm = rm - rm.mean(dim=1, keepdim=True)  # (N, R) ranks are half-integers: a constant row is exactly 0
    rt = rt - rt.mean(dim=1, keepdim=True)  # (N, R)
    cov = (rm * rt).sum(dim=1)  # (N,)
    scale = torch.sqrt((rm * rm).sum(dim=1) * (rt * rt).sum(dim=1))  # (N,)
    rho = torch.where(scale > 0, cov / scale.clamp_min(1e-300), torch.full_like(cov, math.nan))  # (N,)
    return rho.clamp(-1.0, 1.0)  # clamp keeps NaN


def mean_ignoring_nan(values: torch.Tensor) -> tuple[float, int]:
    """Mean of the defined entries of (N,) per-question scores, and how many were NaN (undefined).

    Returns:
        ``(mean, undefined)``; the mean is NaN when no entry is defined (including N = 0).
    """
    if values.ndim != 1:
        raise MumoError(f"values must have shape (N,), got {tuple(values.shape)}")
    v = values.detach().to(torch.float64)  # (N,)
    defined = ~torch.isnan(v)  # (N,)
    undefined = int((~defined).sum())
    if not defined.any():
        return math.nan, undefined
    return float(v[defined].mean()), undefined


def pointing_game(maps: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Whether the map's maximum falls inside the mask (Zhang et al. 2016, on grid cells).

    The pointed cell is the single argmax of each row; on ties the first maximal cell in row-major order
    (``torch.argmax``) is taken, so a flat map does not score a hit by touching the mask somewhere.

    Args:
        maps: Explanation maps, (N, R).
        truth: Ground-truth cell weights, (N, R), non-negative; a cell is in the mask when its weight is > 0.

    Returns:
        Hits, (N,) bool.

    Raises:
        MumoError: On mismatched or non-(N, R) shapes, NaN/inf values or negative truth.
    """
    m, t = _check_pair(maps, truth)
    pointed = m.argmax(dim=1, keepdim=True)  # (N, 1) first maximal cell
    return t.gather(1, pointed).squeeze(1) > 0  # (N,)


def energy_in_mask(maps: torch.Tensor, truth: torch.Tensor, *, weighted: bool = False) -> torch.Tensor:
    """Fraction of each map's positive mass that lies inside the mask (energy-based pointing game).

    The map is ReLU'd first, as Grad-CAM maps are: negative evidence carries no energy.

    Args:
        maps: Explanation maps, (N, R).
        truth: Ground-truth cell weights, (N, R), non-negative.
        weighted: False counts the full mass of every cell with truth > 0. True weights each cell's mass by its
            truth value, read as the fraction of the cell the objects cover (so truth must lie in [0, 1]); a map
            then scores 1 only if all its mass sits on fully covered cells.

    Returns:
        Energy fractions in [0, 1], (N,) float64; 0 where the map has no positive mass.

    Raises:
        MumoError: On mismatched or non-(N, R) shapes, NaN/inf values, negative truth, or truth > 1 with
            ``weighted``.
    """
    m, t = _check_pair(maps, truth)
    if weighted and (t > 1).any():
        raise MumoError("weighted energy_in_mask needs truth in [0, 1] (cell coverage fractions)")
    mass = m.clamp_min(0)  # (N, R)
    inside = t if weighted else (t > 0).to(torch.float64)  # (N, R)
    total = mass.sum(dim=1)  # (N,)
    return torch.where(total > 0, (mass * inside).sum(dim=1) / total.clamp_min(1e-300), torch.zeros_like(total))


def summarize_map_scores(maps: torch.Tensor, truth: torch.Tensor) -> dict[str, float | int]:
    """Mean map-vs-mask scores over N questions.

    Returns:
        ``rank_correlation`` (mean over defined rows), ``pointing_game`` (hit rate), ``energy_in_mask`` (mean,
        unweighted), ``count`` (N) and ``undefined`` (rows whose rank correlation is NaN, left out of its mean).

    Raises:
        MumoError: On N = 0, or invalid inputs as for the per-question functions.
    """
    if maps.ndim == 2 and maps.shape[0] == 0:
        raise MumoError("empty input: maps hold no questions (N = 0)")
    rho, undefined = mean_ignoring_nan(rank_correlation(maps, truth))
    return {
        "rank_correlation": rho,
        "pointing_game": float(pointing_game(maps, truth).to(torch.float64).mean()),
        "energy_in_mask": float(energy_in_mask(maps, truth).mean()),
        "count": int(maps.shape[0]),
        "undefined": undefined,
    }
