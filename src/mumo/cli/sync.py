"""``mumo sync``: how well a video's mouth and voice belong together, by a trained lip-sync expert."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def sync_cmd(
    run: Annotated[Path, typer.Argument(help="lip-sync expert run directory (mumo train sync)")],
    video: Annotated[Path, typer.Option(help="video file (faces are detected; resampled to 25 fps)")],
    audio: Annotated[Path | None, typer.Option(help="audio file to use instead of the video's own track")] = None,
    mc_samples: Annotated[int, typer.Option(help="MC-dropout passes for the sync probability's spread")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the dropout masks")] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Audio-video offset (frames; positive = audio lags), LSE-D, LSE-C and the sync probability with its
    MC-dropout uncertainty. Only the audio the video spans is read; a separate audio file much longer or
    shorter than the video gets a ``warning: ...`` line on stderr with both lengths."""
    from mumo.data.av.clips import LengthMismatchWarning
    from mumo.tasks import ScoresSync, require
    from mumo.uncertainty.mc_dropout import check_num_samples

    check_num_samples(mc_samples)
    task = require(run, ScoresSync, "mumo sync", "a lip-sync expert")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LengthMismatchWarning)
        res = task.sync_video(run, video, audio, mc_samples=mc_samples, seed=seed, device=device)
    for w in caught:  # after a success only: an error stays the one line it is
        if issubclass(w.category, LengthMismatchWarning):
            typer.echo(f"warning: {w.message}", err=True)
        else:  # anyone else's warning, as Python would have shown it
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    if json_out:
        typer.echo(strict_json(res))
        return
    lines = [
        f"{video}: offset {res['offset_frames']:+d} frames ({res['offset_frames'] * 40:+d} ms; positive = audio lags)",
        f"LSE-D {res['lse_d']:.4f}  LSE-C {res['lse_c']:.4f}  ({res['windows']} windows)",
    ]
    if "sync_probability_std" in res:
        lines.append(
            f"sync probability {res['sync_probability_mc']:.3f} ± {res['sync_probability_std']:.3f} "
            f"(MC dropout, T={res['mc_samples']})"
        )
    else:
        lines.append(f"sync probability {res['sync_probability']:.3f}")
    if res["skipped_frames"]:
        lines.append(f"{res['skipped_frames']} frames had no usable face and were filled from their neighbours")
    typer.echo("\n".join(lines))
