"""Training a VQA run: the model, batches, loss and validation wired to the loop."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn

from mumo.data.shift.augment import random_pixel_noise
from mumo.data.vqa.split import image_batches
from mumo.devices import is_main_process
from mumo.errors import ConfigError, MumoError
from mumo.models import create_model
from mumo.runs import Run
from mumo.tasks.vqa.accuracy import evaluate_split
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.data import VQAData, load_data
from mumo.tasks.vqa.loss import vqa_loss
from mumo.tasks.vqa.model import attention_objective, load_model
from mumo.tasks.vqa.ood import fit_run_checks
from mumo.tasks.vqa.question_bank import save_question_order
from mumo.train.loop import FitResult, Step, Task, check_process_count, fit
from mumo.types import VQABatch


def build_task(cfg: RunConfig, data: VQAData) -> Task:
    """Wire model, batches, loss and validation to the training loop."""
    t, o = cfg.train, cfg.objective
    if o.augment_pixel_noise > 0 and data.train.images.dtype != torch.uint8:
        raise ConfigError(
            "objective.augment_pixel_noise adds noise to image pixels; this model reads precomputed region features "
            "(model.image_encoder=regions)"
        )
    torch.manual_seed(t.init_seed)  # initial weights depend only on the seed (and the ensemble member)
    model = create_model(cfg.model, vocab=data.vocab.tokens, num_answers=len(data.answers))
    objective = attention_objective(cfg, model, example=data.train.batch(torch.tensor([0])))

    def batches(epoch: int, rank: int, world: int) -> Iterator[VQABatch]:
        idx = image_batches(
            data.train.num_images, t.batch_size, shuffle=True, seed=t.init_seed, epoch=epoch, rank=rank,
            world_size=world,
        )  # fmt: skip
        gen = torch.Generator().manual_seed(t.init_seed * 1_000_003 + epoch * 1_009 + rank)
        for i in idx:
            b = data.train.batch(i)
            if o.augment_pixel_noise > 0:  # fresh noise every epoch, the same on a resume
                b = replace(b, images=random_pixel_noise(b.images, o.augment_pixel_noise, gen))
            yield b

    def evaluate(m: nn.Module, acc: Accelerator) -> dict[str, float]:
        res = evaluate_split(m, data.val, t.eval_batch_size, acc)
        extra = {k: v for k, v in res.items() if k in ("accuracy_relational", "accuracy_non_relational")}
        return {
            "accuracy": res["accuracy"],
            **extra,
            **{f"accuracy_{k}": v for k, v in res["accuracy_by_type"].items()},
        }

    def loss_fn(m: nn.Module, b: VQABatch) -> tuple[torch.Tensor, dict[str, float]]:
        return vqa_loss(m, b, o.loss_reduction, cfg.model.aleatoric, cfg.model.aleatoric_samples, o.loss)

    others, steps = {}, ()
    if objective is not None:  # one optimiser and one backward over the model and its discriminator, if any
        with_critic = any(p.requires_grad for p in objective.parameters())
        others = {"attention": objective} if with_critic else {}

        def attention_loss(ms: Mapping[str, nn.Module], b: VQABatch, _shared: dict) -> tuple[torch.Tensor, dict]:
            return ms.get("attention", objective)(ms["model"], b)

        steps = (Step(("model", *others), attention_loss),)

    return Task(
        model=model,
        batches=batches,
        loss_fn=loss_fn,
        others=others,
        steps=steps,
        evaluate=evaluate,
        batch_size=lambda b: int(b.tokens.shape[0]),
        num_batches=-(-data.train.num_images // t.batch_size),
    )  # fmt: skip


def default_run_dir(cfg: RunConfig) -> Path:
    """runs/vqa-<data>-<timestamp>."""
    return Path("runs") / f"{cfg.task}-{cfg.data.name}-{datetime.now():%Y%m%d-%H%M%S}"


def train_vqa(
    cfg: RunConfig | None,
    out: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    evaluate_test: bool = True,
) -> dict[str, Any]:
    """Train a VQA model into ``out`` and (optionally) evaluate the best checkpoint on test.

    Returns a summary: best val accuracy, test accuracy, wall time, training samples/s.
    """
    run = Run(out)
    with run.lock():  # one training per run directory; refused at once when another holds it
        return _train_vqa(run, cfg, resume=resume, progress=progress, evaluate_test=evaluate_test)


def _train_vqa(run: Run, cfg: RunConfig | None, *, resume: bool, progress: bool, evaluate_test: bool) -> dict:
    out = run.path
    cfg, resume = run.prepare(cfg, resume=resume, schema=RunConfig)
    t0 = time.perf_counter()
    data = load_data(cfg)
    task = build_task(cfg, data)
    check_process_count(task, int(os.environ.get("WORLD_SIZE", "1")))  # before anything is written
    if not resume:
        run.create(cfg, {"kind": "vqa", "model": cfg.model.name, "vocab": data.vocab.tokens, "answers": data.answers})
        if is_main_process():  # inference draws question banks from it instead of loading the training set
            save_question_order(run, data.train, seed=cfg.train.seed)
    out.mkdir(parents=True, exist_ok=True)
    result: FitResult = fit(task, cfg.train, out, resume=resume, progress=progress)
    summary: dict[str, Any] = {
        "run_dir": str(out), "best_epoch": result.best_epoch + 1,
        "best_val_accuracy": max(h["accuracy"] for h in result.history) if result.history else None,
        "train_seconds": result.train_seconds, "train_samples_per_second": result.samples_per_second,
    }  # fmt: skip
    if result.best_epoch >= 0 and is_main_process():
        model = load_model(out)
        # what the default out-of-distribution check and the density scores need, stored with the run; a split
        # they cannot be fitted on (no questions) leaves the run without them, as runs trained before, not failed
        try:
            fitted = fit_run_checks(out, model, data.train, data.val, images_per_batch=cfg.train.eval_batch_size)
        except MumoError as exc:
            fitted = {"ood_check": {"skipped": str(exc)}}
        summary.update(fitted)
    if evaluate_test and result.best_epoch >= 0 and is_main_process():
        res = evaluate_split(model, data.test, cfg.train.eval_batch_size)
        summary["test_accuracy"] = res["accuracy"]
        summary["test_accuracy_by_type"] = res["accuracy_by_type"]
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary
