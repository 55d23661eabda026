"""Evaluating a VQA run: :func:`evaluate_run` ``(run, options) -> EvaluationReport``.

One deterministic pass over the split gives the accuracy, the official results file and, when no MC
dropout is asked for, the probabilities every uncertainty figure is computed from; an ensemble's members
answer once and their passes serve the accuracy and the uncertainty alike. The CLI prints the report,
the benchmarks read its figures, and a report page can render the same object.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mumo.data.shift.corruptions import check_corruption
from mumo.data.shift.ood import OOD_SETS, corrupted_split, gaussian_noise_split, ood_split
from mumo.data.vqa.split import VQASplit
from mumo.errors import ConfigError
from mumo.metrics.vqa import soft_accuracy
from mumo.runs import Run
from mumo.tasks.vqa.accuracy import accuracy_report, predict_logits
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.data import load_data, scenes_shift_split
from mumo.tasks.vqa.density import fit_split_density
from mumo.tasks.vqa.ensemble import ensemble_accuracy, load_ensemble
from mumo.tasks.vqa.model import load_model
from mumo.tasks.vqa.predictive import image_feature_noise, members, split_probs
from mumo.tasks.vqa.question_bank import question_bank
from mumo.tasks.vqa.temperature import load_run_temperature
from mumo.tasks.vqa.uncertainty import evaluate_uncertainty
from mumo.train.checkpoint import atomic_write_text
from mumo.uncertainty.mc_dropout import check_num_samples, dropout_modules, num_sampled_dropout, resolve_scope

SPLITS = ("val", "test")
# OOD sets that are a split of the run's own data set: scenes-shift, mumo scenes' held-out colour-shape pairs and
# places (near OOD: its own images and questions, scored beside the in-distribution ones and reported on their own)
DATA_OOD_SETS = ("scenes-shift",)
ABSTAIN_THRESHOLDS = (0.01, 0.1, 0.5)  # predictive entropy (nats) the selective figures always report


@dataclass(frozen=True)
class EvaluateOptions:
    """What ``mumo evaluate`` measures on a VQA run; checked when built, before any model is loaded."""

    split: str = "test"  # val or test
    images: int | None = None  # evaluate on the split's first N images only (quick checks); None = all
    mc_samples: int | None = None  # T MC-dropout passes; adds calibration, misclassification and OOD figures
    mc_scope: str = "all"  # dropout modules that sample: all, or attflat (head: its deprecated alias)
    ood: str | None = None  # OOD set (mumo.data.shift.ood.OOD_SETS)
    pixel_noise: float | None = None  # near shift: N(0, std²) on the [0, 1] pixels of every image
    feature_noise: float | None = None  # near shift: N(0, std²) on the image features
    corruption: str | None = None  # ImageNet-C corruption of every image
    severity: int | None = None  # the corruption's severity, 1-5 (3 when a corruption is given without one)
    abstain: float | None = None  # also report selective answering above this predictive entropy
    density_images: int = 2000  # training images the feature density is fitted on; 0 = off
    question_bank: int = 8  # training questions asked about every image (image mutual information); 0 = off
    temperature: str | float = "auto"  # auto (the run's fitted T, else 1), none (1), or a number
    ensemble: Sequence[str | Path] = ()  # further runs answering with the run as a deep ensemble
    device: str = "auto"
    results_json: Path | None = None  # vqa-v2 runs: the official results file of the split
    progress: bool = True

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be 'val' or 'test', not {self.split!r}")
        if self.images is not None and self.images < 1:
            raise ConfigError(f"--images must be >= 1, not {self.images}")
        if self.density_images < 0:
            raise ConfigError(f"--density-images must be >= 0, not {self.density_images}")
        if self.question_bank < 0:
            raise ConfigError(f"--question-bank must be >= 0, not {self.question_bank}")
        for flag, std in (("--pixel-noise", self.pixel_noise), ("--feature-noise", self.feature_noise)):
            if std is not None and not (math.isfinite(std) and std > 0):
                raise ConfigError(f"{flag} must be a standard deviation > 0, not {std}")
        if self.severity is not None and self.corruption is None:
            raise ConfigError("--severity needs --corruption")
        if self.corruption is not None:
            if self.severity is None:
                object.__setattr__(self, "severity", 3)
            check_corruption(self.corruption, self.severity)
            if self.pixel_noise is not None:
                raise ConfigError("--pixel-noise and --corruption both change the pixels: choose one")
        if self.mc_samples is not None:
            check_num_samples(self.mc_samples)
        if self.ood is not None and self.ood not in (*OOD_SETS, *DATA_OOD_SETS):
            names = ", ".join((*OOD_SETS, *DATA_OOD_SETS))
            raise ConfigError(f"unknown OOD set {self.ood!r}; choose one of: {names}")
        _temperature_option(self.temperature)  # a bad value fails here, before any model is loaded
        object.__setattr__(self, "ensemble", tuple(Path(r) for r in self.ensemble))

    @property
    def shift(self) -> dict[str, Any]:
        """The shifts asked for, as the report names them: ``{"pixel_noise": 0.5}``, ``{"corruption": {...}}``."""
        shift: dict[str, Any] = {
            k: v for k, v in (("pixel_noise", self.pixel_noise), ("feature_noise", self.feature_noise)) if v is not None
        }
        if self.corruption is not None:
            shift["corruption"] = {"name": self.corruption, "severity": self.severity}
        return shift

    @property
    def uncertainty(self) -> bool:
        """Whether the uncertainty figures are asked for (MC dropout, an OOD set, abstaining or an ensemble)."""
        return self.mc_samples is not None or self.ood is not None or self.abstain is not None or bool(self.ensemble)


@dataclass
class EvaluationReport:
    """Every figure of one evaluation (``figures``: the keys of ``mumo evaluate --json``)."""

    figures: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.figures[key]

    def __contains__(self, key: str) -> bool:
        return key in self.figures

    def to_dict(self) -> dict[str, Any]:
        return dict(self.figures)

    def lines(self) -> list[str]:
        """The report as a terminal shows it."""
        res = self.figures
        who = f" (deep ensemble of {len(res['ensemble'])} runs)" if "ensemble" in res else ""
        under = "".join(f", under {shift_name(k, v, human=True)}" for k, v in res.get("shift", {}).items())
        out = [f"{res['split']} accuracy {res['accuracy']:.4f} on {res['num_questions']} questions{who}{under}"]
        out += [f"  {k:8s} {v:.4f}" for k, v in res["accuracy_by_type"].items()]
        if "ood_accuracy" in res:  # a data set's own held-out split (scenes-shift)
            shifted = res["ood_accuracy"]
            out.append(f"accuracy on the OOD split {shifted['accuracy']:.4f} on {shifted['num_questions']} questions")
            out += [f"  {k:8s} {v:.4f}" for k, v in shifted["accuracy_by_type"].items()]
        keys = ["ece", "ace", "mce", "nll", "brier", "auroc_misclassification", "aurc", "risk_at_80_coverage",
                "coverage_at_5_risk", "auroc_ood", "auroc_ood_per_image", "fpr95_ood"]  # fmt: skip
        for key in keys:
            if key in res:
                ci = res.get(f"{key}_ci95")
                interval = f"  (95 % CI {ci[0]:.4f}-{ci[1]:.4f})" if ci and ci[0] == ci[0] else ""  # nan: undefined
                out.append(f"{key:24s} {res[key]:.4f}{interval}")
        if "reliable_vqa" in res:  # predictive entropy, scored by VQA accuracy (Whitehead et al. 2022)
            rv = res["reliable_vqa"]
            out.append(
                f"{'augrc (VQA accuracy)':24s} {rv['augrc']:.4f}  C@1% {rv['coverage_at_1_risk']:.4f}  "
                f"C@5% {rv['coverage_at_5_risk']:.4f}"
            )
            phis = " / ".join(f"{rv[f'best_effective_reliability_{c}']:.4f}" for c in (1, 10, 100))
            out.append(f"{'best Φ_1 / Φ_10 / Φ_100':24s} {phis}  (threshold chosen on these answers: an upper bound)")
        for sel in res.get("selective", []):
            out.append(
                f"abstain above {sel['threshold']:g} nats: answers {sel['coverage']:.1%}, error rate among them "
                f"{sel['risk']:.4f}, PAvPU {sel['pavpu']:.4f}"
            )
        if "image_mutual_information_percentiles" in res:
            pct = res["image_mutual_information_percentiles"]
            out.append(
                "image mutual information of these images: "
                + ", ".join(f"{k} {v:.3g}" for k, v in pct.items())
                + " nats"
            )
        for score in ("image_mutual_information", "feature_density"):
            if score in res.get("auroc_ood_by_score", {}):
                out.append(f"{'auroc_ood_' + score:24s} {res['auroc_ood_by_score'][score]:.4f}")
        out += [f"wrote {path}" for path in res.get("plots", [])]
        if "results_json" in res:
            out.append(f"wrote {res['results_json']}")
        return out


def shift_name(key: str, value: float | dict, human: bool = False) -> str:
    """A shift as a folder name (``pixel-noise-0.5``, ``corruption-contrast-3``) or in words."""
    if key == "corruption":
        name = f"{value['name'].replace('_', ' ')} severity {value['severity']}"
        return name if human else f"corruption-{value['name']}-{value['severity']}"
    return f"{key.replace('_', ' ')} std {value:g}" if human else f"{key.replace('_', '-')}-{value:g}"


def _temperature_option(option: str | float) -> float | None:
    """--temperature as a number, or None for ``auto`` (the run's fitted T, else 1); ConfigError unless it is
    ``auto``, ``none`` or a number from 1e-3 to 1e3 (not nan, inf or 1e-300)."""
    if option == "auto":
        return None
    if option == "none":
        return 1.0
    low, high = 1e-3, 1e3  # a sane range: beyond it the answers are all but argmax or uniform
    try:
        value = float(option)
    except (TypeError, ValueError):
        raise ConfigError(
            f"--temperature must be auto, none or a number from {low:g} to {high:g}, not {option!r}"
        ) from None
    if not (math.isfinite(value) and low <= value <= high):  # nan fails both comparisons
        raise ConfigError(f"--temperature must be > 0, a number from {low:g} to {high:g}, not {option}")
    return value


def run_temperature(option: str | float, run: str | Path) -> float:
    """The temperature ``option`` names for ``run``: its fitted T for ``auto`` (1 when it has none)."""
    value = _temperature_option(option)
    return (load_run_temperature(run) or 1.0) if value is None else value


def first_images(split: VQASplit, images: int | None) -> VQASplit:
    """The split's first ``images`` images and their questions (the whole split for None)."""
    return split if images is None or images >= split.num_images else split.first_images(images)


def evaluate_run(run: str | Path, options: EvaluateOptions | None = None) -> EvaluationReport:
    """Accuracy of a trained VQA run, overall and per question type; with MC dropout, an OOD set, abstaining
    or an ensemble also calibration (ECE, NLL, Brier), misclassification and OOD detection, and plots in
    ``RUN/plots/`` (``RUN/plots/<shift>/`` under a shift). With an ensemble the members' mean answer is scored
    and their disagreement is the epistemic uncertainty.

    Raises:
        ConfigError: options this run cannot take (``results_json`` for a run that is not vqa-v2, MC dropout for
            a model without dropout).
        CheckpointError: ``run`` is not a trained VQA run.
    """
    opts = options or EvaluateOptions()
    run = Path(run)
    runs = [run, *opts.ensemble]
    model = load_ensemble(runs, device=opts.device) if len(runs) > 1 else load_model(run, device=opts.device)
    models = members(model)
    cfg = Run(run).config(RunConfig)
    t = run_temperature(opts.temperature, run)
    mc_scope = resolve_scope(models[0], opts.mc_scope)  # a deprecated alias (head) under its current name
    if opts.mc_samples is not None and not all(dropout_modules(m, mc_scope) for m in models):
        raise ConfigError("this model has no dropout modules: MC dropout has nothing to sample")
    if opts.results_json is not None and cfg.data.name != "vqa-v2":
        raise ConfigError(f"--results-json needs a vqa-v2 run; this run used {cfg.data.name!r}")
    if opts.ood == "scenes-shift" and cfg.data.name != "scenes":
        raise ConfigError(
            f"--ood scenes-shift is the held-out split of mumo scenes; this run trained on {cfg.data.name}"
        )
    data = load_data(cfg)
    seed, per_batch = cfg.train.seed, cfg.train.eval_batch_size
    shift = opts.shift

    def shift_pixels(split: VQASplit, seed: int) -> VQASplit:  # the pixel shift asked for, if any
        if opts.pixel_noise is not None:
            return gaussian_noise_split(split, opts.pixel_noise, seed=seed)
        if opts.corruption is not None:
            return corrupted_split(split, opts.corruption, opts.severity, seed=seed)
        return split

    target = shift_pixels(first_images(getattr(data, opts.split), opts.images), seed)
    plots = run / "plots"
    if shift:  # the shifted figures' plots go beside, not over, the clean ones
        plots = plots / "-".join(shift_name(k, v) for k, v in shift.items())
    density = None
    if opts.uncertainty and opts.density_images > 0:  # fitted on clean training features, outside any feature noise
        density = fit_split_density(
            models[0], data.train.first_images(opts.density_images), images_per_batch=per_batch,
            progress=opts.progress,
        )  # fmt: skip
    res: dict[str, Any] = {"run": str(run)}
    if len(models) > 1:
        res["ensemble"] = [str(r) for r in runs]
    res["split"] = opts.split
    with contextlib.ExitStack() as stack:
        if opts.feature_noise is not None:
            stack.enter_context(image_feature_noise(model, opts.feature_noise, seed=seed))
        # the one deterministic pass: (T, N, C) probabilities of the members (T = M), or one model's logits
        probs = None
        if len(models) > 1:
            probs = split_probs(
                model, target, mc_samples=None, images_per_batch=per_batch, seed=seed, progress=opts.progress
            )  # (M, N, C)
            answer_scores = probs.mean(0)  # (N, C)
            res.update(ensemble_accuracy(answer_scores, target))
        else:
            ids, logits = predict_logits(model, target, per_batch)
            answer_scores = torch.empty_like(logits).index_copy_(0, ids, logits)  # (N, C) in question order
            res.update(accuracy_report(soft_accuracy(answer_scores, target.targets), target))
        if opts.results_json is not None:
            from mumo.data.vqa.vqa_v2 import results_records, split_question_ids

            records = results_records(
                split_question_ids(cfg.data.root, target), torch.arange(target.num_questions), answer_scores,
                data.answers,
            )  # fmt: skip
            atomic_write_text(opts.results_json, json.dumps(records))
            res["results_json"] = str(opts.results_json)
        if shift:
            res["shift"] = shift
        if opts.uncertainty:
            ood_data = None
            if opts.ood == "scenes-shift":  # its own questions: how well the model answers them is reported too
                ood_data = shift_pixels(first_images(scenes_shift_split(cfg, data.vocab), opts.images), seed + 1)
                ids, logits = predict_logits(model, ood_data, per_batch) if len(models) == 1 else (None, None)
                if logits is not None:
                    shifted = torch.empty_like(logits).index_copy_(0, ids, logits)  # (N, C) in question order
                    res["ood_accuracy"] = accuracy_report(soft_accuracy(shifted, ood_data.targets), ood_data)
            elif opts.ood:
                ood_data = shift_pixels(ood_split(opts.ood, target, seed=seed), seed + 1)  # the same pixel shift
            bank = None
            if opts.question_bank > 0 and (opts.mc_samples is not None or len(models) > 1):
                bank = question_bank(data.train, opts.question_bank, seed=seed)
            unc = evaluate_uncertainty(
                model, target, mc_samples=opts.mc_samples, mc_scope=mc_scope, ood=ood_data, density=density,
                question_bank=bank, plots_dir=plots, images_per_batch=per_batch, seed=seed,
                abstain=ABSTAIN_THRESHOLDS + ((opts.abstain,) if opts.abstain is not None else ()),
                progress=opts.progress, temperature=t,
                # the ensemble's passes above, reused when they are what these figures need
                probs=probs if opts.mc_samples is None and t == 1.0 else None,
            )  # fmt: skip
            res.update({k: v for k, v in unc.items() if k != "accuracy"})
            # how many nn.Dropout modules sampled masks per model (0 without MC dropout)
            res["mc_dropout_modules"] = num_sampled_dropout(models[0], mc_scope) if opts.mc_samples else 0
            res["accuracy_mean_prediction"] = unc["accuracy"]
    return EvaluationReport(res)
