"""Benchmark: does gradient-certainty attention (GCA) gain accuracy where the plain model has room? (issue #27 §2)

The seed's claim (reference §7.1, Patro et al.): attention trained towards the cells that lower the uncertainty
loss (`objective.attention_loss=gca`) gains 1.2-2.3 accuracy points. easy-VQA cannot show it (the plain model
is at 100 %). Sort-of-CLEVR without masks can: the plain MCAN of `benchmarks/explanations.py` (6 epochs at 75 px)
sits at 68 % there. This trains that recipe and the same with `gca`, for seeds 0, 1, 2 (`train.seed`; seed 0
shares the explanation benchmark's cached runs), and reports on all 200 test scenes (4,000 questions):

- each run's test accuracy (and relational accuracy);
- per seed, the paired difference gca - plain with a 95 % percentile-bootstrap interval over test scenes
  (each scene's 20 questions resampled together, 2,000 resamples);
- over seeds, the mean difference and its 95 % t-interval (n - 1 degrees of freedom).

Trainings are cached in benchmarks/runs/ and resumed where they stopped, so the table can be built over several
sessions: each call trains what is missing, in order, and reports on the seeds whose two runs are finished.

    python benchmarks/gca_gain.py [--seeds 0 1 2]   # writes benchmarks/results/gca_gain.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics

import numpy as np
import torch

from _common import RESULTS, trained_run
from explanations import DATASETS

PLAIN = DATASETS["sort-of-clevr"]  # (name, overrides) of the plain recipe
CLAIM = (1.2, 2.3)  # accuracy points (reference §7.1)
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}  # Student t, 97.5 % quantile, by degrees of freedom


def run_of(variant: str, seed: int):
    name, overrides = PLAIN
    extra = [] if variant == "plain" else ["objective.attention_loss=gca"]
    base = name if variant == "plain" else "sort-of-clevr-attention-gca"
    return trained_run(base if seed == 0 else f"{base}-seed{seed}", [*overrides, *extra] +
                       ([f"train.seed={seed}"] if seed else []))  # fmt: skip


def per_question_accuracy(run) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(soft accuracy (N,), image index (N,), accuracy summary) on the whole test split."""
    from mumo.metrics.vqa import soft_accuracy
    from mumo.runs import Run
    from mumo.tasks.vqa.accuracy import evaluate_split, predict_logits
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    test = load_data(Run(run).config(RunConfig)).test
    model = load_model(run, device="cpu")
    ids, logits = predict_logits(model, test, 128)
    acc = torch.empty(test.num_questions)
    acc[ids] = soft_accuracy(logits, test.targets[ids]).float()
    summary = evaluate_split(model, test)
    return acc, test.image_index, {k: summary[k] for k in ("accuracy", "accuracy_relational") if k in summary}


def paired_bootstrap(diff: torch.Tensor, image_index: torch.Tensor, resamples: int = 2000, seed: int = 0):
    """95 % percentile interval of the mean per-question difference, scenes resampled with their questions."""
    per_image = torch.zeros(int(image_index.max()) + 1).index_add_(0, image_index, diff)  # (I,) summed
    counts = torch.zeros_like(per_image).index_add_(0, image_index, torch.ones_like(diff))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, per_image.numel(), (resamples, per_image.numel()))
    means = per_image.numpy()[picks].sum(1) / counts.numpy()[picks].sum(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        runs = {v: run_of(v, seed) for v in ("plain", "gca")}  # trains (or resumes) what is missing
        acc, img, summary = {}, None, {}
        for v, run in runs.items():
            acc[v], img, summary[v] = per_question_accuracy(run)
        diff = acc["gca"] - acc["plain"]  # (N,) paired: the same questions
        row = {"seed": seed, **{f"{v}_{k}": s for v, d in summary.items() for k, s in d.items()},
               "gain_points": 100 * float(diff.mean()),
               "gain_ci95_points": [100 * x for x in paired_bootstrap(diff, img, seed=seed)]}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    gains = [r["gain_points"] for r in rows]
    result = {"recipe": PLAIN[1], "claim_points": CLAIM, "rows": rows, "mean_gain_points": statistics.fmean(gains)}
    if len(gains) > 1:
        half = T_975[len(gains) - 1] * statistics.stdev(gains) / len(gains) ** 0.5
        result["mean_gain_ci95_points"] = [result["mean_gain_points"] - half, result["mean_gain_points"] + half]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "gca_gain.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "gca_gain.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = ["| seed | plain accuracy | gca accuracy | gain (points) | 95 % CI over scenes |", "|---|---|---|---|---|"]
    for row in r["rows"]:
        lo, hi = row["gain_ci95_points"]
        lines.append(f"| {row['seed']} | {row['plain_accuracy']:.4f} | {row['gca_accuracy']:.4f} | "
                     f"{row['gain_points']:+.2f} | [{lo:+.2f}, {hi:+.2f}] |")  # fmt: skip
    ci = r.get("mean_gain_ci95_points")
    lines.append("")
    lines.append(f"Mean gain over {len(r['rows'])} seeds: {r['mean_gain_points']:+.2f} points"
                 + (f", 95 % t-interval [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")
                 + f"; the claim: +{r['claim_points'][0]} to +{r['claim_points'][1]}.")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
