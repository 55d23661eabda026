"""``mumo generate-questions``: questions about an image from a trained question generator, with their uncertainty."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def generate_questions_cmd(
    run: Annotated[Path, typer.Argument(help="question-generation run directory (mumo train vqg)")],
    image: Annotated[Path, typer.Option(help="image file")],
    caption: Annotated[str | None, typer.Option(help="caption cue (without one the caption expert is dropped)")] = None,
    tags: Annotated[str | None, typer.Option(help="tag cue, comma-separated (default: the model's tagger)")] = None,
    place: Annotated[str | None, typer.Option(help="place cue (default: the model's place head)")] = None,
    samples: Annotated[int, typer.Option(help="T dropout passes: one question each")] = 5,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="dropout off at inference (MC-SMN): T identical passes")
    ] = False,
    decode: Annotated[str, typer.Option(help="greedy, sample or beam")] = "greedy",
    temperature: Annotated[float, typer.Option(help="--decode sample: softmax temperature")] = 1.0,
    beam: Annotated[int, typer.Option(help="--decode beam: beam width")] = 3,
    seed: Annotated[int, typer.Option(help="seed of the dropout masks and of sampling")] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Write T questions about an image, each with its uncertainty (mean word entropy and its epistemic part, the
    mutual information across T dropout passes); on mumo scenes runs also whether the scenes grammar accepts it.
    Cues not given are predicted by the model (place, tags); unknown words in a caption or tags are kept as unknown
    and listed."""
    from mumo.data.images import load_image
    from mumo.tasks import GeneratesQuestions, require

    load_image(image)  # a bad image fails before the model loads
    task = require(run, GeneratesQuestions, "mumo generate-questions", "a question generator (mumo train vqg)")
    tag_list = [t.strip() for t in tags.split(",") if t.strip()] if tags else None
    res = task.generate_questions(
        run, image, caption=caption, tags=tag_list, place=place, samples=samples, mc=not deterministic,
        method=decode, temperature=temperature, beam=beam, seed=seed, device=device,
    )  # fmt: skip
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo("cues: " + "; ".join(f"{k} {v}" for k, v in res["cues"].items()))
    if res["unknown_words"]:
        typer.echo("unknown words (read as <unk>): " + ", ".join(res["unknown_words"]))
    for q in res["questions"]:
        valid = "" if "valid" not in q else ("  valid" if q["valid"] else "  NOT in the scenes grammar")
        typer.echo(f"{q['question']}  [entropy {q['entropy']:.3f}, epistemic {q['epistemic']:.4f}]{valid}")
    typer.echo(f"{res['distinct']} distinct of {res['samples']} ({res['inference']}); {res['seconds']:.2f}s")
