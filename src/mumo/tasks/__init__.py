"""Tasks, one package each (``vqa/``, ``sync/``, ``vqg/``, ``lipsync/``, ``lip2speech/``), behind the
:class:`Task` protocol and found by name here.

Nothing outside a task's package imports from it except this registry and :mod:`mumo.serve` (checked by
import-linter, docs/architecture.md): ``mumo train NAME`` and ``mumo evaluate RUN`` dispatch through
:func:`get_task` and :func:`task_of_run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from mumo.errors import CheckpointError, ConfigError
from mumo.registry import Registry
from mumo.runs import Run
from mumo.tasks._protocol import (
    DubsVideo,
    Explains,
    FitsDensity,
    FitsTemperature,
    GeneratesQuestions,
    Probes,
    Report,
    ScoresSync,
    SpeaksVideo,
    Task,
)

__all__ = [
    "DubsVideo", "Explains", "FitsDensity", "FitsTemperature", "GeneratesQuestions", "Probes", "Report",
    "ScoresSync", "SpeaksVideo", "Task", "get_task", "list_tasks", "load_config", "require", "task_of_run",
]  # fmt: skip

C = TypeVar("C")

# names of earlier versions (``mumo train syncnet``), and the task each is now
LEGACY_NAMES = {"syncnet": "sync"}


def _registry() -> Registry:
    """Every task, by name; the task packages are imported here, explicitly, on first use (not at import)."""
    from mumo.tasks.lip2speech.spec import Lip2SpeechTask
    from mumo.tasks.lipsync.spec import LipSyncTask
    from mumo.tasks.sync.spec import SyncTask
    from mumo.tasks.vqa.spec import VQATask
    from mumo.tasks.vqg.spec import VQGTask

    tasks: Registry = Registry("task")
    for cls in (VQATask, SyncTask, VQGTask, LipSyncTask, Lip2SpeechTask):
        tasks.register(cls.name)(cls)
    return tasks


def get_task(name: str) -> Task:
    """The task registered as ``name`` (ConfigError naming the choices when there is none)."""
    return _registry().get(LEGACY_NAMES.get(name, name))()


def load_config(preset: str, overrides: list[str] | None = None) -> Any:
    """A run config from a shipped preset (its task's schema: ``mcan-cpu`` -> VQA, ``sync-cpu`` -> sync) and
    dotted ``key=value`` overrides (ConfigError when the preset or a key is unknown or a value is bad)."""
    from mumo.config import preset_section

    task = preset_section(preset, "task")
    if task is None:
        raise ConfigError(f"preset {preset!r} names no task")
    return get_task(task).load_config(preset, list(overrides or []))


def list_tasks() -> list[str]:
    """Names of every task."""
    return _registry().names()


def task_of_run(run: str | Path | Run) -> Task:
    """The task that made a run, from its ``artifacts.json`` (CheckpointError when it is not a mumo run)."""
    return get_task((run if isinstance(run, Run) else Run(run)).kind)


def require(run: str | Path | Run, capability: type[C], command: str, what: str) -> C:
    """The task of ``run`` as ``capability`` (a protocol above), or a CheckpointError saying that ``command``
    needs ``what`` (``"a VQA model"``)."""
    run = run if isinstance(run, Run) else Run(run)
    task = task_of_run(run)
    if not isinstance(task, capability):
        raise CheckpointError(f"{run} holds a {task.name!r} checkpoint, not {what} (`{command}` needs one)")
    return task
