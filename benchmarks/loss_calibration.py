"""Benchmark: which training loss gives the better-calibrated answer probabilities (issue #27 §1).

mumo reads every probability, entropy, mutual information, ECE, NLL and temperature from a softmax over the
answer logits, while MCAN trains those logits with per-answer sigmoid BCE, a loss that never trains the softmax.
This trains the default easy-VQA recipe a second time with the loss the softmax is read with
(`objective.loss=softmax`: soft-target softmax cross-entropy) and scores both runs, in one run, on the first 500
easy-VQA test images clean and under Gaussian pixel noise (std 0.3 and 0.5), deterministic and with T = 20
MC-dropout passes: accuracy, ECE (15 bins), NLL, Brier, AURC and the misclassification AUROC of the
predictive entropy. Both runs are cached in benchmarks/runs/ (the BCE run is the uncertainty benchmarks'
default run).

    python benchmarks/loss_calibration.py   # writes benchmarks/results/loss_calibration.{json,md}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, noise_augmented_run, trained_run

T = 20
N_IMAGES = 500
KEYS = ("accuracy", "ece", "nll", "brier", "aurc", "auroc_misclassification")


def main() -> None:
    from mumo.data.shift.ood import gaussian_noise_split
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    t0 = time.perf_counter()
    runs = {
        "bce (MCAN, default)": noise_augmented_run(0),
        "softmax": trained_run("easy-vqa-softmax-ce", ["objective.loss=softmax"]),
    }
    data = load_data(Run(runs["softmax"]).config(RunConfig))
    test = data.test.subset_images(torch.arange(N_IMAGES), f"test[:{N_IMAGES}]")
    conditions = {
        "clean": test,
        "pixel-noise-0.3": gaussian_noise_split(test, 0.3, seed=1),
        "pixel-noise-0.5": gaussian_noise_split(test, 0.5, seed=2),
    }
    rows = []
    for loss, run in runs.items():
        model = load_model(run, device="cpu")
        for cond, split in conditions.items():
            for mc in (None, T):
                res = evaluate_uncertainty(model, split, mc_samples=mc, seed=0)
                row = {"loss": loss, "condition": cond, "mc_samples": mc or 0, **{k: res[k] for k in KEYS}}
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {"test_images": N_IMAGES, "rows": rows, "wall_seconds": time.perf_counter() - t0}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loss_calibration.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "loss_calibration.md").write_text(markdown(rows))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = ["| loss | condition | T | " + " | ".join(KEYS) + " |", "|---|---|---|" + "---|" * len(KEYS)]
    for r in rows:
        cells = " | ".join(f"{r[k]:.4f}" for k in KEYS)
        lines.append(f"| {r['loss']} | {r['condition']} | {r['mc_samples'] or '-'} | {cells} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
