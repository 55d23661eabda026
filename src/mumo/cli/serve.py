"""``mumo serve``: a REST API over a trained VQA run (docs/serve.md)."""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Annotated

import typer

from mumo.cli._errors import friendly_errors


@friendly_errors
def serve_cmd(
    run: Annotated[Path, typer.Argument(help="run directory of a trained VQA model")],
    host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port, printed at start)")] = 8000,
    max_batch: Annotated[
        int, typer.Option(help="at most this many concurrent answers run through the model at once")
    ] = 8,
    max_delay_ms: Annotated[
        float, typer.Option(help="how long a batch waits for more requests after its first one (ms)")
    ] = 10.0,
    threads: Annotated[int, typer.Option(help="torch threads of the one model worker")] = 2,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu, cuda, cuda:N or mps")] = "auto",
    access_log: Annotated[bool, typer.Option(help="log every request on stdout")] = True,
) -> None:
    """Serve RUN over HTTP: POST /v1/predict and /v1/explain, GET /healthz, /readyz, /metrics, /openapi.json.
    Concurrent answers with the same options are micro-batched through one model worker."""
    from mumo.errors import ConfigError, MumoError
    from mumo.runs import Run

    try:
        import uvicorn

        from mumo.serve.server import create_app
    except ImportError as exc:
        raise ConfigError(
            f"mumo serve needs FastAPI and uvicorn ({exc.name} is missing): pip install 'mumo[serve]'"
        ) from None
    for name, value, low in (
        ("--threads", threads, 1),
        ("--max-batch", max_batch, 1),
        ("--max-delay-ms", max_delay_ms, 0),
    ):
        if not value >= low:
            raise ConfigError(f"{name} must be >= {low}, not {value}")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be in 0 .. 65535, not {port}")
    Run(run).require_kind("vqa", "a VQA model (`mumo serve` answers questions about images)")
    sock = _bind(host, port)
    server: uvicorn.Server | None = None

    def stop(exc: BaseException) -> None:  # the model failed to load: stop serving, exit 2 with its message
        if server is not None:
            server.should_exit = True

    app = create_app(run, max_batch=max_batch, max_delay_ms=max_delay_ms, threads=threads, device=device,
                     on_load_error=stop)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=access_log, timeout_graceful_shutdown=10))
    bound_host, bound_port = sock.getsockname()[:2]
    typer.echo(
        f"serving {run} on http://{bound_host}:{bound_port} (max batch {max_batch}, max delay {max_delay_ms:g} ms, "
        f"{threads} torch thread{'s' if threads != 1 else ''}); GET /readyz says when the model is loaded",
        err=True,
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    error = app.state.batcher.error
    if error is not None:
        raise MumoError(f"cannot serve {run}: {error}")


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so that a port in use is a one-line error before anything starts."""
    from mumo.errors import ConfigError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use: stop what listens there or pick another --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock
