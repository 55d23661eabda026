"""Shared helpers for the benchmarks: a trained default easy-VQA run, cached under benchmarks/runs/."""

from __future__ import annotations

import sys
from pathlib import Path

RUNS = Path(__file__).parent / "runs"
RESULTS = Path(__file__).parent / "results"


def trained_run(name: str, overrides: list[str]) -> Path:
    """Train ``mcan-cpu`` with ``overrides`` into benchmarks/runs/NAME once; later calls reuse it."""
    from mumo.config import load_config
    from mumo.tasks.vqa import train_vqa
    from mumo.train.checkpoint import read_state

    out = RUNS / name
    if (out / "state.json").exists():
        cfg = load_config("mcan-cpu", overrides)
        if len(read_state(out)["history"]) == cfg.train.epochs:
            return out
        print(f"resuming unfinished benchmark run {out}", file=sys.stderr)
        train_vqa(None, out, resume=True, progress=False, evaluate_test=False)
        return out
    print(f"training {name} ({' '.join(overrides) or 'default preset'}) into {out}", file=sys.stderr)
    train_vqa(load_config("mcan-cpu", overrides), out, progress=False, evaluate_test=False)
    return out
