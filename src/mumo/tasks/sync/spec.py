"""The lip-sync expert task as the registry sees it (:class:`mumo.tasks.Task`, plus scoring a video)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from torch import nn

from mumo.errors import CheckpointError
from mumo.tasks.sync.config import SyncRunConfig, load_sync_config

_NOT_EVALUATED = (
    "this run holds a lip-sync expert, not a VQA model: `mumo evaluate` scores VQA runs; score the expert on a "
    "video with `mumo sync RUN --video FILE`"
)


class SyncTask:
    """The lip-sync expert (SyncNet-style): is this audio in sync with these lips, and by how many frames not."""

    name = "sync"
    schema = SyncRunConfig
    default_preset = "sync-cpu"
    data_key = "data.root"
    data_help = "talking-face data set directory (mumo data talking-faces / preprocess)"
    help = "Train the lip-sync expert (SyncNet-style) on a talking-face data set, on the same loop as VQA."

    def load_config(self, preset: str | None, overrides: list[str]) -> SyncRunConfig:
        return load_sync_config(preset or self.default_preset, overrides)

    def default_run_dir(self, cfg: SyncRunConfig) -> Path:
        return Path("runs") / f"sync-{datetime.now():%Y%m%d-%H%M%S}"

    def train(self, cfg: SyncRunConfig | None, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
        if cfg is None:  # --resume with the saved config
            from mumo.runs import Run

            cfg = Run(out).config(SyncRunConfig)
        from mumo.tasks.sync.task import train_sync  # the loop and accelerate only when training

        return train_sync(cfg, out, resume=resume, progress=progress)

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        lines = [
            f"best val: BCE {summary['best_val_eval_loss']:.4f}, accuracy {summary['best_val_accuracy']:.4f} "
            f"(epoch {summary['best_epoch']}); {summary['train_seconds']:.0f}s training"
        ]
        if "test_eval_loss" in summary:
            lines.append(f"test: BCE {summary['test_eval_loss']:.4f}, accuracy {summary['test_accuracy']:.4f}")
        return lines

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        from mumo.tasks.sync.task import load_sync_expert

        return load_sync_expert(run, which, device)

    def evaluation_options(self, **options: Any) -> Any:
        raise CheckpointError(_NOT_EVALUATED)

    def evaluate(self, run: str | Path, options: Any) -> Any:
        raise CheckpointError(_NOT_EVALUATED)

    def sync_video(self, run: str | Path, video: Path, audio: Path | None, **options: Any) -> dict[str, Any]:
        from mumo.tasks.sync.task import sync_video

        return sync_video(run, video, audio, **options)
