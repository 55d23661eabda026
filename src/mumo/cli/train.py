"""``mumo train vqa``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json

app = typer.Typer(help="Train a model.", no_args_is_help=True, pretty_exceptions_enable=False)


@app.command("vqa")
@friendly_errors
def train_vqa_cmd(
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted config overrides, e.g. train.epochs=3")] = None,
    data: Annotated[str | None, typer.Option(help="data set: easy-vqa, sort-of-clevr or vqa-v2")] = None,
    preset: Annotated[str | None, typer.Option(help="config preset (default mcan-cpu)")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/vqa-<data>-<time>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Train MCAN for VQA; with no options, the CPU preset on easy-VQA, ending with test accuracy."""
    from mumo.config import load_config
    from mumo.errors import ConfigError
    from mumo.tasks.vqa import default_run_dir, train_vqa
    from mumo.train.loop import is_main_process

    extra = list(overrides or [])
    if data is not None:
        extra.append(f"data.name={data}")
    if resume:
        if out is None:
            raise ConfigError("--resume needs --out RUN, the run directory to continue")
        cfg = load_config(preset or "mcan-cpu", extra) if (preset or extra) else None
    else:
        cfg = load_config(preset or "mcan-cpu", extra)
    run_dir = out or default_run_dir(cfg)  # type: ignore[arg-type]
    if is_main_process():
        typer.echo(f"run directory: {run_dir}", err=True)
    summary = train_vqa(cfg, run_dir, resume=resume)
    if not is_main_process():  # under torchrun / accelerate launch only rank 0 reports
        return
    if json_out:
        typer.echo(strict_json(summary, indent=2))
        return
    typer.echo(f"best val accuracy {summary['best_val_accuracy']:.4f} (epoch {summary['best_epoch']})")
    typer.echo(f"training: {summary['train_seconds']:.0f}s, {summary['train_samples_per_second']:.0f} questions/s")
    if "test_accuracy" in summary:
        by_type = ", ".join(f"{k} {v:.4f}" for k, v in summary["test_accuracy_by_type"].items())
        typer.echo(f"test accuracy {summary['test_accuracy']:.4f} ({by_type})")
    typer.echo(f"saved to {run_dir}")


@app.command("syncnet")
@friendly_errors
def train_syncnet_cmd(
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted config overrides, e.g. train.epochs=3")] = None,
    data: Annotated[
        Path | None, typer.Option(help="talking-face data set (mumo data talking-faces / preprocess)")
    ] = None,
    preset: Annotated[str | None, typer.Option(help="config preset: syncnet-cpu (default) or syncnet-wav2lip")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory (default runs/syncnet-<time>)")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run in --out")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """Train the lip-sync expert (SyncNet-style) on a talking-face data set, on the same loop as VQA."""
    from datetime import datetime

    from mumo.errors import ConfigError
    from mumo.tasks.lipsync import load_sync_config, train_syncnet
    from mumo.train.loop import is_main_process

    extra = list(overrides or [])
    if data is not None:
        extra.append(f"data.root={data}")
    if resume and out is None:
        raise ConfigError("--resume needs --out RUN, the run directory to continue")
    cfg = load_sync_config(preset or "syncnet-cpu", extra)
    run_dir = out or Path("runs") / f"syncnet-{datetime.now():%Y%m%d-%H%M%S}"
    if is_main_process():
        typer.echo(f"run directory: {run_dir}", err=True)
    summary = train_syncnet(cfg, run_dir, resume=resume)
    if not is_main_process():
        return
    if json_out:
        typer.echo(strict_json(summary, indent=2))
        return
    typer.echo(
        f"best val: BCE {summary['best_val_eval_loss']:.4f}, accuracy {summary['best_val_accuracy']:.4f} "
        f"(epoch {summary['best_epoch']}); {summary['train_seconds']:.0f}s training"
    )
    if "test_eval_loss" in summary:
        typer.echo(f"test: BCE {summary['test_eval_loss']:.4f}, accuracy {summary['test_accuracy']:.4f}")
    typer.echo(f"saved to {run_dir}")
