"""``mumo evaluate`` and ``mumo predict``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors


@friendly_errors
def evaluate_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    split: Annotated[str, typer.Option(help="val or test")] = "test",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Accuracy of a trained run, overall and per question type."""
    from mumo.config import config_from_yaml
    from mumo.errors import ConfigError
    from mumo.tasks.vqa import evaluate_split, load_data, load_model
    from mumo.train.checkpoint import CONFIG_FILE

    if split not in ("val", "test"):
        raise ConfigError(f"--split must be 'val' or 'test', not {split!r}")
    model = load_model(run)
    cfg = config_from_yaml(run / CONFIG_FILE)
    data = load_data(cfg)
    res = evaluate_split(model, getattr(data, split), cfg.train.eval_images_per_batch)
    res = {"run": str(run), "split": split, **res}
    if json_out:
        typer.echo(json.dumps(res))
        return
    typer.echo(f"{split} accuracy {res['accuracy']:.4f} on {res['num_questions']} questions")
    for k, v in res["accuracy_by_type"].items():
        typer.echo(f"  {k:8s} {v:.4f}")


@friendly_errors
def predict_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    image: Annotated[Path, typer.Option(help="image file")],
    question: Annotated[str, typer.Option(help="question text")],
    top_k: Annotated[int, typer.Option(help="how many answers to show")] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Answer a question about an image."""
    from mumo.data.images import load_image
    from mumo.data.text import check_question
    from mumo.serve.predict import load

    check_question(question)  # fail fast, before loading the model
    load_image(image)
    pred = load(run).predict(image, question, top_k=top_k)
    if json_out:
        typer.echo(json.dumps(pred.to_dict()))
        return
    for a in pred.top_k:
        typer.echo(f"{a.probability:7.2%}  {a.answer}")
