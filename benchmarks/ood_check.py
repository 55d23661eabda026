"""Benchmark: the default out-of-distribution check ("I don't know" to a cat, by default; issue #27 §3).

The default easy-VQA run (`mcan-cpu`, cached in benchmarks/runs/, shared with the uncertainty benchmarks) gets
what training now fits at its end (`fit_run_checks`: the image nearest-neighbour check and the feature
density). Then the questions of the 1,000 easy-VQA test images are asked about 1,000 images of each of six
kinds mumo never trained on: crops of real photographs (scikit-learn's and matplotlib's sample photos),
textures, pen drawings, uniform noise, Sort-of-CLEVR scenes and `shapes-ood` images (unseen shapes and
colours). Every score is given a threshold by the same rule, the split-conformal quantile of the validation
questions' scores at alpha = 0.01, and reported with:

- AUROC: OOD questions positive, the in-distribution test questions negative;
- abstain rate: the fraction of OOD questions refused at the threshold;
- refused in distribution: the fraction of the test questions refused.

Scores, in one run: the default check (`image_knn`: the distance of the image's pooled features to its 5th
nearest training image), the fused-feature density (DDU, `feature_density`), and the deterministic model's
predictive entropy and 1 - max softmax (what `--abstain` used before). Targets (issue #27): AUROC of the default
score >= 0.95 and abstain rate >= 90 % on every kind, with <= 1 % of in-distribution test questions refused.
Finally the product path: `mumo.load(RUN).predict` on photograph crops and test images with the default
settings (abstains, says why), the "cat" example.

    python benchmarks/ood_check.py   # writes benchmarks/results/ood_check.{json,md}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import RESULTS, noise_augmented_run

OOD_KINDS = ("photos", "textures", "drawings", "noise", "sort-of-clevr", "shapes-ood")
SCORES = ("image_knn", "feature_density", "predictive_entropy", "one_minus_max_softmax")
ALPHA = 0.01
TARGET_AUROC, TARGET_ABSTAIN, TARGET_REFUSED = 0.95, 0.90, 0.01


def question_scores(model, check, density, split) -> dict[str, torch.Tensor]:
    """Every score (N,) of every question of ``split``: the image scores carried by each question."""
    from mumo.tasks.vqa.accuracy import predict_logits
    from mumo.tasks.vqa.density import split_features
    from mumo.tasks.vqa.ood import split_image_features

    image = check.score(split_image_features(model, split))  # (I,)
    ids, logits = predict_logits(model, split, 128)
    probs = torch.empty(split.num_questions, logits.shape[-1])
    probs[ids] = logits.softmax(-1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return {
        "image_knn": image[split.image_index],
        "feature_density": density.score(split_features(model, split)),
        "predictive_entropy": entropy,
        "one_minus_max_softmax": 1 - probs.max(-1).values,
    }


def product_path(run: Path, test) -> dict:
    """``mumo.load(run).predict`` with default settings on photograph crops and easy-VQA test images."""
    from mumo import load
    from mumo.data.shift.ood import ood_split

    predictor = load(run, device="cpu")
    photos = ood_split("photos", test.first_images(40), seed=11)
    out = {}
    for name, split in (("photos", photos), ("easy-vqa test", test.first_images(40))):
        abstained, answers = 0, []
        for i in range(split.num_images):
            image = split.images[i].permute(1, 2, 0).numpy()  # (H, W, 3) uint8
            pred = predictor.predict(image, "what color is the shape?", mc_samples=20)
            abstained += pred.abstained
            answers.append(pred)
        first = answers[0]
        out[name] = {
            "images": split.num_images, "abstained": abstained / split.num_images,
            "example": {
                "answer": first.answer, "best_guess": first.best_guess, "probability": first.probability,
                "mutual_information": first.uncertainty.epistemic, "abstain_reason": first.abstain_reason,
                "out_of_distribution": first.out_of_distribution,
            },
        }  # fmt: skip
    return out


def main() -> None:
    from mumo.data.shift.ood import ood_split
    from mumo.metrics.uncertainty import ood_auroc
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.density import load_run_density
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.ood import fit_run_checks, load_ood_check
    from mumo.uncertainty.knn import conformal_threshold

    t0 = time.perf_counter()
    run = noise_augmented_run(0)  # the default recipe
    cfg = Run(run).config(RunConfig)
    data = load_data(cfg)
    model = load_model(run, device="cpu")
    t = time.perf_counter()
    fitted = fit_run_checks(run, model, data.train, data.val, images_per_batch=cfg.train.eval_batch_size)
    fit_seconds = time.perf_counter() - t
    check, density = load_ood_check(run), load_run_density(run)

    val = question_scores(model, check, density, data.val)
    test = question_scores(model, check, density, data.test)
    thresholds = {k: conformal_threshold(v, ALPHA) for k, v in val.items()}
    thresholds["image_knn"] = check.threshold  # the check's own (per validation image, the same rule)
    rows = {}
    for kind in OOD_KINDS:
        split = ood_split(kind, data.test, seed=3)
        scores = question_scores(model, check, density, split)
        rows[kind] = {
            s: {"auroc": ood_auroc(test[s], scores[s]), "abstain": float((scores[s] > thresholds[s]).float().mean())}
            for s in SCORES
        }
        print(kind, {s: f"{r['auroc']:.4f}/{r['abstain']:.3f}" for s, r in rows[kind].items()}, flush=True)
    refused = {s: float((test[s] > thresholds[s]).float().mean()) for s in SCORES}
    e2e = product_path(run, data.test)
    default = {k: rows[k]["image_knn"] for k in OOD_KINDS}
    checks = {
        f"auroc_ge_{TARGET_AUROC}": all(r["auroc"] >= TARGET_AUROC for r in default.values()),
        f"abstain_ge_{TARGET_ABSTAIN}": all(r["abstain"] >= TARGET_ABSTAIN for r in default.values()),
        f"refused_in_distribution_le_{TARGET_REFUSED}": refused["image_knn"] <= TARGET_REFUSED,
    }
    result = {
        "run": str(run.relative_to(Path(__file__).parent)), "alpha": ALPHA, "fitted": fitted,
        "fit_seconds": fit_seconds, "test_questions": data.test.num_questions,
        "ood_questions_per_kind": data.test.num_questions, "thresholds": thresholds,
        "refused_in_distribution": refused, "ood": rows, "product_path": e2e, "checks": checks,
        "wall_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ood_check.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    (RESULTS / "ood_check.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    lines = [
        "| score | " + " | ".join(OOD_KINDS) + " | refused in distribution |",
        "|---|" + "---|" * (len(OOD_KINDS) + 1),
    ]
    for s in SCORES:
        cells = [f"{r['ood'][k][s]['auroc']:.4f} / {r['ood'][k][s]['abstain']:.1%}" for k in OOD_KINDS]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {r['refused_in_distribution'][s]:.2%} |")
    e2e = r["product_path"]
    lines += [
        "",
        f"Cells: OOD AUROC / abstain rate at the threshold refusing at most {r['alpha']:.0%} of validation questions "
        f"(split-conformal); {r['test_questions']} test questions and as many per OOD kind.",
        "",
        "`mumo.load(RUN).predict(image, 'what color is the shape?', mc_samples=20)`, default settings: abstained on "
        f"{e2e['photos']['abstained']:.0%} of {e2e['photos']['images']} photograph crops and "
        f"{e2e['easy-vqa test']['abstained']:.0%} of {e2e['easy-vqa test']['images']} easy-VQA test images.",
        f"Checks: {json.dumps(r['checks'])}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
