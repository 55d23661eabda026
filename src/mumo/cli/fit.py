"""``mumo fit-density`` and ``mumo fit-temperature``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def fit_density_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    images: Annotated[int, typer.Option(help="training images to fit on (their questions' features)")] = 2000,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fit the feature density (class Gaussians over the fused features, DDU) of a trained run on its
    training questions and the default out-of-distribution check (nearest training images), and save them
    as RUN/feature_density.safetensors and RUN/ood_check.safetensors. Training fits both at its end; this is
    for runs trained before. `mumo predict` then reports both, abstains on the OOD check by default and can
    abstain on the density (--abstain-on feature_density)."""
    from mumo.errors import ConfigError
    from mumo.tasks import FitsDensity, require

    if images < 1:
        raise ConfigError(f"--images must be >= 1, not {images}")
    res = require(run, FitsDensity, "mumo fit-density", "a VQA model").fit_density(run, images=images, device=device)
    quantiles = res["validation_quantiles"]
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo(
        f"fitted on {res['fit_questions']} questions of {res['fit_images']} training images "
        f"({res['classes']} answer classes)"
    )
    typer.echo("validation -log density: " + ", ".join(f"{k} {v:.1f}" for k, v in quantiles.items()))
    typer.echo(f"wrote {res['path']}  (abstain above the p99, say: --abstain {quantiles['p99']:.1f} "
               "--abstain-on feature_density)")  # fmt: skip
    ood = res["ood_check"]
    typer.echo(
        f"wrote {ood['path']}  (out of distribution above {ood['threshold']:.4f}, the nearest-neighbour distance "
        f"at most {ood['alpha']:.1%} of in-distribution images exceed; {ood['bank_images']} training images)"
    )


@friendly_errors
def fit_temperature_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Fit temperature scaling (one T dividing the answer logits, minimising the validation NLL) and save
    it as RUN/temperature.json; `mumo evaluate` and `mumo predict` then use it (--temperature none: off)."""
    from mumo.tasks import FitsTemperature, require

    res = require(run, FitsTemperature, "mumo fit-temperature", "a VQA model").fit_temperature(run, device=device)
    if json_out:
        typer.echo(strict_json(res))
        return
    typer.echo(
        f"temperature {res['temperature']:.4f} fitted on {res['fit_questions']} validation questions: "
        f"NLL {res['val_nll_before']:.4f} -> {res['val_nll_after']:.4f}"
    )
    typer.echo(f"wrote {res['path']}")
