"""Benchmark: speech to lips (issue #24): the four training variants scored by an expert none of them trained with.

1. Data: `mumo data talking-faces`, 600 clips (benchmarks/sync_expert.py's set), speakers disjoint between splits.
2. Experts: the `sync-cpu` expert the generators train against (benchmarks/sync_expert.py's run), and an
   independent scorer of the same recipe with another seed (`train.seed=1`), never used in training: the
   generators are not graded by their own discriminator.
3. Generators: `wav2lip-cpu` in the four variants (`objective.variant=l1 | lipgan | expert | expert+gan`), the
   same data, seed and number of epochs.
4. Each is evaluated on the test split's clips (held-out speakers) by the scorer (`mumo evaluate RUN --scorer`):
   in sync (the clip's own audio: LSE-D, LSE-C, offset; PSNR / SSIM against the real frames), dubbed (another
   speaker's audio: LSE only), the real clips under the same scorer beside them, and the MC-dropout spread
   checked against each frame's error. The `expert` run's contact sheet is saved beside the results.

Targets (the issue's acceptance): `expert` has lower LSE-D and higher LSE-C than `l1` and `lipgan` in both
settings; `expert` against real clips LSE-C >= 0.95x and LSE-D <= 1.05x, offsets within +-1 frame on >= 95 % of
clips; `expert`'s PSNR / SSIM not worse than `l1`'s by more than 1 dB / 0.02. (The astronaut-with-espeak
example and the speed of `mumo lipsync` are measured once that command exists.)

Every training and evaluation is cached under benchmarks/runs/ and resumed where it stopped, so the table can be
built over several sessions; results are written once every requested variant is evaluated.

    python benchmarks/lipsync_gen.py [--variants l1 expert ...] [--epochs 8] [--clips N]
    # writes benchmarks/results/lipsync_gen.{json,md} and lipsync_gen_sheet.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _common import RESULTS, RUNS, cached_task_run
from sync_expert import talking_faces
from sync_expert import trained as trained_expert

CACHE_VERSION = 1
CLIPS = 600  # the talking-face set of benchmarks/sync_expert.py
EXPERT_EPOCHS = 24  # sync-cpu's recipe
VARIANTS = ("l1", "lipgan", "expert", "expert+gan")
PRESET = "wav2lip-cpu"


def scorer_run(root: Path) -> Path:
    """The independent scorer: the sync-cpu recipe with train.seed=1 (cached; resumes)."""
    from mumo.runs import Run
    from mumo.tasks import get_task

    task = get_task("sync")
    out = RUNS / f"sync-cpu-{root.name}-{EXPERT_EPOCHS}ep-seed1"
    done = Run(out).finished_epochs if out.exists() else 0
    if done == EXPERT_EPOCHS:
        return out
    cfg = task.load_config("sync-cpu", [f"data.root={root}", f"train.epochs={EXPERT_EPOCHS}", "train.seed=1"])
    print(f"training the independent scorer into {out}" + (" (resuming)" if done else ""), file=sys.stderr)
    task.train(None if done else cfg, out, resume=bool(done), progress=False)
    return out


def generator_run(variant: str, root: Path, expert: Path, epochs: int) -> Path:
    """One variant of the generator (cached under its overrides; resumes)."""
    overrides = [f"data.root={root}", f"objective.expert={expert}", f"objective.variant={variant}",
                 f"train.epochs={epochs}"]  # fmt: skip
    out = RUNS / f"lipsync-{variant.replace('+', '-')}"
    return cached_task_run("lipsync", out, PRESET, overrides, epochs, CACHE_VERSION)


def evaluated(run: Path, scorer: Path, clips: int | None, sheet: Path | None) -> dict:
    """The run's test figures by the scorer, cached beside it (keyed by the evaluation's settings)."""
    from mumo.tasks import get_task

    cache = RUNS / f"{run.name}.eval.json"
    key = {"cache_version": CACHE_VERSION, "scorer": str(scorer), "clips": clips,
           "trained": (run / "state.json").stat().st_mtime}  # fmt: skip
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key and (sheet is None or sheet.exists()):
            return saved["figures"]
    task = get_task("lipsync")
    opts = task.evaluation_options(scorer=scorer, split="test", clips=clips, sheet=sheet, device="cpu",
                                   progress=False)  # fmt: skip
    figures = task.evaluate(run, opts).to_dict()
    cache.write_text(json.dumps({"key": key, "figures": figures}) + "\n")
    return figures


def targets(rows: dict) -> dict:
    out: dict = {}
    if "expert" not in rows:
        return out
    e = rows["expert"]
    for rival in ("l1", "lipgan"):
        if rival not in rows:
            continue
        r = rows[rival]
        for setting in ("in_sync", "dubbing"):
            if "generated" in e[setting] and "generated" in r[setting]:
                eg, rg = e[setting]["generated"], r[setting]["generated"]
                out[f"{setting}_lse_d_below_{rival}"] = eg["lse_d"] < rg["lse_d"]
                out[f"{setting}_lse_c_above_{rival}"] = eg["lse_c"] > rg["lse_c"]
    gen, real = e["in_sync"]["generated"], e["in_sync"]["real"]
    out["lse_c_at_least_0.95x_real"] = gen["lse_c"] >= 0.95 * real["lse_c"]
    out["lse_d_at_most_1.05x_real"] = gen["lse_d"] <= 1.05 * real["lse_d"]
    out["offset_within_one_frame_95pct"] = gen["within_one_frame"] >= 0.95
    if "l1" in rows:
        q, q1 = e["in_sync"]["image_quality"], rows["l1"]["in_sync"]["image_quality"]
        out["psnr_within_1db_of_l1"] = q["psnr"] >= q1["psnr"] - 1.0
        out["ssim_within_0.02_of_l1"] = q["ssim"] >= q1["ssim"] - 0.02
    return out


def markdown(results: dict) -> str:
    lines = [
        "# Speech to lips: the four variants scored by an independent expert (benchmarks/lipsync_gen.py)",
        "",
        f"{results['test_clips']} test clips (held-out speakers), scorer `{results['scorer']}` (sync-cpu, seed 1, "
        f"never trained against); the generators trained against `{results['expert']}`.",
        "",
        "| variant | in sync LSE-D / LSE-C | within ±1 frame | dubbed LSE-D / LSE-C | PSNR / SSIM | lower half "
        "PSNR / SSIM | uncertainty vs error (Spearman) | minutes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    real = None
    for variant, f in results["rows"].items():
        g, q, u, d = f["in_sync"]["generated"], f["in_sync"]["image_quality"], f["uncertainty"], f["dubbing"]
        real = f["in_sync"]["real"]
        dub = f"{d['generated']['lse_d']:.3f} / {d['generated']['lse_c']:.3f}" if "generated" in d else "n/a"
        rho = u.get("spearman_error")
        lines.append(
            f"| {variant} | {g['lse_d']:.3f} / {g['lse_c']:.3f} | {g['within_one_frame']:.0%} | {dub} | "
            f"{q['psnr']:.2f} / {q['ssim']:.3f} | {q['psnr_lower']:.2f} / {q['ssim_lower']:.3f} | "
            f"{'n/a' if rho is None else f'{rho:.3f}'} | {results['train_minutes'][variant]} |"
        )
    if real is not None:
        lines.append(f"| real clips | {real['lse_d']:.3f} / {real['lse_c']:.3f} | {real['within_one_frame']:.0%} | "
                     "— | — | — | — | — |")  # fmt: skip
    lines += ["", "Targets met: " + json.dumps(results["meets_targets"]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--epochs", type=int, default=8, help="generator epochs (1,600 windows each)")
    parser.add_argument("--clips", type=int, default=None, help="evaluate on the first N test clips only")
    args = parser.parse_args()
    t0 = time.perf_counter()
    root = talking_faces(CLIPS)
    expert = trained_expert(root, EXPERT_EPOCHS, [])
    scorer = scorer_run(root)
    results: dict = {"preset": PRESET, "epochs": args.epochs, "expert": expert.name, "scorer": scorer.name,
                     "rows": {}, "train_minutes": {}}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    for variant in args.variants:
        run = generator_run(variant, root, expert, args.epochs)
        from mumo.runs import Run

        results["train_minutes"][variant] = round(Run(run).state["history"][-1]["train_seconds"] / 60, 1)
        sheet = RESULTS / "lipsync_gen_sheet.png" if variant == "expert" else None
        figures = evaluated(run, scorer, args.clips, sheet)
        results["rows"][variant] = {k: v for k, v in figures.items() if k != "per_clip"}
        results["test_clips"] = figures["clips"]
        print(variant, json.dumps(figures["in_sync"]["generated"]), flush=True)
    results["meets_targets"] = targets(results["rows"])
    results["seconds"] = round(time.perf_counter() - t0, 1)
    (RESULTS / "lipsync_gen.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "lipsync_gen.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
