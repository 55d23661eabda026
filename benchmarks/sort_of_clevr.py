"""Benchmark: MCAN on Sort-of-CLEVR, the relation-network paper's 9,800 / 200 split (issue #3).

Target: relational accuracy >= 95 % and non-relational >= 99 % on the 200 test images (relation
networks: > 94 % on both; CNN+MLP plateaus at 63 % relational). Records the learning curve (val
relational / non-relational accuracy per epoch), wall time and the test figures.

    python benchmarks/sort_of_clevr.py [--epochs N] [--name NAME] [key=value ...]   # writes results/NAME.{json,png}
    python benchmarks/sort_of_clevr.py --from-json [--name NAME]   # redo the projection and plot from the saved figures

Recorded runs: ``sort_of_clevr`` (the mcan-cpu preset, 24 epochs, measured when pooling still rounded down: a
4x4 grid at 75 px), ``sort_of_clevr_hypercolumn`` (``--epochs 12 model.cnn_skip=true model.grid_position=true``,
5x5 grid) and ``sort_of_clevr_masks``, the ``mcan-sort-of-clevr`` preset's recipe::

    python benchmarks/sort_of_clevr.py --epochs 16 --name sort_of_clevr_masks model.cnn_skip=true \
        model.grid_position=true model.layers=2 model.flat_glimpses=3 model.answer_mlp=128 \
        objective.attention_loss=masks objective.attention_weight=1.0
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from _common import RESULTS


def main() -> None:
    from mumo.data.vqa.sort_of_clevr import FAMILIES
    from mumo.tasks import load_config
    from mumo.tasks.vqa.train import train_vqa

    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--from-json", action="store_true", help="only redo the projection and plot")
    parser.add_argument("--name", default="sort_of_clevr", help="results file stem under benchmarks/results/")
    parser.add_argument(
        "--keep", type=Path, help="train into this run directory and keep it (default: a temporary one, deleted)"
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.from_json:
        path = RESULTS / f"{args.name}.json"
        result = summarize(json.loads(path.read_text()), args.name)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["projection"], indent=2))
        return
    overrides = [
        "data.name=sort-of-clevr", "data.image_size=75", f"train.epochs={args.epochs}", "train.warmup_epochs=1",
        f"train.decay_epochs=[{max(1, args.epochs - 3)},{max(2, args.epochs - 1)}]", *args.overrides,
    ]  # fmt: skip
    run = args.keep or Path(tempfile.mkdtemp(prefix="mumo-soc-")) / "run"
    t0 = time.perf_counter()
    summary = train_vqa(load_config("mcan-cpu", overrides), run, progress=False)
    wall = time.perf_counter() - t0
    from mumo.runs import Run

    history = Run(run).state["history"]
    from mumo.tasks.vqa.accuracy import evaluate_split
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    cfg = Run(run).config(RunConfig)
    test = evaluate_split(load_model(run), load_data(cfg).test)
    result = {
        "overrides": overrides,
        "epochs": len(history),
        "wall_seconds": round(wall, 1),
        "train_questions_per_second": round(summary["train_samples_per_second"], 1),
        "test_accuracy": test["accuracy"],
        "test_relational": test["accuracy_relational"],
        "test_non_relational": test["accuracy_non_relational"],
        "test_by_family": test["accuracy_by_type"],
        "val_curve": [
            {
                "epoch": h["epoch"] + 1,
                "relational": round(h["accuracy_relational"], 4),
                "non_relational": round(h["accuracy_non_relational"], 4),
                "by_family": {f: round(h[f"accuracy_{f}"], 4) for f in FAMILIES if f"accuracy_{f}" in h},
                "train_seconds": round(h["train_seconds"], 1),
            }
            for h in history
        ],
        "targets": {"relational": 0.95, "non_relational": 0.99},
        "meets_targets": test["accuracy_relational"] >= 0.95 and test["accuracy_non_relational"] >= 0.99,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = summarize(result, args.name)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep:
        shutil.rmtree(run.parent, ignore_errors=True)


def epochs_to_target(curve: list[dict], key: str, target: float) -> float | None:
    """Epochs the trend of the second half of the curve needs to reach ``target``: a least-squares line of
    accuracy against log(epoch) (learning curves flatten roughly like that), solved for the target.
    None when the trend is flat, falling or needs more than 10,000 epochs (out of reach at this rate)."""
    import numpy as np

    half = curve[len(curve) // 2 :]
    if len(half) < 2:
        return None
    x = np.log([c["epoch"] for c in half])
    y = np.array([c[key] for c in half])
    slope, intercept = np.polyfit(x, y, 1)
    if slope <= 1e-4:
        return None
    log_epochs = (target - intercept) / slope
    return float(np.exp(log_epochs)) if log_epochs <= np.log(1e4) else None


def summarize(result: dict, name: str = "sort_of_clevr") -> dict:
    """Add the projected epochs / hours to the targets and plot the learning curve (results/NAME.png)."""
    from matplotlib.figure import Figure

    curve = result["val_curve"]
    per_epoch = curve[-1]["train_seconds"] / curve[-1]["epoch"]
    projection = {}
    for key, target in result["targets"].items():
        e = epochs_to_target(curve, key, target)
        projection[key] = {
            "epochs": None if e is None else round(e),
            "hours": None if e is None else round(e * per_epoch / 3600, 1),
        }
    result["projection"] = {"method": "val accuracy ~ a + b log(epoch), fitted on the second half of the curve",
                            "seconds_per_epoch": round(per_epoch, 1), **projection}  # fmt: skip
    fig = Figure(figsize=(6, 3.6))
    ax = fig.subplots()
    epochs = [c["epoch"] for c in curve]
    for key, target in result["targets"].items():
        line = ax.plot(epochs, [c[key] for c in curve], marker="o", label=f"val {key.replace('_', '-')}")[0]
        ax.axhline(target, ls="--", color=line.get_color(), lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_title(f"MCAN on Sort-of-CLEVR ({name}); dashed: targets")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    return result


if __name__ == "__main__":
    main()
