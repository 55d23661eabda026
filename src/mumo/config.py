"""Typed configuration: dataclasses are the schema, OmegaConf merges YAML presets and dotted overrides.

A preset is a YAML file in ``mumo/configs/`` holding a serialised :class:`RunConfig` (or part of one).
Unknown keys are errors that name the key; values are type-checked by OmegaConf.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mumo.errors import ConfigError


@dataclass
class ModelConfig:
    """MCAN sizes and front-ends (reference §2)."""

    name: str = "mcan"  # registry name of the model
    hidden: int = 512  # H, width of every attention block
    heads: int = 8  # attention heads; hidden % heads == 0
    layers: int = 6  # SA blocks in the encoder and SGA blocks in the decoder
    ff: int = 2048  # feed-forward width (4H in the paper)
    dropout: float = 0.1  # every dropout (attention weights, residual branches, FFN, AttFlat)
    region_dropout: float = 0.0  # dropout on the image regions entering the co-attention (0 = none)
    cnn_dropout: float = 0.0  # dropout after every conv block of the grid CNN (> 0 makes the trunk stochastic)
    flat_mlp: int = 512  # AttFlat MLP width
    flat_glimpses: int = 1  # AttFlat glimpses
    flat_out: int = 1024  # AttFlat output (2H in the paper)
    answer_mlp: int = 0  # hidden width of a ReLU MLP answer head; 0 = MCAN's linear classifier on the fused vector
    word_dim: int = 300  # word embedding size
    word_vectors: str = "none"  # "none" or "glove-6b-50d" (needs the [glove] extra and word_dim=50)
    image_encoder: str = "cnn"  # "cnn" (grid from pixels) or "regions" (precomputed (N, D) features)
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # one conv block each
    cnn_pool: int = 3  # how many of the blocks halve the resolution, rounding up (64 px -> 8x8 grid at 3)
    cnn_skip: bool = False  # append the first conv block's features, max-pooled to the grid, to the last block's
    grid_position: bool = False  # add a learned embedding of each grid cell's (x, y) centre to its features
    region_dim: int = 2048  # input feature size for image_encoder="regions"
    blank: str = "none"  # "none", "image" (question-only model) or "question" (image-only model)
    aleatoric: str = "none"  # "none", "kendall-gal" (per-class logit variance) or "ucam" (one variance)
    aleatoric_samples: int = 20  # T logit-noise samples in the aleatoric loss (U-CAM's code uses 100)

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"model.hidden={self.hidden} is not divisible by model.heads={self.heads}")
        if self.image_encoder not in ("cnn", "regions"):
            raise ConfigError(f"model.image_encoder must be 'cnn' or 'regions', not {self.image_encoder!r}")
        if self.blank not in ("none", "image", "question"):
            raise ConfigError(f"model.blank must be 'none', 'image' or 'question', not {self.blank!r}")
        if self.aleatoric not in ("none", "kendall-gal", "ucam"):
            raise ConfigError(f"model.aleatoric must be 'none', 'kendall-gal' or 'ucam', not {self.aleatoric!r}")
        if self.aleatoric_samples < 1:
            raise ConfigError("model.aleatoric_samples must be >= 1")
        if self.word_vectors not in ("none", "glove-6b-50d"):
            raise ConfigError(f"model.word_vectors must be 'none' or 'glove-6b-50d', not {self.word_vectors!r}")
        if self.word_vectors == "glove-6b-50d" and self.word_dim != 50:
            raise ConfigError("model.word_vectors=glove-6b-50d needs model.word_dim=50")
        if not all(0.0 <= p < 1.0 for p in (self.dropout, self.region_dropout, self.cnn_dropout)):
            raise ConfigError("model.dropout, model.region_dropout and model.cnn_dropout must lie in [0, 1)")
        if (self.cnn_skip or self.grid_position) and self.image_encoder != "cnn":
            raise ConfigError("model.cnn_skip and model.grid_position need model.image_encoder=cnn")
        if self.cnn_skip and not self.cnn_channels:
            raise ConfigError("model.cnn_skip needs at least one conv block in model.cnn_channels")
        if self.answer_mlp < 0:
            raise ConfigError(f"model.answer_mlp must be >= 0 (0 = a linear classifier), not {self.answer_mlp}")
        if not 0 <= self.cnn_pool <= len(self.cnn_channels):
            raise ConfigError("model.cnn_pool must be between 0 and len(model.cnn_channels)")


@dataclass
class DataConfig:
    """Which data set, how it is split and preprocessed."""

    name: str = "easy-vqa"  # data set name
    root: str = ""  # data directory for data sets read from disk (unused for easy-vqa)
    val_fraction: float = 0.1  # fraction of training *images* carved out as validation
    max_question_len: int = 14  # tokens kept per question (MCAN: 14)
    image_size: int = 64  # images are resized to image_size x image_size
    max_train_images: int = 0  # 0 = all; a positive number trains on a seeded subset (smoke runs)

    def __post_init__(self) -> None:
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(f"data.val_fraction must lie in (0, 1), not {self.val_fraction}")


ATTENTION_LOSSES = ("none", "mse", "aan", "paan", "gca", "masks")


@dataclass
class TrainConfig:
    """The MCAN recipe (reference §2.3): Adam (0.9, 0.98), warm-up, step decay, soft-target BCE."""

    epochs: int = 13
    images_per_batch: int = 64  # a batch holds every question of this many images
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    eps: float = 1e-9
    weight_decay: float = 0.0
    warmup_epochs: int = 3  # lr x 1/(w+1), 2/(w+1), ... during the first w epochs
    decay_epochs: list[int] = field(default_factory=lambda: [10, 12])  # lr x decay_rate from these epochs
    decay_rate: float = 0.2
    loss_reduction: str = "sum"  # "sum" over batch x classes (MCAN) or "mean" over questions
    grad_clip: float = 0.0  # 0 = no clipping (MCAN)
    mixed_precision: str = "no"  # "no", "bf16" or "fp16" (fp16 needs a GPU)
    eval_images_per_batch: int = 128
    seed: int = 0  # seeds the validation split, the initial weights, the batch order and the dropout masks
    # deep-ensemble member k (docs/uncertainty.md): members of one recipe share the seed's data split but draw
    # their initial weights, batch order and dropout masks from init_seed; member 0 is the plain run
    member: int = 0
    cpu: bool = False  # force the CPU even when a GPU is present
    # Gaussian pixel-noise augmentation (VQA pixel models; mumo.data.shift.augment): every training image gets
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
        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, not {self.epochs}")
        if self.images_per_batch < 1:
            raise ConfigError(f"train.images_per_batch must be >= 1, not {self.images_per_batch}")
        if self.loss_reduction not in ("sum", "mean"):
            raise ConfigError(f"train.loss_reduction must be 'sum' or 'mean', not {self.loss_reduction!r}")
        if self.mixed_precision in ("False", "false"):  # YAML 1.1 reads a bare `no` (mixed_precision=no) as false
            self.mixed_precision = "no"
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be 'no', 'bf16' or 'fp16', not {self.mixed_precision!r}")
        if self.attention_loss not in ATTENTION_LOSSES:
            raise ConfigError(
                f"train.attention_loss must be one of {', '.join(ATTENTION_LOSSES)}, not {self.attention_loss!r}"
            )
        if self.attention_weight < 0 or self.uncertainty_weight < 0:
            raise ConfigError("train.attention_weight and train.uncertainty_weight must be >= 0")
        if self.member < 0:
            raise ConfigError(f"train.member must be >= 0, not {self.member}")
        if not (math.isfinite(self.augment_pixel_noise) and self.augment_pixel_noise >= 0):
            raise ConfigError(
                f"train.augment_pixel_noise must be a standard deviation >= 0, not {self.augment_pixel_noise}"
            )

    @property
    def init_seed(self) -> int:
        """Seed of the initial weights, batch order and dropout masks: ``seed`` for member 0."""
        return self.seed + 100_003 * self.member


@dataclass
class RunConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run directory."""

    task: str = "vqa"
    preset: str = "mcan-cpu"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def list_presets(task: str | None = None) -> list[str]:
    """Names of the YAML presets shipped in ``mumo/configs`` (only ``task``'s when given)."""
    folder = resources.files("mumo") / "configs"
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [n for n in names if task is None or preset_section(n, "task") == task]


def _preset_text(name: str) -> str:
    if name not in list_presets():
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(list_presets())}")
    return (resources.files("mumo") / "configs" / f"{name}.yaml").read_text(encoding="utf-8")


def preset_section(name: str, key: str) -> Any:
    """One top-level entry of a shipped preset as plain data ({} / None when the preset lacks it)."""
    data = OmegaConf.to_container(OmegaConf.create(_preset_text(name)))
    return data.get(key, {} if key != "task" else None)  # type: ignore[union-attr]


def _to_dataclass(merged: Any) -> Any:
    try:
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: OmegaConfBaseException) -> str:
    key = getattr(exc, "full_key", None)
    msg = str(exc).splitlines()[0]
    if "not in struct" in msg or ("Key '" in msg and "not in" in msg):
        return f"unknown config key {key!r}" if key else msg
    return f"bad value for config key {key!r}: {msg}" if key else msg


def load_config(
    preset: str | None = "mcan-cpu", overrides: list[str] | None = None, *, schema: type = RunConfig
) -> Any:
    """Build a config (a :class:`RunConfig`, or another task's ``schema`` dataclass with a ``task`` field)
    from a preset name and dotted ``key=value`` overrides.

    Raises:
        ConfigError: unknown preset, a preset of another task, unknown key or a value of the wrong type.
    """
    layers = [OmegaConf.structured(schema)]
    if preset:
        try:
            layer = OmegaConf.create(_preset_text(preset))
        except OmegaConfBaseException as exc:
            raise ConfigError(f"preset {preset!r} is not valid YAML: {exc}") from None
        task, expected = layer.get("task"), layers[0].task
        if task is not None and task != expected:
            raise ConfigError(f"preset {preset!r} is for the {task!r} task, not {expected!r}")
        layers.append(layer)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.merge(*layers)
        if preset:
            merged.preset = preset
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from None
    return _to_dataclass(merged)


def config_from_yaml(path: str | Path, *, schema: type = RunConfig) -> Any:
    """Read a saved ``config.yaml`` back into its dataclass (unknown keys are errors)."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: {_describe(exc)}") from None
    return _to_dataclass(merged)


def config_to_yaml(cfg: Any) -> str:
    """Serialise a config to YAML text."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of the config."""
    return dataclasses.asdict(cfg)
