"""Errors mumo raises for bad input. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class MumoError(ValueError):
    """Base class for every user-facing error (bad file, bad config, bad checkpoint...)."""


class ConfigError(MumoError):
    """An unknown key, preset or invalid value in a configuration."""


class ImageError(MumoError):
    """An image file that is missing, empty, truncated, not an image or too large."""


class QuestionError(MumoError):
    """A question that is empty, too long or not valid UTF-8."""


class CheckpointError(MumoError):
    """A run directory that is missing, corrupted or holds another kind of model."""


class NoOODCheckWarning(UserWarning):
    """A VQA run loaded without an out-of-distribution check (trained before mumo fitted one at the end of
    training): answers about images unlike its training images are not refused."""


def check_input_file(path: Path, what: str, error: type[MumoError] = MumoError) -> None:
    """Raise ``error`` naming ``path`` unless it is an existing, non-empty file (``what``: "audio", "video" ...)."""
    if not path.exists():
        raise error(f"{what} file not found: {path}")
    if path.is_dir():
        raise error(f"{what} path is a directory: {path}")
    if not path.is_file():  # a device (/dev/zero), a FIFO or a socket: it has no size, and may never end
        raise error(f"{what} path is {special_file_kind(path)}, not a regular file: {path}")
    if path.stat().st_size == 0:
        raise error(f"{what} file is empty (0 bytes): {path}")


def special_file_kind(path: Path) -> str:
    """What a path that is neither a regular file nor a directory is, in words ("a FIFO (named pipe)" ...)."""
    import stat

    mode = path.stat().st_mode
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISFIFO: "a FIFO (named pipe)",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")
