"""Shared helpers for the benchmarks: a trained default easy-VQA run, cached under benchmarks/runs/."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

RUNS = Path(__file__).parent / "runs"
# a small MCAN that trains in seconds, for benchmarks about the code path rather than the model (no LR schedule)
TINY_MCAN = [
    "model.hidden=32", "model.heads=2", "model.layers=1", "model.ff=64", "model.flat_mlp=32", "model.flat_out=64",
    "model.word_dim=32", "model.cnn_channels=[8,16,16,32]", "train.warmup_epochs=0", "train.decay_epochs=[]",
]  # fmt: skip
RESULTS = Path(__file__).parent / "results"
# Bump when a code change makes cached runs stale although their config is unchanged (2: grid CNN pooling
# rounds up, so 75-px images give a 5x5 grid, not 4x4).
CACHE_VERSION = 2


def trained_run(name: str, overrides: list[str], preset: str = "mcan-cpu") -> Path:
    """Train ``preset`` with ``overrides`` into benchmarks/runs/NAME once; later calls reuse it (and resume it
    where an earlier call stopped)."""
    from mumo.runs import Run
    from mumo.tasks import load_config
    from mumo.tasks.vqa.train import train_vqa

    out = RUNS / name
    key = {"cache_version": CACHE_VERSION, "overrides": overrides}
    if preset != "mcan-cpu":  # the keys of runs cached before presets were named stay valid
        key["preset"] = preset
    key_file = RUNS / f"{name}.key.json"  # beside the run: a run directory holds only what mumo writes
    if (out / "benchmark_key.json").exists():  # where earlier versions kept it
        RUNS.mkdir(parents=True, exist_ok=True)
        (out / "benchmark_key.json").replace(key_file)
    if out.exists() and (not key_file.exists() or json.loads(key_file.read_text()) != key):
        print(f"{out} was trained by older code or other overrides; training it again", file=sys.stderr)
        shutil.rmtree(out)
    done = Run(out).finished_epochs if out.exists() else 0
    if done == load_config(preset, overrides).train.epochs:
        return out
    if done:
        print(f"resuming unfinished benchmark run {out}", file=sys.stderr)
        train_vqa(None, out, resume=True, progress=False, evaluate_test=False)
        return out
    print(f"training {name} ({' '.join(overrides) or 'default preset'}) into {out}", file=sys.stderr)
    RUNS.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key) + "\n")
    train_vqa(load_config(preset, overrides), out, progress=False, evaluate_test=False)
    return out


def noise_augmented_run(level: float, member: int = 0) -> Path:
    """The default recipe trained with ``objective.augment_pixel_noise=level`` (0: none) as deep-ensemble member
    ``member``, cached under one name for every benchmark that uses it."""
    overrides = [f"objective.augment_pixel_noise={level}"] if level else []
    overrides += [f"train.member={member}"] if member else []
    if not level:
        name = f"easy-vqa-member{member}" if member else "easy-vqa-default"
    else:
        name = "easy-vqa-noise-aug" + ("" if level == 0.2 else f"{level}") + (f"-member{member}" if member else "")
    return trained_run(name, overrides)


def cached_task_run(task_name: str, out: Path, preset: str, overrides: list[str], epochs: int,
                    cache_version: int = CACHE_VERSION) -> Path:  # fmt: skip
    """A run of ``task_name`` trained from ``preset`` + ``overrides`` for ``epochs`` into ``out`` (cached: a run
    keyed by other overrides or an older cache version is trained again; an unfinished one resumes)."""
    from mumo.runs import Run
    from mumo.tasks import get_task

    key = {"cache_version": cache_version, "preset": preset, "overrides": overrides}
    key_file = RUNS / f"{out.name}.key.json"
    if out.exists() and (not key_file.exists() or json.loads(key_file.read_text()) != key):
        print(f"{out} was trained by older code or other overrides; training it again", file=sys.stderr)
        shutil.rmtree(out)
    done = Run(out).finished_epochs if out.exists() else 0
    if done == epochs:
        return out
    RUNS.mkdir(parents=True, exist_ok=True)
    key_file.write_text(json.dumps(key) + "\n")
    print(f"training {out.name}" + (" (resuming)" if done else ""), file=sys.stderr)
    task = get_task(task_name)
    task.train(None if done else task.load_config(preset, overrides), out, resume=bool(done), progress=False)
    return out
