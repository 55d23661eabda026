"""``mumo lipsync``: dub a face video (or a still image) with new audio, or with text spoken by espeak-ng."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json

SCORER_HELP = (
    "lip-sync expert run (mumo train sync), not the generator's training expert: scores the result's LSE-D, "
    "LSE-C and offset, and its sync per second"
)


@friendly_errors
def lipsync_cmd(
    run: Annotated[Path, typer.Argument(help="lip-sync generator run directory (mumo train lipsync)")],
    face: Annotated[Path, typer.Option(help="face video (resampled to 25 fps) or still image (PNG, JPEG)")],
    out: Annotated[Path, typer.Option(help="the MP4 to write (H.264 + AAC, 25 fps)")],
    audio: Annotated[Path | None, typer.Option(help="speech file (any common audio or video format)")] = None,
    text: Annotated[str | None, typer.Option(help="text to speak with espeak-ng instead of --audio")] = None,
    voice: Annotated[str, typer.Option(help="espeak-ng voice for --text: en, en-us, de, fr, ... (+f3 etc.)")] = "en",
    scorer: Annotated[Path | None, typer.Option(help=SCORER_HELP)] = None,
    batch_size: Annotated[int, typer.Option(help="5-frame windows per generator call")] = 16,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Make the face in --face speak --audio (or --text) and write the result to --out.

    The output lasts as long as the speech: a still image is repeated, a video shorter than the speech is looped
    ping-pong (forward, backward, forward...), a longer one is cut at the speech's end. Faces are detected in every
    frame; the mouth of each frame with a face is redrawn and blended over the lower face, frames without one pass
    through unchanged. The MP4 appears only when complete (an error or Ctrl-C leaves none). A progress bar over
    the frames goes to stderr; --json prints one object on stdout.
    """
    from mumo.errors import ConfigError
    from mumo.tasks import DubsVideo, require

    if (audio is None) == (text is None):
        raise ConfigError('give the speech as exactly one of --audio FILE or --text "..."')
    task = require(run, DubsVideo, "mumo lipsync", "a lip-sync generator")
    try:
        res = task.dub_video(run, face, out, audio=audio, text=text, voice=voice, scorer=scorer,
                             batch_size=batch_size, device=device)  # fmt: skip
    except KeyboardInterrupt:
        print(f"interrupted; {out} was not written", file=sys.stderr)
        raise typer.Exit(130) from None
    if json_out:
        typer.echo(strict_json(res))
        return
    lines = [
        f"{res['output']}: {res['frames']} frames ({res['seconds']:.2f} s at {res['fps']:g} fps) from the "
        f"{res['source']} {face} ({res['source_frames']} frames, {res['length']})",
        f"{res['face_frames']} frames dubbed, {res['passed_through']} without a face passed through",
    ]
    if "scorer" in res:
        s = res["scorer"]
        weakest = min(range(len(s["per_second"])), key=lambda i: s["per_second"][i])
        lines.append(f"scored by {s['run']}: LSE-D {s['lse_d']:.4f}  LSE-C {s['lse_c']:.4f}  offset "
                     f"{s['offset_frames']:+d} frames; sync per second {', '.join(f'{v:.2f}' for v in s['per_second'])}"
                     f" (weakest: second {weakest})")  # fmt: skip
    typer.echo("\n".join(lines))
