"""``mumo predict``."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json
from mumo.cli._options import MCScope


@friendly_errors
def predict_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    image: Annotated[Path, typer.Option(help="image file")],
    question: Annotated[str, typer.Option(help="question text")],
    top_k: Annotated[int, typer.Option(help="how many answers to show")] = 3,
    mc_samples: Annotated[int | None, typer.Option(help="T MC-dropout passes (epistemic uncertainty)")] = None,
    abstain: Annotated[float | None, typer.Option(help='answer "don\'t know" above this uncertainty (nats)')] = None,
    abstain_on: Annotated[str, typer.Option(help="score compared with --abstain")] = "predictive_entropy",
    mc_scope: MCScope = "all",
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
    no_ood_check: Annotated[
        bool,
        typer.Option(
            "--no-ood-check",
            help="answer even when the run's out-of-distribution check finds the image unlike its training images "
            "(the check is still reported)",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Answer a question about an image, with its uncertainty. Says "don't know" when the image is unlike the
    run's training images (its out-of-distribution check; --no-ood-check turns that off) and, optionally, when an
    uncertainty score passes --abstain."""
    from mumo.data.images import load_image
    from mumo.data.text import check_question
    from mumo.errors import CheckpointError, ConfigError, NoOODCheckWarning
    from mumo.serve.predict import VQGPredictor, load
    from mumo.uncertainty.mc_dropout import check_num_samples

    if abstain is not None and not math.isfinite(abstain):  # fail fast, before reading RUN or loading the model
        raise ConfigError(f"--abstain must be a finite number (the {abstain_on} threshold), not {abstain}")
    check_question(question)
    load_image(image)
    if mc_samples is not None:
        check_num_samples(mc_samples)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NoOODCheckWarning)
        predictor = load([run, *ensemble] if ensemble else run, device=device)
    if isinstance(predictor, VQGPredictor):
        raise CheckpointError(
            f"{run} holds a question generator, not a VQA model: `mumo predict` answers questions; write questions "
            f"about an image with `mumo generate-questions {run} --image FILE`"
        )
    for w in caught:  # a run trained before the check: said once, on stderr, and the answer still comes
        if issubclass(w.category, NoOODCheckWarning):
            typer.echo(f"note: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
    pred = predictor.predict(
        image, question, top_k=top_k, mc_samples=mc_samples, mc_scope=mc_scope, abstain=abstain,
        abstain_on=abstain_on, image_uncertainty=image_uncertainty, ood_check=not no_ood_check,
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
        how = f"T={u.mc_samples}, scope {u.mc_scope}: {u.mc_dropout_modules} dropout modules" if u.mc_samples else ""
        typer.echo(
            f"uncertainty (nats): total {u.total:.4f} = aleatoric {u.aleatoric:.4f} + epistemic {u.epistemic:.4f}"
            f" [{how or 'deterministic'}"
            f"{f', {u.ensemble_members} ensemble members' if u.ensemble_members > 1 else ''}]"
        )
        if u.feature_density is not None:
            typer.echo(
                f"feature density: {u.feature_density:.1f} nats (-log density), above "
                f"{u.feature_density_quantile:.1%} of validation questions"
            )
        o = pred.out_of_distribution
        if o is not None:
            verdict = "OUT OF DISTRIBUTION" if o["out_of_distribution"] else "in distribution"
            typer.echo(
                f"image: {verdict} (nearest-training-image distance {o['score']:.4f}, above {o['quantile']:.1%} of "
                f"validation images; threshold {o['threshold']:.4f})"
            )
        if u.image_epistemic is not None:
            typer.echo(
                f"image epistemic uncertainty: {u.image_epistemic:.4f} nats (mean mutual information over "
                f"{u.question_bank_size} training questions about this image)"
            )
