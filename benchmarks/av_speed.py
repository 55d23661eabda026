"""Benchmark: are `mumo lipsync` and `mumo lip2speech` faster than real time on 2 CPU cores? (issues #24, #25)

Each command runs as a user runs it (a fresh `mumo` process: imports, model loading, face detection and tracking,
the model, encoding or Griffin-Lim, writing the file), twice, on a 10-s, 256 x 256 video of a real face
(scikit-image's astronaut, at 25 fps) and, for `mumo lipsync`, 10 s of espeak-ng speech. The wall time of each
run is divided by the 10 s of media: below 1 is faster than real time. The time per frame does not depend on the
weights, so any run of the `wav2lip-cpu` / `lip2wav-cpu` presets will do (the trained benchmark runs by default,
when they exist). Run it on a quiet machine: timings taken beside a training are not comparable.

    python benchmarks/av_speed.py --lipsync LIPSYNC_RUN --lip2speech LIP2SPEECH_RUN
    # writes benchmarks/results/av_speed.{json,md}
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _common import RESULTS

SECONDS = 10.0
TEXT = ("The quick brown fox jumps over the lazy dog. A toolkit that knows what it does not know says so, and "
        "abstains when it must. Speech to lips, and lips to speech.")  # fmt: skip


def media(folder: Path) -> tuple[Path, Path]:
    """A 10-s astronaut video (256 x 256, 25 fps) and 10 s of espeak-ng speech (padded with silence)."""
    import numpy as np
    from skimage import data as skdata

    from mumo.data.av.audio import save_wav
    from mumo.data.av.espeak import synthesize
    from mumo.data.av.video import write_video

    face = np.ascontiguousarray(skdata.astronaut()[::2, ::2])  # (256, 256, 3)
    video = write_video(folder / "astronaut.mp4", np.stack([face] * round(SECONDS * 25)), fps=25)
    wav = np.asarray(synthesize(TEXT, voice="en").samples, dtype=np.float32)
    n = round(SECONDS * 16000)
    audio = save_wav(folder / "speech.wav", np.pad(wav, (0, max(0, n - len(wav))))[:n])
    return video, audio


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lipsync", type=Path, help="a lip-sync generator run (wav2lip-cpu)")
    parser.add_argument("--lip2speech", type=Path, help="a lip-to-speech run (lip2wav-cpu)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--note", default="", help="what the runs are (written beside the table)")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        video, audio = media(Path(tmp))
        commands = {}
        if args.lipsync:
            commands["mumo lipsync"] = ["mumo", "lipsync", str(args.lipsync), "--face", str(video), "--audio",
                                        str(audio), "--out", f"{tmp}/dub.mp4", "--device", "cpu"]  # fmt: skip
        if args.lip2speech:
            commands["mumo lip2speech"] = ["mumo", "lip2speech", str(args.lip2speech), "--video", str(video),
                                           "--out", f"{tmp}/speech.wav", "--device", "cpu"]  # fmt: skip
        for name, cmd in commands.items():
            walls = [timed(cmd) for _ in range(args.repeats)]
            rows[name] = {"run": cmd[2], "wall_seconds": walls, "real_time_factor": [w / SECONDS for w in walls],
                          "faster_than_real_time": max(walls) < SECONDS}  # fmt: skip
            print(name, json.dumps(rows[name]), flush=True)
    result = {"media_seconds": SECONDS, "video": "astronaut 256x256, 25 fps", "rows": rows, "note": args.note,
              "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "av_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["# Audio-visual commands against real time (benchmarks/av_speed.py)", "",
             f"A {SECONDS:g}-s 256 x 256 face video (and {SECONDS:g} s of speech), 2 CPU cores, a fresh process per "
             "run (imports and model loading included).", "", "| command | run | wall (s) | x real time |",
             "|---|---|---|---|"]  # fmt: skip
    for name, r in rows.items():
        lines.append(f"| `{name}` | {r['run']} | {', '.join(f'{w:.2f}' for w in r['wall_seconds'])} | "
                     f"{', '.join(f'{f:.2f}' for f in r['real_time_factor'])} |")  # fmt: skip
    if args.note:
        lines += ["", args.note]
    (RESULTS / "av_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
