"""mumo: multimodal models that know what they don't know.

The public API is what this module re-exports; submodules are imported on first use so that
``import mumo`` stays cheap and has no side effects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "MumoError", "create_model", "fit_density", "list_models", "list_presets", "load", "load_config", "train_vqa",
]  # fmt: skip

if TYPE_CHECKING:  # pragma: no cover
    from mumo.config import list_presets, load_config
    from mumo.errors import MumoError
    from mumo.models import create_model, list_models
    from mumo.serve.predict import load
    from mumo.tasks.vqa import train_vqa
    from mumo.tasks.vqa_density import fit_density

_EXPORTS = {
    "MumoError": "mumo.errors",
    "create_model": "mumo.models",
    "fit_density": "mumo.tasks.vqa_density",
    "list_models": "mumo.models",
    "list_presets": "mumo.config",
    "load": "mumo.serve.predict",
    "load_config": "mumo.config",
    "train_vqa": "mumo.tasks.vqa",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mumo' has no attribute {name!r}")
