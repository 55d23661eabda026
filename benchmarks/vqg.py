"""Benchmark: MC-BMN question generation on mumo scenes, the seed's cue ablation (issue #23).

On the scenes test split (1,000 images of the default set, 5 reference questions each), T = 5 Monte Carlo samples,
one greedy question per image per sample: BLEU-1..4, METEOR 1.5, ROUGE-L and CIDEr-D (pycocoevalcap, PTB
tokenisation), max and mean ± std over the samples, for the 13 rows of the seed's Table (image only; each cue alone;
image + each cue; image + each pair of cues; all cues with dropout off at inference (MC-SMN), with Gaussian dropout,
with Bernoulli dropout (MC-BMN)). Beyond the anchors, from the scenes executor: validity, answerability, diversity,
and the AUROC of each question's uncertainty for the bad (invalid or unanswerable) ones; and closing the loop, a VQA
model trained on scenes (benchmarks/scenes.py's ``mcan-masks-20`` run, else ``mcan-masks``) answers MC-BMN's valid
questions, scored against the executor's answers, beside its accuracy on the true questions of the same images.

Cues in every row: the place from the model's place head (the true place in the cue-only rows, which have no image),
the image's first caption (true), the tags of its first reference question (as the paper's question tags).

Targets: MC-BMN's mean BLEU-1, METEOR and CIDEr above every one- and two-cue row and above MC-SMN; the spread over
samples smaller with all cues than with the image alone (results/vqg_spread.png: the seed's variance against the
number of cues); MC-BMN validity >= 95 %, answerability >= 90 %, bad-question AUROC >= 0.80; MC-BMN trains in <= 10
minutes on 2 cores. Each training and each evaluation is cached under benchmarks/runs/ (resumed where it stopped).

    python benchmarks/vqg.py [--rows MC-BMN image ...] [--images N]   # writes results/vqg.{json,md}, vqg_spread.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from _common import RESULTS, RUNS

PRESET = "vqg-cpu"
CACHE_VERSION = 1
SAMPLES = 5
ROWS = {  # row -> (overrides of the preset, dropout kept on at inference)
    "image": (["model.cues=[image]"], True),
    "place": (["model.cues=[place]"], True),
    "caption": (["model.cues=[caption]"], True),
    "tag": (["model.cues=[tag]"], True),
    "image+place": (["model.cues=[image,place]"], True),
    "image+caption": (["model.cues=[image,caption]"], True),
    "image+tag": (["model.cues=[image,tag]"], True),
    "image+place+caption": (["model.cues=[image,place,caption]"], True),
    "image+place+tag": (["model.cues=[image,place,tag]"], True),
    "image+caption+tag": (["model.cues=[image,caption,tag]"], True),
    "MC-SMN": ([], False),  # MC-BMN's run, dropout off at inference
    "gaussian": (["model.dropout_kind=gaussian"], True),
    "MC-BMN": ([], True),
    # Beyond the seed's table: MC-BMN over the frozen grid CNN of the scenes VQA run (128 px, trained with mask
    # supervision, so its cells know the objects), to see whether grounded features make the questions answerable.
    # The frozen encoder's features are computed once, so an epoch can afford 4 of each image's questions.
    "MC-BMN, VQA CNN": (
        [
            "data.image_size=128",
            "model.cnn_channels=[16,32,64,64]",
            "model.cnn_pool=4",
            "model.cnn_skip=true",
            f"model.image_init={RUNS / 'scenes-mcan-masks-20'}",
            "model.freeze_image=true",
            "data.questions_per_image=4",
        ],
        True,
    ),
}
LOOP_ROWS = ("MC-BMN", "MC-BMN, VQA CNN")  # the rows whose questions a VQA model answers
ALL_CUES = ("MC-BMN", "MC-SMN", "gaussian", "MC-BMN, VQA CNN")  # the rows with all four cues
TARGETS = {"validity": 0.95, "answerability": 0.90, "bad_question_auroc": 0.80, "mc_bmn_train_minutes": 10}


def run_name(row: str) -> str:
    if row == "MC-BMN, VQA CNN":
        return "vqg-mc-bmn-vqa-cnn"
    return "vqg-" + ("mc-bmn" if row in ("MC-BMN", "MC-SMN") else row.lower().replace("+", "-"))


def trained(row: str) -> Path:
    """The row's run, trained (or resumed) once under benchmarks/runs/."""
    from mumo.runs import Run
    from mumo.tasks import get_task

    task = get_task("vqg")
    overrides = ROWS[row][0]
    out = RUNS / run_name(row)
    key = {"cache_version": CACHE_VERSION, "preset": PRESET, "overrides": overrides}
    key_file = RUNS / f"{out.name}.key.json"
    if out.exists() and (not key_file.exists() or json.loads(key_file.read_text()) != key):
        print(f"{out} was trained by older code or other overrides; training it again", file=sys.stderr)
        shutil.rmtree(out)
    cfg = task.load_config(PRESET, overrides)
    done = Run(out).finished_epochs if out.exists() else 0
    if done == cfg.train.epochs:
        return out
    RUNS.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key) + "\n")
    print(f"training {row} into {out}" + (" (resuming)" if done else ""), file=sys.stderr)
    task.train(None if done else cfg, out, resume=bool(done), progress=False)
    return out


def evaluated(row: str, run: Path, images: int | None) -> dict:
    """The row's test figures, cached beside its run (keyed by the evaluation's settings)."""
    from mumo.tasks import get_task

    mc = ROWS[row][1]
    cache = RUNS / f"{run.name}{'' if mc else '-smn'}.eval.json"
    key = {"cache_version": CACHE_VERSION, "samples": SAMPLES, "images": images, "mc": mc,
           "trained": (run / "state.json").stat().st_mtime}  # fmt: skip
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["figures"]
    task = get_task("vqg")
    opts = task.evaluation_options(split="test", images=images, mc_samples=SAMPLES, device="cpu")
    from dataclasses import replace

    opts = replace(opts, mc=mc, keep_questions=row in LOOP_ROWS)
    figures = task.evaluate(run, opts).to_dict()
    cache.write_text(json.dumps({"key": key, "figures": figures}) + "\n")
    return figures


def train_minutes(run: Path) -> float:
    from mumo.runs import Run

    return round(Run(run).state["history"][-1]["train_seconds"] / 60, 2)


def close_the_loop(figures: dict, images: int | None) -> dict | None:
    """A scenes VQA run answers MC-BMN's valid, answerable questions (scored against the executor) and the true
    questions of the same images."""
    import mumo
    from mumo.data.scenes.grammar import parse
    from mumo.data.scenes.graph import Scene
    from mumo.data.scenes.program import ProgramError, execute
    from mumo.data.vqg.scenes import load_scenes_vqg
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import scenes_root

    vqa = next((RUNS / n for n in ("scenes-mcan-masks-20", "scenes-mcan-masks") if (RUNS / n / "state.json").exists()),
               None)  # fmt: skip
    if vqa is None:
        print("no scenes VQA run in benchmarks/runs (run benchmarks/scenes.py): loop not closed", file=sys.stderr)
        return None
    predictor = mumo.load(vqa, device="cpu")
    records = {r.image_id: r for r in load_scenes_vqg(scenes_root(load_vqg_config(PRESET)), "test",
                                                       max_images=images or 0)}  # fmt: skip
    generated, truth = [], []
    for texts in figures["generated"]:
        for image_id, text in zip(figures["image_ids"], texts, strict=True):
            record = records[image_id]
            program = parse(text)
            if program is None:
                continue
            try:
                answer = execute(program, Scene.from_graph(record.scene, int(record.scene["image_size"])))
            except ProgramError:
                continue
            generated.append(predictor.predict(record.image, text, ood_check=False).best_guess == answer)
    for record in records.values():
        for q in record.scene["questions"]:
            truth.append(predictor.predict(record.image, q["question"], ood_check=False).best_guess == q["answer"])
    return {
        "vqa_run": vqa.name,
        "generated_questions": len(generated), "accuracy_on_generated": sum(generated) / max(len(generated), 1),
        "true_questions": len(truth), "accuracy_on_true": sum(truth) / max(len(truth), 1),
    }  # fmt: skip


def length_baseline(figures: dict, images: int | None) -> float:
    """AUROC for the bad questions of the question's word count alone: the baseline an uncertainty score must beat
    (the longer relational questions fail most often)."""
    import torch

    from mumo.data.vqg.scenes import load_scenes_vqg
    from mumo.metrics.uncertainty import misclassification_auroc
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import scenes_root
    from mumo.tasks.vqg.evaluate import check_question

    records = {r.image_id: r for r in load_scenes_vqg(scenes_root(load_vqg_config(PRESET)), "test",
                                                       max_images=images or 0)}  # fmt: skip
    words, good = [], []
    for texts in figures["generated"]:
        for image_id, text in zip(figures["image_ids"], texts, strict=True):
            words.append(float(len(text.split())))
            good.append(check_question(text, records[image_id].scene)[1])
    return misclassification_auroc(torch.tensor(words), torch.tensor(good))


def generation_latency(run: Path, images: int = 20) -> dict:
    """Seconds per image of ``generate`` with T = 5 after loading (median and max over the first test images)."""
    import statistics

    import mumo
    from mumo.tasks.vqg.config import load_vqg_config
    from mumo.tasks.vqg.data import scenes_root

    files = sorted((scenes_root(load_vqg_config(PRESET)) / "images" / "test").glob("*.png"))[:images]
    gen = mumo.load(run, device="cpu")
    gen.generate(files[0], samples=SAMPLES)  # warm-up
    seconds = []
    for f in files:
        t0 = time.perf_counter()
        gen.generate(f, samples=SAMPLES)
        seconds.append(time.perf_counter() - t0)
    return {"images": len(files), "median_seconds": statistics.median(seconds), "max_seconds": max(seconds)}


def n_cues(row: str) -> int:
    return 4 if row in ALL_CUES else row.count("+") + 1


def plot_spread(rows: dict, path: Path) -> None:
    """The seed's variance against the number of cues, from mumo's runs: the std over the T samples of each row's
    BLEU-1 and its questions' mean epistemic uncertainty."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for ax, (label, get) in zip(axes, (
        ("std of BLEU-1 over the T samples", lambda f: f["caption_metrics"]["BLEU-1"]["std"]),
        ("mean epistemic uncertainty (nats / word)", lambda f: f["uncertainty"]["epistemic"]),
    ), strict=True):  # fmt: skip
        for row, f in rows.items():
            if row == "MC-SMN":
                continue
            x = n_cues(row)
            ax.scatter(x, get(f), color="C3" if row == "MC-BMN" else ("C1" if row == "gaussian" else "C0"))
            ax.annotate(row, (x, get(f)), fontsize=6, xytext=(3, 2), textcoords="offset points")
        ax.set_xlabel("number of cues (image counts as one)")
        ax.set_ylabel(label)
        ax.set_xticks([1, 2, 3, 4])
        ax.grid(alpha=0.3)
    fig.suptitle("Spread of MC-dropout samples against the number of cues (mumo scenes test)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def markdown(results: dict) -> str:
    names = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
    head = "| row | " + " | ".join(f"{n} max / mean ± std" for n in names) + " | minutes |\n|---|" + "---|" * 8
    lines = [head]
    for row, f in results["rows"].items():
        cells = []
        for n in names:
            s = f["caption_metrics"][n]
            cells.append("n/a" if s["mean"] is None else f"{100 * s['max']:.1f} / {100 * s['mean']:.2f} ± "
                                                        f"{100 * s['std']:.2f}")  # fmt: skip
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {results['train_minutes'].get(row, '')} |")
    out = "# MC-BMN on mumo scenes: the cue ablation (benchmarks/vqg.py)\n\nScores × 100, test split, T = "
    out += f"{SAMPLES} samples.\n\n" + "\n".join(lines) + "\n\n| row | valid | answerable | bad | AUROC entropy | "
    out += "AUROC epistemic | AUROC surprise | AUROC length (baseline) | distinct / image |\n"
    out += "|---|---|---|---|---|---|---|---|---|\n"
    for row, f in results["rows"].items():
        a = f.get("bad_question_auroc", {})
        out += (f"| {row} | {f.get('validity', float('nan')):.4f} | {f.get('answerability', float('nan')):.4f} | "
                f"{f.get('bad_questions', '')} | {a.get('entropy') or float('nan'):.3f} | "
                f"{a.get('epistemic') or float('nan'):.3f} | {a.get('surprise') or float('nan'):.3f} | "
                f"{a.get('length_baseline') or float('nan'):.3f} | "
                f"{f['diversity']['distinct_per_image']:.2f} |\n")  # fmt: skip
    for row, lp in results.get("loop", {}).items():
        if lp:
            out += (f"\nClosing the loop for {row} ({lp['vqa_run']}): accuracy {lp['accuracy_on_generated']:.4f} on "
                    f"{lp['generated_questions']} valid generated questions, {lp['accuracy_on_true']:.4f} on the "
                    f"{lp['true_questions']} true questions of the same images.\n")  # fmt: skip
    if results.get("generate_latency"):
        lat = results["generate_latency"]
        out += (f"\n`generate` with T = {SAMPLES} after loading: median {lat['median_seconds']:.3f} s per image, max "
                f"{lat['max_seconds']:.3f} s ({lat['images']} images).\n")  # fmt: skip
    out += "\nTargets met: " + json.dumps(results.get("meets_targets", {})) + "\n"
    return out


def targets(results: dict) -> dict:
    rows, out = results["rows"], {}
    if "MC-BMN" in rows:
        bmn = rows["MC-BMN"]
        rivals = [r for r in rows if (r not in ALL_CUES and n_cues(r) <= 3) or r == "MC-SMN"]
        for metric in ("BLEU-1", "METEOR", "CIDEr"):
            mean = bmn["caption_metrics"][metric]["mean"]
            if mean is not None and rivals:
                out[f"{metric}_above_every_1_2_cue_row_and_MC-SMN"] = all(
                    mean > rows[r]["caption_metrics"][metric]["mean"] for r in rivals
                    if rows[r]["caption_metrics"][metric]["mean"] is not None)  # fmt: skip
        out["validity"] = bmn.get("validity", 0) >= TARGETS["validity"]
        out["answerability"] = bmn.get("answerability", 0) >= TARGETS["answerability"]
        auroc = (bmn.get("bad_question_auroc") or {}).get("entropy")
        out["bad_question_auroc"] = None if auroc is None else auroc >= TARGETS["bad_question_auroc"]
        minutes = results["train_minutes"].get("MC-BMN")
        out["trains_within_10_minutes"] = minutes is not None and minutes <= TARGETS["mc_bmn_train_minutes"]
        if results.get("generate_latency"):
            out["generate_within_1_second"] = results["generate_latency"]["max_seconds"] <= 1.0
        if "image" in rows:
            out["spread_smaller_with_all_cues"] = (
                bmn["caption_metrics"]["BLEU-1"]["std"] < rows["image"]["caption_metrics"]["BLEU-1"]["std"]
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS),
                        help="the rows to train (or resume) and evaluate, in this order")  # fmt: skip
    parser.add_argument("--images", type=int, default=None, help="evaluate on the first N test images only")
    args = parser.parse_args()
    t0 = time.perf_counter()
    results: dict = {"preset": PRESET, "samples": SAMPLES, "targets": TARGETS, "rows": {}, "train_minutes": {},
                     "loop": {}}  # fmt: skip
    for row in args.rows:
        if row == "MC-BMN, VQA CNN" and not (RUNS / "scenes-mcan-masks-20" / "state.json").exists():
            print(f"{row}: no scenes-mcan-masks-20 run in benchmarks/runs (run benchmarks/scenes.py); skipped")
            continue
        run = trained(row)
        results["train_minutes"][row] = train_minutes(run)
        figures = evaluated(row, run, args.images)
        results["rows"][row] = {k: v for k, v in figures.items() if k not in ("generated", "image_ids", "image_files")}
        if row in LOOP_ROWS:
            results["loop"][row] = close_the_loop(figures, args.images)
            results["rows"][row]["bad_question_auroc"]["length_baseline"] = length_baseline(figures, args.images)
        if row == "MC-BMN":
            results["generate_latency"] = generation_latency(run)
        s = figures["caption_metrics"]
        print(row, f"BLEU-1 {s['BLEU-1']['mean']:.4f} METEOR {s['METEOR']['mean'] or float('nan'):.4f} "
              f"CIDEr {s['CIDEr']['mean']:.4f} valid {figures.get('validity')} "
              f"({results['train_minutes'][row]} min)", flush=True)  # fmt: skip
    results["meets_targets"] = targets(results)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vqg.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "vqg.md").write_text(markdown(results))
    plot_spread(results["rows"], RESULTS / "vqg_spread.png")
    print(markdown(results))


if __name__ == "__main__":
    main()
