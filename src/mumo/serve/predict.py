"""Inference: load a trained run and ask it. This is the one seam between users (CLI, Python, demos,
servers) and a task's inference code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mumo.tasks.vqa.predictor import ABSTAIN_SCORES, VQAPredictor
from mumo.tasks.vqg.predictor import VQGPredictor

__all__ = ["ABSTAIN_SCORES", "VQAPredictor", "VQGPredictor", "load"]


def load(
    run_dir: str | Path | Sequence[str | Path], *, which: str = "best", device: str = "auto"
) -> VQAPredictor | VQGPredictor:
    """Load a trained run: ``mumo.load("runs/vqa-...").predict(image, question, top_k=3)``; a question-generation
    run: ``mumo.load("runs/vqg-...").generate(image, caption=..., samples=5)``.

    A list of runs of one recipe (trained with ``train.member=0, 1, ...``) loads a deep ensemble: the members'
    mean answer, their disagreement as the epistemic uncertainty, the first run's temperature and density.

    ``device``: ``auto`` (a GPU if there is one, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """
    if isinstance(run_dir, str | Path):
        from mumo.runs import Run

        if Run(run_dir).kind == "vqg":
            return VQGPredictor.from_run(run_dir, which=which, device=device)
    return VQAPredictor.from_run(run_dir, which=which, device=device)
