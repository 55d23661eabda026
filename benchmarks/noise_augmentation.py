"""Benchmark: how much training noise does misclassification detection under pixel noise need? (issue #4)

The default easy-VQA recipe (`mcan-cpu`) trained with Gaussian pixel-noise augmentation
(`objective.augment_pixel_noise=S`: each training image gets noise of a std drawn from [0, S]) for S in
LEVELS, two runs each (`train.member=0, 1`: other initial weights, batch order, dropout masks and noise
draws), measured with MC dropout (T = 20) on the first 500 easy-VQA test images under the shifts of
`benchmarks/uncertainty.py`, with its noise seeds: pixel noise std 0.3 and 0.5 and ImageNet-C's
strongest Gaussian-noise severity (5, std 0.38). Reported: accuracy, ECE, NLL and the misclassification
AUROC of the predictive entropy with its 95 % bootstrap interval over images (target >= 0.85). The two
runs of each level are also measured as a deep ensemble (dropout off: their disagreement is the epistemic
part).

S = 0 is the default model; S = 0.2 stays below every shift measured here. Runs are cached in
benchmarks/runs/ (benchmarks/corruptions.py uses the same six, benchmarks/uncertainty.py all but the S = 0.2
member 1); each new one takes about 6 minutes on 2 CPU cores.

    python benchmarks/noise_augmentation.py    # writes benchmarks/results/noise_augmentation.{json,md}
"""

from __future__ import annotations

import json
import time

import torch

from _common import RESULTS, noise_augmented_run

T = 20
N_IMAGES = 500
LEVELS = (0.0, 0.2, 0.3)  # objective.augment_pixel_noise
MEMBERS = (0, 1)
# condition -> (pixel-noise std, noise seed): the seeds of benchmarks/uncertainty.py's rows
CONDITIONS = {"pixel-noise-0.3": (0.3, 1), "pixel-noise-0.5": (0.5, 2), "severity-5": (0.38, 15)}


def main() -> None:
    from mumo.data.shift.ood import gaussian_noise_split
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
    shifted = {c: gaussian_noise_split(test, std, seed=seed) for c, (std, seed) in CONDITIONS.items()}
    rows = []
    models = {key: load_model(run) for key, run in runs.items()}
    evaluated = [((level, str(member)), models[(level, member)], T) for level, member in runs]
    evaluated += [((level, "ensemble"), DeepEnsemble(models[(level, m)] for m in MEMBERS), None) for level in LEVELS]
    for (level, member), model, mc in evaluated:
        for cond, split in shifted.items():
            t0 = time.perf_counter()
            res = evaluate_uncertainty(model, split, mc_samples=mc, seed=0)
            row = {"augment_pixel_noise": level, "member": member, "mc_samples": mc or 0, "condition": cond,
                   **{k: res[k] for k in ("accuracy", "ece", "nll", "auroc_misclassification",
                                          "auroc_misclassification_ci95", "auroc_misclassification_by_type")},
                   "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
    checks = {
        f"augment {r['augment_pixel_noise']}, member {r['member']}, {r['condition']}": r["auroc_misclassification"]
        >= 0.85
        for r in rows
    }
    result = {"date": time.strftime("%Y-%m-%d"), "T": T, "test_images": N_IMAGES, "levels": LEVELS,
              "members": MEMBERS, "conditions": CONDITIONS, "seconds": round(time.perf_counter() - t_start, 1),
              "rows": rows, "misclassification_auroc_ge_0.85": checks}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "noise_augmentation.json").write_text(json.dumps(result, indent=2) + "\n")
    markdown = _markdown(rows)
    (RESULTS / "noise_augmentation.md").write_text(markdown)
    print(markdown)


def _markdown(rows: list[dict]) -> str:
    lines = ["500 easy-VQA test images; MC dropout (T = 20) for each run, dropout off for the ensemble of both runs; "
             "misclassification AUROC of the predictive entropy with its 95 % bootstrap interval over images "
             "(target >= 0.85):", "",
             "| objective.augment_pixel_noise | member | condition | acc | ECE | NLL | misclf AUROC [95 % CI] |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        lo, hi = r["auroc_misclassification_ci95"]
        lines.append(
            f"| {r['augment_pixel_noise']} | {r['member']} | {r['condition']} | {r['accuracy']:.4f} | {r['ece']:.4f} "
            f"| {r['nll']:.3f} | {r['auroc_misclassification']:.4f} [{lo:.3f}, {hi:.3f}] |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
