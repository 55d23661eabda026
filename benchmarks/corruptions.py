"""Benchmark: does error detection survive corruptions the model never saw? (issue #4)

`benchmarks/noise_augmentation.py` found that training with Gaussian pixel noise (`objective.augment_pixel_noise=S`)
lets MC dropout and small ensembles find their errors under strong Gaussian pixel noise. That is the noise the
models trained with, so here the same runs meet the other ImageNet-C corruptions (Hendrycks & Dietterich 2019;
`mumo.data.shift.corruptions`): shot and impulse noise, Gaussian blur, brightness, contrast, JPEG compression and
pixelation, at severities 3 and 5, with Gaussian noise itself as the seen reference.

Models (cached in benchmarks/runs/, shared with the other benchmarks): the default easy-VQA recipe (`mcan-cpu`)
trained with S = 0 (no noise), 0.2 and 0.3, two runs each (`train.member=0, 1`). Each level is measured with
MC dropout (T = 20, run 0) and as a deep ensemble of its two runs (dropout off), on the first 500 easy-VQA test
images (about 4,800 questions; corruption seed 0). Reported: accuracy, ECE, NLL and the misclassification
AUROC of the predictive entropy with its 95 % bootstrap interval over images (target >= 0.85; undefined where
a model makes no error).

    python benchmarks/corruptions.py    # writes benchmarks/results/corruptions.{json,md,png}, ~22 min on 2 cores
"""

from __future__ import annotations

import json
import math
import time

import torch

from _common import RESULTS, noise_augmented_run

T = 20
N_IMAGES = 500
LEVELS = (0.0, 0.2, 0.3)  # objective.augment_pixel_noise
MEMBERS = (0, 1)
SEVERITIES = (3, 5)
SEEN = "gaussian_noise"  # the corruption noise-augmented training draws from


def main() -> None:
    from mumo.data.shift.corruptions import CORRUPTIONS
    from mumo.data.shift.ood import corrupted_split
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.ensemble import DeepEnsemble
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    t_start = time.perf_counter()
    runs = {(level, member): noise_augmented_run(level, member) for level in LEVELS for member in MEMBERS}
    data = load_data(Run(runs[(0.0, 0)]).config(RunConfig))
    test = data.test.subset_images(torch.arange(N_IMAGES), f"test[:{N_IMAGES}]")
    models = {key: load_model(run) for key, run in runs.items()}
    evaluated = []  # (level, method, model(s), MC samples)
    for level in LEVELS:
        evaluated += [(level, "mc-dropout", models[(level, 0)], T)]
        evaluated += [(level, "ensemble", DeepEnsemble(models[(level, m)] for m in MEMBERS), None)]
    rows = []
    for corruption in CORRUPTIONS:
        for severity in SEVERITIES:
            split = corrupted_split(test, corruption, severity, seed=0)
            for level, method, model, mc in evaluated:
                t0 = time.perf_counter()
                res = evaluate_uncertainty(model, split, mc_samples=mc, seed=0)
                row = {"augment_pixel_noise": level, "method": method, "corruption": corruption,
                       "severity": severity, "errors": round((1 - res["accuracy"]) * split.num_questions),
                       **{k: res[k] for k in ("accuracy", "ece", "nll", "auroc_misclassification",
                                              "auroc_misclassification_ci95")},
                       "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = _summary(rows)
    result = {"date": time.strftime("%Y-%m-%d"), "T": T, "test_images": N_IMAGES, "questions": test.num_questions,
              "levels": LEVELS, "members": MEMBERS, "severities": SEVERITIES, "corruptions": CORRUPTIONS,
              "seconds": round(time.perf_counter() - t_start, 1), "summary": summary, "rows": rows}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "corruptions.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = _markdown(rows, summary)
    (RESULTS / "corruptions.md").write_text(markdown)
    _plot(rows, RESULTS / "corruptions.png")
    print(markdown)


def _summary(rows: list[dict]) -> list[dict]:
    """Per model: over the corruptions it never trained with, how many cells (corruption x severity) meet
    AUROC >= 0.85 and the mean AUROC and accuracy (cells without errors are left out of the AUROC figures)."""
    out = []
    for key in dict.fromkeys((r["augment_pixel_noise"], r["method"]) for r in rows):
        for severity in SEVERITIES:
            cells = [r for r in rows if (r["augment_pixel_noise"], r["method"]) == key and r["severity"] == severity
                     and r["corruption"] != SEEN]  # fmt: skip
            scored = [r["auroc_misclassification"] for r in cells if not math.isnan(r["auroc_misclassification"])]
            out.append({"augment_pixel_noise": key[0], "method": key[1], "severity": severity,
                        "held_out_cells": len(cells), "cells_with_errors": len(scored),
                        "cells_meeting_0.85": sum(a >= 0.85 for a in scored),
                        "mean_auroc": sum(scored) / len(scored) if scored else math.nan,
                        "min_auroc": min(scored, default=math.nan),
                        "mean_accuracy": sum(r["accuracy"] for r in cells) / len(cells)})  # fmt: skip
    return out


def _markdown(rows: list[dict], summary: list[dict]) -> str:
    held_out = {r["corruption"] for r in rows} - {SEEN}
    lines = [f"500 easy-VQA test images; misclassification AUROC of the predictive entropy (target >= 0.85) over "
             f"the {len(held_out)} corruptions other than Gaussian noise, which the noise-trained "
             "runs saw in training:", "",
             "| objective.augment_pixel_noise | method | severity | mean acc | cells >= 0.85 | mean AUROC "
             "| min AUROC |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for s in summary:
        lines.append(
            f"| {s['augment_pixel_noise']} | {s['method']} | {s['severity']} | {s['mean_accuracy']:.4f} "
            f"| {s['cells_meeting_0.85']} / {s['cells_with_errors']} | {s['mean_auroc']:.4f} | {s['min_auroc']:.4f} |"
        )
    lines += ["", "Every cell (MC dropout: T = 20 passes of run 0; ensemble: runs 0 and 1, dropout off):", "",
              "| corruption | severity | objective.augment_pixel_noise | method | acc | errors | ECE | NLL "
              "| misclf AUROC [95 % CI] |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lo, hi = r["auroc_misclassification_ci95"]
        auroc = "no errors" if math.isnan(r["auroc_misclassification"]) else f"{r['auroc_misclassification']:.4f}"
        interval = f" [{lo:.3f}, {hi:.3f}]" if lo == lo else ""
        lines.append(
            f"| {r['corruption']} | {r['severity']} | {r['augment_pixel_noise']} | {r['method']} | {r['accuracy']:.4f} "
            f"| {r['errors']} | {r['ece']:.4f} | {r['nll']:.3f} | {auroc}{interval} |"
        )
    return "\n".join(lines) + "\n"


def _plot(rows: list[dict], path) -> None:
    """Misclassification AUROC per corruption at each severity, one bar per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    corruptions = list(dict.fromkeys(r["corruption"] for r in rows))
    keys = list(dict.fromkeys((r["augment_pixel_noise"], r["method"]) for r in rows))
    fig = Figure(figsize=(13, 3.8 * len(SEVERITIES)))
    FigureCanvasAgg(fig)
    width = 0.8 / len(keys)
    for ax, severity in zip(fig.subplots(len(SEVERITIES), 1, squeeze=False)[:, 0], SEVERITIES, strict=True):
        for k, key in enumerate(keys):
            by = {r["corruption"]: r for r in rows if (r["augment_pixel_noise"], r["method"]) == key
                  and r["severity"] == severity}  # fmt: skip
            values = [by[c]["auroc_misclassification"] for c in corruptions]
            ax.bar([i + (k - (len(keys) - 1) / 2) * width for i in range(len(corruptions))], values, width,
                   label=f"noise {key[0]:g}, {key[1]}")  # fmt: skip
        ax.axhline(0.85, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(corruptions)), [c.replace("_", " ") for c in corruptions])
        ax.set_ylim(0.4, 1.0)
        ax.set_ylabel("misclassification AUROC")
        ax.set_title(f"severity {severity} (dashed: target 0.85; Gaussian noise is the one seen in training)")
        ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(keys))
    fig.suptitle("easy-VQA models trained with pixel noise std <= S, under ImageNet-C corruptions (500 test images)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
