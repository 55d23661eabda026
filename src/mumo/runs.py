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

import contextlib
import fcntl
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mumo.config import config_from_yaml, config_to_dict, config_to_yaml, read_saved_config
from mumo.devices import is_main_process
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

# artifacts.json "kind" values written by earlier versions, and the name each has now
LEGACY_KINDS = {"syncnet": "sync"}
LOCK_FILE = ".lock"  # held by the process training into the run
# what mumo writes into a run directory: anything else there is a user's, and a new run refuses the directory
RUN_ENTRIES = {
    CONFIG_FILE, ARTIFACTS_FILE, STATE_FILE, LOCK_FILE, "checkpoints", "logs", "plots", "question_bank.json",
    "temperature.json", "feature_density.safetensors", "ood_check.safetensors", "vocab.json", "report.html",
}  # fmt: skip


# inside mumo's folders of a run, the names mumo writes (checkpoints and their temporaries, TensorBoard events)
OWN_ENTRIES = {
    "checkpoints": re.compile(r"\.?epoch-\d{4,}(\.tmp)?"),
    "logs": re.compile(r"events\.out\.tfevents\..*"),
}


class RunInUseError(CheckpointError):
    """Another process is training into the run directory."""


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
            if (self.path / ARTIFACTS_FILE).is_file():  # the rest of a run is here: its config was lost
                raise CheckpointError(f"corrupted run: {self.path / CONFIG_FILE}: missing")
            raise CheckpointError(f"{self.path} is not a mumo run (no {CONFIG_FILE})")
        return config_from_yaml(self.path / CONFIG_FILE, schema=schema)

    def load_model(self, model_cfg: Any, which: str = "best", device: Any = "cpu", **inputs: Any) -> Any:
        """``create_model(model_cfg, **inputs)`` with the weights of checkpoint ``which`` (``best``, ``last`` or
        an epoch folder), in eval mode, on ``device`` (``auto``: a GPU if there is one). The caller checks the
        run's kind and reads ``model_cfg`` from its config (its own task's, or a section of another's)."""
        from mumo.devices import resolve_device
        from mumo.models import create_model
        from mumo.train.checkpoint import load_weights

        model = create_model(model_cfg, **inputs)
        load_weights(model, self.checkpoint(which))
        return model.to(resolve_device(device)).eval()

    def config_section(self, name: str, schema: type | None = None) -> Any:
        """One top-level section of ``config.yaml`` without knowing the run's task: a plain dict, or read into
        ``schema`` (a config dataclass; unknown keys are errors). For reading another task's run, such as the
        expert a generator trains against. CheckpointError when the file or the section is missing or unreadable."""
        path = self.path / CONFIG_FILE
        if not path.exists():
            raise CheckpointError(f"{self.path} is not a mumo run (no {CONFIG_FILE})")
        try:
            section = read_saved_config(path).get(name)
        except ConfigError as exc:
            raise CheckpointError(str(exc)) from None
        if not isinstance(section, dict):
            raise CheckpointError(f"corrupted run: {path}: no {name!r} section")
        if schema is None:
            return section
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        try:
            return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), section))
        except OmegaConfBaseException as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"corrupted run: {path}: its {name!r} section does not fit ({first})") from None

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
        return read_run_json(self.path, name, "has no such file")

    def write_json(self, name: str, data: Any) -> Path:
        """Attach a JSON file, written atomically."""
        path = self.file(name)
        atomic_write_text(path, json.dumps(data, indent=2))
        return path

    # creating and resuming
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on the run directory for the whole block (a training or a resume).

        A second process asking for it is refused at once with a RunInUseError naming the holder. Only rank 0 of
        a multi-process training locks. The directory is created for the lock; when the block ends without a run
        written into it (refused, or failed before anything was written), the lock file, and the directory if it
        created it, are removed again: nothing is left.
        """
        if not is_main_process():
            yield
            return
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file, not a directory")
        created = not self.path.exists()
        had_lock = (self.path / LOCK_FILE).exists()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            handle = open(self.path / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 (held for the block)
        except OSError as exc:
            raise ConfigError(f"cannot write the run directory {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise RunInUseError(
                f"{self.path} is in use by {holder}; one training at a time per run directory: wait for it to end "
                "or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"mumo pid {os.getpid()} on {socket.gethostname()} since {datetime.now():%Y-%m-%d %H:%M:%S}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
            if not had_lock and not (self.path / CONFIG_FILE).exists():  # no run was written: leave no trace
                (self.path / LOCK_FILE).unlink(missing_ok=True)
                if created and not any(self.path.iterdir()):
                    self.path.rmdir()

    def prepare(self, cfg: Any, *, resume: bool, schema: type) -> tuple[Any, bool]:
        """Check the directory before any training; returns the config to train with and whether to resume.

        - A new run refuses a directory that holds a run with a finished epoch (never overwrite work) and a
          non-empty directory that is not a mumo run (never delete a user's files). A run that never finished
          an epoch (killed in its first epoch, or failed as it started) is taken over: it has nothing to lose.
        - A resume refuses a config that differs from the checkpoint's (``cfg=None`` takes the saved one), except
          for a larger ``train.epochs``: that extends the run (the new value is saved). A run with no finished
          epoch resumes from the start (the returned ``resume`` is then False).
        """
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file, not a directory")
        if cfg is not None:
            cfg.train.check_machine()
        if resume:
            saved = self.config(schema)
            saved.train.check_machine()
            if self.finished_epochs == 0:  # nothing was checkpointed: train from the start
                return (saved if cfg is None else cfg), False
            read_state(self.path)
            if cfg is None:
                return saved, True
            diff = _differences(config_to_dict(saved), config_to_dict(cfg))
            if diff and not (
                len(diff) == 1 and diff[0].startswith("train.epochs ") and cfg.train.epochs > saved.train.epochs
            ):
                raise ConfigError(f"--resume config differs from the checkpoint's: {'; '.join(diff)}")
            if diff and is_main_process():
                atomic_write_text(self.path / CONFIG_FILE, config_to_yaml(cfg))  # extended: more epochs
            return cfg, True
        if cfg is None:
            raise ConfigError("a new run needs a config")
        if is_main_process() and self.path.is_dir():
            if self.finished_epochs > 0:
                raise ConfigError(
                    f"{self.path} already holds a run; pass --resume to continue it or choose another --out"
                )
            foreign = self._foreign_entries()
            if foreign:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                raise ConfigError(
                    f"{self.path} is not empty and holds files that are not a mumo run's ({shown}); choose an empty "
                    "or new --out"
                )
        return cfg, False

    def _foreign_entries(self) -> list[str]:
        """What the directory holds that mumo did not write (paths relative to it), sorted."""
        out = [p.name for p in self.path.iterdir() if p.name not in RUN_ENTRIES]
        for folder, own in OWN_ENTRIES.items():
            if (self.path / folder).is_dir():
                out += [f"{folder}/{p.name}" for p in (self.path / folder).iterdir() if not own.fullmatch(p.name)]
            elif (self.path / folder).exists():
                out.append(folder)
        return sorted(out)

    def create(self, cfg: Any, artifacts: dict[str, Any]) -> None:
        """Write the config and the artifacts of a new run (rank 0 only), atomically; what a run that never
        finished an epoch left in the directory (logs, a half-written checkpoint) is removed first."""
        self.path.mkdir(parents=True, exist_ok=True)
        if is_main_process():
            for folder, own in OWN_ENTRIES.items():  # only what mumo wrote: a prepared folder holds nothing else
                for entry in (self.path / folder).glob("*") if (self.path / folder).is_dir() else ():
                    if own.fullmatch(entry.name):
                        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
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
