"""The lip-to-speech run's config (``config.yaml``): the model (``model``), the talking-face data (``data``), the
loop (``train``; ``batch_size`` counts windows of ``model.frames`` frames) and what it minimises (``objective``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mumo.config import ConfigError, TrainConfig
from mumo.models.lip2wav import Lip2WavConfig

DEFAULT_PRESET = "lip2wav-cpu"


@dataclass
class Lip2SpeechDataConfig:
    """Where the talking faces are and how many windows an epoch draws."""

    root: str = ""  # data set directory (filelists/ + speaker/clip folders): `mumo data talking-faces --speakers 1`
    max_clips: int = 0  # 0 = all clips of each split
    windows_per_epoch: int = 1600  # training windows drawn per epoch
    eval_windows: int = 64  # fixed validation windows

    def __post_init__(self) -> None:
        if self.max_clips < 0:
            raise ConfigError(f"data.max_clips must be >= 0 (0 = all clips), not {self.max_clips}")
        for key in ("windows_per_epoch", "eval_windows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, not {getattr(self, key)}")


@dataclass
class Lip2SpeechObjective:
    """The reference's loss and teacher forcing (reference §6.7): MSE of the decoder's and the postnet's mel + L1
    of the decoder's mel + ``l2`` times the squared weights; the decoder is fed the true previous frame with a
    probability that is 1 until optimiser step ``teacher_forcing_start`` and then decays (cosine) to
    ``teacher_forcing_final`` over ``teacher_forcing_decay`` steps (the reference: from 29k over 130k)."""

    l2: float = 1e-7
    teacher_forcing_start: int = 29_000
    teacher_forcing_decay: int = 130_000
    teacher_forcing_final: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ConfigError(f"objective.l2 must be a finite number >= 0, not {self.l2}")
        if self.teacher_forcing_start < 0 or self.teacher_forcing_decay < 0:
            raise ConfigError("objective.teacher_forcing_start and objective.teacher_forcing_decay must be >= 0")
        if not 0.0 <= self.teacher_forcing_final <= 1.0:
            raise ConfigError(f"objective.teacher_forcing_final must lie in [0, 1], not {self.teacher_forcing_final}")


def _lip2speech_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=20, batch_size=24, eval_batch_size=32, lr=1e-3, betas=[0.9, 0.999], eps=1e-6,
                       warmup_epochs=0, decay_epochs=[])  # fmt: skip


@dataclass
class Lip2SpeechRunConfig:
    """A lip-to-speech run (``config.yaml``). ``train.batch_size`` counts windows of ``model.frames`` frames."""

    task: str = "lip2speech"
    preset: str = DEFAULT_PRESET
    model: Lip2WavConfig = field(default_factory=Lip2WavConfig)
    data: Lip2SpeechDataConfig = field(default_factory=Lip2SpeechDataConfig)
    train: TrainConfig = field(default_factory=_lip2speech_train_defaults)
    objective: Lip2SpeechObjective = field(default_factory=Lip2SpeechObjective)

    def __post_init__(self) -> None:
        if self.model.mel_bins != 80:
            raise ConfigError(f"model.mel_bins must be 80 (the audio front-end's bands), not {self.model.mel_bins}")


def load_lip2speech_config(
    preset: str | None = DEFAULT_PRESET, overrides: list[str] | None = None
) -> Lip2SpeechRunConfig:
    """A :class:`Lip2SpeechRunConfig` from a preset (``lip2wav-cpu``, ``lip2wav``) and dotted overrides."""
    from mumo.config import load_config

    return load_config(preset, overrides, schema=Lip2SpeechRunConfig)
