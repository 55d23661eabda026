"""Benchmark: shift and OOD on shipped data — deterministic vs MC dropout vs aleatoric head vs both (issue #4).

Models (trained once, cached in benchmarks/runs/): the default easy-VQA MCAN (`mcan-cpu`) and the same
with a Kendall & Gal aleatoric head (`model.aleatoric=kendall-gal`). Methods:

- deterministic: the default model, dropout off, softmax;
- mc-dropout: the default model, T = 20 MC-dropout passes through every dropout module;
- mc-dropout-head: the same with only the answer head's dropout sampling (the fast scope);
- aleatoric: the aleatoric model, dropout off, probabilities under its learned logit noise;
- aleatoric+mc: the aleatoric model with T = 20 passes.

Conditions, on the first 500 easy-VQA test images (about 4,800 questions):
clean; near shift by Gaussian pixel noise (std 0.3 and 0.5 on [0, 1] pixels) and by N(0, 1) noise on
the image features fed to the co-attention (the 2021 MCAN study's protocol; added to the grid CNN's
output, before the per-question projection); far OOD: the same
questions about Sort-of-CLEVR scenes (another data set: six small objects), `shapes-ood` images
(unseen shapes and colours on dark or striped backgrounds) and uniform noise images. OOD AUROC: OOD
positive, against the clean images; scored with the mutual information for MC methods and the
predictive entropy otherwise (every score is saved); per question and per image (the score averaged
over each image's questions).

Targets: MC dropout lowers ECE and NLL against the deterministic model under the noise shift; far-OOD
AUROC >= 0.90 with mutual information; misclassification AUROC >= 0.85.

    python benchmarks/uncertainty.py           # writes benchmarks/results/uncertainty.{json,md}
"""

from __future__ import annotations

import contextlib
import json
import time

import torch

from _common import RESULTS, trained_run

T = 20
N_IMAGES = 500


def main() -> None:
    from mumo.config import config_from_yaml
    from mumo.data.ood import gaussian_noise_split, ood_split
    from mumo.tasks.vqa import load_data, load_model
    from mumo.tasks.vqa_uncertainty import evaluate_uncertainty
    from mumo.uncertainty.shift import feature_noise

    t_start = time.perf_counter()
    default_run = trained_run("easy-vqa-default", [])
    aleatoric_run = trained_run("easy-vqa-kendall-gal", ["model.aleatoric=kendall-gal"])
    data = load_data(config_from_yaml(default_run / "config.yaml"))
    test = data.test.subset_images(torch.arange(N_IMAGES), "test[:500]")
    models = {"default": load_model(default_run), "kendall-gal": load_model(aleatoric_run)}
    methods = {
        "deterministic": ("default", None, "all"),
        "mc-dropout": ("default", T, "all"),
        "mc-dropout-head": ("default", T, "head"),
        "aleatoric": ("kendall-gal", None, "all"),
        "aleatoric+mc": ("kendall-gal", T, "all"),
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

    table = []
    for method, (model_name, mc, scope) in methods.items():
        model = models[model_name]
        for cond, (split, feat_std) in conditions.items():
            ctx = feature_noise(model.image_encoder, feat_std, seed=5) if feat_std else contextlib.nullcontext()
            with ctx:
                res = evaluate_uncertainty(model, split, mc_samples=mc, mc_scope=scope, seed=0)
            row = {"method": method, "condition": cond, **{k: res[k] for k in (
                "accuracy", "ece", "nll", "brier", "auroc_misclassification", "aurc")}}  # fmt: skip
            row["auroc_misclassification_by_score"] = res["auroc_misclassification_by_score"]
            table.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)
        for name, ood in ood_sets.items():
            res = evaluate_uncertainty(model, test, mc_samples=mc, mc_scope=scope, ood=ood, seed=0)
            row = {"method": method, "condition": f"ood:{name}", "auroc_ood": res["auroc_ood"],
                   "auroc_ood_per_image": res["auroc_ood_per_image"], "auroc_ood_by_type": res["auroc_ood_by_type"],
                   "fpr95_ood": res["fpr95_ood"], "aupr_ood": res["aupr_ood"], "ood_score": res["ood_score"],
                   "auroc_ood_by_score": res["auroc_ood_by_score"]}  # fmt: skip
            table.append(row)
            print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)

    def get(method: str, cond: str, key: str) -> float:
        return next(r[key] for r in table if r["method"] == method and r["condition"] == cond)

    shifts = ["pixel-noise-0.3", "pixel-noise-0.5", "feature-noise-1.0"]
    checks = {
        "mc_lowers_ece_under_shift": {c: get("mc-dropout", c, "ece") < get("deterministic", c, "ece") for c in shifts},
        "mc_lowers_nll_under_shift": {c: get("mc-dropout", c, "nll") < get("deterministic", c, "nll") for c in shifts},
        "far_ood_auroc_mi_ge_0.90": {n: get("mc-dropout", f"ood:{n}", "auroc_ood") >= 0.90 for n in ood_sets},
        "misclassification_auroc_ge_0.85": {c: get("mc-dropout", c, "auroc_misclassification") >= 0.85 for c in shifts},
    }
    result = {"T": T, "test_images": N_IMAGES, "seconds": round(time.perf_counter() - t_start, 1),
              "table": table, "checks": checks}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "uncertainty.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "uncertainty.md").write_text(_markdown(table, checks))
    print(_markdown(table, checks))


def _markdown(table: list[dict], checks: dict) -> str:
    lines = ["| method | condition | acc | ECE | NLL | Brier | misclf AUROC | AURC | OOD AUROC | per image | FPR95 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip

    def f(r: dict, k: str) -> str:
        v = r.get(k)
        return "" if v is None else f"{v:.4f}"

    for r in table:
        lines.append(
            f"| {r['method']} | {r['condition']} | {f(r, 'accuracy')} | {f(r, 'ece')} | {f(r, 'nll')} | "
            f"{f(r, 'brier')} | {f(r, 'auroc_misclassification')} | {f(r, 'aurc')} | {f(r, 'auroc_ood')} | "
            f"{f(r, 'auroc_ood_per_image')} | {f(r, 'fpr95_ood')} |"
        )
    types = sorted({t for r in table for t in r.get("auroc_ood_by_type", {})})
    lines += ["", "OOD AUROC by question type (same score as above, per question):", "",
              "| method | OOD set | " + " | ".join(types) + " |", "|---|---|" + "---|" * len(types)]  # fmt: skip
    for r in table:
        if "auroc_ood_by_type" in r:
            cells = " | ".join(f"{r['auroc_ood_by_type'].get(t, float('nan')):.4f}" for t in types)
            lines.append(f"| {r['method']} | {r['condition'][4:]} | {cells} |")
    lines += ["", "Checks:", ""] + [f"- {k}: {v}" for k, v in checks.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
