"""What the reliability tests share: running ``mumo`` in this process, and the one-line error every bad input gets."""

from __future__ import annotations

import contextlib
import io
import subprocess


def mumo(*args: object) -> subprocess.CompletedProcess:
    """``mumo ARGS`` run by ``main()``'s entry point in this process, its output captured."""
    from mumo.cli.__main__ import build_app
    from mumo.cli._errors import run_friendly

    argv = [str(a) for a in args]
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = run_friendly(build_app(), argv, prog_name="mumo")
    return subprocess.CompletedProcess(["mumo", *argv], code, out.getvalue(), err.getvalue())


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit status 2 and stderr exactly one ``error: ...`` line holding every fragment (no traceback, no Click
    panel); returns the line."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), result.stderr[-2000:]
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr and "╭" not in result.stderr and "│" not in result.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line
