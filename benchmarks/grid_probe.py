"""Linear probe: what do a trained grid CNN's cell features say about the object in the cell? (issue #3)

For every object of the first Sort-of-CLEVR training images, take the features of the grid cell that
holds the object's centre and fit a logistic regression (2/3 of the objects) to predict the object's
colour (6 classes, chance 1/6) and shape (square or circle); report held-out accuracy. If colour is not
decodable, a model cannot pick out "the red object", whatever its co-attention does.

    python benchmarks/grid_probe.py RUN [RUN ...]   # prints and writes results/grid_probe.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from _common import RESULTS

N_IMAGES = 3000


def probe(run: Path) -> dict:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from mumo.data.vqa.sort_of_clevr import COLORS, IMAGE_SIZE, load_sort_of_clevr, read_records
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import sort_of_clevr_root
    from mumo.tasks.vqa.model import load_model

    cfg = Run(run).config(RunConfig)
    if cfg.data.name != "sort-of-clevr":
        raise SystemExit(f"{run} is not a Sort-of-CLEVR run")
    root = sort_of_clevr_root(cfg)
    split, _, _ = load_sort_of_clevr(root, split="train", image_size=cfg.data.image_size)
    records = read_records(root, "train")[:N_IMAGES]
    model = load_model(run).eval()
    with torch.no_grad():
        features, (rows, cols) = model.image_encoder(split.images[: len(records)].float() / 255)  # (B, R, C)
    x, colour, shape = [], [], []
    for i, record in enumerate(records):
        for obj in record["objects"]:
            cx, cy = obj["center"]
            cell = min(cy * rows // IMAGE_SIZE, rows - 1) * cols + min(cx * cols // IMAGE_SIZE, cols - 1)
            x.append(features[i, cell].numpy())
            colour.append(list(COLORS).index(obj["color"]))
            shape.append(obj["shape"] == "square")
    x = np.stack(x)
    fit = len(x) * 2 // 3
    result = {"run": str(run), "model": asdict(cfg.model),
              "max_train_images": cfg.data.max_train_images, "lr": cfg.train.lr,
              "images_per_batch": cfg.train.batch_size, "epochs": Run(run).finished_epochs,
              "grid": [rows, cols], "objects": len(x)}  # fmt: skip
    for name, y in (("colour", np.array(colour)), ("shape", np.array(shape))):
        clf = LogisticRegression(max_iter=2000).fit(x[:fit], y[:fit])
        result[f"{name}_probe_accuracy"] = round(float(clf.score(x[fit:], y[fit:])), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    results = []
    for run in args.runs:
        results.append(probe(run))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "model"}), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "grid_probe.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
