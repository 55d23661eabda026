"""``mumo lip2speech``: a silent video of the trained speaker's face becomes their speech."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def lip2speech_cmd(
    run: Annotated[Path, typer.Argument(help="lip-to-speech run directory (mumo train lip2speech)")],
    video: Annotated[Path, typer.Option(help="the face video (any length; resampled to 25 fps; its audio is unused)")],
    out: Annotated[Path, typer.Option(help="the WAV to write (16 kHz mono, as long as the video)")],
    mux: Annotated[Path | None, typer.Option(help="also write the video with the speech as its audio (MP4)")] = None,
    mc_samples: Annotated[
        int, typer.Option(help="T MC-dropout decodes for the speech's spread per second; 0 = off")
    ] = 0,
    seed: Annotated[int, typer.Option(help="seed of the decoder's dropout masks (same seed, same speech)")] = 0,
    batch_size: Annotated[int, typer.Option(help="windows per model call")] = 8,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Speak the face in --video with the voice the run learnt and write the speech to --out (and --mux).

    Faces are detected and tracked in every frame; the video is covered by overlapping windows of the model's
    length, their mel spectrograms cross-faded and turned into a waveform by Griffin-Lim. The files appear only
    when complete (an error or Ctrl-C leaves none). A progress bar goes to stderr; --json prints one object.
    """
    from mumo.tasks import SpeaksVideo, require

    task = require(run, SpeaksVideo, "mumo lip2speech", "a lip-to-speech model")
    try:
        res = task.speak_video(run, video, out, mux=mux, samples=mc_samples, seed=seed, batch_size=batch_size,
                               device=device)  # fmt: skip
    except KeyboardInterrupt:
        print(f"interrupted; {out} was not written", file=sys.stderr)
        raise typer.Exit(130) from None
    if json_out:
        typer.echo(strict_json(res))
        return
    t = res["timing"]
    lines = [f"{res['output']}: {res['seconds']:.2f} s of speech from {res['frames']} frames of {video} "
             f"({res['windows']} windows, {res['frames_without_face']} frames without a face)",
             f"{t['total_seconds']:.2f} s ({t['real_time_factor']:.2f} x real time): faces {t['faces_seconds']:.2f} s, "
             f"model {t['model_seconds']:.2f} s, Griffin-Lim {t['vocoder_seconds']:.2f} s"]  # fmt: skip
    if res["muxed"]:
        lines.append(f"muxed into {res['muxed']}")
    if "uncertainty" in res:
        u = res["uncertainty"]
        lines.append(f"spread over {u['mc_samples']} dropout decodes: mean {u['mean_spread']:.3f}; per second "
                     + ", ".join(f"{v:.2f}" for v in u["spread_per_second"]))  # fmt: skip
    typer.echo("\n".join(lines))
