"""``mumo report``: one self-contained HTML page of a trained run (curves, evaluation, explanations, probe)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors
from mumo.cli._json import strict_json


@friendly_errors
def report_cmd(
    run: Annotated[Path, typer.Argument(help="run directory")],
    out: Annotated[Path | None, typer.Option(help="the HTML file to write (default: RUN/report.html)")] = None,
    images: Annotated[
        int, typer.Option(help="test images the evaluation, the explanation scores and the probe look at")
    ] = 200,
    mc_samples: Annotated[int, typer.Option(help="MC-dropout passes of the uncertainty figures (and U-CAM)")] = 10,
    ood: Annotated[str, typer.Option(help="OOD set of the OOD histograms (as mumo evaluate --ood)")] = "noise",
    examples: Annotated[int, typer.Option(help="test questions whose explanation maps are drawn; 0 = none")] = 3,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Write one HTML page about RUN that opens offline: its config, training curves and, whichever apply to its
    task, the evaluation on the first --images test images (VQA: metrics per question type, reliability diagram,
    risk-coverage curves, OOD histograms), example explanation maps with their scores, and the Clever Hans probe.
    Sections a run cannot give are left out with a note. The run directory is not changed (but for --out)."""
    from mumo.serve.report import ReportOptions, write_report

    options = ReportOptions(images=images, mc_samples=mc_samples, ood=ood, examples=examples, device=device)
    res = write_report(run, out, options, log=None if json_out else lambda line: typer.echo(line, err=True))
    if json_out:
        typer.echo(strict_json(res))
        return
    for note in res["notes"]:
        typer.echo(f"left out: {note}")
    typer.echo(f"wrote {res['out']} ({len(res['sections'])} sections, {res['seconds']:.0f} s)")
