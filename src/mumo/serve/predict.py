"""Inference: load a trained run and ask it. This is the one seam between users (CLI, Python, demos,
servers) and a task's inference code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mumo.tasks.vqa.predictor import ABSTAIN_SCORES, VQAPredictor
from mumo.tasks.vqg.predictor import VQGPredictor

__all__ = ["ABSTAIN_SCORES", "VQAPredictor", "VQGPredictor", "load"]

# what to use instead of mumo.load for the runs it does not serve
OTHER_KINDS = {
    "sync": "score a video with `mumo sync RUN --video V` or mumo.get_task('sync').sync_video(RUN, video, audio)",
    "lipsync": "dub a face with `mumo lipsync RUN --face V --audio A --out OUT.mp4` or "
    "mumo.get_task('lipsync').dub_video(RUN, face, out, audio=...)",
    "lip2speech": "speak a face video with `mumo lip2speech RUN --video V --out OUT.wav` or "
    "mumo.get_task('lip2speech').speak_video(RUN, video, out)",
}


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
        from mumo.errors import CheckpointError
        from mumo.runs import Run

        kind = Run(run_dir).kind
        if kind == "vqg":
            return VQGPredictor.from_run(run_dir, which=which, device=device)
        if kind in OTHER_KINDS:
            raise CheckpointError(
                f"{run_dir} holds a {kind!r} run; mumo.load serves VQA and VQG runs: {OTHER_KINDS[kind]}"
            )
    return VQAPredictor.from_run(run_dir, which=which, device=device)
