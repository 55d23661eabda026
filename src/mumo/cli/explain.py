"""``mumo explain``: where a trained VQA model looked, for one example or scored over a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def explain_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    image: Annotated[Path | None, typer.Option(help="image file to explain (with --question)")] = None,
    question: Annotated[str | None, typer.Option(help="question about --image")] = None,
    method: Annotated[str, typer.Option(help="attention, gradcam or ucam")] = "gradcam",
    target: Annotated[
        str,
        typer.Option(
            help="Grad-CAM: the answer score explained, logit (pre-softmax, as in Selvaraju et al.) or log-prob "
            "(log-softmax: a contrast against the other answers that vanishes as the model saturates)"
        ),
    ] = "logit",
    out: Annotated[Path | None, typer.Option(help="write an overlay PNG here (image, map, question, answer)")] = None,
    evaluate: Annotated[
        bool, typer.Option("--evaluate", help="score every method's maps against the ground-truth object masks")
    ] = False,
    split: Annotated[str, typer.Option(help="--evaluate: val or test")] = "test",
    images: Annotated[int | None, typer.Option(help="--evaluate: only the first N images")] = None,
    ucam_variant: Annotated[str, typer.Option(help="U-CAM variant: predictive, loss or aleatoric")] = "predictive",
    samples: Annotated[int, typer.Option(help="U-CAM: dropout passes (predictive) or logit-noise samples")] = 20,
    negate: Annotated[bool, typer.Option("--negate", help="U-CAM: cells that lower the uncertainty")] = False,
    seed: Annotated[int, typer.Option(help="seed of dropout masks and logit noise")] = 0,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Explain one answer (--image, --question; --out for a PNG) or, with --evaluate, score the maps of
    attention, Grad-CAM and U-CAM against ground-truth masks (Spearman, pointing game, energy in mask)."""
    from mumo.errors import ConfigError
    from mumo.tasks import Explains, require
    from mumo.uncertainty.mc_dropout import check_num_samples

    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, not {samples}")
    check_num_samples(samples)
    task = require(run, Explains, "mumo explain", "a VQA model")
    opts = task.explanation_options(
        method, ucam_variant=ucam_variant, samples=samples, negate=negate, seed=seed, target=target
    )
    if evaluate:
        if image is not None or question is not None or out is not None:
            raise ConfigError("--evaluate scores a whole split: drop --image, --question and --out")
        res = task.explain_run(run, split=split, opts=opts, max_images=images, device=device)
        typer.echo(strict_json(res) if json_out else format_scores(res))
        return
    if image is None or question is None:
        raise ConfigError("give --image and --question to explain one answer, or --evaluate to score a split")
    res = task.explain_example(run, image, question, method, opts=opts, out=out, device=device)
    if json_out:
        typer.echo(strict_json(res))
        return
    unc = res.get("uncertainty") or {}
    lines = [
        f"{res['question']} -> {res['answer']} (p={res['probability']:.3f}"
        + (f", total uncertainty {unc['total']:.3f} nats" if unc else "") + ")",
        f"{res['method']} map"
        + (f" of the answer's {res['target']}" if res["method"] == "gradcam" else "")
        + (f" on a {res['grid'][0]}x{res['grid'][1]} grid:" if res["grid"] else ":"),
    ]  # fmt: skip
    lines += _grid_text(res["map"], res["grid"])
    if "overlay" in res:
        lines.append(f"overlay written to {res['overlay']}")
    typer.echo("\n".join(lines))


def _grid_text(values: list[float], grid: list[int] | None) -> list[str]:
    cols = grid[1] if grid else len(values)
    peak = max(values) or 1.0
    return ["  " + " ".join(f"{v / peak:4.2f}" for v in values[r : r + cols]) for r in range(0, len(values), cols)]


def format_scores(res: dict[str, Any]) -> str:
    """A plain-text table of :func:`mumo.tasks.vqa.explain.explain_run` scores."""
    lines = [
        f"{res['split']}: {res['num_questions']} questions about {res['num_images']} images, "
        f"{res['grid'][0]}x{res['grid'][1]} grid, accuracy {res['accuracy']:.4f}",
        f"{'method':12s}{'rank corr':>12s}{'pointing':>12s}{'energy':>12s}{'undefined':>12s}",
    ]
    for name, s in res["methods"].items():
        lines.append(
            f"{name:12s}{s['rank_correlation']:12.4f}{s['pointing_game']:12.4f}{s['energy_in_mask']:12.4f}"
            f"{s['undefined']:12d}"
        )
    if "attention_gradcam_rank_correlation" in res:
        lines.append(f"attention vs Grad-CAM rank correlation: {res['attention_gradcam_rank_correlation']:.4f}")
    targets = [f"{name} of {s['target']}" for name, s in res["methods"].items() if s.get("target")]
    if targets:
        lines.append("maps are gradients: " + ", ".join(targets))
    return "\n".join(lines)
