"""``mumo predict``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def predict_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    image: Annotated[Path, typer.Option(help="image file")],
    question: Annotated[str, typer.Option(help="question text")],
    top_k: Annotated[int, typer.Option(help="how many answers to show")] = 3,
    mc_samples: Annotated[int | None, typer.Option(help="T MC-dropout passes (epistemic uncertainty)")] = None,
    abstain: Annotated[float | None, typer.Option(help='answer "don\'t know" above this uncertainty (nats)')] = None,
    abstain_on: Annotated[str, typer.Option(help="score compared with --abstain")] = "predictive_entropy",
    mc_scope: Annotated[str, typer.Option(help="dropout modules that sample: all, or head (answer head only)")] = "all",
    image_uncertainty: Annotated[
        bool,
        typer.Option(
            "--image-uncertainty",
            help="with --mc-samples: also ask training questions about the image; their mean mutual information "
            "says whether the model knows the image at all",
        ),
    ] = False,
    ensemble: Annotated[
        list[Path] | None,
        typer.Option(help="another run of RUN's recipe answering with it as a deep ensemble; repeat for each member"),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Answer a question about an image, with its uncertainty; optionally abstain."""
    from mumo.data.images import load_image
    from mumo.data.text import check_question
    from mumo.errors import ConfigError
    from mumo.serve.predict import load
    from mumo.uncertainty.mc_dropout import check_num_samples

    if abstain is not None and not math.isfinite(abstain):  # fail fast, before reading RUN or loading the model
        raise ConfigError(f"--abstain must be a finite number (the {abstain_on} threshold), not {abstain}")
    check_question(question)
    load_image(image)
    if mc_samples is not None:
        check_num_samples(mc_samples)
    pred = load([run, *ensemble] if ensemble else run, device=device).predict(
        image, question, top_k=top_k, mc_samples=mc_samples, mc_scope=mc_scope, abstain=abstain,
        abstain_on=abstain_on, image_uncertainty=image_uncertainty,
    )  # fmt: skip
    if json_out:
        typer.echo(strict_json(pred.to_dict()))
        return
    if pred.abstained:
        typer.echo(f"don't know ({pred.abstain_reason}); best guess: {pred.best_guess}")
    for a in pred.top_k:
        typer.echo(f"{a.probability:7.2%}  {a.answer}")
    u = pred.uncertainty
    if u is not None:
        typer.echo(
            f"uncertainty (nats): total {u.total:.4f} = aleatoric {u.aleatoric:.4f} + epistemic {u.epistemic:.4f}"
            f" [{'T=' + str(u.mc_samples) if u.mc_samples else 'deterministic'}"
            f"{f', {u.ensemble_members} ensemble members' if u.ensemble_members > 1 else ''}]"
        )
        if u.feature_density is not None:
            typer.echo(
                f"feature density: {u.feature_density:.1f} nats (-log density), above "
                f"{u.feature_density_quantile:.1%} of validation questions"
            )
        if u.image_epistemic is not None:
            typer.echo(
                f"image epistemic uncertainty: {u.image_epistemic:.4f} nats (mean mutual information over "
                f"{u.question_bank_size} training questions about this image)"
            )
