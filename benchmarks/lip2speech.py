"""Benchmark: lips to speech (issue #25): the Lip2Wav-style model against its floor and a non-autoregressive
baseline on one generated speaker, the effect of aligning the recordings, and the speed of `mumo lip2speech`.

1. Data: `mumo data talking-faces --speakers 1`, 300 clips of one synthetic speaker (espeak-ng speech, rendered
   mouths), split 70/15/15 by clip: the test clips are sentences of the same speaker the model never saw.
2. Models, same data, seed and epochs: `lip2wav-cpu` (Tacotron-2 decoder with attention) and the same with
   `model.decoder=conv` (a non-autoregressive convolutional decoder of similar size).
3. Each is evaluated on the test clips (`mumo evaluate RUN`): STOI, ESTOI, PESQ narrow-band and mel L1 against the
   recordings, in the same run as the floor (the training clips' average mel, vocoded) and the vocoder's ceiling
   (the recording's own mel through the same Griffin-Lim); the attention's diagonality; the MC-dropout spread
   against the per-step error (Spearman, AUROC for the worst 10 % of steps). The learning curves (validation mel
   L1 per epoch) and the tacotron run's alignment and spectrogram plots and WAVs are saved.
4. `--align`: the test clips' recordings are shifted by known offsets (-4, -2, +2, +4 frames, in turn) in a copy of
   the test split; the tacotron model is scored on it without and with `--align EXPERT`, where EXPERT is the
   `sync-cpu` recipe trained on this speaker's training clips (it aligns, it never grades).
5. Speed: `mumo lip2speech` on a 10-s video of a real face (the generated speaker's rendered faces are not found
   by the Haar detector a video goes through), face tracking and Griffin-Lim included, against real time.

Targets (the issue's acceptance): STOI, ESTOI and PESQ of `lip2wav-cpu` clearly above the floor and not below the
conv baseline; STOI >= 0.60 and ESTOI >= 0.45; `mumo lip2speech` faster than real time on 2 cores.

Every data set, training and evaluation is cached under benchmarks/runs/ and resumed where it stopped, so the
table can be built over several sessions; results are written once everything asked for is done.

    python benchmarks/lip2speech.py [--epochs 20] [--clips 300] [--eval-clips N]
    # writes benchmarks/results/lip2speech.{json,md} and benchmarks/results/lip2speech/ (plots, WAVs)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from _common import RESULTS, RUNS, cached_task_run

CACHE_VERSION = 1
PRESET = "lip2wav-cpu"
DECODERS = ("tacotron", "conv")
OFFSETS = (-4, -2, 2, 4)  # frames the recordings are shifted by for the --align measurement
EXPERT_EPOCHS = 8


def one_speaker(clips: int, seed: int = 0) -> Path:
    """The single-speaker talking-face set (cached)."""
    from mumo.data.av.talking_faces import generate_talking_faces

    root = RUNS / f"talking-faces-1spk-{clips}-seed{seed}"
    if not (root / "meta.json").exists() or not json.loads((root / "meta.json").read_text()).get("complete"):
        print(f"generating {clips} clips of one speaker into {root}", file=sys.stderr)
        t0 = time.perf_counter()
        generate_talking_faces(root, clips=clips, speakers=1, seed=seed, progress=False)
        (root / "generation_seconds.txt").write_text(f"{time.perf_counter() - t0:.1f}\n")
    return root


def model_run(decoder: str, root: Path, epochs: int, extra: list[str]) -> Path:
    overrides = [f"data.root={root}", f"train.epochs={epochs}", f"model.decoder={decoder}", *extra]
    return cached_task_run(
        "lip2speech", RUNS / f"lip2speech-{decoder}-{root.name}", PRESET, overrides, epochs, CACHE_VERSION
    )


def expert_run(root: Path, extra: list[str]) -> Path:
    """The sync-cpu recipe on the speaker's training clips: it only aligns recordings to videos."""
    overrides = [f"data.root={root}", f"train.epochs={EXPERT_EPOCHS}", *extra]
    return cached_task_run("sync", RUNS / f"sync-cpu-{root.name}-{EXPERT_EPOCHS}ep", "sync-cpu", overrides,
                           EXPERT_EPOCHS, CACHE_VERSION)  # fmt: skip


def evaluated(run: Path, name: str, clips: int | None, data: Path | None = None, align: Path | None = None,
              plots: Path | None = None) -> dict:  # fmt: skip
    """The run's test figures, cached (keyed by the settings and the training's state)."""
    from mumo.tasks import get_task

    cache = RUNS / f"{run.name}.{name}.eval.json"
    key = {"cache_version": CACHE_VERSION, "clips": clips, "data": str(data), "align": str(align),
           "trained": (run / "state.json").stat().st_mtime}  # fmt: skip
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("key") == key:
            return saved["figures"]
    task = get_task("lip2speech")
    opts = task.evaluation_options(split="test", clips=clips, data_root=data, align=align, plots=plots,
                                   device="cpu", progress=False)  # fmt: skip
    figures = task.evaluate(run, opts).to_dict()
    cache.write_text(json.dumps({"key": key, "figures": figures}) + "\n")
    return figures


def shifted_copy(root: Path, offset: int) -> Path:
    """The test split of ``root`` with each recording shifted by ``offset`` frames (positive: the audio lags the
    video, silence put in front; negative: it leads, its start cut) and padded or cut back to its length; the
    frames are links to the originals."""
    import numpy as np
    import soundfile as sf

    out = RUNS / f"{root.name}-shift{offset:+d}"
    if (out / "filelists" / "test.txt").exists():
        return out
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    entries = (root / "filelists" / "test.txt").read_text().split()
    for entry in entries:
        src, dst = root / entry, tmp / entry
        dst.mkdir(parents=True)
        for f in src.iterdir():
            if f.name != "audio.wav":
                os.symlink(f.resolve(), dst / f.name)
        wav, rate = sf.read(src / "audio.wav", dtype="float32")
        k = abs(offset) * rate // 25
        moved = np.concatenate([np.zeros(k, np.float32), wav])[: len(wav)] if offset > 0 else np.pad(wav[k:], (0, k))
        sf.write(dst / "audio.wav", moved, rate, subtype="PCM_16")
    (tmp / "filelists").mkdir()
    for split in ("train", "val", "test"):  # train: the floor's average mel is read from it
        shutil.copy(root / "filelists" / f"{split}.txt", tmp / "filelists" / f"{split}.txt")
    for entry in (root / "filelists" / "train.txt").read_text().split():
        (tmp / entry).parent.mkdir(parents=True, exist_ok=True)
        if not (tmp / entry).exists():
            os.symlink((root / entry).resolve(), tmp / entry)
    tmp.rename(out)
    return out


def speed(run: Path, seconds: float = 10.0) -> dict:
    """`mumo lip2speech` on a ``seconds``-long video of a real face (scikit-image's astronaut): face detection,
    tracking, the model and Griffin-Lim, timed. (The generated speaker's rendered faces carry their boxes in the
    data set; OpenCV's Haar cascade, which `mumo lip2speech` runs on a video, does not find them, so the timing
    uses a photograph's face: the work per frame does not depend on what the face says.)"""
    import numpy as np
    from skimage import data as skdata

    from mumo.data.av.video import write_video
    from mumo.tasks import get_task

    video = RUNS / f"astronaut-{seconds:g}s.mp4"
    if not video.exists():
        face = np.ascontiguousarray(skdata.astronaut()[::2, ::2])  # (256, 256, 3)
        write_video(video, np.stack([face] * round(seconds * 25)), fps=25)
    out = RUNS / "lip2speech-speed.wav"
    res = get_task("lip2speech").speak_video(run, video, out, device="cpu", progress=False)
    out.unlink(missing_ok=True)
    return {"video_seconds": res["seconds"], **res["timing"], "torch_threads": __import__("torch").get_num_threads()}


def _row(f: dict) -> dict:
    keep = ("model", "floor", "vocoder", "diagonality", "uncertainty", "clips", "seconds_of_speech", "align")
    return {k: f[k] for k in keep if k in f}


def markdown(r: dict) -> str:
    def s(x: dict) -> str:
        return f"{x['stoi']:.3f} | {x['estoi']:.3f} | {x['pesq_nb']:.3f}"

    lines = [
        "# Lips to speech on one generated speaker (benchmarks/lip2speech.py)",
        "",
        f"{r['test_clips']} test clips of the speaker ({r['test_seconds']:.0f} s), never seen in training; "
        f"`{PRESET}`, {r['epochs']} epochs of {r['windows_per_epoch']} windows; Griffin-Lim (60 iterations).",
        "",
        "| | STOI | ESTOI | PESQ-NB | mel L1 | diagonality | spread vs error: Spearman / AUROC worst 10 % "
        "| train min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for decoder, f in r["rows"].items():
        u = f["uncertainty"]
        diag = "—" if f.get("diagonality") is None else f"{f['diagonality']:.3f}"
        lines.append(f"| {decoder} | {s(f['model'])} | {f['model']['mel_l1']:.3f} | {diag} | "
                     f"{u.get('spearman', float('nan')):.3f} / {u.get('auroc_worst', float('nan')):.3f} | "
                     f"{r['train_minutes'][decoder]} |")  # fmt: skip
    first = next(iter(r["rows"].values()))
    lines.append(f"| floor (training-average mel) | {s(first['floor'])} | {first['floor']['mel_l1']:.3f} | | | |")
    lines.append(f"| vocoder ceiling (true mel) | {s(first['vocoder'])} | | | | |")
    if r.get("align"):
        lines += ["", "Recordings shifted by a known offset, scored without and with `--align` (tacotron):", "",
                  "| offset (frames) | STOI without | STOI with | ESTOI without | ESTOI with | offsets found |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for off, a in r["align"].items():
            w, a2 = a["without"], a["with"]
            lines.append(f"| {off} | {w['stoi']:.3f} | {a2['stoi']:.3f} | {w['estoi']:.3f} | {a2['estoi']:.3f} | "
                         f"{a['offsets_found']} |")  # fmt: skip
    if r.get("speed"):
        sp = r["speed"]
        lines += ["", f"`mumo lip2speech` on a {sp['video_seconds']:.1f}-s video: {sp['total_seconds']:.2f} s "
                      f"({sp['real_time_factor']:.2f} x real time; faces {sp['faces_seconds']:.2f} s, model "
                      f"{sp['model_seconds']:.2f} s, Griffin-Lim {sp['vocoder_seconds']:.2f} s)."]  # fmt: skip
    lines += ["", "Targets: " + json.dumps(r["meets_targets"]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--clips", type=int, default=300, help="clips of the speaker to generate")
    parser.add_argument("--eval-clips", type=int, default=None, help="evaluate on the first N test clips only")
    parser.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=DECODERS)
    parser.add_argument("--no-align", action="store_true", help="skip the --align measurement")
    parser.add_argument("--override", nargs="*", default=[], help="extra overrides for both models (smoke runs)")
    parser.add_argument("--expert-override", nargs="*", default=[], help="extra overrides for the expert (smoke)")
    parser.add_argument("--tag", default="", help="results file suffix (smoke runs)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    root = one_speaker(args.clips)
    from mumo.runs import Run
    from mumo.tasks import get_task

    out_dir = RESULTS / f"lip2speech{args.tag}"
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = get_task("lip2speech").load_config(PRESET, args.override)
    r: dict = {"preset": PRESET, "epochs": args.epochs, "windows_per_epoch": cfg.data.windows_per_epoch,
               "overrides": args.override, "rows": {}, "train_minutes": {}, "curves": {}}  # fmt: skip
    runs = {}
    for decoder in args.decoders:
        run = runs[decoder] = model_run(decoder, root, args.epochs, args.override)
        history = Run(run).state["history"]
        r["train_minutes"][decoder] = round(history[-1]["train_seconds"] / 60, 1)
        r["curves"][decoder] = [h["mel_l1"] for h in history]
        plots = out_dir if decoder == "tacotron" else None
        f = evaluated(run, "test", args.eval_clips, plots=plots)
        r["rows"][decoder] = _row(f)
        r["test_clips"], r["test_seconds"] = f["clips"], f["seconds_of_speech"]
        print(decoder, json.dumps(f["model"]), flush=True)
    if "tacotron" in runs and not args.no_align:
        expert = expert_run(root, args.expert_override)
        r["align"] = {}
        for off in OFFSETS:
            data = shifted_copy(root, off)
            without = evaluated(runs["tacotron"], f"shift{off:+d}", args.eval_clips, data=data)
            with_ = evaluated(runs["tacotron"], f"shift{off:+d}-aligned", args.eval_clips, data=data, align=expert)
            r["align"][f"{off:+d}"] = {"without": without["model"], "with": with_["model"],
                                       "offsets_found": with_["align"]["offsets"]}  # fmt: skip
    if "tacotron" in runs:
        r["speed"] = speed(runs["tacotron"])
    r["meets_targets"] = targets(r)
    r["seconds"] = round(time.perf_counter() - t0, 1)
    _plot_curves(r["curves"], out_dir / "learning_curves.png")
    (RESULTS / f"lip2speech{args.tag}.json").write_text(json.dumps(r, indent=2) + "\n")
    (RESULTS / f"lip2speech{args.tag}.md").write_text(markdown(r))
    print(markdown(r))


def targets(r: dict) -> dict:
    out: dict = {}
    rows = r["rows"]
    if "tacotron" in rows:
        m, floor = rows["tacotron"]["model"], rows["tacotron"]["floor"]
        for k in ("stoi", "estoi", "pesq_nb"):
            out[f"{k}_above_floor"] = m[k] > floor[k]
            if "conv" in rows:
                out[f"{k}_not_below_conv"] = m[k] >= rows["conv"]["model"][k]
        out["stoi_at_least_0.60"] = m["stoi"] >= 0.60
        out["estoi_at_least_0.45"] = m["estoi"] >= 0.45
    if r.get("speed"):
        out["faster_than_real_time"] = r["speed"]["real_time_factor"] < 1.0
    return out


def _plot_curves(curves: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="validation mel L1 (free running)", title="lips to speech: learning curves")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
