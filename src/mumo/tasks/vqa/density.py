"""Feature density of a trained VQA run (DDU, :mod:`mumo.uncertainty.density`).

:func:`fit_run_density` fits class Gaussians on the fused features of training questions, scores
the validation questions as a reference, and saves both next to the checkpoints
(``RUN/feature_density.safetensors``); :func:`load_run_density` reads them back for prediction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from mumo.data.vqa.split import VQASplit, image_batches, progress_bar
from mumo.errors import MumoError
from mumo.explain.hooks import capture
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.types import HasDensityLayer
from mumo.uncertainty.density import ClassGaussians, feature_density_score, fit_class_gaussians

DENSITY_FILE = "feature_density.safetensors"


@torch.no_grad()
def split_features(
    model: nn.Module, split: VQASplit, *, images_per_batch: int = 128, progress: bool = False
) -> torch.Tensor:
    """The model's density features (N, F) for every question of a split, dropout off, in question order.

    The features are the output of ``model.density_layer()`` (:class:`~mumo.types.HasDensityLayer`; for MCAN:
    the fused vector the answer classifier reads).
    """
    if not isinstance(model, HasDensityLayer):
        raise MumoError(f"{type(model).__name__} declares no density_layer(): feature density is unavailable")
    if split.num_questions == 0:
        raise MumoError(f"the {split.name!r} split holds no questions")
    model.eval()
    device = next(model.parameters()).device
    out = None
    with capture(model.density_layer()) as captured:
        batches = image_batches(split.num_images, images_per_batch, shuffle=False)
        for idx in progress_bar(batches, f"{split.name}: features", progress):
            batch = split.batch(idx).to(device)
            model(batch)
            feats = captured.last.detach().float().cpu()  # (B, F)
            captured.activations.clear()
            if out is None:
                out = torch.empty(split.num_questions, feats.shape[-1])
            out[batch.question_ids.cpu()] = feats
    assert out is not None
    return out


def fit_split_density(
    model: nn.Module, fit: VQASplit, *, images_per_batch: int = 128, progress: bool = False
) -> ClassGaussians:
    """Class Gaussians over the model's features of ``fit``'s questions; the classes are their top answers."""
    feats = split_features(model, fit, images_per_batch=images_per_batch, progress=progress)
    return fit_class_gaussians(feats, fit.targets.argmax(-1))


@dataclass(frozen=True)
class RunDensity:
    """A run's fitted feature density, the scores (M,) of its validation questions in ascending order,
    and how many training images and questions it was fitted on."""

    gaussians: ClassGaussians
    reference: torch.Tensor
    fit_images: int = 0
    fit_questions: int = 0

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """Negative log density (N,) of (N, F) features."""
        return feature_density_score(self.gaussians, features)

    def quantile(self, scores: torch.Tensor) -> torch.Tensor:
        """Fraction (N,) of validation questions whose score is below each of ``scores``."""
        return torch.searchsorted(self.reference, scores.float()).float() / self.reference.numel()

    def percentile(self, q: float) -> float:
        """The validation score below which a fraction ``q / 100`` of the questions lie (lower end)."""
        return float(self.reference[min(int(q / 100 * self.reference.numel()), self.reference.numel() - 1)])


def fit_run_density(
    model: nn.Module, fit: VQASplit, reference: VQASplit, run_dir: Path, *, images_per_batch: int = 128
) -> RunDensity:
    """Fit the density on ``fit``, score ``reference`` (validation) and save both to ``run_dir``."""
    feats = split_features(model, fit, images_per_batch=images_per_batch)
    ref = split_features(model, reference, images_per_batch=images_per_batch)
    return save_run_density(feats, fit.targets.argmax(-1), ref, fit.num_images, run_dir)


def save_run_density(
    features: torch.Tensor, labels: torch.Tensor, reference: torch.Tensor, fit_images: int, run_dir: Path
) -> RunDensity:
    """Fit class Gaussians on ``features`` (N, F) of training questions with top answers ``labels`` (N,), score
    the ``reference`` (M, F) validation features, and save both to ``run_dir``."""
    gaussians = fit_class_gaussians(features, labels)
    ref = feature_density_score(gaussians, reference)
    density = RunDensity(gaussians, ref.sort().values, fit_images, features.shape[0])
    counts = torch.tensor([density.fit_images, density.fit_questions])
    tensors = {**gaussians.to_tensors(), "reference": density.reference, "fit_counts": counts}
    tmp = run_dir / f".{DENSITY_FILE}.tmp"
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(run_dir / DENSITY_FILE)  # atomic: a crash leaves the old file or none, never half of one
    return density


def load_run_density(run_dir: Path) -> RunDensity | None:
    """The density saved by :func:`fit_run_density`, or None when the run has none.

    Raises:
        MumoError: the file is unreadable or inconsistent.
    """
    path = Path(run_dir) / DENSITY_FILE
    if not path.exists():
        return None
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise MumoError(f"cannot read {path}: {e}; refit it with `mumo fit-density {run_dir}`") from None
    if not {"reference", "fit_counts"} <= set(tensors):
        raise MumoError(f"{path} holds no validation reference scores; refit it with `mumo fit-density {run_dir}`")
    fit_images, fit_questions = tensors["fit_counts"].tolist()
    return RunDensity(ClassGaussians.from_tensors(tensors), tensors["reference"].float(), fit_images, fit_questions)


def fit_density(run_dir: str | Path, *, images: int = 2000, device: str = "auto") -> RunDensity:
    """Fit a trained run's feature density on its first ``images`` training images, score its
    validation questions as the reference, and save both as ``RUN/feature_density.safetensors``;
    :func:`mumo.load` picks the file up, so predictions then report the density. The features are
    computed on ``device`` (``auto``: a GPU if there is one); the fit itself runs on the CPU.

    Raises:
        MumoError: ``images`` < 1, or the run, its data or its features are unusable.
    """
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    if images < 1:
        raise MumoError(f"images must be >= 1, not {images}")
    run_dir = Path(run_dir)
    model = load_model(run_dir, device=device)
    cfg = Run(run_dir).config(RunConfig)
    data = load_data(cfg)
    fit = data.train.first_images(images)
    return fit_run_density(model, fit, data.val, run_dir, images_per_batch=cfg.train.eval_batch_size)
