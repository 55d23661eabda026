"""Benchmark: the main job, `mumo train vqa` with no options (MCAN CPU preset on easy-VQA).

Target (issue #2): test accuracy >= 99.0 % within 15 minutes wall time on 2 CPU cores.
Runs the real console command in a subprocess, times it end to end (data loading, training,
per-epoch validation and checkpoints, final test evaluation), then reads the run's figures.

    python benchmarks/train_easy_vqa.py            # writes benchmarks/results/easy_vqa.json
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGET_ACCURACY = 0.99
TARGET_SECONDS = 15 * 60


def main() -> int:
    out_file = Path(__file__).parent / "results" / "easy_vqa.json"
    run_dir = Path(tempfile.mkdtemp(prefix="mumo-bench-")) / "run"
    cmd = [shutil.which("mumo") or "mumo", "train", "vqa", "--out", str(run_dir), "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return proc.returncode
    from mumo.runs import Run

    summary = json.loads(proc.stdout)
    state = Run(run_dir).state
    result = {
        "command": "mumo train vqa",
        "preset": "mcan-cpu",
        "test_accuracy": summary["test_accuracy"],
        "test_accuracy_by_type": summary["test_accuracy_by_type"],
        "best_val_accuracy": summary["best_val_accuracy"],
        "best_epoch": summary["best_epoch"],
        "epochs": len(state["history"]),
        "wall_seconds": round(wall, 1),
        "train_seconds": round(summary["train_seconds"], 1),
        "train_questions_per_second": round(summary["train_samples_per_second"], 1),
        "val_accuracy_per_epoch": [round(h["accuracy"], 4) for h in state["history"]],
        "targets": {"test_accuracy": TARGET_ACCURACY, "wall_seconds": TARGET_SECONDS},
        "meets_targets": summary["test_accuracy"] >= TARGET_ACCURACY and wall <= TARGET_SECONDS,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
    }
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    shutil.rmtree(run_dir.parent, ignore_errors=True)
    return 0 if result["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
