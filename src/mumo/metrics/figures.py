"""Figures without pyplot: a Figure on its own Agg canvas (no global matplotlib state), saved as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

DPI = 120


def new_figure(figsize: tuple[float, float]):
    """A Figure attached to an Agg canvas, created here so importing this module touches no matplotlib state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Write ``fig`` as a PNG at ``path`` (parents created) through a temporary file and a rename, so a reader
    never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
    return path
