"""``mumo demo``: trained runs in the browser, one tab per run (Gradio, offline)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors


@friendly_errors
def demo_cmd(
    runs: Annotated[list[Path], typer.Argument(help="run directories: one tab each (vqa, sync, vqg, lipsync, ...)")],
    port: Annotated[int, typer.Option(help="port to serve on")] = 7860,
    host: Annotated[str, typer.Option(help="address to serve on (0.0.0.0: every interface)")] = "127.0.0.1",
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
) -> None:
    """Serve a browser demo of trained runs at http://HOST:PORT until Ctrl-C: VQA answers with their uncertainty,
    abstention and explanation overlays; lip-sync scores; generated questions; dubbed videos; speech from lips.
    Nothing is fetched from the internet (Gradio's analytics are off)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before Gradio is imported
    from mumo.serve.demo import build_demo, check_port, launch

    check_port(host, port)  # before any model loads
    demo = build_demo(runs, device=device)
    typer.echo(f"mumo demo: {len(runs)} run{'s' if len(runs) > 1 else ''} on http://{host}:{port} (Ctrl-C stops it)")
    launch(demo, host=host, port=port)
