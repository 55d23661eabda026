"""Diagnostic plots for calibration and uncertainty: reliability diagram, score histograms, risk–coverage curves.

Each function builds its own ``matplotlib.figure.Figure`` on an Agg canvas (no pyplot, no global backend switch), so
it is safe in headless runs and threads. Each writes one PNG, creating parent folders, and returns its path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mumo.errors import MumoError
from mumo.metrics.calibration import expected_calibration_error, reliability_bins
from mumo.metrics.figures import new_figure, save_figure


def _finish(fig, ax, path: str | os.PathLike, title: str | None) -> Path:
    """Legend, optional title, tight layout, save: the common end of every plot here."""
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _as_values(values: torch.Tensor, name: str) -> np.ndarray:
    """Finite, non-empty (N,) tensor -> float64 NumPy array, or MumoError."""
    if values.ndim != 1:
        raise MumoError(f"{name} must have shape (N,), got {tuple(values.shape)}")
    if values.shape[0] == 0:
        raise MumoError(f"empty input: {name} holds no samples (N = 0)")
    if not torch.isfinite(values).all():
        raise MumoError(f"{name} holds NaN or infinite values")
    return values.detach().cpu().to(torch.float64).numpy()


def plot_reliability_diagram(
    probs: torch.Tensor,
    labels: torch.Tensor,
    path: str | os.PathLike,
    n_bins: int = 15,
    title: str | None = None,
) -> Path:
    """Reliability diagram (accuracy per confidence bin vs the diagonal) over a confidence histogram.

    Args:
        probs: Predictive probabilities, (N, C).
        labels: True class indices, (N,), integer.
        path: PNG file to write.
        n_bins: Number of equal-width confidence bins (same bins as `expected_calibration_error`).
        title: Title prefix; the ECE is always appended.

    Returns:
        The path of the written PNG.

    Raises:
        MumoError: On invalid inputs, as for `expected_calibration_error`.
    """
    bins = reliability_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    edges = np.asarray(bins["edges"])  # (n_bins + 1,)
    left, width = edges[:-1], np.diff(edges)  # (n_bins,), (n_bins,)
    count = np.asarray(bins["count"])  # (n_bins,)
    nonempty = count > 0
    acc = np.asarray(bins["accuracy"])[nonempty]
    conf = np.asarray(bins["confidence"])[nonempty]

    fig = new_figure((5.0, 6.0))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    w = width[nonempty]
    top.bar(left[nonempty], acc, width=w, align="edge", color="tab:blue", edgecolor="black", label="accuracy")
    top.bar(
        left[nonempty],
        conf - acc,
        bottom=acc,
        width=w,
        align="edge",
        color="tab:red",
        alpha=0.3,
        hatch="//",
        edgecolor="tab:red",
        label="gap to confidence",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left")
    top.set_title(f"{title or 'Reliability diagram'} (ECE = {ece:.4f}, {n_bins} bins)")

    bottom.bar(left, count / count.sum(), width=width, align="edge", color="tab:gray", edgecolor="black")
    bottom.set_xlabel("confidence (max probability)")
    bottom.set_ylabel("fraction")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_uncertainty_histograms(
    groups: dict[str, torch.Tensor],
    path: str | os.PathLike,
    xlabel: str,
    title: str | None = None,
    symlog: bool = False,
) -> Path:
    """Overlaid density histograms of an uncertainty score for several groups, on shared bins.

    Args:
        groups: Group name -> scores (N_g,), e.g. ``{"correct": ..., "wrong": ...}`` or
            ``{"in-distribution": ..., "OOD": ...}``.
        path: PNG file to write.
        xlabel: Name of the score on the x axis (e.g. "predictive entropy (nats)").
        title: Figure title.
        symlog: bins equally wide in sign(x)·log(1 + |x|) and a symlog x axis, for heavy-tailed scores
            (e.g. a negative log density spanning thousands of nats); the y axis is then the fraction
            of each group per bin.

    Returns:
        The path of the written PNG.

    Raises:
        MumoError: On no groups, an empty group, a non-(N,) shape or NaN/inf values.
    """
    if not groups:
        raise MumoError("groups must hold at least one named score tensor")
    values = {name: _as_values(v, f"group {name!r}") for name, v in groups.items()}
    pooled = np.concatenate(list(values.values()))
    if symlog:
        t_edges = np.histogram_bin_edges(np.sign(pooled) * np.log1p(np.abs(pooled)), bins=30)
        edges = np.sign(t_edges) * np.expm1(np.abs(t_edges))  # (31,) shared by all groups
    else:
        edges = np.histogram_bin_edges(pooled, bins=30)  # (31,) shared by all groups

    fig = new_figure((6.0, 4.0))
    ax = fig.subplots()
    for name, v in values.items():
        # unequal symlog bins: a fraction per bin reads right, a density would shrink the wide bins
        norm = {"weights": np.full(len(v), 1 / len(v))} if symlog else {"density": True}
        ax.hist(v, bins=edges, alpha=0.45, histtype="stepfilled", label=f"{name} (n = {len(v)})", **norm)
    if symlog:
        ax.set_xscale("symlog")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction per bin" if symlog else "density")
    return _finish(fig, ax, path, title)


def plot_risk_coverage(
    curves: dict[str, tuple[torch.Tensor, torch.Tensor]],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Risk–coverage curves, one line per method, with each AURC in the legend.

    The AURC shown is the mean of the risk values, which equals `mumo.metrics.uncertainty.aurc` for curves from
    `risk_coverage_curve` (coverages k/N, k = 1..N).

    Args:
        curves: Method name -> ``(coverage, risk)``, each (N_m,), as returned by `risk_coverage_curve`.
        path: PNG file to write.
        title: Figure title.

    Returns:
        The path of the written PNG.

    Raises:
        MumoError: On no curves, an empty curve, coverage and risk of different lengths or NaN/inf values.
    """
    if not curves:
        raise MumoError("curves must hold at least one named (coverage, risk) pair")
    fig = new_figure((6.0, 4.0))
    ax = fig.subplots()
    for name, (coverage, risk) in curves.items():
        cov = _as_values(coverage, f"coverage of {name!r}")
        rsk = _as_values(risk, f"risk of {name!r}")
        if cov.shape != rsk.shape:
            raise MumoError(f"coverage and risk of {name!r} differ in shape: {cov.shape} vs {rsk.shape}")
        ax.plot(cov, rsk, label=f"{name} (AURC = {rsk.mean():.4f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage")
    ax.set_ylabel("risk (error rate)")
    return _finish(fig, ax, path, title)
