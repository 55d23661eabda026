"""Checkpoints as safetensors + JSON, written atomically.

Layout of a run directory::

    RUN/config.yaml              the full RunConfig
    RUN/artifacts.json           vocabulary, answer list: what the model needs to read inputs
    RUN/state.json               {"last": "epoch-0003", "best": "epoch-0002", "history": [...]}
    RUN/checkpoints/epoch-0003/  model.safetensors (the shipped model's bare weights), <name>.safetensors for each
                                 model trained beside it (discriminators), optimizer.safetensors + optimizer.json
                                 (optimizer-1.*, ... for further optimisers), meta.json
    RUN/logs/                    TensorBoard events

Each epoch directory is written under a temporary name and renamed into place, and ``state.json``
is replaced atomically afterwards, so a run killed at any moment leaves a consistent state.
No pickle anywhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from mumo.errors import CheckpointError, special_file_kind

CHECKPOINT_NAME = re.compile(r"epoch-\d{4,}")  # the checkpoint directories mumo writes (and prunes)
MODEL_NAME = "model"  # the shipped model's name: model.safetensors, what inference loads
STATE_FILE = "state.json"
CONFIG_FILE = "config.yaml"
ARTIFACTS_FILE = "artifacts.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # never a half-written file left beside the real one
        raise


def _optimizer_to_flat(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for flat, value in [*tensors.items(), *info["scalars"].items()]:
        pid, key = flat.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": info["param_groups"]}


def optimizer_name(index: int) -> str:
    """The file name (no suffix) of a training step's optimiser state: ``optimizer``, ``optimizer-1``, ..."""
    return "optimizer" if index == 0 else f"optimizer-{index}"


def save_checkpoint(
    run_dir: Path,
    *,
    epoch: int,
    models: Mapping[str, nn.Module],
    optimizers: Sequence[torch.optim.Optimizer] = (),
    meta: dict[str, Any],
    is_best: bool,
) -> None:
    """Write epoch ``epoch`` (0-based) and point ``state.json`` at it; prune older checkpoints.

    ``models``: each model's weights as ``<name>.safetensors`` (``model``: the shipped one);
    ``optimizers``: each training step's optimiser state (:func:`optimizer_name`).
    """
    ckpt_root = run_dir / "checkpoints"
    name = checkpoint_name(epoch)
    tmp = ckpt_root / f".{name}.tmp"
    state = read_state(run_dir) if (run_dir / STATE_FILE).exists() else {}
    previous = state.get("last")
    try:
        ckpt_root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for model_name, model in models.items():
            weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(weights, str(tmp / f"{model_name}.safetensors"))
        for i, optimizer in enumerate(optimizers):
            tensors, info = _optimizer_to_flat(optimizer.state_dict())
            save_file(tensors, str(tmp / f"{optimizer_name(i)}.safetensors"))
            (tmp / f"{optimizer_name(i)}.json").write_text(json.dumps(info), encoding="utf-8")
        (tmp / "meta.json").write_text(json.dumps({"epoch": epoch, **meta}, indent=2), encoding="utf-8")
        final = ckpt_root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

        state["last"] = name
        if is_best or "best" not in state:
            state["best"] = name
        state.setdefault("history", [])
        state["history"] = [h for h in state["history"] if h["epoch"] < epoch] + [{"epoch": epoch, **meta}]
        atomic_write_text(run_dir / STATE_FILE, json.dumps(state, indent=2))
    except (OSError, SafetensorError) as exc:  # a full disk, a read-only or vanished directory
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the last good checkpoint, {previous}, is kept" if previous else "no epoch was saved"
        reason = getattr(exc, "strerror", None) or exc
        raise CheckpointError(
            f"could not write the checkpoint of epoch {epoch + 1} into {ckpt_root}: {reason}; {kept} (free space, "
            "then resume with --resume)"
        ) from None
    for old in ckpt_root.iterdir():  # only the checkpoints mumo wrote: a user's files are never touched
        if CHECKPOINT_NAME.fullmatch(old.name) and old.name not in (state["last"], state["best"]):
            shutil.rmtree(old, ignore_errors=True)


def checkpoint_name(epoch: int) -> str:
    """The directory name of epoch ``epoch``'s (0-based) checkpoint: ``epoch-0001`` for the first."""
    return f"epoch-{epoch + 1:04d}"


def read_run_json(run_dir: Path, name: str, missing: str) -> dict[str, Any]:
    """A JSON file of a run directory.

    Raises:
        CheckpointError: the directory does not exist, the file is missing (``missing`` says what that
            means) or it is not valid JSON.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory does not exist: {run_dir}")
    path = run_dir / name
    if not path.exists():
        raise CheckpointError(f"{run_dir} {missing} (no {name})")
    if not path.is_file():
        raise CheckpointError(f"corrupted run: {path}: {special_file_kind(path)}, not a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise CheckpointError(f"corrupted run: {path}: not valid JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"corrupted run: {path}: holds a {type(data).__name__}, not a JSON object")
    return data


def read_state(run_dir: Path) -> dict[str, Any]:
    """The run's ``state.json`` (raises CheckpointError when missing or unreadable)."""
    return read_run_json(run_dir, STATE_FILE, "holds no finished epoch; is it a mumo run?")


def checkpoint_dir(run_dir: Path, which: str = "best") -> Path:
    """Directory of the ``best`` or ``last`` checkpoint of a run (only the run's own ``epoch-NNNN`` names are
    followed: a state.json pointing elsewhere is a corrupted run)."""
    state = read_state(run_dir)
    if which not in state:
        raise CheckpointError(f"{run_dir}/{STATE_FILE} names no {which!r} checkpoint")
    name = state[which]
    if not isinstance(name, str) or not CHECKPOINT_NAME.fullmatch(name):
        raise CheckpointError(
            f"corrupted run: {Path(run_dir) / STATE_FILE}: its {which!r} checkpoint {name!r} is not one of the run's "
            "own (epoch-NNNN)"
        )
    path = Path(run_dir) / "checkpoints" / name
    if not path.is_dir():
        raise CheckpointError(f"checkpoint directory missing: {path}")
    return path


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.exists():
        raise CheckpointError(f"checkpoint file missing: {path}")
    if not path.is_file():
        raise CheckpointError(f"corrupted run: {path}: {special_file_kind(path)}, not a safetensors file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint file is corrupted: {path} ({exc})") from None


def read_weights(ckpt: Path, name: str = MODEL_NAME) -> dict[str, torch.Tensor]:
    """The tensors of ``<name>.safetensors`` in a checkpoint directory."""
    return _load_tensors(ckpt / f"{name}.safetensors")


def load_weights(
    model: nn.Module, ckpt: Path, name: str = MODEL_NAME, *, weights: dict[str, torch.Tensor] | None = None
) -> None:
    """Load ``<name>.safetensors`` from a checkpoint directory (or ``weights`` read from it) into ``model``
    (strict)."""
    weights = read_weights(ckpt, name) if weights is None else weights
    problem = state_dict_mismatch(model.state_dict(), weights)
    if problem:
        raise CheckpointError(f"corrupted run: {ckpt / f'{name}.safetensors'} does not fit the run's model: {problem}")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(
            f"corrupted run: {ckpt / f'{name}.safetensors'} does not fit the run's model: {first}"
        ) from None


def state_dict_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], *, show: int = 3) -> str:
    """What keeps ``found`` from loading strictly where ``expected`` is (the model's own state dict), in one
    phrase naming the tensors (the first ``show`` of each kind): wrong shapes, missing and unexpected names;
    "" when they fit."""

    def names(items: list[str]) -> str:
        more = f" and {len(items) - show} more" if len(items) > show else ""
        return ", ".join(items[:show]) + more

    def shape(t: torch.Tensor) -> str:
        return "(" + ", ".join(str(d) for d in t.shape) + ")"

    wrong = [
        f"{k} is {shape(found[k])} in the file, {shape(v)} in the model"
        for k, v in expected.items()
        if k in found and tuple(found[k].shape) != tuple(v.shape)
    ]
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    parts = []
    if wrong:
        parts.append(names(wrong))
    if missing:
        parts.append(f"{len(missing)} tensor(s) missing ({names(missing)})")
    if extra:
        parts.append(f"{len(extra)} unexpected tensor(s) ({names(extra)})")
    return "; ".join(parts)


def load_optimizer(optimizer: torch.optim.Optimizer, ckpt: Path, name: str = "optimizer") -> None:
    """Restore optimizer state saved by :func:`save_checkpoint` (``name``: :func:`optimizer_name`)."""
    tensors = _load_tensors(ckpt / f"{name}.safetensors")
    try:
        info = json.loads((ckpt / f"{name}.json").read_text(encoding="utf-8"))
        optimizer.load_state_dict(_optimizer_from_flat(tensors, info))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state in {ckpt} is unreadable: {exc}") from None
