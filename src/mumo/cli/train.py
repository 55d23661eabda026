"""``mumo train TASK``: one command per registered task, all built from the same function."""

# no `from __future__ import annotations`: typer reads the option help of the closures below at run time

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


def train_run(
    task_name: str,
    overrides: list[str] | None,
    data: str | None,
    preset: str | None,
    out: Path | None,
    resume: bool,
    json_out: bool,
) -> None:
    """Train (or, with ``resume``, continue) a run of the task ``task_name`` and print its summary."""
    from mumo.config import apply_overrides
    from mumo.devices import is_main_process
    from mumo.errors import ConfigError
    from mumo.runs import Run
    from mumo.tasks import get_task

    task = get_task(task_name)
    extra = list(overrides or [])
    if data is not None:
        extra.append(f"{task.data_key}={data}")
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN, the run directory to continue")
    if resume and not preset:  # overrides change the run's saved config (nothing else need be restated)
        cfg = apply_overrides(Run(out).config(task.schema), extra, schema=task.schema) if extra else None
    else:
        cfg = task.load_config(preset, extra)
    run_dir = out or task.default_run_dir(cfg)
    if out is None and is_main_process():  # a folder mumo chose: say which
        typer.echo(f"run directory: {run_dir}", err=True)
    summary = task.train(cfg, run_dir, resume=resume)
    if not is_main_process():  # under torchrun / accelerate launch only rank 0 reports
        return
    if json_out:
        typer.echo(strict_json(summary, indent=2))
        return
    for line in task.summary_lines(summary):
        typer.echo(line)
    typer.echo(f"saved to {run_dir}")


def _command(task_name: str, data_help: str) -> Callable[..., None]:
    @friendly_errors
    def command(
        overrides: Annotated[
            list[str] | None, typer.Argument(help="dotted config overrides, e.g. train.epochs=3")
        ] = None,
        data: Annotated[str | None, typer.Option(help=data_help)] = None,
        preset: Annotated[str | None, typer.Option(help="config preset (mumo.list_presets(task))")] = None,
        out: Annotated[Path | None, typer.Option(help="run directory (default runs/<task>-...-<time>)")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
        json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    ) -> None:
        train_run(task_name, overrides, data, preset, out, resume, json_out)

    return command


def build_app() -> typer.Typer:
    """``mumo train``: a subcommand per task (``syncnet``, the sync task's earlier name, still works)."""
    from mumo.tasks import LEGACY_NAMES, get_task, list_tasks

    app = typer.Typer(help="Train a model.", no_args_is_help=True, pretty_exceptions_enable=False)
    for name in list_tasks():
        task = get_task(name)
        app.command(name, help=task.help)(_command(name, task.data_help))
    for old, name in LEGACY_NAMES.items():
        task = get_task(name)
        app.command(old, help=f"The {name!r} task under its earlier name.", hidden=True)(_command(name, task.data_help))
    return app
