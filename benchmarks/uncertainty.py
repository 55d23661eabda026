"""Benchmark: shift and OOD on shipped data — deterministic vs MC dropout vs aleatoric head vs both (issue #4).

Models (trained once, cached in benchmarks/runs/): the default easy-VQA MCAN (`mcan-cpu`), the same
with a Kendall & Gal aleatoric head (`model.aleatoric=kendall-gal`), and both of these trained with Gaussian
pixel-noise augmentation (`objective.augment_pixel_noise=0.2`: every training image gets noise of a std drawn
from [0, 0.2], milder than every shifted condition but ImageNet-C severities 1-3). Methods:

- deterministic: the default model, dropout off, softmax;
- mc-dropout: the default model, T = 20 MC-dropout passes through every dropout module;
- mc-dropout-head: the same with scope attflat (only the dropout inside AttFlat's scoring MLPs samples: the fast
  scope, formerly called head; its mutual information is not comparable with mc-dropout's);
- aleatoric: the aleatoric model, dropout off, probabilities under its learned logit noise;
- aleatoric+mc: the aleatoric model with T = 20 passes;
- temperature: the default model, dropout off, logits divided by one temperature fitted on its validation
  split (Guo et al. 2017, the post-hoc baseline; `mumo fit-temperature`);
- deep-ensemble: the default model and 4 more members of its recipe (`train.member=1..4`: the same data
  split, other initial weights, batch order and dropout masks; Lakshminarayanan et al. 2017), dropout off:
  5 samples, the mutual information is the members' disagreement;
- deep-ensemble+mc: the same 5 members with T = 4 MC-dropout passes each (20 samples, MC dropout's budget);
- noise-aug, noise-aug+mc: the noise-augmented model, dropout off and with T = 20 passes;
- noise-aug-aleatoric, noise-aug-aleatoric+mc: the noise-augmented aleatoric model, the same two ways: the
  aleatoric head can only learn input noise from training images that have some;
- softmax-ce, softmax-ce+mc: the default recipe trained with softmax cross-entropy (`objective.loss=softmax`),
  the loss the reported softmax is read with, instead of MCAN's per-answer BCE; dropout off and T = 20 passes;
- noise-aug0.3+mc, noise-aug0.3-ensemble: the recipe trained with stronger noise (`objective.augment_pixel_noise=0.3`,
  the level `benchmarks/noise_augmentation.py` found σ 0.5 needs) with T = 20 passes, and two such runs
  (`train.member=0, 1`) as a deep ensemble, dropout off.

Conditions, on the first 500 easy-VQA test images (about 4,800 questions):
clean; near shift by Gaussian pixel noise (std 0.3 and 0.5 on [0, 1] pixels) and by N(0, 1) noise on
the image features fed to the co-attention (the 2021 MCAN study's protocol; added to the grid CNN's
output, before the per-question projection); far OOD: the same
questions about Sort-of-CLEVR scenes (another data set: six small objects), `shapes-ood` images
(unseen shapes and colours on dark or striped backgrounds) and uniform noise images. OOD AUROC: OOD
positive, against the clean images; scored with the mutual information for MC methods and the
predictive entropy otherwise (every score is saved); per question and per image (the score averaged
over each image's questions).

The other direction (the issue's "and vice versa"): the mask-supervised Sort-of-CLEVR model
(`benchmarks/sort_of_clevr.py`, 99.3 % test accuracy), deterministic and T = 20 MC dropout, on its 200
test scenes (4,000 questions) and the same questions about easy-VQA test images, shapes-ood and
noise images (resized to 75 px).

Misclassification AUROCs come with a 95 % percentile-bootstrap interval (1,000 resamples of the test
images, each image's questions resampled together).

Every row also scores `feature_density` (the same in the deterministic and the MC rows: it needs no
sampling): the negative log density of the model's fused features under class-conditional Gaussians
fitted on the first 2,000 training images (DDU; `mumo.uncertainty.density`), as an OOD score and as a
misclassification score.

MC and ensemble rows also score `image_mutual_information` against OOD: the mutual information of the answers to a
bank of 8 training questions (drawn once per model, seed 0) about each image, averaged over the bank
(`mumo.tasks.vqa.question_bank`). It is an image-level MC-dropout score, carried by every question about
the image.

Severity sweep: the deterministic model, MC dropout, the deep ensemble and the noise-augmented models under
pixel noise at ImageNet-C's five Gaussian-noise severities (std 0.08, 0.12, 0.18, 0.26, 0.38; Hendrycks & Dietterich
2019): accuracy, ECE, NLL and misclassification AUROC per severity, plotted in
`benchmarks/results/uncertainty_severity.png`. It shows how far the misclassification target holds as the
shift grows.

Targets: MC dropout lowers ECE and NLL against the deterministic model under the noise shift; far-OOD
AUROC >= 0.90 with mutual information; misclassification AUROC >= 0.85.

    python benchmarks/uncertainty.py           # writes benchmarks/results/uncertainty.{json,md}
    python benchmarks/uncertainty.py --reuse-sort-of-clevr   # keep that model's rows from the last results

`--reuse-sort-of-clevr` takes the Sort-of-CLEVR model's rows (`soc:*`) from the existing
`benchmarks/results/uncertainty.json` instead of training that model (about 35 minutes on 2 CPU cores when
`benchmarks/runs/` is empty); the rows keep the figures and the date of the run that measured them and are
marked `carried over` in the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import time

import torch

from _common import RESULTS, noise_augmented_run, trained_run

T = 20
N_IMAGES = 500
MEMBERS = 5  # deep-ensemble members: the default run and train.member=1..4
DENSITY_IMAGES = 2000  # training images the feature density is fitted on
BANK = 8  # training questions asked about every image for image_mutual_information
# ImageNet-C's Gaussian-noise std for severities 1-5 (Hendrycks & Dietterich 2019, on [0, 1] pixels)
SEVERITIES = (0.08, 0.12, 0.18, 0.26, 0.38)
SWEEP_METHODS = ("deterministic", "mc-dropout", "deep-ensemble", "noise-aug+mc", "noise-aug-aleatoric+mc",
                 "noise-aug0.3+mc", "noise-aug0.3-ensemble")  # fmt: skip
NOISE_AUG = 0.2  # objective.augment_pixel_noise of the noise-augmented model: at most ImageNet-C severity 3's std
NOISE_AUG_STRONG = 0.3  # and of the stronger noise-augmented runs
# the mask-supervised Sort-of-CLEVR model of benchmarks/sort_of_clevr.py (preset mcan-sort-of-clevr)
SORT_OF_CLEVR = ["data.name=sort-of-clevr", "data.image_size=75", "train.epochs=16", "train.warmup_epochs=1",
                 "train.decay_epochs=[13,15]", "model.cnn_skip=true", "model.grid_position=true", "model.layers=2",
                 "model.flat_glimpses=3", "model.answer_mlp=128", "objective.attention_loss=masks",
                 "objective.attention_weight=1.0"]  # fmt: skip


def main(reuse_sort_of_clevr: bool = False) -> None:
    from mumo.data.shift.ood import gaussian_noise_split, ood_split
    from mumo.data.vqa.split import VQASplit
    from mumo.runs import Run
    from mumo.tasks.vqa.accuracy import predict_logits
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.density import fit_split_density
    from mumo.tasks.vqa.ensemble import load_ensemble
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.predictive import image_feature_noise, members
    from mumo.tasks.vqa.question_bank import question_bank
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty
    from mumo.uncertainty.temperature import fit_temperature

    t_start = time.perf_counter()
    default_run = trained_run("easy-vqa-default", [])
    aleatoric_run = trained_run("easy-vqa-kendall-gal", ["model.aleatoric=kendall-gal"])
    noise_aug_run = noise_augmented_run(NOISE_AUG)
    noise_aug_aleatoric_run = trained_run(
        "easy-vqa-noise-aug-kendall-gal", [f"objective.augment_pixel_noise={NOISE_AUG}", "model.aleatoric=kendall-gal"]
    )
    member_runs = [default_run] + [trained_run(f"easy-vqa-member{k}", [f"train.member={k}"]) for k in range(1, MEMBERS)]
    data = load_data(Run(default_run).config(RunConfig))
    test = data.test.subset_images(torch.arange(N_IMAGES), "test[:500]")
    fit = data.train.first_images(DENSITY_IMAGES)
    models = {"default": load_model(default_run), "kendall-gal": load_model(aleatoric_run),
              "ensemble": load_ensemble(member_runs, device="cpu"), "noise-aug": load_model(noise_aug_run),
              "noise-aug-aleatoric": load_model(noise_aug_aleatoric_run),
              "noise-aug0.3": load_model(noise_augmented_run(NOISE_AUG_STRONG)),
              "noise-aug0.3-ensemble": load_ensemble([noise_augmented_run(NOISE_AUG_STRONG, m) for m in (0, 1)],
                                                     device="cpu"),
              # the default recipe trained with the loss its softmax is read with (benchmarks/loss_calibration.py)
              "softmax-ce": load_model(trained_run("easy-vqa-softmax-ce", ["objective.loss=softmax"]))}  # fmt: skip
    banks = {"easy-vqa": question_bank(data.train, BANK)}
    ids, val_logits = predict_logits(models["default"], data.val, 128)
    temperatures = {"temperature": fit_temperature(val_logits, data.val.targets[ids].argmax(-1))}
    print(f"temperature fitted on {len(ids)} validation questions: {temperatures['temperature']:.4f}", flush=True)
    methods = {
        "deterministic": ("default", None, "all"),
        "mc-dropout": ("default", T, "all"),
        "mc-dropout-head": ("default", T, "attflat"),  # the label keeps the scope's old name (results files)
        "aleatoric": ("kendall-gal", None, "all"),
        "aleatoric+mc": ("kendall-gal", T, "all"),
        "temperature": ("default", None, "all"),
        "deep-ensemble": ("ensemble", None, "all"),
        "deep-ensemble+mc": ("ensemble", T // MEMBERS, "all"),
        "noise-aug": ("noise-aug", None, "all"),
        "noise-aug+mc": ("noise-aug", T, "all"),
        "noise-aug-aleatoric": ("noise-aug-aleatoric", None, "all"),
        "noise-aug-aleatoric+mc": ("noise-aug-aleatoric", T, "all"),
        "noise-aug0.3+mc": ("noise-aug0.3", T, "all"),
        "noise-aug0.3-ensemble": ("noise-aug0.3-ensemble", None, "all"),
        "softmax-ce": ("softmax-ce", None, "all"),
        "softmax-ce+mc": ("softmax-ce", T, "all"),
        # the other direction: a Sort-of-CLEVR model shown easy-VQA (and other) images
        "soc:deterministic": ("soc", None, "all"),
        "soc:mc-dropout": ("soc", T, "all"),
    }
    conditions = {
        "clean": (test, None),
        "pixel-noise-0.3": (gaussian_noise_split(test, 0.3, seed=1), None),
        "pixel-noise-0.5": (gaussian_noise_split(test, 0.5, seed=2), None),
        "feature-noise-1.0": (test, 1.0),
    }
    ood_sets = {
        name: ood_split(name, test, seed=3 + i) for i, name in enumerate(("sort-of-clevr", "shapes-ood", "noise"))
    }
    soc_conditions: dict = {}
    soc_ood_sets: dict = {}

    def setup_sort_of_clevr() -> VQASplit:  # trained when first needed, so the easy-VQA rows come out first
        soc_run = trained_run("sort-of-clevr-masks", SORT_OF_CLEVR)
        soc = load_data(Run(soc_run).config(RunConfig))
        models["soc"] = load_model(soc_run)
        banks["sort-of-clevr"] = question_bank(soc.train, BANK)
        soc_conditions["clean"] = (soc.test, None)
        soc_ood_sets.update({
            name: ood_split(name, soc.test, seed=3 + i) for i, name in enumerate(("easy-vqa", "shapes-ood", "noise"))
        })  # fmt: skip
        return soc.train.first_images(DENSITY_IMAGES)

    table = []
    soc_fit = None
    if reuse_sort_of_clevr:
        old = json.loads((RESULTS / "uncertainty.json").read_text())
        when = old.get("date") or subprocess.run(  # results written before they carried a date: their commit's
            ["git", "log", "-1", "--format=%cs", "--", str(RESULTS / "uncertainty.json")],
            capture_output=True, text=True, check=False,
        ).stdout.strip() or "an earlier run"  # fmt: skip
        carried = [r | {"carried_over": r.get("carried_over", when)} for r in old["table"]
                   if r["method"].startswith("soc:")]  # fmt: skip
        if not carried:
            raise SystemExit("--reuse-sort-of-clevr: benchmarks/results/uncertainty.json holds no Sort-of-CLEVR rows")
        methods = {k: v for k, v in methods.items() if v[0] != "soc"}
        soc_ood_sets.update({r["condition"][4:]: None for r in carried if r["condition"].startswith("ood:")})
    for method, (model_name, mc, scope) in methods.items():
        is_soc = model_name == "soc"
        if is_soc and soc_fit is None:
            soc_fit = setup_sort_of_clevr()
        model = models[model_name]
        temp = temperatures.get(method, 1.0)
        first = members(model)[0]  # the ensembles' density is their first member's: the default model's
        density = fit_split_density(first, soc_fit if is_soc else fit)  # clean features, outside any noise
        for cond, (split, feat_std) in (soc_conditions if is_soc else conditions).items():
            t0 = time.perf_counter()
            with image_feature_noise(model, feat_std, seed=5) if feat_std else contextlib.nullcontext():
                res = evaluate_uncertainty(
                    model, split, mc_samples=mc, mc_scope=scope, density=density, seed=0, temperature=temp
                )
            row = {"method": method, "condition": cond, **{k: res[k] for k in (
                "accuracy", "ece", "nll", "brier", "auroc_misclassification", "aurc")}}  # fmt: skip
            row["auroc_misclassification_ci95"] = res["auroc_misclassification_ci95"]
            row["auroc_misclassification_by_score"] = res["auroc_misclassification_by_score"]
            row["auroc_misclassification_by_type"] = res["auroc_misclassification_by_type"]
            row["auroc_misclassification_density"] = res["auroc_misclassification_by_score"]["feature_density"]
            row["reliable_vqa"] = res["reliable_vqa"]  # C@1 %, C@5 %, AURC, AUGRC, best Φ_1/10/100 (VQA accuracy)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            table.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
        for name, ood in (soc_ood_sets if is_soc else ood_sets).items():
            t0 = time.perf_counter()
            in_split = soc_conditions["clean"][0] if is_soc else test
            bank = banks["sort-of-clevr" if is_soc else "easy-vqa"]
            res = evaluate_uncertainty(
                model, in_split, mc_samples=mc, mc_scope=scope, ood=ood, density=density, question_bank=bank, seed=0,
                temperature=temp,
            )  # fmt: skip
            row = {"method": method, "condition": f"ood:{name}", "auroc_ood": res["auroc_ood"],
                   "auroc_ood_per_image": res["auroc_ood_per_image"], "auroc_ood_by_type": res["auroc_ood_by_type"],
                   "fpr95_ood": res["fpr95_ood"], "aupr_ood": res["aupr_ood"], "ood_score": res["ood_score"],
                   "auroc_ood_by_score": res["auroc_ood_by_score"],
                   "auroc_ood_per_image_by_score": res["auroc_ood_per_image_by_score"],
                   "auroc_ood_density": res["auroc_ood_by_score"]["feature_density"],
                   "auroc_ood_density_per_image": res["auroc_ood_per_image_by_score"]["feature_density"],
                   "auroc_ood_image_mi": res["auroc_ood_by_score"].get("image_mutual_information"),
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            table.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)

    sweep = []
    for method in SWEEP_METHODS:
        model_name, mc, scope = methods[method]
        for level, std in enumerate(SEVERITIES, 1):
            t0 = time.perf_counter()
            split = gaussian_noise_split(test, std, seed=10 + level)
            res = evaluate_uncertainty(models[model_name], split, mc_samples=mc, mc_scope=scope, seed=0)
            row = {"method": method, "severity": level, "std": std, **{k: res[k] for k in (
                "accuracy", "ece", "nll", "auroc_misclassification")},
                "auroc_misclassification_ci95": res["auroc_misclassification_ci95"],
                "auroc_misclassification_by_type": res["auroc_misclassification_by_type"],
                "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            sweep.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)

    if reuse_sort_of_clevr:
        table += carried

    def get(method: str, cond: str, key: str) -> float:
        return next(r[key] for r in table if r["method"] == method and r["condition"] == cond)

    def far_ood(method: str, key: str) -> dict[str, bool]:
        out = {f"easy-vqa model, {n}": get(method, f"ood:{n}", key) >= 0.90 for n in ood_sets}
        return out | {f"sort-of-clevr model, {n}": get(f"soc:{method}", f"ood:{n}", key) >= 0.90 for n in soc_ood_sets}

    banks_used = {k: b.questions for k, b in banks.items()}
    shifts = ["pixel-noise-0.3", "pixel-noise-0.5", "feature-noise-1.0"]
    checks = {
        "mc_lowers_ece_under_shift": {c: get("mc-dropout", c, "ece") < get("deterministic", c, "ece") for c in shifts},
        "mc_lowers_nll_under_shift": {c: get("mc-dropout", c, "nll") < get("deterministic", c, "nll") for c in shifts},
        "ensemble_lowers_ece_under_shift": {
            c: get("deep-ensemble", c, "ece") < get("deterministic", c, "ece") for c in shifts
        },
        "ensemble_lowers_nll_under_shift": {
            c: get("deep-ensemble", c, "nll") < get("deterministic", c, "nll") for c in shifts
        },
        "far_ood_auroc_mi_ge_0.90": far_ood("mc-dropout", "auroc_ood"),
        "far_ood_auroc_mi_per_image_ge_0.90": far_ood("mc-dropout", "auroc_ood_per_image"),
        "far_ood_auroc_image_mi_question_bank_ge_0.90": far_ood("mc-dropout", "auroc_ood_image_mi"),
        "far_ood_auroc_feature_density_ge_0.90": far_ood("deterministic", "auroc_ood_density"),
        "misclassification_auroc_ge_0.85": {
            **{f"easy-vqa model, {c}": get("mc-dropout", c, "auroc_misclassification") >= 0.85 for c in shifts},
            "sort-of-clevr model, clean": get("soc:mc-dropout", "clean", "auroc_misclassification") >= 0.85,
        },
        "misclassification_auroc_ge_0.85_deep_ensemble": {
            f"easy-vqa model, {c}": get("deep-ensemble", c, "auroc_misclassification") >= 0.85 for c in shifts
        },
        # not on the clean images, where these models may make no error to detect (the AUROC is then undefined)
        "misclassification_auroc_ge_0.85_noise_aug": {
            f"{m}, {c}": get(m, c, "auroc_misclassification") >= 0.85
            for m in ("noise-aug+mc", "noise-aug-aleatoric+mc", "noise-aug0.3+mc", "noise-aug0.3-ensemble")
            for c in shifts
        },
        "noise_aug_mc_lowers_ece_nll_under_shift": {
            f"{m}, {c}": get(f"{m}+mc", c, "ece") < get(m, c, "ece") and get(f"{m}+mc", c, "nll") < get(m, c, "nll")
            for m in ("noise-aug", "noise-aug-aleatoric")
            for c in shifts
        },
        "misclassification_auroc_ge_0.85_by_pixel_noise_severity": {
            f"{r['method']}, severity {r['severity']} (std {r['std']})": _at_least(r["auroc_misclassification"], 0.85)
            for r in sweep
        },
    }
    result = {"date": time.strftime("%Y-%m-%d"), "T": T, "ensemble_members": MEMBERS, "test_images": N_IMAGES,
              "density_fit_images": DENSITY_IMAGES,
              "question_bank": banks_used,
              "temperature": temperatures["temperature"],
              "seconds": round(time.perf_counter() - t_start, 1), "table": table, "severity_sweep": sweep,
              "checks": checks}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uncertainty.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = _markdown(table, sweep, checks)
    (RESULTS / "uncertainty.md").write_text(markdown)
    _plot_sweep(sweep, RESULTS / "uncertainty_severity.png")
    print(markdown)


def _at_least(auroc: float, target: float) -> bool | str:
    """Whether an AUROC meets its target; a model that made no error has nothing to detect (NaN AUROC)."""
    return "no errors to detect" if math.isnan(auroc) else auroc >= target


def _plot_sweep(sweep: list[dict], path) -> None:
    """Accuracy, ECE and misclassification AUROC against the pixel-noise severity, one line per method."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6))
    FigureCanvasAgg(fig)
    panels = {"accuracy": "accuracy", "ece": "ECE (15 bins)", "auroc_misclassification": "misclassification AUROC"}
    for ax, (key, title) in zip(fig.subplots(1, 3), panels.items(), strict=True):
        for method in dict.fromkeys(r["method"] for r in sweep):
            rows = [r for r in sweep if r["method"] == method]
            ax.plot([r["std"] for r in rows], [r[key] for r in rows], marker="o", label=method)
        if key == "auroc_misclassification":
            ax.axhline(0.85, color="grey", linestyle="--", linewidth=1, label="target 0.85")
        ax.set_xlabel("pixel-noise std (ImageNet-C severities 1-5)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.suptitle(
        "easy-VQA models under Gaussian pixel noise (500 test images; noise-aug trained with std <= 0.2, "
        "noise-aug0.3 with std <= 0.3)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _markdown(table: list[dict], sweep: list[dict], checks: dict) -> str:
    lines = ["| method | condition | acc | ECE | NLL | Brier | misclf AUROC [95 % CI] | AURC | OOD AUROC | per image "
             "| FPR95 | image MI (question bank): OOD AUROC | density: misclf AUROC | OOD AUROC | per image |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def name(r: dict) -> str:
        return r["method"] + (f" (carried over from {r['carried_over']})" if r.get("carried_over") else "")

    def f(r: dict, k: str) -> str:
        v = r.get(k)
        return "" if v is None else f"{v:.4f}"

    def auroc(r: dict) -> str:  # the misclassification AUROC and its 95 % bootstrap interval over images
        ci = r.get("auroc_misclassification_ci95")
        return f(r, "auroc_misclassification") + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] == ci[0] else "")

    for r in table:
        lines.append(
            f"| {name(r)} | {r['condition']} | {f(r, 'accuracy')} | {f(r, 'ece')} | {f(r, 'nll')} | "
            f"{f(r, 'brier')} | {auroc(r)} | {f(r, 'aurc')} | {f(r, 'auroc_ood')} | "
            f"{f(r, 'auroc_ood_per_image')} | {f(r, 'fpr95_ood')} | {f(r, 'auroc_ood_image_mi')} | "
            f"{f(r, 'auroc_misclassification_density')} | "
            f"{f(r, 'auroc_ood_density')} | "
            f"{f(r, 'auroc_ood_density_per_image')} |"
        )
    for model, is_soc in (("easy-VQA", False), ("Sort-of-CLEVR", True)):
        rows = [r for r in table if "auroc_ood_by_type" in r and r["method"].startswith("soc:") == is_soc]
        types = sorted({t for r in rows for t in r["auroc_ood_by_type"]})
        lines += ["", f"{model} model, OOD AUROC by question type (same score as above, per question):", "",
                  "| method | OOD set | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]  # fmt: skip
        for r in rows:
            cells = " | ".join(f"{r['auroc_ood_by_type'].get(t, float('nan')):.4f}" for t in types)
            lines.append(f"| {name(r)} | {r['condition'][4:]} | {cells} |")
    rows = [r for r in table if "auroc_misclassification_by_type" in r and r["condition"].startswith("pixel")]
    types = sorted({t for r in rows for t in r["auroc_misclassification_by_type"]})
    lines += ["", "Misclassification AUROC (predictive entropy) within each question type, under pixel noise (a "
              "pooled AUROC also ranks the types against each other):", "",
              "| method | condition | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]  # fmt: skip
    for r in rows:
        cells = " | ".join(f"{r['auroc_misclassification_by_type'].get(t, float('nan')):.4f}" for t in types)
        lines.append(f"| {r['method']} | {r['condition']} | {cells} |")
    lines += ["", "Pixel-noise severity sweep (ImageNet-C Gaussian-noise std per severity; misclassification AUROC "
              "with the predictive entropy):", "",
              "| method | severity | std | acc | ECE | NLL | misclf AUROC [95 % CI] |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sweep:
        lines.append(
            f"| {r['method']} | {r['severity']} | {r['std']} | {r['accuracy']:.4f} | {r['ece']:.4f} | {r['nll']:.4f} | "
            f"{auroc(r)} |"
        )
    lines += ["", "Checks:", ""] + [f"- {k}: {v}" for k, v in checks.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--reuse-sort-of-clevr", action="store_true",
        help="keep the Sort-of-CLEVR model's rows of benchmarks/results/uncertainty.json instead of training it",
    )  # fmt: skip
    main(parser.parse_args().reuse_sort_of_clevr)
