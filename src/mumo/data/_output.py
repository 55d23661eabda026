"""What every data generator (``mumo data ...``) shares: its seed checked before anything is written, and its
output built in a folder beside ``--out`` that is renamed into place only once it is complete.

A generation that fails or is interrupted (an error, Ctrl-C) removes that folder again and leaves ``--out`` as
it was: absent, the empty directory it was, or the previous data set it was to replace. Only a process killed
outright (``kill -9``, a power cut) can leave the folder, ``OUT.partial-<pid>-<random>``, behind: ``--out``
itself is still untouched, a rerun works, and the folder can be deleted.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mumo.errors import MumoError

SEED_LIMIT = 2**32  # seeds lie in [0, 2**32), as train.seed does: numpy refuses negatives, torch takes 64 bits


def check_output_file(out: str | Path, what: str = "file", flag: str = "--out") -> Path:
    """``out`` as a Path, or a MumoError when it is a folder or its folder is missing or not writable (checked
    before any work, so a long job never fails at its end for want of a place to write)."""
    out = Path(out)
    if out.is_dir():
        raise MumoError(f"{flag} {out} is a folder; name the {what} to write")
    if not out.parent.is_dir():
        raise MumoError(f"{flag} {out}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise MumoError(f"{flag} {out} is not writable")
    return out


def check_seed(seed: int) -> None:
    """Raise MumoError unless ``seed`` is a whole number in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise MumoError(f"seed must be between 0 and {SEED_LIMIT - 1} (2**32 - 1), not {seed!r}")


def _sibling(out: Path, tag: str) -> Path:
    """A name beside ``out`` that does not exist yet: ``OUT.<tag>-<pid>-<random>``."""
    while True:
        path = out.with_name(f"{out.name}.{tag}-{os.getpid()}-{secrets.token_hex(3)}")
        if not os.path.lexists(path):
            return path


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return the ones created, deepest first."""
    missing = []
    for p in (folder, *folder.parents):
        if os.path.lexists(p):
            break
        missing.append(p)
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for p in folders:
        with contextlib.suppress(OSError):
            p.rmdir()


@contextlib.contextmanager
def staged_output(out: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """A new empty folder beside ``out`` to write a data set into; it becomes ``out`` when the block ends normally.

    ``out`` must be absent or an empty directory (the caller checks), or, with ``replace``, a directory the
    caller has checked may be replaced: it is moved aside, the new set renamed in, and only then removed. Parent
    folders are created as needed. On any exception in the block (KeyboardInterrupt included) the folder is
    removed, as are the parents it created, ``out`` is left as it was, and the exception propagates (an
    OSError, such as a full disk, as a MumoError).

    Raises:
        MumoError: no folder can be made beside ``out``, writing fails (OSError), or the finished set cannot be
            renamed to ``out`` (it is then kept, and the message says where).
    """
    out = Path(out)
    if out.is_symlink() or not out.name or out.name in (".", ".."):
        out = out.resolve()  # a link to an empty folder: fill the folder, keep the link
    try:
        created = _make_parents(out.parent)
        stage = _sibling(out, "partial")
        stage.mkdir()
    except OSError as exc:
        raise MumoError(
            f"cannot create a folder beside {out} to build the data set in ({exc.strerror or exc}); "
            "choose an output directory inside a writable folder"
        ) from None
    try:
        yield stage
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError):  # a full disk, a read-only or vanished folder: one line, not a traceback
            where = f" ({exc.filename})" if exc.filename else ""
            raise MumoError(
                f"could not build the data set: {exc.strerror or exc}{where}; {out} is left as it was"
            ) from exc
        raise
    _commit(stage, out, replace=replace)


def _commit(stage: Path, out: Path, *, replace: bool) -> None:
    """Rename the finished ``stage`` to ``out`` (absent, empty, or with ``replace`` a set to replace)."""
    old = None
    try:
        if replace and out.is_dir() and any(out.iterdir()):
            old = _sibling(out, "old")
            os.rename(out, old)
        try:
            os.replace(stage, out)  # POSIX: atomic, also over an empty directory
        except OSError:
            if not out.is_dir() or any(out.iterdir()):
                raise
            out.rmdir()  # Windows does not rename over a directory
            os.rename(stage, out)
    except OSError as exc:
        if old is not None and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.rename(old, out)
        raise MumoError(
            f"could not rename the finished data set {stage} to {out} ({exc.strerror or exc}); it is kept in {stage}"
        ) from None
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """A compressed ``.npz`` of ``arrays`` that is byte-identical for identical arrays: ``np.savez_compressed``
    stamps each member with the current time."""
    with zipfile.ZipFile(path, "w") as zf:
        for key, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def read_json(path: Path, what: str) -> object:
    """A JSON file's content; MumoError when it is missing ("{what} file not found: PATH") or not valid JSON."""
    if not path.is_file():
        raise MumoError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MumoError(f"{path} is not valid JSON: {exc}") from None


def read_jsonl(path: Path, *, expected: int | None, what: str) -> list[dict]:
    """The parsed lines of a generated set's ``.jsonl`` file, as many as its ``meta.json`` says (``expected``).

    Raises:
        MumoError: the file is missing, a line is not JSON, or it holds another number of lines; ``what`` names
            the set in the message ("mumo scenes", "Sort-of-CLEVR").
    """
    if not path.is_file():
        raise MumoError(f"incomplete {what} directory: {path} is missing")
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise MumoError(f"{path}, line {n}: not valid JSON ({exc})") from None
    if len(records) != expected:
        raise MumoError(f"incomplete {what} directory: {path} has {len(records)} images, meta.json says {expected}")
    return records


def cache_dir() -> Path:
    """Where generated data sets are cached: $MUMO_CACHE, else ~/.cache/mumo."""
    return Path(os.environ.get("MUMO_CACHE") or Path.home() / ".cache" / "mumo")
