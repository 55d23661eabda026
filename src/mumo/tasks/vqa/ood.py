"""The default out-of-distribution check of a VQA run: "I don't know" to an image unlike the training images.

An image's score is the deep nearest-neighbour distance (:mod:`mumo.uncertainty.knn`, Sun et al. 2022) of its
pooled image features, the mean and standard deviation over the grid cells (or regions) of what the model's
``image_feature_layer()`` outputs, to the training images' features. It depends on the image only, not on the
question: a confident answer about a photograph of a cat is still an answer about an image the model never
learned to read. The threshold is the split-conformal quantile of the validation images' scores at
``alpha = 0.01``, so at most 1 % of in-distribution images is refused, in expectation.

Training fits it at its end (``RUN/ood_check.safetensors``, with the feature density beside it);
``mumo fit-density RUN`` fits it for runs trained before. :class:`mumo.tasks.vqa.predictor.VQAPredictor`
reports it with every answer and abstains when it fires, unless told not to.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mumo.data.vqa.split import VQASplit, image_batches
from mumo.errors import MumoError
from mumo.explain.hooks import capture
from mumo.types import HasImageFeatureLayer
from mumo.uncertainty.knn import conformal_threshold, knn_distance, normalise

OOD_FILE = "ood_check.safetensors"
METHOD = "image_knn"  # what the check scores, as reports name it
DEFAULT_K = 5
DEFAULT_ALPHA = 0.01  # the in-distribution refusal rate the threshold allows
DEFAULT_BANK_IMAGES = 5000


def pooled_image_features(grid: torch.Tensor) -> torch.Tensor:
    """(N, R, C) features of R grid cells or regions -> (N, 2C): their mean and standard deviation."""
    grid = grid.float()
    return torch.cat([grid.mean(1), grid.std(1, unbiased=False)], dim=-1)


@torch.no_grad()
def split_image_features(
    model: nn.Module, split: VQASplit, *, images_per_batch: int = 128, density: bool = False
) -> Any:
    """Pooled image features (I, 2C) of every image of ``split`` that has a question, in image order (dropout
    off); images without a question are left out. With ``density``, from the same forward passes, also the
    density features (N, F) of every question in question order (``model.density_layer()``): returns both."""
    if not isinstance(model, HasImageFeatureLayer):
        raise MumoError(f"{type(model).__name__} declares no image_feature_layer(): the OOD check is unavailable")
    model.eval()
    device = next(model.parameters()).device
    rows: list[torch.Tensor] = []
    questions = None
    with ExitStack() as stack:
        captured = stack.enter_context(capture(model.image_feature_layer()))
        fused = stack.enter_context(capture(model.density_layer())) if density else None
        for idx in image_batches(split.num_images, images_per_batch, shuffle=False):
            batch = split.batch(idx).to(device)
            if batch.tokens.shape[0] == 0:
                continue
            model(batch)
            feats = pooled_image_features(captured.last.detach().cpu())  # (N, 2C), one row per question
            captured.activations.clear()
            one = torch.full((len(idx),), -1, dtype=torch.long)  # one question of each image: all rows of an
            one[batch.image_index.cpu()] = torch.arange(feats.shape[0])  # image are equal (no question in them)
            rows.append(feats[one[one >= 0]])
            if fused is not None:
                q = fused.last.detach().float().cpu()  # (N, F)
                fused.activations.clear()
                if questions is None:
                    questions = torch.empty(split.num_questions, q.shape[-1])
                questions[batch.question_ids.cpu()] = q
    if not rows:
        raise MumoError(f"the {split.name!r} split holds no questions")
    return (torch.cat(rows), questions) if density else torch.cat(rows)  # (I, 2C), (N, F)


@dataclass(frozen=True)
class OODCheck:
    """A fitted check: the normalised bank (M, F) of training-image features, the validation scores (n,) in
    ascending order, the threshold, k and alpha."""

    bank: torch.Tensor
    reference: torch.Tensor
    threshold: float
    k: int = DEFAULT_K
    alpha: float = DEFAULT_ALPHA

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Scores (N,) of pooled image features (N, F): the k-th nearest-neighbour distance."""
        return knn_distance(self.bank, features, self.k)

    def quantile(self, scores: torch.Tensor) -> torch.Tensor:
        """Fraction (N,) of validation images scoring below each of ``scores``."""
        return torch.searchsorted(self.reference, scores.float()).float() / self.reference.numel()

    def report(self, score: float) -> dict[str, Any]:
        """What a prediction says about its image: the score, its quantile among validation images, the
        threshold and whether the image is out of distribution."""
        return {
            "method": METHOD, "score": score, "quantile": float(self.quantile(torch.tensor([score]))[0]),
            "threshold": self.threshold, "alpha": self.alpha, "out_of_distribution": score > self.threshold,
        }  # fmt: skip


def ood_check_from(
    train_features: torch.Tensor, val_features: torch.Tensor, *, k: int = DEFAULT_K, alpha: float = DEFAULT_ALPHA
) -> OODCheck:
    """The check from pooled image features (:func:`split_image_features`): the bank from the (M, F) training
    images', the threshold from the (n, F) validation images'. With fewer than 1/α − 1 validation images (99 for
    1 %) the threshold is their largest score and the check's ``alpha`` the bound that holds, 1/(n + 1)."""
    bank = normalise(train_features)
    k = min(k, bank.shape[0])  # a tiny training split: the farthest of its images
    reference = knn_distance(bank, val_features, k).sort().values  # (n,)
    # n validation images bound the refusal rate at 1/(n + 1) at best (the largest score): a small validation
    # split gets that bound, and the check says which it holds
    alpha = max(alpha, 1 / (reference.numel() + 1))
    return OODCheck(bank, reference, conformal_threshold(reference, alpha), k, alpha)


def save_ood_check(check: OODCheck, run_dir: Path) -> Path:
    """Write ``RUN/ood_check.safetensors`` atomically (a crash leaves the old file or none)."""
    path = Path(run_dir) / OOD_FILE
    tensors = {
        "bank": check.bank.contiguous(), "reference": check.reference.contiguous(),
        "threshold": torch.tensor([check.threshold], dtype=torch.float64), "k": torch.tensor([check.k]),
        "alpha": torch.tensor([check.alpha], dtype=torch.float64),
    }  # fmt: skip
    tmp = path.with_name(f".{OOD_FILE}.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    return path


def load_ood_check(run_dir: Path) -> OODCheck | None:
    """The check saved with a run, or None for a run trained before mumo fitted one.

    Raises:
        MumoError: the file is unreadable or inconsistent ("corrupted run: ...").
    """
    path = Path(run_dir) / OOD_FILE
    if not path.exists():
        return None
    if not path.is_file():
        raise MumoError(f"corrupted run: {path}: not a regular file; refit it with `mumo fit-density {run_dir}`")
    try:
        t = load_file(str(path))
        check = OODCheck(t["bank"].float(), t["reference"].float(), float(t["threshold"][0]), int(t["k"][0]),
                         float(t["alpha"][0]))  # fmt: skip
    except Exception as exc:  # safetensors raises its own error types; a missing key is a KeyError
        raise MumoError(
            f"corrupted run: {path}: {type(exc).__name__}: {exc}; refit it with `mumo fit-density {run_dir}`"
        ) from None
    if check.bank.ndim != 2 or not 1 <= check.k <= check.bank.shape[0] or check.reference.numel() == 0:
        raise MumoError(f"corrupted run: {path}: inconsistent bank; refit it with `mumo fit-density {run_dir}`")
    return check


def fit_run_checks(
    run_dir: Path, model: nn.Module, train: VQASplit, val: VQASplit, *, density_images: int = 2000,
    images_per_batch: int = 128,
) -> dict[str, Any]:  # fmt: skip
    """Fit and save what a run's uncertainty reports need beside its checkpoints: the default OOD check
    (``ood_check.safetensors``) and the feature density (``feature_density.safetensors``, on the first
    ``density_images`` training images). Returns what was fitted."""
    from mumo.tasks.vqa.density import DENSITY_FILE, save_run_density

    # one forward pass per split gives both: the images' pooled features and the questions' fused features
    fit = train.first_images(max(DEFAULT_BANK_IMAGES, density_images))
    fit_images, fit_questions = split_image_features(model, fit, images_per_batch=images_per_batch, density=True)
    val_images, val_questions = split_image_features(model, val, images_per_batch=images_per_batch, density=True)
    check = ood_check_from(fit_images[:DEFAULT_BANK_IMAGES], val_images)
    save_ood_check(check, run_dir)
    n = min(density_images, fit.num_images)
    on = fit.image_index < n  # (N,) the questions of the first n images: the density's fit
    density = save_run_density(fit_questions[on], fit.targets[on].argmax(-1), val_questions, n, run_dir)
    return {
        "ood_check": {
            "path": str(Path(run_dir) / OOD_FILE), "method": METHOD, "k": check.k, "bank_images": check.bank.shape[0],
            "validation_images": check.reference.numel(), "threshold": check.threshold, "alpha": check.alpha,
        },
        "feature_density": {
            "path": str(Path(run_dir) / DENSITY_FILE), "fit_images": density.fit_images,
            "fit_questions": density.fit_questions, "classes": int(density.gaussians.classes.numel()),
            "jitter": density.gaussians.jitter,
            "validation_quantiles": {f"p{q}": density.percentile(q) for q in (50, 95, 99)},
        },
    }  # fmt: skip
