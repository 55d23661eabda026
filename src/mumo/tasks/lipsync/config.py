"""The lip-sync generator run's config (``config.yaml``): the generator (``model``), the visual-quality
discriminator (``discriminator``), the talking-face data (``data``), the loop (``train``; ``batch_size`` counts
5-frame windows) and what it minimises (``objective``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from mumo.config import ConfigError, TrainConfig
from mumo.models.wav2lip import VisualDiscriminatorConfig, Wav2LipConfig

DEFAULT_PRESET = "wav2lip-cpu"
VARIANTS = ("l1", "lipgan", "expert", "expert+gan")
EXPERT_VARIANTS = ("expert", "expert+gan")  # trained against the frozen lip-sync expert
GAN_VARIANTS = ("lipgan", "expert+gan")  # trained beside a discriminator (checkpointed as discriminator.safetensors)
GAN_BETAS = [0.5, 0.999]  # Adam's betas for the GAN variants (reference §6.5), unless train.betas is given


@dataclass
class LipSyncDataConfig:
    """Where the talking faces are and how many windows an epoch draws."""

    root: str = ""  # data set directory (filelists/ + speaker/clip folders), e.g. from `mumo data talking-faces`
    max_clips: int = 0  # 0 = all clips of each split
    windows_per_epoch: int = 3200  # 5-frame training windows drawn per epoch (200 batches of 16)
    eval_windows: int = 256  # fixed validation windows

    def __post_init__(self) -> None:
        if self.max_clips < 0:
            raise ConfigError(f"data.max_clips must be >= 0 (0 = all clips), not {self.max_clips}")
        for key in ("windows_per_epoch", "eval_windows"):
            if getattr(self, key) < 1:
                raise ConfigError(f"data.{key} must be >= 1, not {getattr(self, key)}")


@dataclass
class LipSyncObjective:
    """What the generator minimises (reference §6.5): the L1 reconstruction of the frames, plus by variant

    - ``l1``: nothing else;
    - ``lipgan``: LipGAN's jointly trained sync discriminator, ``L1 + lipgan_weight * contrastive(D(G), 0)``;
    - ``expert``: the frozen expert's sync loss, ``w * sync + (1 - w) * L1``;
    - ``expert+gan``: also the visual-quality discriminator, ``w * sync + disc_weight * BCE(D(G), 1) +
      (1 - w - disc_weight) * L1``;

    where the sync weight w is 0 until the validation sync loss falls below ``sync_threshold``, then
    ``sync_weight`` (``gan_sync_weight`` with the GAN), for the rest of the run.
    """

    variant: str = "expert"  # one of VARIANTS
    expert: str = ""  # the lip-sync expert's run directory (mumo train sync); needed by the expert variants
    sync_weight: float = 0.01  # w once switched on, without the GAN
    gan_sync_weight: float = 0.03  # w once switched on, with the visual-quality discriminator
    sync_threshold: float = 0.75  # w switches on after the first epoch whose validation sync loss is below this
    sync_from_start: bool = False  # w on from the first step (not the reference: it waits for the threshold)
    disc_weight: float = 0.07  # the visual-quality discriminator's adversarial term (expert+gan), from the start
    lipgan_weight: float = 0.01  # LipGAN's contrastive term (lipgan)
    disc_lr: float = 1e-4  # the discriminator's learning rate; must equal train.lr for now (one lr per loop)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"objective.variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        for key in ("sync_weight", "gan_sync_weight", "disc_weight", "lipgan_weight"):
            w = getattr(self, key)
            if not (math.isfinite(w) and 0.0 <= w < 1.0):
                raise ConfigError(f"objective.{key} must lie in [0, 1), not {w}")
        if self.gan_sync_weight + self.disc_weight >= 1.0:
            raise ConfigError(
                f"objective.gan_sync_weight + objective.disc_weight must be below 1 (the L1 term gets the rest), not "
                f"{self.gan_sync_weight} + {self.disc_weight}"
            )
        if not (math.isfinite(self.sync_threshold) and self.sync_threshold >= 0):
            raise ConfigError(f"objective.sync_threshold must be a finite number >= 0, not {self.sync_threshold}")
        if not (math.isfinite(self.disc_lr) and self.disc_lr > 0):
            raise ConfigError(f"objective.disc_lr must be a finite number > 0, not {self.disc_lr}")

    @property
    def uses_expert(self) -> bool:
        """Whether the variant trains against the frozen expert."""
        return self.variant in EXPERT_VARIANTS

    @property
    def uses_gan(self) -> bool:
        """Whether the variant trains a discriminator beside the generator."""
        return self.variant in GAN_VARIANTS

    @property
    def sync_weight_on(self) -> float:
        """The sync weight once the schedule has switched it on (0 for the variants without the expert)."""
        if not self.uses_expert:
            return 0.0
        return self.gan_sync_weight if self.variant == "expert+gan" else self.sync_weight


def _lipsync_train_defaults() -> TrainConfig:
    return TrainConfig(epochs=20, batch_size=16, eval_batch_size=16, lr=1e-4, betas=[0.9, 0.999], eps=1e-8,
                       warmup_epochs=0, decay_epochs=[])  # fmt: skip


@dataclass
class LipSyncRunConfig:
    """A lip-sync generator run (``config.yaml``). ``train.batch_size`` counts 5-frame windows."""

    task: str = "lipsync"
    preset: str = DEFAULT_PRESET
    model: Wav2LipConfig = field(default_factory=Wav2LipConfig)
    discriminator: VisualDiscriminatorConfig = field(default_factory=VisualDiscriminatorConfig)
    data: LipSyncDataConfig = field(default_factory=LipSyncDataConfig)
    train: TrainConfig = field(default_factory=_lipsync_train_defaults)
    objective: LipSyncObjective = field(default_factory=LipSyncObjective)

    def __post_init__(self) -> None:
        m = self.model
        if (m.frames, m.mel_bins, m.mel_steps) != (5, 80, 16):
            raise ConfigError(
                f"model.frames, model.mel_bins and model.mel_steps must be 5, 80 and 16 (the data's windows: 5 frames "
                f"of 25-fps video, 80x16 mel), not {m.frames}, {m.mel_bins} and {m.mel_steps}"
            )
        if self.discriminator.face_size != m.face_size:
            raise ConfigError(
                f"discriminator.face_size must be model.face_size ({m.face_size}), not {self.discriminator.face_size}"
            )
        o = self.objective
        if o.uses_gan and o.disc_lr != self.train.lr:
            raise ConfigError(
                f"objective.disc_lr ({o.disc_lr:g}) must equal train.lr ({self.train.lr:g}): the training loop gives "
                "every optimiser train.lr; set both"
            )
        if o.variant == "lipgan" and self.train.batch_size < 2:
            raise ConfigError(
                "objective.variant=lipgan needs train.batch_size >= 2: its off-sync pairs take another window's audio"
            )


def load_lipsync_config(preset: str | None = DEFAULT_PRESET, overrides: list[str] | None = None) -> LipSyncRunConfig:
    """A :class:`LipSyncRunConfig` from a preset (``wav2lip-cpu``, ``wav2lip``) and dotted overrides.

    The GAN variants' Adam betas default to the reference's (0.5, 0.999) when neither the preset nor an override
    sets ``train.betas``; the config (and so the run's ``config.yaml``) then holds them.
    """
    from mumo.config import load_config, preset_section

    cfg = load_config(preset, overrides, schema=LipSyncRunConfig)
    given = any(item.partition("=")[0].strip().startswith("train.betas") for item in overrides or [])
    if preset:
        given = given or "betas" in (preset_section(preset, "train") or {})
    if cfg.objective.uses_gan and not given:
        cfg = replace(cfg, train=replace(cfg.train, betas=list(GAN_BETAS)))
    return cfg
