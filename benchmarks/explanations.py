"""Benchmark: explanations that can be checked (issue #5).

1. Map methods on the plain model: attention, Grad-CAM (predicted answer's log-probability) and U-CAM
   (predictive, T = 20, both signs) scored against ground-truth masks (Spearman rank correlation at
   the feature-grid resolution, pointing game, energy inside the mask), on easy-VQA (the shape,
   segmented from the background) and Sort-of-CLEVR (the objects each question refers to).
2. Attention training: VQA accuracy and attention rank correlation for the plain model and the
   `mse`, `aan`, `paan` and `gca` variants (`objective.attention_loss`), same recipe and seed.
   Target: an explanation-trained variant's attention correlates better with the masks than the
   plain model's, losing at most 0.5 points of accuracy.
3. Grad-CAM vs Captum's LayerGradCam on the same model and layer: allclose, and time ratio <= 1.2
   (interleaved repeats in one run, medians).
4. The Clever Hans probe: a trained question-only model (`model.blank=image`) must be flagged, the
   plain MCAN must pass.

Models are trained once and cached in benchmarks/runs/ (easy-VQA: the mcan-cpu recipe, 12 epochs;
Sort-of-CLEVR: mcan-cpu at 75 px, 6 epochs). Test splits: easy-VQA's first 500 test images (~4,900
questions), all 200 Sort-of-CLEVR test images (4,000 questions).

    python benchmarks/explanations.py [--datasets easy-vqa sort-of-clevr] [--variants mse aan paan gca]
    # writes benchmarks/results/explanations.{json,md}
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from _common import RESULTS, trained_run

DATASETS = {
    "easy-vqa": ("easy-vqa-default", []),
    "sort-of-clevr": (
        "sort-of-clevr-plain",
        ["data.name=sort-of-clevr", "data.image_size=75", "train.epochs=6", "train.warmup_epochs=1",
         "train.decay_epochs=[3,5]"],
    ),
}  # fmt: skip
VARIANTS = ("mse", "aan", "paan", "gca")
N_IMAGES = 500
ACCURACY_TOLERANCE = 0.005


def _split(run: Path):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data

    cfg = Run(run).config(RunConfig)
    test = load_data(cfg).test
    n = min(N_IMAGES, test.num_images)
    return cfg, test, n


def map_methods(run: Path) -> dict:
    """Every method's scores on the plain model (U-CAM in both signs)."""
    from mumo.tasks.vqa.explain import ExplainOptions, evaluate_explanations
    from mumo.tasks.vqa.model import load_model

    cfg, test, n = _split(run)
    model = load_model(run)
    t0 = time.perf_counter()
    res = evaluate_explanations(model, cfg, test, ("attention", "gradcam", "ucam"), max_images=n, progress=False)
    neg = evaluate_explanations(
        model, cfg, test, ("ucam",), opts=ExplainOptions(negate=True), max_images=n, progress=False
    )
    res["methods"]["ucam-negated"] = neg["methods"]["ucam"]
    res["seconds"] = time.perf_counter() - t0
    return res


def attention_of(run: Path) -> dict:
    """Test accuracy (all test images) and attention scores (the benchmark's images) of one run."""
    from mumo.runs import Run
    from mumo.tasks.vqa.accuracy import evaluate_split
    from mumo.tasks.vqa.explain import evaluate_explanations
    from mumo.tasks.vqa.model import load_model

    cfg, test, n = _split(run)
    model = load_model(run)
    acc = evaluate_split(model, test)
    att = evaluate_explanations(model, cfg, test, ("attention",), max_images=n, progress=False)
    scores = att["methods"]["attention"]
    state = Run(run).state
    return {
        "test_accuracy": acc["accuracy"],
        **({"test_relational": acc["accuracy_relational"]} if "accuracy_relational" in acc else {}),
        "attention_rank_correlation": scores["rank_correlation"],
        "attention_pointing_game": scores["pointing_game"],
        "attention_energy_in_mask": scores["energy_in_mask"],
        "train_seconds": state["history"][-1]["train_seconds"],
    }


def captum_parity(run: Path, repeats: int = 15) -> dict:
    """mumo Grad-CAM vs Captum LayerGradCam on the grid CNN's last conv block, one question per image."""
    from captum.attr import LayerGradCam

    from mumo.explain.gradcam import grad_cam
    from mumo.explain.targets import AnswerLogit
    from mumo.tasks.vqa.model import load_model
    from mumo.types import VQABatch

    _, test, _ = _split(run)
    model = load_model(run)
    q = torch.stack([test.questions_of(torch.tensor([i]))[0] for i in range(64)])  # first question of each image
    images, tokens = test.images[:64].float() / 255.0, test.tokens[q]  # (64, 3, H, W), (64, L)
    one_each = VQABatch(images, tokens, torch.arange(64))
    with torch.no_grad():
        answers = model(one_each).logits.argmax(-1)

    def forward(imgs: torch.Tensor, toks: torch.Tensor) -> torch.Tensor:
        return model(VQABatch(imgs, toks, torch.arange(imgs.shape[0]))).logits

    captum = LayerGradCam(forward, model.image_encoder.body)

    def run_captum() -> torch.Tensor:
        return captum.attribute(images, target=answers, additional_forward_args=(tokens,))[:, 0]

    def run_ours() -> torch.Tensor:
        return grad_cam(model, one_each, AnswerLogit(answers), layer="image_encoder.body", relu=False).maps

    ours_maps, captum_maps = run_ours(), run_captum()
    times: dict[str, list[float]] = {"mumo": [], "captum": []}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both
        for name, fn in (("mumo", run_ours), ("captum", run_captum)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "allclose": bool(torch.allclose(ours_maps, captum_maps, rtol=1e-5, atol=1e-6)),
        "max_abs_difference": float((ours_maps - captum_maps).detach().abs().max()),
        "batch": 64, "repeats": repeats,
        "mumo_seconds": med["mumo"], "captum_seconds": med["captum"], "time_ratio": med["mumo"] / med["captum"],
    }  # fmt: skip


def probe(runs: dict[str, Path]) -> dict:
    from mumo.tasks.vqa.probe import probe_run

    out = {}
    for name, run in runs.items():
        r = probe_run(run, "test", max_images=N_IMAGES)
        out[name] = {k: r[k] for k in (
            "accuracy_real", "accuracy_blank_image", "accuracy_shuffled_image", "accuracy_blank_question",
            "answer_change_rate", "looks_at_image", "verdict",
        )}  # fmt: skip
    return out


def markdown(res: dict) -> str:
    lines = ["# Explanations benchmark (issue #5)", ""]
    for ds, r in res["datasets"].items():
        mm = r["map_methods"]
        lines += [
            f"## {ds}: map methods on the plain model ({mm['num_questions']} questions, {mm['grid'][0]}x"
            f"{mm['grid'][1]} grid)", "",
            "| method | rank correlation | pointing game | energy in mask | undefined |", "|---|---|---|---|---|",
        ]  # fmt: skip
        for name, s in mm["methods"].items():
            lines.append(
                f"| {name} | {s['rank_correlation']:.3f} | {s['pointing_game']:.3f} | {s['energy_in_mask']:.3f} "
                f"| {s['undefined']} |"
            )
        lines += [
            "", f"## {ds}: attention training", "",
            "| variant | test accuracy | attention rank corr. | pointing | energy | train s |",
            "|---|---|---|---|---|---|",
        ]  # fmt: skip
        for name, v in r["training"].items():
            lines.append(
                f"| {name} | {v['test_accuracy']:.4f} | {v['attention_rank_correlation']:.3f} | "
                f"{v['attention_pointing_game']:.3f} | {v['attention_energy_in_mask']:.3f} | {v['train_seconds']:.0f} |"
            )
        lines += ["", f"Winner: {r.get('winner', '(still training)')}", ""]
    if "captum" in res:
        c = res["captum"]
        lines += [
            "## Grad-CAM vs Captum LayerGradCam", "",
            f"allclose: {c['allclose']} (max |diff| {c['max_abs_difference']:.2e}); time ratio mumo/captum "
            f"{c['time_ratio']:.3f} ({c['mumo_seconds'] * 1e3:.1f} ms vs {c['captum_seconds'] * 1e3:.1f} ms, "
            f"batch {c['batch']}, median of {c['repeats']})", "",
        ]  # fmt: skip
    if "probe" in res:
        lines += ["## Clever Hans probe (easy-VQA test, 500 images)", "",
                  "| model | real | blank image | shuffled image | blank question | answers changed | looks |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, p in res["probe"].items():
            lines.append(
                f"| {name} | {p['accuracy_real']:.4f} | {p['accuracy_blank_image']:.4f} | "
                f"{p['accuracy_shuffled_image']:.4f} | {p['accuracy_blank_question']:.4f} | "
                f"{p['answer_change_rate']:.4f} | {'yes' if p['looks_at_image'] else 'NO'} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS))
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    args = parser.parse_args()
    torch.manual_seed(0)
    t_start = time.perf_counter()
    out_json = RESULTS / "explanations.json"
    res = json.loads(out_json.read_text()) if out_json.exists() else {}
    res.setdefault("datasets", {})

    def save() -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(res, indent=2))
        (RESULTS / "explanations.md").write_text(markdown(res))

    for ds in args.datasets:
        plain_name, overrides = DATASETS[ds]
        plain = trained_run(plain_name, overrides)
        entry = res["datasets"].setdefault(ds, {})
        entry["overrides"] = overrides
        entry["map_methods"] = map_methods(plain)
        entry["training"] = {"plain": attention_of(plain)}
        save()
        for v in args.variants:
            run = trained_run(f"{ds}-attention-{v}", [*overrides, f"objective.attention_loss={v}"])
            entry["training"][v] = attention_of(run)
            print(ds, v, entry["training"][v], flush=True)
            save()
        base = entry["training"]["plain"]
        ok = {
            v: r["attention_rank_correlation"] > base["attention_rank_correlation"]
            and r["test_accuracy"] >= base["test_accuracy"] - ACCURACY_TOLERANCE
            for v, r in entry["training"].items() if v != "plain"
        }  # fmt: skip
        best = max(entry["training"], key=lambda k: entry["training"][k]["attention_rank_correlation"])
        entry["meets_target"] = {v: bool(x) for v, x in ok.items()}
        entry["winner"] = (
            f"{best} has the highest attention rank correlation "
            f"({entry['training'][best]['attention_rank_correlation']:.3f} vs plain "
            f"{base['attention_rank_correlation']:.3f}); variants meeting the target: "
            f"{', '.join(v for v, x in ok.items() if x) or 'none'}"
        )
        save()

    easy = trained_run(*DATASETS["easy-vqa"])
    res["captum"] = captum_parity(easy)
    question_only = trained_run("easy-vqa-question-only", ["model.blank=image"])
    res["probe"] = probe({"mcan (plain)": easy, "question-only (model.blank=image)": question_only})
    res["probe_target_met"] = (
        res["probe"]["mcan (plain)"]["looks_at_image"]
        and not res["probe"]["question-only (model.blank=image)"]["looks_at_image"]
    )
    res["wall_seconds"] = time.perf_counter() - t_start
    res["machine"] = {"cpus": torch.get_num_threads(), "torch": torch.__version__}
    save()
    print(markdown(res))


if __name__ == "__main__":
    main()
