"""The training loop: plain, on ``accelerate`` (CPU, one GPU, or several processes via
``accelerate launch`` / ``torchrun``).

A task brings the model it ships, a function that streams one epoch's batches for one process, a loss and an
``evaluate(model, accelerator) -> metrics``. Every epoch: train, evaluate on val, run the epoch-end hooks, log
to TensorBoard, checkpoint atomically (rank 0 only).

One optimiser is the usual case (``loss_fn(model, batch) -> (loss, logs)``). A task that trains several models
in one step (a generator and its discriminators) lists them in ``others`` and gives one :class:`Step` per
optimiser, run in order on every batch: each step's loss is minimised over the parameters of the models it
names, so one step over the model and its critic keeps a single backward pass (the attention game's trick),
and two steps make a GAN's alternating updates. Every model is checkpointed under its own name
(``model.safetensors`` is always the shipped model's bare weights: what inference loads).

Epoch-end hooks ``hook(epoch, record)`` see each epoch's figures after validation (config-driven schedules,
such as a loss weight that switches on below a threshold); on a resume they are replayed over the saved
history first, so a schedule's state is what it was when the run stopped.

Reproducibility: the data order and the dropout masks of epoch e depend only on (seed, e), so a
run killed at any moment and resumed from its last checkpoint ends with the same weights as an
uninterrupted run (on CPU).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch import nn
from tqdm.auto import tqdm

from mumo.config import TrainConfig
from mumo.errors import MumoError
from mumo.train.checkpoint import (
    MODEL_NAME,
    checkpoint_dir,
    load_optimizer,
    load_weights,
    optimizer_name,
    read_state,
    save_checkpoint,
)
from mumo.train.optim import build_optimizer, lr_factor, set_lr

StepLoss = Callable[[Mapping[str, nn.Module], Any, dict[str, Any]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class Step:
    """One optimiser of a training step: the models it updates (names: ``"model"`` or a key of ``Task.others``)
    and the loss it minimises, ``loss_fn(models, batch, shared) -> (loss, logs)``. ``models`` maps every name to
    its (possibly distributed) module; ``shared`` is one dict per batch that the steps pass along (a generator's
    output for its discriminator's step)."""

    models: tuple[str, ...]
    loss_fn: StepLoss


@dataclass
class Task:
    """What the loop needs from a task."""

    model: nn.Module  # the model the run ships: its bare weights are each checkpoint's model.safetensors
    batches: Callable[[int, int, int], Iterable[Any]]  # (epoch, rank, world_size) -> that epoch's batches
    evaluate: Callable[[nn.Module, Accelerator], dict[str, float]]  # must hold `select_metric`
    loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, float]]] | None = None  # one optimiser
    others: Mapping[str, nn.Module] = field(default_factory=dict)  # trained beside the model: <name>.safetensors
    steps: Sequence[Step] = ()  # several optimisers, in order; default: one over `model` minimising `loss_fn`
    epoch_end: Sequence[Callable[[int, dict[str, Any]], None]] = ()  # hooks after each epoch's validation
    batch_size: Callable[[Any], int] = len  # samples in a batch (for samples/s)
    num_batches: int | None = None  # batches per epoch over all processes (checked against the process count)
    select_metric: str = "accuracy"  # higher is better; picks the best checkpoint

    def __post_init__(self) -> None:
        if not self.steps:
            if self.loss_fn is None:
                raise MumoError("a training task needs a loss_fn or steps")
            loss_fn = self.loss_fn
            self.steps = (Step((MODEL_NAME,), lambda models, batch, _shared: loss_fn(models[MODEL_NAME], batch)),)
        known = {MODEL_NAME, *self.others}
        for step in self.steps:
            if not step.models or not set(step.models) <= known:
                raise MumoError(f"a training step names models {step.models}; the task has {sorted(known)}")

    @property
    def models(self) -> dict[str, nn.Module]:
        """Every model the loop trains and checkpoints, by name (the shipped one first)."""
        return {MODEL_NAME: self.model, **self.others}


@dataclass
class FitResult:
    """Summary of a finished run."""

    run_dir: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = -1
    train_seconds: float = 0.0
    samples_per_second: float = 0.0


def make_accelerator(cfg: TrainConfig) -> Accelerator:
    """An Accelerator for this config (the CPU when ``cfg.cpu`` or when no GPU is present).

    ``cpu=True`` matters under ``torchrun`` on a machine without a GPU: without it accelerate starts
    every process as an independent single-process run instead of CPU DDP (gloo).

    accelerate keeps one state per process and refuses a second Accelerator with another precision or
    device ("AcceleratorState has already been initialized"), so each run starts from a fresh one; in a
    single process that includes the device state, under torchrun the process group is kept.
    """
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))  # processes on this machine (torchrun sets it)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if not cfg.cpu and 0 < gpus < local:  # process i takes GPU i: the extra ones would fail one by one, or hang
        raise MumoError(
            f"{local} processes on this machine but only {gpus} GPU(s): start at most {gpus} "
            f"(torchrun --nproc_per_node={gpus}) or train on the CPU with train.cpu=true"
        )
    single = int(os.environ.get("WORLD_SIZE", "1")) == 1 and not torch.distributed.is_initialized()
    AcceleratorState._reset_state(reset_partial_state=single)
    return Accelerator(cpu=cfg.cpu or not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision)


def check_process_count(task: Task, world_size: int) -> None:
    """Refuse more processes than training batches per epoch (they would only repeat data)."""
    if task.num_batches is not None and world_size > task.num_batches:
        raise MumoError(
            f"{world_size} processes but only {task.num_batches} training batches per epoch: "
            "use fewer processes or a smaller batch"
        )


def _ranks_in_sync(model: nn.Module, accelerator: Accelerator) -> bool:
    """Whether every process holds bit-identical weights (a fingerprint of sums, gathered)."""
    params = [p.detach().double() for p in model.parameters()]
    fingerprint = torch.stack([sum(p.sum() for p in params), sum((p * p).sum() for p in params)])  # (2,)
    gathered = accelerator.gather(fingerprint[None].to(accelerator.device))  # (world, 2)
    return bool((gathered == gathered[0]).all())


def fit(task: Task, cfg: TrainConfig, run_dir: Path, *, resume: bool = False, progress: bool = True) -> FitResult:
    """Train ``task``'s models for ``cfg.epochs`` epochs, checkpointing into ``run_dir``."""
    accelerator = make_accelerator(cfg)
    rank, world = accelerator.process_index, accelerator.num_processes
    check_process_count(task, world)
    torch.manual_seed(cfg.init_seed)
    models = task.models
    optimizers = [build_optimizer([models[name] for name in step.models], cfg) for step in task.steps]

    start_epoch, history, best, train_seconds = 0, [], -math.inf, 0.0
    if resume:
        state = read_state(run_dir)
        last = checkpoint_dir(run_dir, "last")
        for name, model in models.items():
            load_weights(model, last, name)
        for i, optimizer in enumerate(optimizers):
            load_optimizer(optimizer, last, optimizer_name(i))
        history = state.get("history", [])
        start_epoch = history[-1]["epoch"] + 1 if history else 0
        best = max((h[task.select_metric] for h in history), default=-math.inf)
        train_seconds = history[-1].get("train_seconds", 0.0) if history else 0.0
        for record in history:  # schedules driven by the hooks pick up where they were
            for hook in task.epoch_end:
                hook(record["epoch"], record)
    prepared = accelerator.prepare(*models.values(), *optimizers)
    models = dict(zip(models, prepared[: len(models)], strict=True))
    optimizers = list(prepared[len(models) :])
    step_params = [[p for name in step.models for p in models[name].parameters()] for step in task.steps]

    writer = None
    if accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run_dir / "logs"), purge_step=start_epoch)

    total = None if task.num_batches is None else -(-task.num_batches // world)
    samples, sample_seconds = 0, 0.0
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.init_seed * 1_000_003 + epoch)  # dropout masks of this epoch
        lr = cfg.lr * lr_factor(epoch, cfg)
        for optimizer in optimizers:
            set_lr(optimizer, lr)
        for model in models.values():
            model.train()
        bar = tqdm(
            task.batches(epoch, rank, world), desc=f"epoch {epoch + 1}/{cfg.epochs}", total=total,
            disable=not (progress and accelerator.is_main_process), leave=False, dynamic_ncols=True,
        )  # fmt: skip
        t0, running, steps = time.perf_counter(), 0.0, 0
        for batch in bar:
            batch = batch.to(accelerator.device)
            shared: dict[str, Any] = {}
            losses = []
            for step, optimizer, params in zip(task.steps, optimizers, step_params, strict=True):
                with accelerator.autocast():
                    loss, _logs = step.loss_fn(models, batch, shared)
                if not torch.isfinite(loss):
                    raise MumoError(f"loss became {loss.item()} at epoch {epoch + 1}, step {steps}; lower train.lr")
                optimizer.zero_grad(set_to_none=True)
                accelerator.backward(loss)
                if cfg.grad_clip > 0:
                    accelerator.clip_grad_norm_(params, cfg.grad_clip)
                optimizer.step()
                losses.append(loss.item())
            samples += task.batch_size(batch) * world
            running += losses[0]  # the shipped model's loss (the first step's)
            steps += 1
            bar.set_postfix(loss=f"{running / steps:.4f}", lr=f"{lr:.2e}")
        epoch_seconds = time.perf_counter() - t0
        train_seconds += epoch_seconds
        sample_seconds += epoch_seconds

        metrics = task.evaluate(accelerator.unwrap_model(models[MODEL_NAME]), accelerator)
        if world > 1:
            metrics["ranks_in_sync"] = float(_ranks_in_sync(models[MODEL_NAME], accelerator))
        record = {
            "epoch": epoch, "lr": lr, "train_loss": running / max(1, steps),
            "epoch_seconds": epoch_seconds, "train_seconds": train_seconds, **metrics,
        }  # fmt: skip
        for hook in task.epoch_end:
            hook(epoch, record)
        history.append(record)
        is_best = metrics[task.select_metric] > best
        best = max(best, metrics[task.select_metric])
        if accelerator.is_main_process:
            assert writer is not None
            for key, value in record.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    writer.add_scalar(key, value, epoch + 1)
            writer.flush()
            meta = {k: v for k, v in record.items() if k != "epoch"}
            save_checkpoint(
                run_dir, epoch=epoch, models={k: accelerator.unwrap_model(m) for k, m in models.items()},
                optimizers=optimizers, meta=meta, is_best=is_best,
            )  # fmt: skip
            shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
            tqdm.write(
                f"epoch {epoch + 1}/{cfg.epochs}: loss={record['train_loss']:.4f} {shown} ({epoch_seconds:.0f}s)",
                file=sys.stderr,
            )
        accelerator.wait_for_everyone()

    if writer is not None:
        writer.close()
    state = read_state(run_dir) if accelerator.is_main_process else {}
    best_epoch = -1
    if state:
        best_epoch = json.loads((checkpoint_dir(run_dir, "best") / "meta.json").read_text())["epoch"]
    return FitResult(
        run_dir=run_dir, history=history, best_epoch=best_epoch, train_seconds=train_seconds,
        samples_per_second=samples / sample_seconds if sample_seconds else 0.0,
    )  # fmt: skip
