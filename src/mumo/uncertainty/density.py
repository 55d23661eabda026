"""Feature-space density: a class-conditional Gaussian over a model's penultimate features.

Deep Deterministic Uncertainty (Mukhoti et al., arXiv:2102.11582): fit one Gaussian per class to
the features the classifier reads, on training data; an input whose feature has low density under
every class Gaussian lies where the model saw no training data. The score is epistemic (it measures
distance from the training data, not ambiguity of the answer) and needs one deterministic pass.

Unlike mutual information it sees more of the input than the answer distribution: "is there a red
circle?" about a noise image has a confident, correct "no" (mutual information ≈ 0), but the fused
feature the "no" was read from lies far from every training feature.

Pure functions: :func:`fit_class_gaussians` returns the fitted parameters, :func:`feature_log_density`
and :func:`feature_density_score` evaluate them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mumo.errors import MumoError

# jitter added to every class covariance, relative to the mean feature variance, tried in order
# until all Cholesky factorisations succeed (DDU escalates jitter the same way)
JITTERS = (1e-3, 1e-2, 1e-1, 1.0)


@dataclass(frozen=True)
class ClassGaussians:
    """Fitted per-class Gaussians: ``means`` (K, F), ``classes`` (K,) label ids, and ``scale_tril``
    (K, F, F) — or (1, F, F) for one covariance shared by every class (``tied``)."""

    means: torch.Tensor
    scale_tril: torch.Tensor
    classes: torch.Tensor
    jitter: float

    @property
    def num_features(self) -> int:
        return int(self.means.shape[1])

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The parameters as named tensors (for safetensors)."""
        return {"means": self.means, "scale_tril": self.scale_tril, "classes": self.classes,
                "jitter": torch.tensor(self.jitter, dtype=torch.float64)}  # fmt: skip

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor]) -> ClassGaussians:
        """Inverse of :meth:`to_tensors`.

        Raises:
            MumoError: a tensor is missing or the shapes disagree.
        """
        missing = {"means", "scale_tril", "classes", "jitter"} - set(tensors)
        if missing:
            raise MumoError(f"not a feature-density file: missing {', '.join(sorted(missing))}")
        means, tril = tensors["means"].double(), tensors["scale_tril"].double()
        k, f = means.shape
        if tril.shape not in ((k, f, f), (1, f, f)) or tensors["classes"].shape != (k,):
            raise MumoError(f"inconsistent feature-density file: means {tuple(means.shape)}, tril {tuple(tril.shape)}")
        return cls(means=means, scale_tril=tril, classes=tensors["classes"].long(), jitter=float(tensors["jitter"]))


def _check_features(features: torch.Tensor, what: str) -> None:
    if features.ndim != 2:
        raise MumoError(f"{what} must be (N, F), got shape {tuple(features.shape)}")
    if features.shape[0] == 0:
        raise MumoError(f"{what} holds no rows")
    if not torch.isfinite(features).all():
        bad = int((~torch.isfinite(features)).any(-1).sum())
        raise MumoError(f"{what} holds NaN or infinite values in {bad} of {features.shape[0]} rows")


def fit_class_gaussians(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    min_count: int = 2,
    covariance: str = "auto",
    max_bytes: int = 1 << 30,
) -> ClassGaussians:
    """One Gaussian per class with at least ``min_count`` examples, fitted in float64.

    Args:
        features: (N, F) training features.
        labels: (N,) integer class of each row.
        min_count: classes with fewer rows are left out (their covariance is undefined).
        covariance: ``class`` (one covariance per class, as DDU), ``tied`` (one pooled within-class
            covariance, as the Mahalanobis detector of Lee et al. 2018), or ``auto``: ``class`` unless
            the K covariances would take more than ``max_bytes`` (VQA v2: 3,129 answers x 1024² floats).

    Raises:
        MumoError: non-finite features, mismatched lengths, no class with ``min_count`` rows, or an
            unknown ``covariance``.
    """
    if covariance not in ("auto", "class", "tied"):
        raise MumoError(f"covariance must be 'auto', 'class' or 'tied', not {covariance!r}")
    _check_features(features, "training features")
    if labels.shape != (features.shape[0],):
        raise MumoError(f"need one label per feature row: {tuple(labels.shape)} labels, {features.shape[0]} rows")
    z = features.double()  # (N, F)
    classes, counts = torch.unique(labels, return_counts=True)
    classes = classes[counts >= max(min_count, 2)]
    if classes.numel() == 0:
        raise MumoError(f"no class has {max(min_count, 2)} or more training features: cannot fit a density")
    groups = [z[labels == c] for c in classes]  # (N_k, F) each
    means = torch.stack([g.mean(0) for g in groups])  # (K, F)
    centred = [g - m for g, m in zip(groups, means, strict=True)]  # (N_k, F) each
    if covariance == "auto":
        covariance = "class" if classes.numel() * z.shape[1] ** 2 * 8 <= max_bytes else "tied"
    if covariance == "class":
        covs = torch.stack([d.T @ d / d.shape[0] for d in centred])  # (K, F, F) population covariances
    else:
        pooled = torch.cat(centred)  # (N', F)
        covs = (pooled.T @ pooled / pooled.shape[0])[None]  # (1, F, F)
    eye = torch.eye(z.shape[1], dtype=z.dtype)
    scale = float(covs.diagonal(dim1=-2, dim2=-1).mean().clamp_min(1e-12))
    for jitter in JITTERS:
        tril, info = torch.linalg.cholesky_ex(covs + jitter * scale * eye)
        if int(info.abs().sum()) == 0:
            return ClassGaussians(means=means, scale_tril=tril, classes=classes, jitter=jitter * scale)
    raise MumoError("the class covariances stay singular even with jitter; the features may be constant")


def feature_log_density(g: ClassGaussians, features: torch.Tensor) -> torch.Tensor:
    """log Σ_k N(z; μ_k, Σ_k) for each row of (N, F) ``features`` -> (N,), in float64.

    Memory is O(N·(F + K)): one triangular solve per class (or one in all for a tied covariance).
    """
    _check_features(features, "features")
    if features.shape[1] != g.num_features:
        raise MumoError(f"features have {features.shape[1]} dimensions; the density was fitted on {g.num_features}")
    z = features.double()  # (N, F)
    f = z.shape[1]
    log_det = g.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (K,) or (1,)
    if g.scale_tril.shape[0] == 1:  # tied: whiten once, squared distances by matrix products
        tril = g.scale_tril[0]
        a = torch.linalg.solve_triangular(tril, z.T, upper=False)  # (F, N)
        m = torch.linalg.solve_triangular(tril, g.means.T, upper=False)  # (F, K)
        maha = (a * a).sum(0)[:, None] - 2 * a.T @ m + (m * m).sum(0)[None]  # (N, K)
    else:
        maha = torch.stack(
            [torch.linalg.solve_triangular(tril, (z - mu).T, upper=False).pow(2).sum(0)
             for tril, mu in zip(g.scale_tril, g.means, strict=True)], dim=1,
        )  # (N, K)  # fmt: skip
    log_probs = -0.5 * maha.clamp_min(0) - log_det - 0.5 * f * math.log(2 * math.pi)  # (N, K)
    return torch.logsumexp(log_probs, dim=1)


def feature_density_score(g: ClassGaussians, features: torch.Tensor) -> torch.Tensor:
    """Negative log feature density (N,), float32: higher = further from the training data."""
    return (-feature_log_density(g, features)).float()
