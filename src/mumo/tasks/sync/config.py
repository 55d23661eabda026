"""The lip-sync expert run's config (``config.yaml``): the expert, the talking-face data and the shared loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mumo.config import ConfigError, TrainConfig
from mumo.models.sync_expert import SyncExpertConfig


@dataclass
class SyncDataConfig:
    """Where the talking faces are and how training pairs are drawn."""

    root: str = ""  # data set directory (filelists/ + speaker/clip folders), e.g. from `mumo data talking-faces`
    max_clips: int = 0  # 0 = all clips of each split
    pairs_per_epoch: int = 12800  # training pairs sampled per epoch (half in sync)
    eval_pairs: int = 2000  # fixed validation pairs
    min_shift: int = 2  # a negative's mel window is at least this many frames away

    def __post_init__(self) -> None:
        if self.max_clips < 0:
            raise ConfigError(f"data.max_clips must be >= 0 (0 = all clips), not {self.max_clips}")
        for key in ("pairs_per_epoch", "eval_pairs"):  # half in sync, half off: at least one of each
            if getattr(self, key) < 2:
                raise ConfigError(f"data.{key} must be >= 2, not {getattr(self, key)}")
        if self.min_shift < 1:
            raise ConfigError(f"data.min_shift must be >= 1, not {self.min_shift}")


def _sync_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=10, batch_size=64, lr=1e-3, betas=[0.9, 0.999], eps=1e-8, warmup_epochs=0,
                       decay_epochs=[])  # fmt: skip


@dataclass
class SyncRunConfig:
    """A lip-sync expert run (``config.yaml``). ``train.batch_size`` counts (frames, audio) pairs."""

    # what earlier versions saved in every run's ``train`` section, none of it the expert's (dropped on reading)
    legacy_keys: ClassVar[dict[str, str | None]] = {
        f"train.{k}": None
        for k in ("loss_reduction", "augment_pixel_noise", "attention_loss", "attention_weight", "uncertainty_weight")
    }

    task: str = "sync"
    preset: str = "sync-cpu"
    model: SyncExpertConfig = field(default_factory=SyncExpertConfig)
    data: SyncDataConfig = field(default_factory=SyncDataConfig)
    train: TrainConfig = field(default_factory=_sync_train_defaults)


def load_sync_config(preset: str | None = "sync-cpu", overrides: list[str] | None = None) -> SyncRunConfig:
    """A :class:`SyncRunConfig` from a preset (``sync-cpu``, ``sync-wav2lip``) and dotted overrides."""
    from mumo.config import load_config

    return load_config(preset, overrides, schema=SyncRunConfig)
