"""A run directory as one object: what it holds, what kind of run it is, and creating or resuming it.

Layout (``mumo.train.checkpoint`` writes the checkpoints)::

    RUN/config.yaml                      the task's full run config
    RUN/artifacts.json                   {"kind": "vqa" | "sync", ...}: what a model needs to read inputs
    RUN/state.json                       {"last": ..., "best": ..., "history": [...]}
    RUN/checkpoints/epoch-NNNN/          model.safetensors (the bare model), optimiser state, meta.json
    RUN/logs/                            TensorBoard events
    RUN/temperature.json, RUN/feature_density.safetensors, ...   files attached after training

:class:`Run` knows the directory and its files, not the tasks: the task of a run (its config schema, how to
build its model) comes from :func:`mumo.tasks.task_of_run`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mumo.config import config_from_yaml, config_to_dict, config_to_yaml
from mumo.errors import CheckpointError, ConfigError
from mumo.train.checkpoint import (
    ARTIFACTS_FILE,
    CONFIG_FILE,
    STATE_FILE,
    atomic_write_text,
    checkpoint_dir,
    read_run_json,
    read_state,
)
from mumo.train.loop import is_main_process

# artifacts.json "kind" values written by earlier versions, and the name each has now
LEGACY_KINDS = {"syncnet": "sync"}


@dataclass(frozen=True)
class Run:
    """One run directory. Reading is lazy: constructing a Run touches no file."""

    path: Path

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    def __str__(self) -> str:
        return str(self.path)

    # what the run holds
    @property
    def artifacts(self) -> dict[str, Any]:
        """``artifacts.json``: the run's kind and what its model needs to read inputs (vocabulary, answers)."""
        return read_run_json(self.path, ARTIFACTS_FILE, "is not a mumo run")

    @property
    def kind(self) -> str:
        """The task that made the run (``vqa``, ``sync``); names of earlier versions are mapped to today's."""
        kind = self.artifacts.get("kind", "unknown")
        return LEGACY_KINDS.get(kind, kind)

    def require_kind(self, kind: str, what: str) -> None:
        """Raise a CheckpointError unless this is a ``kind`` run (``what``: the model it should hold, in words)."""
        if self.kind != kind:
            raise CheckpointError(f"{self.path} holds a {self.kind!r} checkpoint, not {what}")

    def config(self, schema: type) -> Any:
        """``config.yaml`` read back into ``schema`` (unknown keys are errors)."""
        if not (self.path / CONFIG_FILE).exists():
            raise CheckpointError(f"{self.path} is not a mumo run (no {CONFIG_FILE})")
        return config_from_yaml(self.path / CONFIG_FILE, schema=schema)

    @property
    def state(self) -> dict[str, Any]:
        """``state.json``: the last and best checkpoints and the per-epoch history."""
        return read_state(self.path)

    @property
    def finished_epochs(self) -> int:
        """Epochs with a checkpoint (0 for a run that has none yet)."""
        if not (self.path / STATE_FILE).exists():
            return 0
        return len(self.state.get("history", []))

    def checkpoint(self, which: str = "best") -> Path:
        """The directory of the ``best`` or ``last`` checkpoint."""
        return checkpoint_dir(self.path, which)

    def file(self, name: str) -> Path:
        """The path of a file attached to the run (it need not exist): ``temperature.json``, ..."""
        return self.path / name

    def read_json(self, name: str) -> dict[str, Any] | None:
        """An attached JSON file, or None when the run has none."""
        path = self.file(name)
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"{path} is corrupted: {exc}") from None

    def write_json(self, name: str, data: Any) -> Path:
        """Attach a JSON file, written atomically."""
        path = self.file(name)
        atomic_write_text(path, json.dumps(data, indent=2))
        return path

    # creating and resuming
    def prepare(self, cfg: Any, *, resume: bool, schema: type) -> Any:
        """Check the directory before any training; returns the config to train with.

        A new run refuses a directory that already holds a run (never overwrite work); a resume
        refuses a config that differs from the checkpoint's (``cfg=None`` takes the saved one), except
        for a larger ``train.epochs``: that extends the run (the new value is saved).
        """
        if resume:
            read_state(self.path)
            saved = self.config(schema)
            if cfg is None:
                return saved
            diff = _differences(config_to_dict(saved), config_to_dict(cfg))
            if diff and not (
                len(diff) == 1 and diff[0].startswith("train.epochs ") and cfg.train.epochs > saved.train.epochs
            ):
                raise ConfigError(f"--resume config differs from the checkpoint's: {'; '.join(diff)}")
            if diff and is_main_process():
                atomic_write_text(self.path / CONFIG_FILE, config_to_yaml(cfg))  # extended: more epochs
            return cfg
        if is_main_process() and ((self.path / STATE_FILE).exists() or (self.path / CONFIG_FILE).exists()):
            raise ConfigError(f"{self.path} already holds a run; pass --resume to continue it or choose another --out")
        if cfg is None:
            raise ConfigError("a new run needs a config")
        return cfg

    def create(self, cfg: Any, artifacts: dict[str, Any]) -> None:
        """Write the config and the artifacts of a new run (rank 0 only), atomically."""
        self.path.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            atomic_write_text(self.path / CONFIG_FILE, config_to_yaml(cfg))
            atomic_write_text(self.path / ARTIFACTS_FILE, json.dumps(artifacts))


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} ({va!r} in the checkpoint, {vb!r} now)")
    return out
