"""The lip-to-speech task as the registry sees it (:class:`mumo.tasks.Task`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from torch import nn

from mumo.tasks.lip2speech.config import DEFAULT_PRESET, Lip2SpeechRunConfig, load_lip2speech_config


class Lip2SpeechTask:
    """The Lip2Wav-style model: one speaker's silent face video becomes that speaker's speech."""

    name = "lip2speech"
    schema = Lip2SpeechRunConfig
    default_preset = DEFAULT_PRESET
    data_key = "data.root"
    data_help = "talking-face data set of one speaker (mumo data talking-faces --speakers 1, or preprocess)"
    help = "Train the Lip2Wav-style lip-to-speech model on one speaker's talking-face clips."

    def load_config(self, preset: str | None, overrides: list[str]) -> Lip2SpeechRunConfig:
        return load_lip2speech_config(preset or self.default_preset, overrides)

    def default_run_dir(self, cfg: Lip2SpeechRunConfig) -> Path:
        return Path("runs") / f"lip2speech-{datetime.now():%Y%m%d-%H%M%S}"

    def train(self, cfg: Lip2SpeechRunConfig | None, out: Path, *, resume: bool = False,
              progress: bool = True) -> dict:  # fmt: skip
        if cfg is None:  # --resume with the saved config
            from mumo.runs import Run

            cfg = Run(out).config(Lip2SpeechRunConfig)
        from mumo.tasks.lip2speech.train import train_lip2speech  # the loop and accelerate only when training

        return train_lip2speech(cfg, out, resume=resume, progress=progress)

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        line = f"best val ({summary['decoder']} decoder): mel L1 {summary['best_val_mel_l1']:.4f}"
        if summary.get("best_val_diagonality") is not None:
            line += f", attention diagonality {summary['best_val_diagonality']:.3f}"
        return [line + f" (epoch {summary['best_epoch']}); {summary['train_seconds']:.0f}s training"]

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        from mumo.tasks.lip2speech.train import load_lip2speech_model

        return load_lip2speech_model(run, which, device)

    def evaluation_options(self, **options: Any) -> Any:
        from mumo.tasks.lip2speech.evaluate import evaluation_options

        return evaluation_options(**options)

    def evaluate(self, run: str | Path, options: Any) -> Any:
        from mumo.tasks.lip2speech.evaluate import evaluate_lip2speech

        return evaluate_lip2speech(run, options)

    def speak_video(self, run: str | Path, video: Path, out: Path, **options: Any) -> dict[str, Any]:
        """Speak the face in ``video`` into the WAV ``out`` (:func:`mumo.tasks.lip2speech.apply.lip2speech`)."""
        from mumo.tasks.lip2speech.apply import lip2speech

        return lip2speech(run, video, out, **options)
