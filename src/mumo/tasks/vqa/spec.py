"""The VQA task as the registry sees it (:class:`mumo.tasks.Task`, plus explaining, probing and fitting a
density or a temperature to a run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from mumo.errors import MumoError
from mumo.tasks.vqa.config import RunConfig, load_vqa_config
from mumo.tasks.vqa.model import load_model


class VQATask:
    """Visual question answering (MCAN) on easy-VQA, Sort-of-CLEVR or VQA v2."""

    name = "vqa"
    schema = RunConfig
    default_preset = "mcan-cpu"
    data_key = "data.name"
    data_help = "data set: easy-vqa, sort-of-clevr, scenes or vqa-v2"
    help = "Train MCAN for VQA; with no options, the CPU preset on easy-VQA, ending with test accuracy."

    def load_config(self, preset: str | None, overrides: list[str]) -> RunConfig:
        return load_vqa_config(preset or self.default_preset, overrides)

    def default_run_dir(self, cfg: RunConfig) -> Path:
        from mumo.tasks.vqa.train import default_run_dir  # the loop and accelerate only when training

        return default_run_dir(cfg)

    def train(self, cfg: RunConfig | None, out: Path, *, resume: bool = False, progress: bool = True) -> dict:
        from mumo.tasks.vqa.train import train_vqa

        return train_vqa(cfg, out, resume=resume, progress=progress)

    def summary_lines(self, summary: dict[str, Any]) -> list[str]:
        lines = [
            f"best val accuracy {summary['best_val_accuracy']:.4f} (epoch {summary['best_epoch']})",
            f"training: {summary['train_seconds']:.0f}s, {summary['train_samples_per_second']:.0f} questions/s",
        ]
        if "test_accuracy" in summary:
            by_type = ", ".join(f"{k} {v:.4f}" for k, v in summary["test_accuracy_by_type"].items())
            lines.append(f"test accuracy {summary['test_accuracy']:.4f} ({by_type})")
        if "skipped" in summary.get("ood_check", {}):
            lines.append(f"no out-of-distribution check: {summary['ood_check']['skipped']}")
        elif "ood_check" in summary:
            ood = summary["ood_check"]
            lines.append(
                f"out-of-distribution check: refuses images farther than {ood['threshold']:.4f} from the nearest "
                f"{ood['k']} of {ood['bank_images']} training images (at most {ood['alpha']:.1%} of in-distribution "
                "images); feature density fitted"
            )
        return lines

    def load_model(self, run: str | Path, which: str = "best", device: str = "cpu") -> nn.Module:
        return load_model(Path(run), which, device)

    def evaluation_options(self, **options: Any) -> Any:
        from mumo.tasks.vqa.evaluate import EvaluateOptions

        return EvaluateOptions(**options)

    def evaluate(self, run: str | Path, options: Any) -> Any:
        from mumo.tasks.vqa.evaluate import evaluate_run

        return evaluate_run(run, options)

    # what VQA runs offer besides
    def explain_run(self, run: str | Path, **options: Any) -> dict[str, Any]:
        from mumo.tasks.vqa.explain import explain_run

        return explain_run(run, **options)

    def explain_example(self, run: str | Path, image: Path, question: str, method: str, **options: Any) -> dict:
        from mumo.tasks.vqa.explain import explain_example

        return explain_example(run, image, question, method, **options)

    def explanation_options(self, method: str, **options: Any) -> Any:
        """U-CAM's settings, checked with the ``method`` asked for (before any model is loaded)."""
        from mumo.tasks.vqa.explain import ExplainOptions, explain_methods

        opts = ExplainOptions(**options)
        explain_methods.get(method)  # ConfigError for an unknown name, listing the registered ones
        return opts

    def probe_run(self, run: str | Path, **options: Any) -> dict[str, Any]:
        from mumo.tasks.vqa.probe import probe_run

        return probe_run(run, **options)

    def fit_density(self, run: str | Path, *, images: int, device: str) -> dict[str, Any]:
        """Fit and save the run's feature density and its default OOD check (training fits both; this is for runs
        trained before it did); returns what was saved, the density's validation quantiles among it."""
        from mumo.runs import Run
        from mumo.tasks.vqa.data import load_data
        from mumo.tasks.vqa.ood import fit_run_checks

        if images < 1:
            raise MumoError(f"images must be >= 1, not {images}")
        cfg = Run(run).config(RunConfig)
        model = load_model(Path(run), "best", device)
        data = load_data(cfg)
        fitted = fit_run_checks(
            Path(run), model, data.train, data.val, density_images=images, images_per_batch=cfg.train.eval_batch_size
        )
        return {**fitted["feature_density"], "ood_check": fitted["ood_check"]}

    def fit_temperature(self, run: str | Path, *, device: str) -> dict[str, Any]:
        """Fit and save the run's temperature; returns what was saved."""
        from mumo.tasks.vqa.temperature import TEMPERATURE_FILE, fit_run_temperature

        return {"path": str(Path(run) / TEMPERATURE_FILE), **fit_run_temperature(run, device=device)}
