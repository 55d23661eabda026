"""The lip-sync generator task as the registry sees it (:class:`mumo.tasks.Task`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from torch import nn

from mumo.tasks.lipsync.config import DEFAULT_PRESET, LipSyncRunConfig, load_lipsync_config


class LipSyncTask:
    """The Wav2Lip-style generator: redraws the mouth of each face from the speech (four variants)."""

    name = "lipsync"
    schema = LipSyncRunConfig
    default_preset = DEFAULT_PRESET
    data_key = "data.root"
    data_help = "talking-face data set directory (mumo data talking-faces / preprocess)"
    help = (
        "Train the Wav2Lip-style lip-sync generator on a talking-face data set (objective.variant: l1, lipgan, "
        "expert, expert+gan; the expert variants need objective.expert=SYNC_RUN)."
    )

    def load_config(self, preset: str | None, overrides: list[str]) -> LipSyncRunConfig:
        return load_lipsync_config(preset or self.default_preset, overrides)

    def default_run_dir(self, cfg: LipSyncRunConfig) -> Path:
        return Path("runs") / f"lipsync-{datetime.now():%Y%m%d-%H%M%S}"

    def train(self, cfg: LipSyncRunConfig | None, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
        if cfg is None:  # --resume with the saved config
            from mumo.runs import Run

            cfg = Run(out).config(LipSyncRunConfig)
        from mumo.tasks.lipsync.train import train_lipsync  # the loop and accelerate only when training

        return train_lipsync(cfg, out, resume=resume, progress=progress)

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        line = f"best val ({summary['variant']}): L1 {summary['best_val_l1']:.4f}"
        if "best_val_sync_loss" in summary:
            line += f", sync loss {summary['best_val_sync_loss']:.4f}"
        line += f" (epoch {summary['best_epoch']})"
        if "sync_switch_epoch" in summary:
            switch, weight = summary["sync_switch_epoch"], summary["sync_weight"]
            if switch:
                line += f"; sync weight {weight:g} from epoch {switch + 1}"
            else:
                line += f"; sync weight {weight:g} from the start" if weight else "; sync weight still 0"
        return [line + f"; {summary['train_seconds']:.0f}s training"]

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        from mumo.tasks.lipsync.train import load_lipsync_model

        return load_lipsync_model(run, which, device)

    def evaluation_options(self, **options: Any) -> Any:
        from mumo.tasks.lipsync.evaluate import evaluation_options

        return evaluation_options(**options)

    def evaluate(self, run: str | Path, options: Any) -> Any:
        from mumo.tasks.lipsync.evaluate import evaluate_lipsync

        return evaluate_lipsync(run, options)

    def dub_video(self, run: str | Path, face: Path, out: Path, **options: Any) -> dict[str, Any]:
        """Make ``face`` (a video or a still image) speak ``audio`` or ``text`` into the MP4 ``out``
        (:func:`mumo.tasks.lipsync.dub.dub`)."""
        from mumo.tasks.lipsync.dub import dub

        return dub(run, face, out, **options)
