"""How long one ``mumo predict`` call takes, today's code against an earlier revision, in one run.

Checks out an earlier revision (default: 421c73c, the last one that imported scikit-learn and SciPy through the
uncertainty metrics whenever the predictor was imported) into a temporary git worktree, trains one tiny run
with today's code, then times ``mumo predict RUN --image X --question Q --json`` as a fresh process from each
source tree, alternating the two so that a busy moment hurts both alike. Also records which heavy libraries
each call imported.

    python benchmarks/predict_latency.py [--rev 421c73c] [--repeats 7]
    # writes benchmarks/results/predict_latency.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import TINY_MCAN

ROOT = Path(__file__).resolve().parents[1]
TINY = [*TINY_MCAN, "train.epochs=1", "data.max_train_images=100"]
HEAVY = ["sklearn", "scipy", "matplotlib", "pandas", "librosa", "cv2", "av", "tensorboard", "accelerate"]
# ``python -c`` body: run the CLI, then report (on stderr's last line) which heavy libraries it imported
PROBE = (
    "import sys, json\n"
    "from mumo.cli.__main__ import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "finally:\n"
    f"    print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
)


def call(src: Path, args: list[str]) -> tuple[float, list[str]]:
    """Wall seconds of one ``mumo ARGS`` process run from source tree ``src``, and the heavy libraries it loaded."""
    env = {**os.environ, "PYTHONPATH": str(src), "TQDM_DISABLE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"mumo {' '.join(args)} (from {src}) failed:\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rev", default="421c73c", help="the earlier revision to compare with")
    parser.add_argument("--repeats", type=int, default=7, help="calls per source tree")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "predict_latency.json")
    opts = parser.parse_args()

    import easy_vqa

    from mumo.tasks import load_config
    from mumo.tasks.vqa.train import train_vqa

    with tempfile.TemporaryDirectory(prefix="mumo-latency-") as tmp:
        tmp = Path(tmp)
        old = tmp / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), opts.rev], check=True,
                       capture_output=True)  # fmt: skip
        try:
            run = tmp / "run"
            train_vqa(load_config("mcan-cpu", TINY), run, progress=False, evaluate_test=False)
            image = easy_vqa.get_test_image_paths()[0]
            args = ["predict", str(run), "--image", image, "--question", "what shape is in the image?", "--json"]
            trees = {"before": old / "src", "after": ROOT / "src"}
            seconds: dict[str, list[float]] = {k: [] for k in trees}
            imported: dict[str, list[str]] = {}
            for src in trees.values():  # warm the file cache and byte-code of both trees first
                call(src, args)
            for i in range(opts.repeats):
                for name, src in trees.items() if i % 2 == 0 else reversed(trees.items()):
                    s, imported[name] = call(src, args)
                    seconds[name].append(s)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], capture_output=True)

    rows = {
        name: {
            "median_s": statistics.median(v),
            "min_s": min(v),
            "max_s": max(v),
            "seconds": v,
            "heavy_imports": imported[name],
        }
        for name, v in seconds.items()
    }
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    result = {
        "what": "wall seconds of one `mumo predict RUN --image X --question Q --json` process (tiny MCAN run, CPU)",
        "before": opts.rev,
        "after": head.stdout.strip() + " (+ working tree)",
        "repeats": opts.repeats,
        "threads": os.cpu_count(),
        **rows,
        "after_over_before": rows["after"]["median_s"] / rows["before"]["median_s"],
        "saved_s": rows["before"]["median_s"] - rows["after"]["median_s"],
    }
    for name in trees:
        r = rows[name]
        print(f"{name:6s} median {r['median_s']:.2f} s (min {r['min_s']:.2f}, max {r['max_s']:.2f}); "
              f"imports {', '.join(r['heavy_imports']) or 'none of ' + ', '.join(HEAVY)}")  # fmt: skip
    print(f"after / before = {result['after_over_before']:.3f} ({result['saved_s']:+.2f} s saved per call)")
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
