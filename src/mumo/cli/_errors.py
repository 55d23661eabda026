"""Turn user-facing errors into one line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import typer

from mumo.errors import MumoError

try:  # recent typer bundles its own copy of click as typer._click
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # earlier typer on click itself
    from click.exceptions import ClickException, UsageError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(fn: F) -> F:
    """Decorator for CLI commands: MumoError -> ``error: ...`` and exit 2; Ctrl-C -> exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MumoError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print("interrupted; finished epochs are saved (resume with --resume)", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _one_line(message: str) -> str:
    """Click's message as one line in mumo's style: ``No such command 'x'.`` -> ``no such command 'x'``."""
    text = " ".join(message.split())
    if text.endswith("."):
        text = text[:-1]
    if len(text) > 1 and text[0].isupper() and text[1].islower():  # "No such", not "RUN" or "VQA"
        text = text[0].lower() + text[1:]
    return text


def _command_path(app: typer.Typer, args: Sequence[str], prog_name: str) -> str:
    """The deepest command that ``args`` names (``mumo train vqa``), for the usage errors Click raises without
    a context (``Option '--split' requires an argument``)."""
    command, path = typer.main.get_command(app), [prog_name]
    for arg in args:
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command = sub
        path.append(arg)
    return " ".join(path)


def run_friendly(app: typer.Typer, args: Sequence[str] | None = None, prog_name: str = "mumo") -> int:
    """Run the command line ``args`` (default ``sys.argv[1:]``) of ``app`` and return its exit status.

    Usage errors (an unknown command or option, a missing option or argument, a value of the wrong type) print
    one line, ``error: no such command 'bogus' (see mumo --help)``, to stderr and return 2, like the
    MumoErrors of :func:`friendly_errors`; ``--help`` prints the help and returns 0, a group without a command
    (``mumo``, ``mumo train``) prints its help and returns 2, as Click does.
    """
    args = sys.argv[1:] if args is None else list(args)
    try:
        rv = app(args=args, prog_name=prog_name, standalone_mode=False)
    except ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is the message (rich has already printed it)
            if exc.format_message():
                typer.echo(exc.format_message())
            return 2
        message = f"error: {_one_line(exc.format_message())}"
        if isinstance(exc, UsageError):
            path = exc.ctx.command_path if exc.ctx is not None else _command_path(app, args, prog_name)
            message += f" (see {path} --help)"
        print(message, file=sys.stderr)
        return 2
    except typer.Abort as exc:  # end of input at a prompt, typer.Abort, Ctrl-C outside a command (older typer)
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return 130
        detail = _one_line(str(cause)) if cause is not None and str(cause) else ""
        print(f"error: aborted{f' ({detail})' if detail else ''}", file=sys.stderr)
        return 1
    # Exit (from --help, friendly_errors or a Ctrl-C) comes back as its code; a finished command as its value
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
