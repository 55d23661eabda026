"""Benchmark: Grad-CAM's target, and U-CAM against Grad-CAM where attention does follow the objects (issue #27).

mumo's Grad-CAM explained the answer's log-softmax until this issue; Selvaraju et al. use the pre-softmax score
y^c, now the default. The gradient of log p is a contrast against the other answers and vanishes as the model
saturates, so many of its maps are undefined (flat). This scores, in one run, Grad-CAM of the logit, Grad-CAM of
the log-probability, U-CAM (predictive, T = 20, both signs) and attention against the ground-truth masks
(Spearman rank correlation at the grid's resolution, pointing game, energy inside the mask; `undefined`:
maps with no rank correlation), on two models:

- the default easy-VQA run (`mcan-cpu`; the shape's mask), the first 500 test images;
- the mask-supervised Sort-of-CLEVR run (`objective.attention_loss=masks`, the uncertainty benchmarks' run,
  whose attention follows the objects: pointing game 0.99), all 200 test scenes, the masks of the objects
  each question refers to. The seed's claim (reference §7.1): U-CAM maps beat Grad-CAM.

    python benchmarks/gradcam_target.py [--datasets easy-vqa sort-of-clevr-masks]
    # writes benchmarks/results/gradcam_target.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time

from _common import RESULTS, noise_augmented_run, trained_run
from uncertainty import SORT_OF_CLEVR

N_IMAGES = 500
METHODS = ("attention", "gradcam-logit", "gradcam-log-prob", "ucam", "ucam-negated")


def score_maps(run) -> dict:
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.explain import ExplainOptions, evaluate_explanations
    from mumo.tasks.vqa.model import load_model

    cfg = Run(run).config(RunConfig)
    test = load_data(cfg).test
    model = load_model(run, device="cpu")
    n = min(N_IMAGES, test.num_images)
    t0 = time.perf_counter()

    def run_methods(methods: tuple[str, ...], **opts) -> dict:
        return evaluate_explanations(
            model, cfg, test, methods, opts=ExplainOptions(**opts), max_images=n, progress=False
        )  # fmt: skip

    logit = run_methods(("attention", "gradcam", "ucam"), target="logit")
    out = {
        "num_questions": logit["num_questions"], "num_images": n, "accuracy": logit["accuracy"],
        "grid": logit["grid"], "methods": {
            "attention": logit["methods"]["attention"], "gradcam-logit": logit["methods"]["gradcam"],
            "gradcam-log-prob": run_methods(("gradcam",), target="log-prob")["methods"]["gradcam"],
            "ucam": logit["methods"]["ucam"], "ucam-negated": run_methods(("ucam",), negate=True)["methods"]["ucam"],
        },
    }  # fmt: skip
    for m in out["methods"].values():
        m.pop("by_type", None)
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["easy-vqa", "sort-of-clevr-masks"])
    args = parser.parse_args()
    runs = {
        "easy-vqa": lambda: noise_augmented_run(0),
        "sort-of-clevr-masks": lambda: trained_run("sort-of-clevr-masks", SORT_OF_CLEVR),
    }
    path = RESULTS / "gradcam_target.json"
    result = json.loads(path.read_text()) if path.exists() else {}  # datasets scored before are kept
    for ds in args.datasets:
        result[ds] = score_maps(runs[ds]())
        print(ds, json.dumps({m: round(v["rank_correlation"], 4) for m, v in result[ds]["methods"].items()}))
        path.write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "gradcam_target.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    lines = []
    for ds, r in result.items():
        lines += [
            f"**{ds}** ({r['num_questions']} questions on {r['num_images']} test images, accuracy {r['accuracy']:.4f}, "
            f"grid {r['grid'][0]}x{r['grid'][1]})",
            "",
            "| method | rank correlation | pointing game | energy in mask | undefined maps |",
            "|---|---|---|---|---|",
        ]
        for m in METHODS:
            s = r["methods"][m]
            lines.append(
                f"| {m} | {s['rank_correlation']:.4f} | {s['pointing_game']:.4f} | {s['energy_in_mask']:.4f} | "
                f"{s['undefined']} of {s['count']} |"
            )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
