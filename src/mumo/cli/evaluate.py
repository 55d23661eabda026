"""``mumo evaluate`` and ``mumo predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def evaluate_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    split: Annotated[str, typer.Option(help="val or test")] = "test",
    mc_samples: Annotated[
        int | None, typer.Option(help="T MC-dropout passes; adds calibration, misclassification, OOD figures")
    ] = None,
    mc_scope: Annotated[str, typer.Option(help="dropout modules that sample: all, or head (answer head only)")] = "all",
    ood: Annotated[str | None, typer.Option(help="OOD set: sort-of-clevr, shapes-ood, noise, easy-vqa")] = None,
    pixel_noise: Annotated[
        float | None,
        typer.Option(help="evaluate under a near shift: N(0, STD²) noise on the [0, 1] pixels of every image"),
    ] = None,
    feature_noise: Annotated[
        float | None,
        typer.Option(help="evaluate under a near shift: N(0, STD²) noise on the image features (MCAN study protocol)"),
    ] = None,
    corruption: Annotated[
        str | None,
        typer.Option(
            help="evaluate under an ImageNet-C corruption of every image: gaussian_noise, shot_noise, impulse_noise, "
            "gaussian_blur, brightness, contrast, jpeg_compression, pixelate"
        ),
    ] = None,
    severity: Annotated[int | None, typer.Option(help="the --corruption's severity, 1-5 (default 3)")] = None,
    abstain: Annotated[
        float | None,
        typer.Option(help="also report coverage, risk and PAvPU when abstaining above this predictive entropy"),
    ] = None,
    density_images: Annotated[
        int,
        typer.Option(
            help="fit the feature-density OOD score (class Gaussians over the fused features) on this many "
            "training images; 0 = off"
        ),
    ] = 2000,
    question_bank: Annotated[
        int,
        typer.Option(
            help="with --mc-samples or --ensemble: ask this many training questions about every image and score "
            "the image by their mean mutual information (image_mutual_information); 0 = off"
        ),
    ] = 8,
    temperature: Annotated[
        str,
        typer.Option(
            help="divide the answer logits by T: auto (the run's temperature.json from fit-temperature, else 1), "
            "none (1), or a number"
        ),
    ] = "auto",
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(
            help="another run of RUN's recipe (trained with train.member=k) answering with RUN as a deep "
            "ensemble; repeat for each member"
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    results_json: Annotated[
        Path | None,
        typer.Option(help='vqa-v2 runs: write the official results file [{"question_id", "answer"}] (argmax)'),
    ] = None,
) -> None:
    """Accuracy of a trained run, overall and per question type; with --mc-samples, --ood or --ensemble also
    calibration (ECE, NLL, Brier), misclassification and OOD detection, and plots in RUN/plots/.
    With --ensemble the members' mean answer is scored and their disagreement is the epistemic uncertainty.
    With --pixel-noise, --feature-noise or --corruption every figure is measured under that shift (plots in
    RUN/plots/<shift>/). With --results-json (vqa-v2 runs only) also the official VQA results file of the
    evaluated split."""
    import contextlib
    import math

    from mumo.config import config_from_yaml
    from mumo.data.corruptions import check_corruption
    from mumo.data.ood import OOD_SETS, corrupted_split, gaussian_noise_split, ood_split
    from mumo.errors import ConfigError
    from mumo.tasks.vqa import evaluate_split, load_data, load_model
    from mumo.tasks.vqa_ensemble import ensemble_accuracy, load_ensemble
    from mumo.tasks.vqa_uncertainty import evaluate_uncertainty, image_feature_noise, split_probs
    from mumo.train.checkpoint import CONFIG_FILE
    from mumo.uncertainty.mc_dropout import check_num_samples, dropout_modules

    if split not in ("val", "test"):
        raise ConfigError(f"--split must be 'val' or 'test', not {split!r}")
    if density_images < 0:
        raise ConfigError(f"--density-images must be >= 0, not {density_images}")
    if question_bank < 0:
        raise ConfigError(f"--question-bank must be >= 0, not {question_bank}")
    for flag, std in (("--pixel-noise", pixel_noise), ("--feature-noise", feature_noise)):
        if std is not None and not (math.isfinite(std) and std > 0):
            raise ConfigError(f"{flag} must be a standard deviation > 0, not {std}")
    if severity is not None and corruption is None:
        raise ConfigError("--severity needs --corruption")
    if corruption is not None:
        severity = 3 if severity is None else severity
        check_corruption(corruption, severity)
        if pixel_noise is not None:
            raise ConfigError("--pixel-noise and --corruption both change the pixels: choose one")
    if mc_samples is not None:
        check_num_samples(mc_samples)
    runs = [run, *(ensemble or [])]
    models = load_ensemble(runs, device=device) if len(runs) > 1 else [load_model(run, device=device)]
    model = models if len(models) > 1 else models[0]
    cfg = config_from_yaml(run / CONFIG_FILE)
    t = _temperature(temperature, run)
    if ood is not None and ood not in OOD_SETS:
        raise ConfigError(f"unknown OOD set {ood!r}; choose one of: {', '.join(OOD_SETS)}")
    if mc_samples is not None and not all(dropout_modules(m, mc_scope) for m in models):
        raise ConfigError("this model has no dropout modules: MC dropout has nothing to sample")
    if results_json is not None and cfg.data.name != "vqa-v2":
        raise ConfigError(f"--results-json needs a vqa-v2 run; this run used {cfg.data.name!r}")
    data = load_data(cfg)
    target = getattr(data, split)
    shift = {k: v for k, v in (("pixel_noise", pixel_noise), ("feature_noise", feature_noise)) if v is not None}
    if corruption is not None:
        shift["corruption"] = {"name": corruption, "severity": severity}
    plots = run / "plots"
    if shift:  # the shifted figures' plots go beside, not over, the clean ones
        plots = plots / "-".join(_shift_name(k, v) for k, v in shift.items())

    def shift_pixels(split, seed):  # the pixel shift asked for, if any
        if pixel_noise is not None:
            return gaussian_noise_split(split, pixel_noise, seed=seed)
        if corruption is not None:
            return corrupted_split(split, corruption, severity, seed=seed)
        return split

    target = shift_pixels(target, cfg.train.seed)
    uncertainty = mc_samples is not None or ood is not None or abstain is not None or len(models) > 1
    density = None
    if uncertainty and density_images > 0:  # fitted on clean training features, outside any feature noise
        from mumo.tasks.vqa_density import fit_split_density

        density = fit_split_density(
            models[0], data.train.first_images(density_images), images_per_batch=cfg.train.eval_images_per_batch,
            progress=True,
        )  # fmt: skip
    with contextlib.ExitStack() as stack:
        if feature_noise is not None:
            stack.enter_context(image_feature_noise(model, feature_noise, seed=cfg.train.seed))
        member_probs = None
        if len(models) > 1:  # the members' answers, dropout off: (M, N, C)
            member_probs = split_probs(
                model, target, mc_samples=None, images_per_batch=cfg.train.eval_images_per_batch, seed=cfg.train.seed,
                progress=True,
            )  # fmt: skip
            mean = member_probs.mean(0)  # (N, C)
            res = {"run": str(run), "ensemble": [str(r) for r in runs], "split": split}
            res.update(ensemble_accuracy(mean, target))
        else:
            res = evaluate_split(model, target, cfg.train.eval_images_per_batch)
            res = {"run": str(run), "split": split, **res}
        if results_json is not None:
            import torch

            from mumo.data.vqa_v2 import results_records, split_question_ids
            from mumo.tasks.vqa import predict_logits
            from mumo.train.checkpoint import atomic_write_text

            if len(models) > 1:  # the argmax of the members' mean probabilities, computed above
                indices, logits = torch.arange(target.num_questions), mean
            else:
                indices, logits = predict_logits(model, target, cfg.train.eval_images_per_batch)
            records = results_records(split_question_ids(cfg.data.root, target), indices, logits, data.answers)
            atomic_write_text(results_json, json.dumps(records))
            res["results_json"] = str(results_json)
        if shift:
            res["shift"] = shift
        if uncertainty:
            ood_data = ood_split(ood, target, seed=cfg.train.seed) if ood else None
            if ood_data is not None:  # the OOD images get the same pixel shift
                ood_data = shift_pixels(ood_data, cfg.train.seed + 1)
            bank = None
            if question_bank > 0 and (mc_samples is not None or len(models) > 1):
                from mumo.tasks.vqa_question_bank import question_bank as draw_bank

                bank = draw_bank(data.train, question_bank, seed=cfg.train.seed)
            unc = evaluate_uncertainty(
                model, target, mc_samples=mc_samples, mc_scope=mc_scope, ood=ood_data, density=density,
                question_bank=bank, plots_dir=plots, images_per_batch=cfg.train.eval_images_per_batch,
                seed=cfg.train.seed, abstain=(0.01, 0.1, 0.5) + ((abstain,) if abstain is not None else ()),
                progress=True, temperature=t,
                # the same passes as the ensemble's accuracy above: reused, not run twice (nor under other noise draws)
                probs=member_probs if mc_samples is None and t == 1.0 else None,
            )  # fmt: skip
            res.update({k: v for k, v in unc.items() if k != "accuracy"})
            res["accuracy_mean_prediction"] = unc["accuracy"]
    _print_evaluation(res, split, json_out=json_out, results_json=results_json)


def _print_evaluation(res: dict, split: str, *, json_out: bool, results_json: Path | None) -> None:
    if json_out:
        typer.echo(strict_json(res))
        return
    who = f" (deep ensemble of {len(res['ensemble'])} runs)" if "ensemble" in res else ""
    under = "".join(f", under {_shift_name(k, v, human=True)}" for k, v in res.get("shift", {}).items())
    typer.echo(f"{split} accuracy {res['accuracy']:.4f} on {res['num_questions']} questions{who}{under}")
    for k, v in res["accuracy_by_type"].items():
        typer.echo(f"  {k:8s} {v:.4f}")
    keys = ["ece", "ace", "mce", "nll", "brier", "auroc_misclassification", "aurc", "risk_at_80_coverage",
            "coverage_at_5_risk"]  # fmt: skip
    for key in [*keys, "auroc_ood", "auroc_ood_per_image", "fpr95_ood"]:
        if key in res:
            ci = res.get(f"{key}_ci95")
            interval = f"  (95 % CI {ci[0]:.4f}-{ci[1]:.4f})" if ci and ci[0] == ci[0] else ""  # nan: undefined
            typer.echo(f"{key:24s} {res[key]:.4f}{interval}")
    for sel in res.get("selective", []):
        typer.echo(
            f"abstain above {sel['threshold']:g} nats: answers {sel['coverage']:.1%}, error rate among them "
            f"{sel['risk']:.4f}, PAvPU {sel['pavpu']:.4f}"
        )
    if "image_mutual_information_percentiles" in res:
        pct = res["image_mutual_information_percentiles"]
        typer.echo(
            "image mutual information of these images: " + ", ".join(f"{k} {v:.3g}" for k, v in pct.items()) + " nats"
        )
    for score in ("image_mutual_information", "feature_density"):
        if score in res.get("auroc_ood_by_score", {}):
            typer.echo(f"{'auroc_ood_' + score:24s} {res['auroc_ood_by_score'][score]:.4f}")
    for path in res.get("plots", []):
        typer.echo(f"wrote {path}")
    if results_json is not None:
        typer.echo(f"wrote {results_json}")


def _shift_name(key: str, value: float | dict, human: bool = False) -> str:
    """A shift as a folder name (``pixel-noise-0.5``, ``corruption-contrast-3``) or in words."""
    if key == "corruption":
        name = f"{value['name'].replace('_', ' ')} severity {value['severity']}"
        return name if human else f"corruption-{value['name']}-{value['severity']}"
    return f"{key.replace('_', ' ')} std {value:g}" if human else f"{key.replace('_', '-')}-{value:g}"


def _temperature(option: str, run: Path) -> float:
    """--temperature: auto (the run's fitted T, else 1), none (1) or a positive number."""
    from mumo.errors import ConfigError
    from mumo.tasks.vqa_temperature import load_run_temperature

    if option == "auto":
        return load_run_temperature(run) or 1.0
    if option == "none":
        return 1.0
    try:
        value = float(option)
    except ValueError:
        raise ConfigError(f"--temperature must be auto, none or a positive number, not {option!r}") from None
    if not value > 0:
        raise ConfigError(f"--temperature must be > 0, not {option}")
    return value


@friendly_errors
def predict_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    image: Annotated[Path, typer.Option(help="image file")],
    question: Annotated[str, typer.Option(help="question text")],
    top_k: Annotated[int, typer.Option(help="how many answers to show")] = 3,
    mc_samples: Annotated[int | None, typer.Option(help="T MC-dropout passes (epistemic uncertainty)")] = None,
    abstain: Annotated[float | None, typer.Option(help='answer "don\'t know" above this uncertainty (nats)')] = None,
    abstain_on: Annotated[str, typer.Option(help="score compared with --abstain")] = "predictive_entropy",
    mc_scope: Annotated[str, typer.Option(help="dropout modules that sample: all, or head (answer head only)")] = "all",
    image_uncertainty: Annotated[
        bool,
        typer.Option(
            "--image-uncertainty",
            help="with --mc-samples: also ask training questions about the image; their mean mutual information "
            "says whether the model knows the image at all",
        ),
    ] = False,
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(help="another run of RUN's recipe answering with it as a deep ensemble; repeat for each member"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Answer a question about an image, with its uncertainty; optionally abstain."""
    from mumo.data.images import load_image
    from mumo.data.text import check_question
    from mumo.serve.predict import load
    from mumo.uncertainty.mc_dropout import check_num_samples

    check_question(question)  # fail fast, before loading the model
    load_image(image)
    if mc_samples is not None:
        check_num_samples(mc_samples)
    pred = load([run, *ensemble] if ensemble else run, device=device).predict(
        image, question, top_k=top_k, mc_samples=mc_samples, mc_scope=mc_scope, abstain=abstain,
        abstain_on=abstain_on, image_uncertainty=image_uncertainty,
    )  # fmt: skip
    if json_out:
        typer.echo(strict_json(pred.to_dict()))
        return
    if pred.abstained:
        typer.echo(f"don't know ({pred.abstain_reason}); best guess: {pred.best_guess}")
    for a in pred.top_k:
        typer.echo(f"{a.probability:7.2%}  {a.answer}")
    u = pred.uncertainty
    if u is not None:
        typer.echo(
            f"uncertainty (nats): total {u.total:.4f} = aleatoric {u.aleatoric:.4f} + epistemic {u.epistemic:.4f}"
            f" [{'T=' + str(u.mc_samples) if u.mc_samples else 'deterministic'}"
            f"{f', {u.ensemble_members} ensemble members' if u.ensemble_members > 1 else ''}]"
        )
        if u.feature_density is not None:
            typer.echo(
                f"feature density: {u.feature_density:.1f} nats (-log density), above "
                f"{u.feature_density_quantile:.1%} of validation questions"
            )
        if u.image_epistemic is not None:
            typer.echo(
                f"image epistemic uncertainty: {u.image_epistemic:.4f} nats (mean mutual information over "
                f"{u.question_bank_size} training questions about this image)"
            )


@friendly_errors
def fit_density_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    images: Annotated[int, typer.Option(help="training images to fit on (their questions' features)")] = 2000,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fit the feature density (class Gaussians over the fused features, DDU) of a trained run on its
    training questions and save it as RUN/feature_density.safetensors; `mumo predict` then reports it
    and can abstain on it (--abstain-on feature_density)."""
    from mumo.errors import ConfigError
    from mumo.tasks.vqa_density import DENSITY_FILE, fit_density

    if images < 1:
        raise ConfigError(f"--images must be >= 1, not {images}")
    density = fit_density(run, images=images, device=device)
    quantiles = {f"p{q}": density.percentile(q) for q in (50, 95, 99)}
    res = {"path": str(run / DENSITY_FILE), "fit_images": density.fit_images, "fit_questions": density.fit_questions,
           "classes": int(density.gaussians.classes.numel()), "jitter": density.gaussians.jitter,
           "validation_quantiles": quantiles}  # fmt: skip
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo(
        f"fitted on {res['fit_questions']} questions of {res['fit_images']} training images "
        f"({res['classes']} answer classes)"
    )
    typer.echo("validation -log density: " + ", ".join(f"{k} {v:.1f}" for k, v in quantiles.items()))
    typer.echo(f"wrote {res['path']}  (abstain above the p99, say: --abstain {quantiles['p99']:.1f} "
               "--abstain-on feature_density)")  # fmt: skip


@friendly_errors
def fit_temperature_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fit temperature scaling (one T dividing the answer logits, minimising the validation NLL) and save
    it as RUN/temperature.json; `mumo evaluate` and `mumo predict` then use it (--temperature none: off)."""
    from mumo.tasks.vqa_temperature import TEMPERATURE_FILE, fit_run_temperature

    res = {"path": str(run / TEMPERATURE_FILE), **fit_run_temperature(run, device=device)}
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo(
        f"temperature {res['temperature']:.4f} fitted on {res['fit_questions']} validation questions: "
        f"NLL {res['val_nll_before']:.4f} -> {res['val_nll_after']:.4f}"
    )
    typer.echo(f"wrote {res['path']}")
