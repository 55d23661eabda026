"""mumo: multimodal models that know what they don't know.

The public API is what this module re-exports; submodules are imported on first use so that
``import mumo`` stays cheap and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "MumoError", "Run", "create_model", "fit_density", "get_task", "list_models", "list_presets", "list_tasks", "load",
    "load_config", "task_of_run", "train_vqa",
]  # fmt: skip

if TYPE_CHECKING:  # pragma: no cover
    from mumo.config import list_presets
    from mumo.errors import MumoError
    from mumo.models import create_model, list_models
    from mumo.runs import Run
    from mumo.serve.predict import load
    from mumo.tasks import get_task, list_tasks, load_config, task_of_run

_EXPORTS = {
    "MumoError": "mumo.errors",
    "create_model": "mumo.models",
    "Run": "mumo.runs",
    "get_task": "mumo.tasks",
    "list_tasks": "mumo.tasks",
    "task_of_run": "mumo.tasks",
    "list_models": "mumo.models",
    "list_presets": "mumo.config",
    "load": "mumo.serve.predict",
    "load_config": "mumo.tasks",
}


def train_vqa(cfg: Any, out: Any, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train a VQA run (``cfg``: :func:`load_config`) into ``out``; the same as ``mumo train vqa``."""
    from mumo.tasks import get_task

    return get_task("vqa").train(cfg, out, resume=resume, progress=progress)


def fit_density(run: Any, *, images: int = 2000, device: str = "auto") -> dict[str, Any]:
    """Fit and save a VQA run's feature density; the same as ``mumo fit-density RUN``."""
    from mumo.tasks import FitsDensity, require

    return require(run, FitsDensity, "mumo.fit_density", "a VQA model").fit_density(run, images=images, device=device)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mumo' has no attribute {name!r}")
