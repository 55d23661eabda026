"""The question-generation run's config (``config.yaml``): MC-BMN (``model``), the data (``data``), the loop
(``train``; ``batch_size`` counts images, each with one of its questions per epoch) and what it minimises
(``objective``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mumo.config import TrainConfig, load_config
from mumo.errors import ConfigError
from mumo.models.vqg_bmn import VQGConfig

DATA_SETS = ("scenes", "vqg-coco")
DEFAULT_PRESET = "vqg-cpu"


@dataclass
class VQGDataConfig:
    """Which images and questions, and how they are read."""

    name: str = "scenes"  # "scenes" (mumo scenes; default: the cached 10,000-image set) or "vqg-coco"
    root: str = ""  # the data set directory ("" = the cached mumo scenes set)
    images: str = ""  # vqg-coco: the COCO image folder(s), comma-separated ("" = ROOT/images)
    captions: str = ""  # vqg-coco: COCO captions JSON file(s), comma-separated ("" = ROOT/annotations/captions_*.json)
    image_size: int = 64  # images are resized to image_size x image_size
    max_question_len: int = 24  # words kept per question (a longer one is cut; EOS follows the last kept word)
    max_caption_len: int = 24  # words kept per caption
    references: int = 5  # reference questions per evaluated image (VQG-COCO has 5)
    questions_per_image: int = 1  # examples per training image per epoch, each with another of its questions
    max_train_images: int = 0  # 0 = all; a positive number trains on a seeded subset (smoke runs)
    max_eval_images: int = 0  # 0 = all images of the val / test split

    def __post_init__(self) -> None:
        if self.name not in DATA_SETS:
            raise ConfigError(f"data.name must be one of {', '.join(DATA_SETS)}, not {self.name!r}")
        for key in ("image_size", "max_question_len", "max_caption_len", "references", "questions_per_image"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, not {getattr(self, key)}")
        for key in ("max_train_images", "max_eval_images"):
            if getattr(self, key) < 0:
                raise ConfigError(f"data.{key} must be >= 0 (0 = all images), not {getattr(self, key)}")


@dataclass
class VQGObjective:
    """Word cross-entropy on the question, plus the heads that supply cues a user does not give."""

    place_weight: float = 0.5  # the place classifier's cross-entropy
    tag_weight: float = 0.5  # the tagger's binary cross-entropy (mean over tag words)

    def __post_init__(self) -> None:
        for key in ("place_weight", "tag_weight"):
            w = getattr(self, key)
            if not (math.isfinite(w) and w >= 0):
                raise ConfigError(f"objective.{key} must be a finite number >= 0, not {w}")


def _vqg_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=12, batch_size=64, eval_batch_size=256, lr=1e-3, betas=[0.9, 0.999], eps=1e-8,
                       warmup_epochs=0, decay_epochs=[8, 11], decay_rate=0.5)  # fmt: skip


@dataclass
class VQGRunConfig:
    """A question-generation run (``config.yaml``)."""

    task: str = "vqg"
    preset: str = DEFAULT_PRESET
    model: VQGConfig = field(default_factory=VQGConfig)
    data: VQGDataConfig = field(default_factory=VQGDataConfig)
    train: TrainConfig = field(default_factory=_vqg_train_defaults)
    objective: VQGObjective = field(default_factory=VQGObjective)

    def __post_init__(self) -> None:
        if self.data.name == "vqg-coco" and "place" in self.model.cues:
            raise ConfigError("VQG-COCO has no place labels: drop 'place' from model.cues (e.g. image,caption,tag)")


def load_vqg_config(preset: str | None = DEFAULT_PRESET, overrides: list[str] | None = None) -> VQGRunConfig:
    """A :class:`VQGRunConfig` from a preset (``vqg-cpu``, ``vqg-paper``) and dotted overrides."""
    return load_config(preset, overrides, schema=VQGRunConfig)
