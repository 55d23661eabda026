"""Question generation as the registry sees it (:class:`mumo.tasks.Task`, plus writing questions about an image)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from torch import nn

from mumo.tasks.vqg.config import DEFAULT_PRESET, VQGRunConfig, load_vqg_config


def _list_overrides(overrides: list[str]) -> list[str]:
    """``model.cues=image,caption`` (the issue's and the CLI's spelling) as the list OmegaConf reads."""
    out = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key.strip() == "model.cues" and not value.strip().startswith("["):
            value = "[" + ",".join(v.strip() for v in value.split(",") if v.strip()) + "]"
            item = f"{key}={value}"
        out.append(item)
    return out


class VQGTask:
    """Visual question generation with MC-BMN: questions about an image, from the image and its cues."""

    name = "vqg"
    schema = VQGRunConfig
    default_preset = DEFAULT_PRESET
    data_key = "data.name"
    data_help = "scenes (mumo scenes, generated and cached on first use) or vqg-coco (with data.root=DIR)"
    help = "Train MC-BMN, a Bayesian multi-cue question generator (image, place, caption, tags)."

    def load_config(self, preset: str | None, overrides: list[str]) -> VQGRunConfig:
        return load_vqg_config(preset or self.default_preset, _list_overrides(overrides))

    def default_run_dir(self, cfg: VQGRunConfig) -> Path:
        return Path("runs") / f"vqg-{datetime.now():%Y%m%d-%H%M%S}"

    def train(self, cfg: VQGRunConfig | None, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
        if cfg is None:  # --resume with the saved config
            from mumo.runs import Run

            cfg = Run(out).config(VQGRunConfig)
        from mumo.tasks.vqg.train import train_vqg  # the loop and accelerate only when training

        return train_vqg(cfg, out, resume=resume, progress=progress)

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        line = (
            f"best val: log-likelihood {summary.get('best_val_log_likelihood', float('nan')):.4f} per word, word "
            f"accuracy {summary.get('best_val_word_accuracy', float('nan')):.4f} (epoch {summary['best_epoch']})"
        )
        if "best_val_place_accuracy" in summary:
            line += f", place head {summary['best_val_place_accuracy']:.3f}"
        return [line + f"; {summary['train_seconds']:.0f}s training"]

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        from mumo.tasks.vqg.train import load_vqg_model

        return load_vqg_model(run, which, device)

    def evaluation_options(self, **options: Any) -> Any:
        from mumo.tasks.vqg.evaluate import evaluation_options

        return evaluation_options(**options)

    def evaluate(self, run: str | Path, options: Any) -> Any:
        from mumo.tasks.vqg.evaluate import evaluate_vqg

        return evaluate_vqg(run, options)

    def generate_questions(self, run: str | Path, image: Path, **options: Any) -> dict[str, Any]:
        from mumo.tasks.vqg.generate import Decoding, check_samples
        from mumo.tasks.vqg.predictor import VQGPredictor

        check_samples(options.get("samples", 5))  # bad options fail before the model loads
        Decoding(options.get("method", "greedy"), options.get("temperature", 1.0), options.get("beam", 3))
        return VQGPredictor.from_run(run, device=options.pop("device", "auto")).generate(image, **options)
