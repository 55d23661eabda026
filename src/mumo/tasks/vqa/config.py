"""The VQA task's run config: MCAN (``model``), the data set (``data``), the loop (``train``) and what the run
minimises (``objective``); saved as ``config.yaml`` in the run directory.

``train.batch_size`` counts images: a batch holds every question of that many images, so the image encoder
runs once per image per step (``train.eval_batch_size`` likewise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from mumo.config import TrainConfig, load_config
from mumo.errors import ConfigError
from mumo.models.mcan_vqa import MCANConfig

ATTENTION_LOSSES = ("none", "mse", "aan", "paan", "gca", "masks")
DEFAULT_PRESET = "mcan-cpu"


@dataclass
class DataConfig:
    """Which VQA data set, how it is split and preprocessed."""

    name: str = "easy-vqa"  # data set name
    root: str = ""  # data directory for data sets read from disk (unused for easy-vqa)
    val_fraction: float = 0.1  # fraction of training *images* carved out as validation
    max_question_len: int = 14  # tokens kept per question (MCAN: 14)
    image_size: int = 64  # images are resized to image_size x image_size
    max_train_images: int = 0  # 0 = all; a positive number trains on a seeded subset (smoke runs)

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must lie in (0, 1), not {self.val_fraction}")
        if self.max_question_len < 1:
            raise ConfigError(f"data.max_question_len must be >= 1, not {self.max_question_len}")
        if self.image_size < 1:
            raise ConfigError(f"data.image_size must be >= 1, not {self.image_size}")
        if self.max_train_images < 0:
            raise ConfigError(f"data.max_train_images must be >= 0 (0 = all images), not {self.max_train_images}")


@dataclass
class VQAObjective:
    """What a VQA run minimises, and how it augments its training images (reference §2.3, §4.3)."""

    # "bce": MCAN's per-answer sigmoid binary cross-entropy on the soft targets; "softmax": soft-target softmax
    # cross-entropy (targets normalised to sum 1), the loss that trains the softmax every probability, entropy and
    # calibration figure is read from (docs/uncertainty.md, "Which loss the probabilities come from")
    loss: str = "bce"
    loss_reduction: str = "sum"  # "sum" over the batch (BCE: batch x classes, as MCAN) or "mean" over questions
    # Gaussian pixel-noise augmentation (pixel models; mumo.data.shift.augment): every training image gets
    # N(0, s²) noise on its [0, 1] pixels, s ~ U[0, augment_pixel_noise] per image and epoch; 0 = none
    augment_pixel_noise: float = 0.0
    # Attention trained with explanations (reference §4.3; docs/explanations.md): "none", "mse" (regress
    # attention onto Grad-CAM of the true answer), "aan" / "paan" (map-level / per-cell discriminator game),
    # "gca" (gradient-certainty attention: towards the cells that lower the uncertainty loss), "masks" (towards the
    # ground-truth masks of the objects each question refers to: Sort-of-CLEVR; AttFlat glimpse g <- reasoning step g)
    attention_loss: str = "none"
    attention_weight: float = 0.1  # weight of the attention term (per question, summed like the VQA loss)
    uncertainty_weight: float = 0.1  # gca only: weight of the predictive-entropy term it minimises

    def __post_init__(self) -> None:
        if self.loss not in ("bce", "softmax"):
            raise ConfigError(f"objective.loss must be 'bce' or 'softmax', not {self.loss!r}")
        if self.loss_reduction not in ("sum", "mean"):
            raise ConfigError(f"objective.loss_reduction must be 'sum' or 'mean', not {self.loss_reduction!r}")
        if self.attention_loss not in ATTENTION_LOSSES:
            raise ConfigError(
                f"objective.attention_loss must be one of {', '.join(ATTENTION_LOSSES)}, not {self.attention_loss!r}"
            )
        for key in ("attention_weight", "uncertainty_weight"):
            weight = getattr(self, key)
            if not (math.isfinite(weight) and weight >= 0):
                raise ConfigError(f"objective.{key} must be a finite number >= 0, not {weight}")
        if not (math.isfinite(self.augment_pixel_noise) and self.augment_pixel_noise >= 0):
            raise ConfigError(
                f"objective.augment_pixel_noise must be a standard deviation >= 0, not {self.augment_pixel_noise}"
            )


@dataclass
class RunConfig:
    """Everything a VQA training run needs; saved as ``config.yaml`` in the run directory."""

    # where earlier versions kept the objective's keys (runs on disk and overrides still use them)
    legacy_keys: ClassVar[dict[str, str | None]] = {
        f"train.{k}": f"objective.{k}"
        for k in ("loss_reduction", "augment_pixel_noise", "attention_loss", "attention_weight", "uncertainty_weight")
    }

    task: str = "vqa"
    preset: str = DEFAULT_PRESET
    model: MCANConfig = field(default_factory=MCANConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    objective: VQAObjective = field(default_factory=VQAObjective)


def load_vqa_config(preset: str | None = DEFAULT_PRESET, overrides: list[str] | None = None) -> Any:
    """A VQA :class:`RunConfig` from a preset (``mcan-cpu``, ``mcan-small``, ...) and dotted overrides."""
    return load_config(preset, overrides, schema=RunConfig)
