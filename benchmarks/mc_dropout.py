"""Benchmark: cost of T = 20 MC-dropout samples as a ratio to one deterministic pass (issue #4).

On the default easy-VQA model (`mcan-cpu`), in one run and on the same batches: one deterministic
forward pass, the fast path (trunk once, T passes batched through the stochastic head) and the naive
loop (T full passes). Target: fast path <= 3x one pass (the naive loop is about 20x). Also checks
that the two paths agree sample for sample.

    python benchmarks/mc_dropout.py [--run RUN]     # writes benchmarks/results/mc_dropout.json
    python benchmarks/mc_dropout.py --device cuda   # on a GPU: benchmarks/results/mc_dropout_cuda.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from _common import RESULTS, trained_run

T = 20


def _time(fn, repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    fn()  # warm-up
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model
    from mumo.uncertainty.mc_dropout import mc_forward, mc_forward_naive

    parser = argparse.ArgumentParser()
    parser.add_argument("--run", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (auto: a GPU if there is one)")
    args = parser.parse_args()
    run = args.run or trained_run("easy-vqa-default", [])
    model = load_model(run, device=args.device)
    device = next(model.parameters()).device
    data = load_data(Run(run).config(RunConfig))
    rows = []
    with torch.no_grad():
        for n_images, repeats in ((1, 30), (8, 15), (32, 7), (128, 3)):
            batch = data.test.batch(torch.arange(n_images))
            if n_images == 1:  # one question about one image: an interactive predict call
                batch = type(batch)(batch.images, batch.tokens[:1], batch.image_index[:1], batch.targets[:1])
            batch = batch.to(device)
            model.eval()
            one = _time(lambda b=batch: model(b), repeats, device)
            for scope in ("all", "attflat"):  # attflat was called head (older result files)
                fast = _time(lambda b=batch, s=scope: mc_forward(model, b, num_samples=T, scope=s), repeats, device)
                naive = _time(
                    lambda b=batch, s=scope: mc_forward_naive(model, b, num_samples=T, scope=s),
                    max(1, repeats // 3),
                    device,
                )
                same = torch.allclose(
                    mc_forward(model, batch, num_samples=T, scope=scope),
                    mc_forward_naive(model, batch, num_samples=T, scope=scope),
                    atol=1e-5,
                )
                rows.append({
                    "scope": scope, "images": n_images, "questions": int(batch.tokens.shape[0]),
                    "one_pass_ms": round(one * 1e3, 2), "fast_ms": round(fast * 1e3, 2),
                    "naive_ms": round(naive * 1e3, 2), "fast_ratio": round(fast / one, 2),
                    "naive_ratio": round(naive / one, 2), "paths_agree": same,
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    result = {
        "model": str(run), "T": T, "device": str(device), "torch_threads": torch.get_num_threads(), "rows": rows,
        "target_fast_ratio": 3.0,
    }  # fmt: skip
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "mc_dropout.json" if device.type == "cpu" else f"mc_dropout_{device.type}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
