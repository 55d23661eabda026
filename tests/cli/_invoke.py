"""Running the ``mumo`` command in-process for tests, and checking a one-line error."""

from __future__ import annotations

from typer.testing import CliRunner

from mumo.cli.__main__ import build_app


def run_cli(*args):
    """``mumo ARGS...`` in this process (paths and numbers are turned into text)."""
    return CliRunner().invoke(build_app(), [str(a) for a in args])


def assert_clear_error(result, *needles: str) -> None:
    """Exit status 2, no traceback, and every needle in the message."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in result.output, result.output
