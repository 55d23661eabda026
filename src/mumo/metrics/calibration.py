"""Calibration metrics on predictive probabilities: ECE, adaptive ECE, MCE, reliability bins, NLL and Brier score.

Every function takes ``probs`` of shape (N, C) (one row of class probabilities per sample, e.g. the MC-dropout mean
p̄) and ``labels`` of shape (N,) (integer class indices), and returns plain Python numbers. Confidence is the top
probability and a sample is accurate when its argmax equals its label (exact match; ties in the argmax go to the
lowest class index). For VQA with soft targets, pass the exact-match label (e.g. the most frequent human answer) and
say so when reporting.

Binning convention: ``n_bins`` equal-width bins over [0, 1], right-closed, (b_{i-1}, b_i], with the first bin also
holding 0, i.e. [0, 1/n]. This is the convention of Guo et al. (2017) "On Calibration of Modern Neural Networks".
The bins are computed here by hand rather than with ``torchmetrics.functional.multiclass_calibration_error``:
torchmetrics bins left-closed, [b_{i-1}, b_i), and gives confidence exactly 1.0 an extra (n_bins + 1)-th bin of its
own. Confidence 1.0 is common (saturated softmax, one-hot predictions), and there the two disagree: for a wrong
one-hot prediction plus a correct one at 0.95, the definition gives ECE 0.475 (one bin, acc 0.5, conf 0.975) while
torchmetrics gives 0.525 and MCE 1.0. On inputs with no confidence on a bin edge both agree (see the parity test).
"""

from __future__ import annotations

import torch

from mumo.errors import MumoError

PROB_CLAMP = 1e-12  # floor on p[label] inside the log of the NLL


def _check_inputs(probs: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise MumoError unless probs is finite (N, C) float with N > 0 and labels is (N,) integer in [0, C)."""
    if probs.ndim != 2:
        raise MumoError(f"probs must have shape (N, C), got {tuple(probs.shape)}")
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0]:
        raise MumoError(f"labels must have shape (N,) = ({probs.shape[0]},) to match probs, got {tuple(labels.shape)}")
    if probs.shape[0] == 0:
        raise MumoError("empty input: probs and labels hold no samples (N = 0)")
    if probs.shape[1] == 0:
        raise MumoError("probs must hold at least one class (C = 0)")
    if not probs.is_floating_point():
        raise MumoError(f"probs must be a floating-point tensor, got {probs.dtype}")
    if labels.dtype == torch.bool or labels.is_floating_point() or labels.is_complex():
        raise MumoError(f"labels must be an integer tensor of class indices, got {labels.dtype}")
    if not torch.isfinite(probs).all():
        raise MumoError("probabilities hold NaN or infinite values")
    n_classes = probs.shape[1]
    if labels.min() < 0 or labels.max() >= n_classes:
        raise MumoError(f"labels must lie in [0, {n_classes}), got values in [{labels.min()}, {labels.max()}]")


def _bin_sums(
    probs: torch.Tensor, labels: torch.Tensor, n_bins: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin count, confidence sum and accuracy sum, each (n_bins,) float64."""
    _check_inputs(probs, labels)
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise MumoError(f"n_bins must be a positive integer, got {n_bins!r}")
    probs = probs.detach().to(torch.float64)
    confidence, prediction = probs.max(dim=1)  # (N,), (N,)
    accurate = (prediction == labels.to(prediction.device)).to(torch.float64)  # (N,)
    inner_edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=probs.device)[1:-1]  # (n_bins-1,)
    # right=False: index i means inner_edges[i-1] < conf <= inner_edges[i], i.e. right-closed bins (lo, hi];
    # conf <= 1/n lands in bin 0 and conf > (n-1)/n (including exactly 1.0) in bin n-1.
    index = torch.bucketize(confidence, inner_edges, right=False)  # (N,) in [0, n_bins)
    zeros = torch.zeros(n_bins, dtype=torch.float64, device=probs.device)
    count = zeros.index_add(0, index, torch.ones_like(confidence))
    conf_sum = zeros.index_add(0, index, confidence)
    acc_sum = zeros.index_add(0, index, accurate)
    return count, conf_sum, acc_sum


def _bin_gaps(probs: torch.Tensor, labels: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """|acc(B_b) - conf(B_b)| and count |B_b| for the non-empty bins only: (K,), (K,)."""
    count, conf_sum, acc_sum = _bin_sums(probs, labels, n_bins)
    nonempty = count > 0
    count = count[nonempty]
    gap = (acc_sum[nonempty] / count - conf_sum[nonempty] / count).abs()
    return gap, count


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Expected calibration error, ECE = Σ_b |B_b|/N · |acc(B_b) − conf(B_b)|, over equal-width bins.

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.
        n_bins: Number of equal-width confidence bins over [0, 1] (right-closed, see the module docstring).

    Returns:
        ECE in [0, 1].

    Raises:
        MumoError: On N = 0, mismatched shapes, non-integer or out-of-range labels, NaN/inf probabilities or
            n_bins < 1.
    """
    gap, count = _bin_gaps(probs, labels, n_bins)
    return float((count / count.sum() * gap).sum())


def adaptive_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Adaptive ECE: ECE over equal-mass bins, each holding N / n_bins samples of consecutive confidence.

    Equal-width bins put nearly every sample of a confident model into the top bin; equal-mass bins
    (Nguyen & O'Connor 2015; Nixon et al. 2019) split the samples by confidence rank instead. Ties are
    broken by sample order (stable sort); with N < n_bins each sample is its own bin.

    Raises:
        MumoError: As for `expected_calibration_error`.
    """
    _check_inputs(probs, labels)
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise MumoError(f"n_bins must be a positive integer, got {n_bins!r}")
    confidence, prediction = probs.detach().to(torch.float64).max(dim=1)  # (N,), (N,)
    accurate = (prediction == labels.to(prediction.device)).to(torch.float64)  # (N,)
    order = torch.sort(confidence, stable=True).indices  # (N,)
    total = 0.0
    for chunk in torch.tensor_split(order, n_bins):  # n_bins chunks of N // n_bins or N // n_bins + 1
        if chunk.numel():
            total += chunk.numel() * float((accurate[chunk].mean() - confidence[chunk].mean()).abs())
    return total / confidence.numel()


def maximum_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """Maximum calibration error, MCE = max_b |acc(B_b) − conf(B_b)| over the non-empty bins.

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.
        n_bins: Number of equal-width confidence bins over [0, 1] (right-closed, see the module docstring).

    Returns:
        MCE in [0, 1].

    Raises:
        MumoError: As for `expected_calibration_error`.
    """
    gap, _ = _bin_gaps(probs, labels, n_bins)
    return float(gap.max())


def reliability_bins(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, list[float]]:
    """Per-bin statistics for a reliability diagram, with the same bins as `expected_calibration_error`.

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.
        n_bins: Number of equal-width confidence bins over [0, 1].

    Returns:
        A dict of plain lists: ``confidence`` (n_bins,) mean top probability per bin, ``accuracy`` (n_bins,) fraction
        of accurate samples per bin (both ``nan`` for an empty bin), ``count`` (n_bins,) samples per bin (ints) and
        ``edges`` (n_bins + 1,) the bin edges from 0 to 1.

    Raises:
        MumoError: As for `expected_calibration_error`.
    """
    count, conf_sum, acc_sum = _bin_sums(probs, labels, n_bins)
    safe = count.clamp(min=1)
    empty = count == 0
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return {
        "confidence": torch.where(empty, nan, conf_sum / safe).tolist(),
        "accuracy": torch.where(empty, nan, acc_sum / safe).tolist(),
        "count": [int(c) for c in count.tolist()],
        "edges": torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64).tolist(),
    }


def negative_log_likelihood(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-likelihood of the true class, −mean_i log p_i[y_i], with p clamped below at 1e-12.

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.

    Returns:
        NLL in nats, in [0, −ln 1e-12 ≈ 27.63].

    Raises:
        MumoError: On N = 0, mismatched shapes, non-integer or out-of-range labels or NaN/inf probabilities.
    """
    _check_inputs(probs, labels)
    p_true = probs.detach().to(torch.float64).gather(1, labels.long().unsqueeze(1)).squeeze(1)  # (N,)
    return float(-p_true.clamp(min=PROB_CLAMP).log().mean())


def brier_score(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Multiclass Brier score, mean_i Σ_c (p_ic − onehot(y_i)_c)².

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.

    Returns:
        Brier score in [0, 2] (0 for a perfect one-hot prediction, 2 for a confident wrong one).

    Raises:
        MumoError: On N = 0, mismatched shapes, non-integer or out-of-range labels or NaN/inf probabilities.
    """
    _check_inputs(probs, labels)
    probs = probs.detach().to(torch.float64)
    onehot = torch.nn.functional.one_hot(labels.long(), num_classes=probs.shape[1]).to(torch.float64)  # (N, C)
    return float(((probs - onehot) ** 2).sum(dim=1).mean())
