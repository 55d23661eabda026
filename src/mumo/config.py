"""Typed configuration: dataclasses are the schema, OmegaConf merges YAML presets and dotted overrides.

A preset is a YAML file in ``mumo/configs/`` holding a serialised run config of one task (or part of one): the
task's schema (VQA: :class:`mumo.tasks.vqa.config.RunConfig`) says which keys exist. Unknown keys are errors that
name the key; values are type-checked by OmegaConf. Keys renamed since an earlier version (``legacy_keys``) are
still read, in saved runs and in overrides, under their names now.

This module holds what every task shares: the training loop's settings (:class:`TrainConfig`) and YAML io.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mumo.errors import ConfigError, special_file_kind


@dataclass
class TrainConfig:
    """The training loop's settings (:func:`mumo.train.loop.fit`): schedule, optimiser, batches, seeds, device.
    What a task minimises, and how it augments its data, is in that task's own config (VQA: ``objective``)."""

    epochs: int = 13
    batch_size: int = 64  # samples per training batch, in the unit the task states (VQA: images; sync: pairs)
    eval_batch_size: int = 128  # the same unit, for validation and evaluation
    lr: float = 1e-4  # > 0 and finite
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])  # Adam's (beta1, beta2), each in [0, 1)
    eps: float = 1e-9  # > 0
    weight_decay: float = 0.0  # >= 0
    warmup_epochs: int = 3  # lr x 1/(w+1), 2/(w+1), ... during the first w epochs
    decay_epochs: list[int] = field(default_factory=lambda: [10, 12])  # lr x decay_rate once this many epochs are done
    decay_rate: float = 0.2  # in (0, 1]; 1 = no decay
    grad_clip: float = 0.0  # 0 = no clipping (MCAN)
    mixed_precision: str = "no"  # "no", "bf16" or "fp16" (fp16 needs a GPU)
    seed: int = 0  # in [0, 2**32); seeds the validation split, initial weights, batch order and dropout masks
    # deep-ensemble member k (docs/uncertainty.md): members of one recipe share the seed's data split but draw
    # their initial weights, batch order and dropout masks from init_seed; member 0 is the plain run
    member: int = 0
    cpu: bool = False  # force the CPU even when a GPU is present

    def __post_init__(self) -> None:
        import math

        if self.epochs < 1:
            raise ConfigError(f"train.epochs must be >= 1, not {self.epochs}")
        for key, size in (("batch_size", self.batch_size), ("eval_batch_size", self.eval_batch_size)):
            if size < 1:
                raise ConfigError(f"train.{key} must be >= 1, not {size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"train.lr must be a finite number > 0, not {self.lr}")
        if len(self.betas) != 2 or not all(math.isfinite(b) and 0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1) (Adam's beta1, beta2), not {self.betas}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ConfigError(f"train.eps must be a finite number > 0, not {self.eps}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"train.weight_decay must be a finite number >= 0, not {self.weight_decay}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"train.warmup_epochs must be >= 0 (0 = no warm-up), not {self.warmup_epochs}")
        if any(e < 1 for e in self.decay_epochs):  # epochs done before a decay (mumo.train.optim.lr_factor)
            raise ConfigError(
                f"train.decay_epochs must be epoch counts >= 1 (decay once that many are done), not "
                f"{list(self.decay_epochs)}"
            )
        # 0 would set the learning rate to 0 from the first decay epoch on (train.lr must be > 0); 1 = no decay
        if not (math.isfinite(self.decay_rate) and 0.0 < self.decay_rate <= 1.0):
            raise ConfigError(f"train.decay_rate must lie in (0, 1], not {self.decay_rate}")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ConfigError(f"train.grad_clip must be a finite number >= 0 (0 = no clipping), not {self.grad_clip}")
        if self.mixed_precision in ("False", "false"):  # YAML 1.1 reads a bare `no` (mixed_precision=no) as false
            self.mixed_precision = "no"
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ConfigError(f"train.mixed_precision must be 'no', 'bf16' or 'fp16', not {self.mixed_precision!r}")
        # one range every generator it seeds accepts: numpy's default_rng (evaluation's OOD images) refuses negatives,
        # and the seeds derived from it (seed * 1_000_003 + epoch, ...) must fit torch's 64-bit manual_seed
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"train.seed must lie in [0, 2**32), not {self.seed}")
        if self.member < 0:
            raise ConfigError(f"train.member must be >= 0, not {self.member}")

    def check_machine(self) -> None:
        """Refuse what this machine cannot train (before a run writes anything; a saved run still loads anywhere):
        fp16 needs a CUDA GPU."""
        if self.mixed_precision == "fp16":
            import torch

            if self.cpu or not torch.cuda.is_available():
                where = "train.cpu=true" if self.cpu else "no CUDA GPU on this machine"
                raise ConfigError(
                    f"train.mixed_precision=fp16 needs a GPU ({where}); use train.mixed_precision=bf16 or no"
                )

    @property
    def init_seed(self) -> int:
        """Seed of the initial weights, batch order and dropout masks: ``seed`` for member 0."""
        return self.seed + 100_003 * self.member


# keys of earlier versions, renamed for every task; a schema adds its own in ``legacy_keys`` (None: dropped)
LEGACY_KEYS = {"train.images_per_batch": "train.batch_size", "train.eval_images_per_batch": "train.eval_batch_size"}


def legacy_keys(schema: type) -> dict[str, str | None]:
    """Every key of an earlier version that ``schema``'s configs still accept, and its name now."""
    return {**LEGACY_KEYS, **getattr(schema, "legacy_keys", {})}


def _rename_legacy(data: dict[str, Any], schema: type) -> dict[str, Any]:
    """A saved or preset config (nested dict) with the keys of earlier versions moved to their names now."""
    for old, new in legacy_keys(schema).items():
        section, key = old.split(".", 1)
        if isinstance(data.get(section), dict) and key in data[section]:
            value = data[section].pop(key)
            if new is not None:
                new_section, new_key = new.split(".", 1)
                data.setdefault(new_section, {}).setdefault(new_key, value)
    return data


def _rename_override(item: str, schema: type) -> str:
    """A dotted ``key=value`` override with an earlier key name moved to its name now."""
    key, _, value = item.partition("=")
    new = legacy_keys(schema).get(key)
    return item if new is None else f"{new}={value}"  # a dropped key stays unknown: an error that names it


def list_presets(task: str | None = None) -> list[str]:
    """Names of the YAML presets shipped in ``mumo/configs`` (only ``task``'s when given)."""
    folder = resources.files("mumo") / "configs"
    names = sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))
    return [n for n in names if task is None or preset_section(n, "task") == task]


# presets renamed since an earlier version, and their names now
LEGACY_PRESETS = {"syncnet-cpu": "sync-cpu", "syncnet-wav2lip": "sync-wav2lip"}


def _preset_text(name: str) -> str:
    name = LEGACY_PRESETS.get(name, name)
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


def load_config(preset: str | None, overrides: list[str] | None = None, *, schema: type) -> Any:
    """Build a config of ``schema`` (a task's run config dataclass, with a ``task`` field) from a preset name and
    dotted ``key=value`` overrides.

    Raises:
        ConfigError: unknown preset, a preset of another task, unknown key or a value of the wrong type.
    """
    layers = [OmegaConf.structured(schema)]
    if preset:
        try:
            layer = OmegaConf.create(
                _rename_legacy(OmegaConf.to_container(OmegaConf.create(_preset_text(preset))), schema)
            )
        except OmegaConfBaseException as exc:
            raise ConfigError(f"preset {preset!r} is not valid YAML: {exc}") from None
        task, expected = layer.get("task"), layers[0].task
        if task is not None and task != expected:
            raise ConfigError(f"preset {preset!r} is for the {task!r} task, not {expected!r}")
        layers.append(layer)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    renamed = [_rename_override(item, schema) for item in overrides or []]
    try:
        if renamed:
            layers.append(OmegaConf.from_dotlist(renamed))
        merged = OmegaConf.merge(*layers)
        if preset:
            merged.preset = LEGACY_PRESETS.get(preset, preset)
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from None
    return _to_dataclass(merged)


def apply_overrides(cfg: Any, overrides: list[str], *, schema: type) -> Any:
    """``cfg`` (a config of ``schema``, such as a run's saved one) with dotted ``key=value`` overrides applied."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
    try:
        merged = OmegaConf.merge(
            OmegaConf.structured(cfg), OmegaConf.from_dotlist([_rename_override(i, schema) for i in overrides])
        )
    except OmegaConfBaseException as exc:
        raise ConfigError(_describe(exc)) from None
    return _to_dataclass(merged)


def read_saved_config(path: str | Path) -> dict[str, Any]:
    """A saved ``config.yaml`` as a plain nested dict, unchecked against any schema (ConfigError when it is not a
    readable, non-empty YAML mapping)."""
    import yaml

    if Path(path).exists() and not Path(path).is_file():  # a directory, a FIFO or /dev/zero: never opened
        raise ConfigError(f"corrupted run: {path}: {special_file_kind(Path(path))}, not a config file")
    try:
        saved = OmegaConf.to_container(OmegaConf.load(path))
    except (yaml.YAMLError, OmegaConfBaseException, UnicodeDecodeError) as exc:  # a !!python tag included
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"corrupted run: {path}: not a config file ({first})") from None
    if not isinstance(saved, dict) or not saved:
        raise ConfigError(f"corrupted run: {path}: holds no config (a YAML mapping of the run's settings)")
    return saved


def config_from_yaml(path: str | Path, *, schema: type) -> Any:
    """Read a saved ``config.yaml`` back into ``schema`` (unknown keys are errors; keys of earlier versions are
    read under their names now)."""
    saved = read_saved_config(path)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), _rename_legacy(saved, schema))
    except OmegaConfBaseException as exc:
        raise ConfigError(f"corrupted run: {path}: {_describe(exc)}") from None
    try:
        return _to_dataclass(merged)
    except ConfigError as exc:
        raise ConfigError(f"corrupted run: {path}: {exc}") from None


def config_to_yaml(cfg: Any) -> str:
    """Serialise a config to YAML text."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of the config."""
    return dataclasses.asdict(cfg)
