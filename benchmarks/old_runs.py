"""Runs written by an earlier mumo still evaluate, predict and score with identical numbers.

Checks out an earlier revision (default: 7f08b5c, the last one before the task packages, the Run object and
models checkpointed apart) into a temporary git worktree, trains small runs with ITS code through its CLI (a
plain VQA run, an attention-trained run whose checkpoint holds the old training wrapper, a lip-sync expert
under its old name ``syncnet``), asks its CLI for ``evaluate --json``, ``predict --json`` and ``sync --json``,
then asks today's CLI the same on the same run directories and compares every figure (timings aside). The VQA
runs are trained by today's code too, and the two runs' weights compared tensor by tensor.

    python benchmarks/old_runs.py [--rev 7f08b5c]    # writes benchmarks/results/old_runs.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import TINY_MCAN

ROOT = Path(__file__).resolve().parents[1]
TINY = [*TINY_MCAN, "train.epochs=2", "data.max_train_images=400"]


def mumo(src: Path, *args: str) -> str:
    """Run ``python -m mumo.cli`` from the source tree ``src`` (stdout; raises with stderr on failure)."""
    env = {**os.environ, "PYTHONPATH": str(src), "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-m", "mumo.cli", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"mumo {' '.join(args)} (from {src}) failed:\n{proc.stderr[-3000:]}")
    return proc.stdout


TIMINGS = {"seconds"}  # wall-clock figures, which differ between any two runs


def differences(a: object, b: object, path: str = "") -> list[str]:
    """Every place two JSON values differ (exact equality: the same numbers, not close ones), timings aside."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in set(a) ^ set(b)]
        same = (set(a) & set(b)) - TIMINGS
        return out + [d for k in same for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} then, {b!r} now"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="7f08b5c")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mumo-old-runs-"))
    old = work / "old"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.rev], check=True,
                   capture_output=True)  # fmt: skip
    try:
        return compare(old / "src", ROOT / "src", work, args.rev)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)


def same_weights(then: Path, now: Path) -> bool:
    """Whether two runs' last checkpoints hold the same tensors: the earlier single model.safetensors (a training
    wrapper's keys: the model under ``vqa.``) against today's model.safetensors plus the files beside it."""
    import torch
    from safetensors.torch import load_file

    def last(run: Path) -> Path:
        return run / "checkpoints" / json.loads((run / "state.json").read_text())["last"]

    old = load_file(last(then) / "model.safetensors")
    new: dict = {}
    for f in sorted(last(now).glob("*.safetensors")):
        if not f.name.startswith("optimizer"):
            tensors = load_file(f)
            prefix = "vqa." if f.stem == "model" and any(k.startswith("vqa.") for k in old) else ""
            new |= {prefix + k: v for k, v in tensors.items()}
    return set(old) == set(new) and all(torch.equal(old[k], new[k]) for k in old)


def clip_video(faces: Path, path: Path) -> Path:
    """A 3-s MP4 the face detector can read: a real face photo (scikit-image's astronaut) over the speech of the
    talking-faces set's test clips."""
    import numpy as np
    from skimage import data as skdata

    from mumo.data.av.audio import load_audio
    from mumo.data.av.clips import read_filelist
    from mumo.data.av.video import write_video

    audio = np.concatenate([load_audio(faces / e / "audio.wav").numpy() for e in read_filelist(faces, "test")])
    n = min(75, len(audio) // 640)  # frames at 25 fps, 640 samples each at 16 kHz
    face = skdata.astronaut()[::2, ::2]  # (256, 256, 3)
    return write_video(path, np.stack([face] * n), fps=25, audio=audio[: n * 640], audio_rate=16000)


def compare(old: Path, new: Path, work: Path, rev: str) -> int:
    import easy_vqa

    image = easy_vqa.get_test_image_paths()[0]
    checks: dict[str, dict] = {}

    def check(name: str, *cli: str) -> None:
        then, now = json.loads(mumo(old, *cli)), json.loads(mumo(new, *cli))
        diff = differences(then, now)
        checks[name] = {"command": "mumo " + " ".join(cli), "identical": not diff, "differences": diff[:20]}
        print(f"{name:32s} {'identical' if not diff else f'{len(diff)} differences'}")

    for name, extra in (("vqa", []), ("vqa-aan", ["train.attention_loss=aan"])):
        run = work / name
        mumo(old, "train", "vqa", "--out", str(run), *TINY, *extra)
        # training itself: today's code, the same command, ends with the same weights (split into files per model)
        mumo(new, "train", "vqa", "--out", str(work / f"{name}-now"), *TINY, *extra)
        same = same_weights(run, work / f"{name}-now")
        checks[f"{name}: train"] = {"command": f"mumo train vqa {' '.join(extra)}", "identical": same}
        print(f"{name + ': train':32s} {'identical weights' if same else 'OTHER WEIGHTS'}")
        check(f"{name}: evaluate", "evaluate", str(run), "--json")
        check(f"{name}: evaluate --mc-samples --ood", "evaluate", str(run), "--mc-samples", "5", "--ood", "noise",
              "--density-images", "200", "--json")  # fmt: skip
        check(f"{name}: predict", "predict", str(run), "--image", str(image), "--question", "What shape is in the "
              "image?", "--mc-samples", "10", "--image-uncertainty", "--json")  # fmt: skip

    faces = work / "faces"
    mumo(old, "data", "talking-faces", "--out", str(faces), "--clips", "24", "--speakers", "6")
    sync = work / "sync"
    mumo(old, "train", "syncnet", "--data", str(faces), "--out", str(sync), "train.epochs=1",
         "data.pairs_per_epoch=64")  # fmt: skip
    video = clip_video(faces, work / "clip.mp4")
    check("sync (old 'syncnet' run): sync", "sync", str(sync), "--video", str(video), "--mc-samples", "5", "--json")

    result = {"old_revision": rev, "checks": checks, "all_identical": all(c["identical"] for c in checks.values())}
    out = ROOT / "benchmarks" / "results" / "old_runs.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"all identical: {result['all_identical']}; wrote {out}")
    return 0 if result["all_identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
