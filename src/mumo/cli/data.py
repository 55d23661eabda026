"""``mumo data ...``: generate data sets."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors

app = typer.Typer(help="Generate data sets.", no_args_is_help=True, pretty_exceptions_enable=False)


@contextlib.contextmanager
def _interruptible(out: Path) -> Iterator[None]:
    """Ctrl-C: one line saying that ``out`` was left as it was (the generators build their set beside it and
    rename it into place only when complete), exit status 130."""
    try:
        yield
    except KeyboardInterrupt:
        print(f"interrupted; {out} is left as it was (run the command again)", file=sys.stderr)
        raise typer.Exit(130) from None


@app.command("sort-of-clevr")
@friendly_errors
def sort_of_clevr_cmd(
    out: Annotated[Path, typer.Option(help="output directory (absent or empty)")],
    train: Annotated[int, typer.Option(help="training images, 1 to 1,000,000 (about 12 KB each on disk)")] = 9800,
    test: Annotated[int, typer.Option(help="test images, 1 to 1,000,000")] = 200,
    seed: Annotated[int, typer.Option(help="random seed in [0, 2**32); the same seed gives byte-identical files")] = 0,
) -> None:
    """Sort-of-CLEVR (Santoro et al. 2017): 75x75 scenes of 6 objects, 20 questions each (10 relational),
    object masks, and the paper's 9,800 / 200 split by default."""
    from tqdm import tqdm

    from mumo.data.vqa.sort_of_clevr import META_FILE, SPLITS, check_arguments, generate

    check_arguments(out, n_train=train, n_test=test, seed=seed)
    with _interruptible(out), tqdm(total=train + test, desc="sort-of-clevr", unit="img") as bar:
        meta = generate(out, n_train=train, n_test=test, seed=seed, progress=bar.update)
    n_q = meta["questions_per_image"]
    for split in SPLITS:
        n = meta["counts"][split]
        typer.echo(f"wrote {n} {split} images ({n * n_q} questions): {out / split}.jsonl, {out}/images/{split}/")
    typer.echo(f"wrote {out / META_FILE} (format version {meta['format_version']}, seed {seed})")


@app.command("scenes")
@friendly_errors
def scenes_cmd(
    out: Annotated[Path, typer.Option(help="output directory (absent or empty; see --overwrite)")],
    images: Annotated[
        int, typer.Option(help="images in all, 4 to 1,000,000: 70 % train, 10 % val, test, test-shift")
    ] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed in [0, 2**32); the same seed gives byte-identical files")] = 0,
    size: Annotated[int, typer.Option(help="image side in pixels, 64 to 256")] = 128,
    overwrite: Annotated[bool, typer.Option(help="replace a previous mumo scenes set in --out")] = False,
    workers: Annotated[int | None, typer.Option(help="processes (default: the CPUs, at most 8)", min=1)] = None,
) -> None:
    """mumo scenes: places and 3-9 objects (8 shapes, 8 colours, 2 sizes, 2 materials) with scene graphs, object
    masks, 5 captions, tags and 10 balanced questions per image from a functional grammar; a compositional
    test-shift split (held-out colour-shape pairs and places). Format: docs/scenes.md."""
    from tqdm import tqdm

    from mumo.data.scenes.dataset import META_FILE, SPLITS, check_arguments, generate

    check_arguments(out, n_images=images, seed=seed, size=size, overwrite=overwrite)
    with _interruptible(out), tqdm(total=images, desc="scenes", unit="img") as bar:
        meta = generate(
            out, n_images=images, seed=seed, size=size, overwrite=overwrite, workers=workers, progress=bar.update
        )
    n_q = meta["questions_per_image"]
    for split in SPLITS:
        n = meta["counts"][split]
        typer.echo(f"wrote {n} {split} images ({n * n_q} questions): {out / split}.jsonl, {out}/images/{split}/")
    typer.echo(f"wrote {out / META_FILE} (format version {meta['format_version']}, seed {seed}, {size} px)")


@app.command("preprocess")
@friendly_errors
def preprocess_cmd(
    videos: Annotated[Path, typer.Option(help="raw videos: <speaker>/<clip>.mp4 (LRS2-style)")],
    out: Annotated[Path, typer.Option(help="output directory (absent or empty)")],
    val_fraction: Annotated[float, typer.Option(help="fraction of speakers for validation, in [0, 1)")] = 0.15,
    test_fraction: Annotated[float, typer.Option(help="fraction of speakers for test, in [0, 1)")] = 0.15,
    seed: Annotated[int, typer.Option(help="seed of the speaker split, in [0, 2**32)")] = 0,
) -> None:
    """Turn raw talking-face videos into mumo's lip-sync layout: 25-fps 96x96 face crops (OpenCV Haar
    detection, boxes smoothed over 5 frames) and 16 kHz audio.wav per clip, filelists split by speaker."""
    from mumo.data.av.clips import preprocess_videos

    with _interruptible(out):
        res = preprocess_videos(videos, out, val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
    typer.echo(
        f"wrote {res['written']} clips to {out} (" + ", ".join(f"{k} {v}" for k, v in res["splits"].items()) + ")"
    )
    for path, reason in res["skipped"].items():
        typer.echo(f"skipped {path}: {reason}")


@app.command("talking-faces")
@friendly_errors
def talking_faces_cmd(
    out: Annotated[Path, typer.Option(help="output directory (absent, empty, or a previous talking-faces set)")],
    clips: Annotated[int, typer.Option(help="number of clips (1.5-4 s each)")] = 600,
    speakers: Annotated[
        int | None,
        typer.Option(
            help="identities: 3 or more make a multi-speaker set split by speaker (default clips // 5, at least 3); "
            "1 makes a single-speaker set split by clip, at least 3 clips (for lip-to-speech)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed in [0, 2**32); the same seed gives byte-identical files")] = 0,
) -> None:
    """Synthetic talking faces, offline: espeak-ng speech with phoneme timings, visemes rendered on
    procedurally varied faces at 25 fps, 16 kHz audio; LRS2-style layout with train/val/test filelists
    whose speakers are disjoint (--speakers 1: one speaker's clips, split by clip)."""
    from mumo.data.av.talking_faces import generate_talking_faces

    with _interruptible(out):
        meta = generate_talking_faces(out, clips=clips, speakers=speakers, seed=seed)
    counts = meta.get("counts", {})
    split = "by clip" if meta.get("split_by") == "clip" else "by speaker"
    typer.echo(f"wrote {clips} clips to {out}, split {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
