"""The VQA task: data, soft-target BCE loss, evaluation, training and loading a run."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch import nn

from mumo.config import ConfigError, RunConfig, config_from_yaml, config_to_dict, config_to_yaml
from mumo.data.augment import random_pixel_noise
from mumo.data.sort_of_clevr import FAMILIES, is_relational
from mumo.data.text import Vocab
from mumo.data.vqa import VQASplit, image_batches
from mumo.devices import resolve_device
from mumo.errors import CheckpointError, MumoError
from mumo.metrics.vqa import accuracy_by_type, soft_accuracy
from mumo.models import create_model
from mumo.train.checkpoint import (
    ARTIFACTS_FILE,
    CONFIG_FILE,
    STATE_FILE,
    atomic_write_text,
    checkpoint_dir,
    load_weights,
    read_run_json,
    read_state,
)
from mumo.train.loop import FitResult, Task, check_process_count, fit, is_main_process
from mumo.types import VQABatch, VQAOutput
from mumo.uncertainty.losses import kendall_gal_logit_noise_ce, ucam_aleatoric_ce

DATASETS = ("easy-vqa", "sort-of-clevr", "vqa-v2")


@dataclass
class VQAData:
    """Splits plus the vocabulary and answer list."""

    train: VQASplit
    val: VQASplit
    test: VQASplit
    vocab: Vocab
    answers: list[str]


def load_data(cfg: RunConfig) -> VQAData:
    """Load the data set named by ``cfg.data.name``."""
    d = cfg.data
    if cfg.train.attention_loss == "masks" and d.name != "sort-of-clevr":
        raise ConfigError(
            f"train.attention_loss=masks trains attention on ground-truth object masks, which {d.name} does not have; "
            "use data.name=sort-of-clevr or another attention_loss (mse, aan, paan, gca)"
        )
    if d.name == "easy-vqa":
        from mumo.data.easy_vqa import load_easy_vqa

        ds = load_easy_vqa(
            val_fraction=d.val_fraction, seed=cfg.train.seed, max_question_len=d.max_question_len,
            image_size=d.image_size, max_train_images=d.max_train_images,
        )  # fmt: skip
        return VQAData(ds.train, ds.val, ds.test, ds.vocab, ds.answers)
    if d.name == "sort-of-clevr":
        return _load_sort_of_clevr(cfg)
    if d.name == "vqa-v2":  # test = the val2014 files when present, else carved from train like val
        from mumo.data.vqa import carve_validation
        from mumo.data.vqa_v2 import has_split, load_vqa_v2

        if not d.root:
            raise ConfigError("data.name=vqa-v2 needs data.root: the directory of the official VQA v2 files")
        kw = dict(features=cfg.model.image_encoder == "regions", max_question_len=d.max_question_len,
                  image_size=d.image_size)  # fmt: skip
        full, vocab, answers, rep = load_vqa_v2(d.root, split="train", **kw)
        if has_split(d.root, "val"):
            test, _, _, test_rep = load_vqa_v2(d.root, split="val", vocab=vocab, answers=answers, **kw)
        else:
            full, test = carve_validation(full, val_fraction=d.val_fraction, seed=cfg.train.seed + 1)
            test.name, test_rep = "test", None
        train, val = carve_validation(
            full, val_fraction=d.val_fraction, seed=cfg.train.seed, max_train_images=d.max_train_images
        )
        for r in (rep, test_rep):
            if r and r["unanswerable"]:
                print(f"VQA v2 {r['split']}: {r['unanswerable']} of {r['num_questions']} questions have no "
                      f"answer in the {len(answers)}-answer list (all-zero targets)", file=sys.stderr)  # fmt: skip
        return VQAData(train, val, test, vocab, answers)
    raise ConfigError(f"unknown VQA data set {d.name!r}; choose one of: {', '.join(DATASETS)}")


def cache_dir() -> Path:
    """Where generated data sets are cached: $MUMO_CACHE, else ~/.cache/mumo."""
    return Path(os.environ.get("MUMO_CACHE") or Path.home() / ".cache" / "mumo")


def sort_of_clevr_root(cfg: RunConfig) -> Path:
    """The Sort-of-CLEVR directory a config reads: ``data.root``, or the cached default data set
    (9,800 / 200 images, seed 0), generated on first use."""
    from mumo.data import sort_of_clevr as soc

    if cfg.data.root:
        return Path(cfg.data.root)
    root = cache_dir() / "sort-of-clevr-v1-seed0"
    if not (root / "meta.json").exists():
        if root.exists():  # an interrupted generation: start again
            import shutil

            shutil.rmtree(root)
        print(f"generating Sort-of-CLEVR into {root} (first use)", file=sys.stderr)
        soc.generate(root, n_train=9800, n_test=200, seed=0)
    return root


def _load_sort_of_clevr(cfg: RunConfig) -> VQAData:
    """Sort-of-CLEVR from ``data.root``, or generated once (9,800 / 200 images, seed 0) into the cache."""
    from mumo.data import sort_of_clevr as soc
    from mumo.data.vqa import carve_validation

    d = cfg.data
    root = sort_of_clevr_root(cfg)
    full, vocab, answers = soc.load_sort_of_clevr(
        root, split="train", max_question_len=d.max_question_len, image_size=d.image_size,
        object_masks=cfg.train.attention_loss == "masks",
    )  # fmt: skip
    test, _, _ = soc.load_sort_of_clevr(
        root, split="test", vocab=vocab, max_question_len=d.max_question_len, image_size=d.image_size
    )
    train, val = carve_validation(
        full, val_fraction=d.val_fraction, seed=cfg.train.seed, max_train_images=d.max_train_images
    )
    return VQAData(train, val, test, vocab, list(answers))


def vqa_loss(
    model: nn.Module, batch: VQABatch, reduction: str = "sum", aleatoric: str = "none", aleatoric_samples: int = 20
) -> tuple[torch.Tensor, dict[str, float]]:
    """The VQA training loss.

    - ``aleatoric="none"``: soft-target binary cross-entropy on the answer logits (MCAN: summed over
      batch x classes, or averaged over questions with ``reduction="mean"``);
    - ``"kendall-gal"``: Kendall & Gal's logit-noise softmax loss with the soft targets as weights;
    - ``"ucam"``: U-CAM's aleatoric loss L_u + gce + var + dep (a batch mean, times N for "sum").
    """
    return loss_from_output(model(batch), batch, reduction, aleatoric, aleatoric_samples)


def loss_from_output(
    out: VQAOutput, batch: VQABatch, reduction: str = "sum", aleatoric: str = "none", aleatoric_samples: int = 20
) -> tuple[torch.Tensor, dict[str, float]]:
    """:func:`vqa_loss` of an output already computed."""
    logits = out.logits  # (N, C)
    n = logits.shape[0]
    if aleatoric == "none":
        loss = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="sum")
        return (loss / n if reduction == "mean" else loss), {}
    if out.log_variance is None:
        raise ConfigError(f"aleatoric loss {aleatoric!r} needs a model built with model.aleatoric={aleatoric}")
    if aleatoric == "kendall-gal":
        loss = kendall_gal_logit_noise_ce(
            logits, out.log_variance, batch.targets, num_samples=aleatoric_samples, reduction=reduction
        )
        return loss, {}
    terms = ucam_aleatoric_ce(logits, out.log_variance.exp(), batch.targets, num_samples=aleatoric_samples)
    return (terms.total * n if reduction == "sum" else terms.total), {}


@torch.no_grad()
def predict_logits(
    model: nn.Module, split: VQASplit, images_per_batch: int, accelerator: Accelerator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits for this process's share of a split: (question indices (n,), logits (n, C))."""
    model.eval()
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    device = accelerator.device if accelerator else next(model.parameters()).device
    ids, out = [], []
    for image_idx in image_batches(
        split.num_images, images_per_batch, shuffle=False, rank=rank, world_size=world, pad=False
    ):
        batch = split.batch(image_idx).to(device)
        logits = model(batch).logits.float().cpu()
        if not torch.isfinite(logits).all():
            raise MumoError("the model produced NaN or infinite logits; the checkpoint may be broken")
        out.append(logits)
        ids.append(batch.question_ids.cpu())
    if not out:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, split.targets.shape[1])
    return torch.cat(ids), torch.cat(out)


def evaluate_split(
    model: nn.Module, split: VQASplit, images_per_batch: int = 128, accelerator: Accelerator | None = None
) -> dict[str, Any]:
    """Accuracy overall and per question type; with several processes the results are gathered."""
    ids, logits = predict_logits(model, split, images_per_batch, accelerator)
    scores = torch.zeros(split.num_questions)
    seen = torch.zeros(split.num_questions)
    scores[ids] = soft_accuracy(logits, split.targets[ids])
    seen[ids] = 1.0
    if accelerator is not None and accelerator.num_processes > 1:
        scores = accelerator.reduce(scores.to(accelerator.device), "sum").cpu()
        seen = accelerator.reduce(seen.to(accelerator.device), "sum").cpu()
    if not bool((seen == 1).all()):
        raise RuntimeError("evaluation did not see every question exactly once")
    return accuracy_report(scores, split)


def accuracy_report(scores: torch.Tensor, split: VQASplit) -> dict[str, Any]:
    """Soft VQA accuracy (N,) of every question of a split, summarised overall, per type and (Sort-of-CLEVR) per
    relation family."""
    res = {
        "accuracy": float(scores.mean()) if split.num_questions else 0.0,
        "accuracy_by_type": accuracy_by_type(scores, split.question_types),
        "num_questions": split.num_questions,
    }
    if split.num_questions and set(split.question_types) <= set(FAMILIES):  # Sort-of-CLEVR: the relation split
        relational = torch.tensor([is_relational(t) for t in split.question_types])
        res["accuracy_relational"] = float(scores[relational].mean())
        res["accuracy_non_relational"] = float(scores[~relational].mean())
    return res


def trainable_model(cfg: RunConfig, vocab: list[str], num_answers: int, *, example: VQABatch | None) -> nn.Module:
    """The model the loop trains and checkpoints: the VQA model, wrapped with its attention supervision
    (and discriminator) when ``train.attention_loss`` is set (see :mod:`mumo.tasks.vqa_attention`).

    ``example``: one batch, to size the discriminator (None when loading: sized from the config's grid).
    """
    model = create_model(cfg.model, vocab=vocab, num_answers=num_answers)
    if cfg.train.attention_loss == "none":
        return model
    from mumo.tasks.vqa_attention import AttentionSupervisedVQA, feature_shape

    if not hasattr(model, "explain_layer"):
        raise ConfigError(f"train.attention_loss={cfg.train.attention_loss} needs a model with image attention")
    if example is None:
        cells, features = _grid_cells(cfg), model.image_encoder.out_channels
    else:
        cells, features = feature_shape(model, example)
    return AttentionSupervisedVQA(model, cfg, cells=cells, features=features)


def _grid_cells(cfg: RunConfig) -> int:
    """Image regions R of a grid-CNN model (each pooling halves the size, rounding up)."""
    if cfg.model.image_encoder != "cnn":
        raise ConfigError("attention-supervised training is implemented for the grid CNN front-end")
    side = cfg.data.image_size
    for _ in range(cfg.model.cnn_pool):
        side = -(-side // 2)
    return side * side


def build_task(cfg: RunConfig, data: VQAData) -> Task:
    """Wire model, batches, loss and validation to the training loop."""
    t = cfg.train
    if t.augment_pixel_noise > 0 and data.train.images.dtype != torch.uint8:
        raise ConfigError(
            "train.augment_pixel_noise adds noise to image pixels; this model reads precomputed region features "
            "(model.image_encoder=regions)"
        )
    torch.manual_seed(t.init_seed)  # initial weights depend only on the seed (and the ensemble member)
    model = trainable_model(cfg, data.vocab.tokens, len(data.answers), example=data.train.batch(torch.tensor([0])))

    def batches(epoch: int, rank: int, world: int) -> list[VQABatch]:
        idx = image_batches(
            data.train.num_images,
            t.images_per_batch,
            shuffle=True,
            seed=t.init_seed,
            epoch=epoch,
            rank=rank,
            world_size=world,
        )
        out = [data.train.batch(i) for i in idx]
        if t.augment_pixel_noise > 0:  # fresh noise every epoch, the same on a resume
            gen = torch.Generator().manual_seed(t.init_seed * 1_000_003 + epoch * 1_009 + rank)
            out = [replace(b, images=random_pixel_noise(b.images, t.augment_pixel_noise, gen)) for b in out]
        return out

    def evaluate(m: nn.Module, acc: Accelerator) -> dict[str, float]:
        res = evaluate_split(m, data.val, t.eval_images_per_batch, acc)
        extra = {k: v for k, v in res.items() if k in ("accuracy_relational", "accuracy_non_relational")}
        return {
            "accuracy": res["accuracy"],
            **extra,
            **{f"accuracy_{k}": v for k, v in res["accuracy_by_type"].items()},
        }

    def loss_fn(m: nn.Module, b: VQABatch) -> tuple[torch.Tensor, dict[str, float]]:
        if t.attention_loss != "none":
            return m(b, training_loss=True)
        return vqa_loss(m, b, t.loss_reduction, cfg.model.aleatoric, cfg.model.aleatoric_samples)

    return Task(
        model=model,
        batches=batches,
        loss_fn=loss_fn,
        evaluate=evaluate,
        batch_size=lambda b: int(b.tokens.shape[0]),
        num_batches=-(-data.train.num_images // t.images_per_batch),
    )  # fmt: skip


def default_run_dir(cfg: RunConfig) -> Path:
    """runs/vqa-<data>-<timestamp>."""
    return Path("runs") / f"{cfg.task}-{cfg.data.name}-{datetime.now():%Y%m%d-%H%M%S}"


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    keys = sorted(set(a) | set(b))
    out = []
    for k in keys:
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k} ({va!r} in the checkpoint, {vb!r} now)")
    return out


def prepare_run_dir(cfg: Any, out: Path, *, resume: bool, schema: type = RunConfig) -> Any:
    """Check the run directory before any training; returns the config to train with.

    A new run refuses a directory that already holds a run (never overwrite work); a resume
    refuses a config that differs from the checkpoint's (``cfg=None`` takes the saved one), except
    for a larger ``train.epochs``: that extends the run (the new value is saved).
    """
    if resume:
        read_state(out)
        saved = config_from_yaml(out / CONFIG_FILE, schema=schema)
        if cfg is None:
            return saved
        diff = _differences(config_to_dict(saved), config_to_dict(cfg))
        if diff and not (
            len(diff) == 1 and diff[0].startswith("train.epochs ") and cfg.train.epochs > saved.train.epochs
        ):
            raise ConfigError(f"--resume config differs from the checkpoint's: {'; '.join(diff)}")
        if diff and is_main_process():
            atomic_write_text(out / CONFIG_FILE, config_to_yaml(cfg))  # extended: more epochs
        return cfg
    if is_main_process() and ((out / STATE_FILE).exists() or (out / CONFIG_FILE).exists()):
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    assert cfg is not None
    return cfg


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
    out = Path(out)
    cfg = prepare_run_dir(cfg, out, resume=resume)
    t0 = time.perf_counter()
    data = load_data(cfg)
    task = build_task(cfg, data)
    check_process_count(task, int(os.environ.get("WORLD_SIZE", "1")))  # before anything is written
    out.mkdir(parents=True, exist_ok=True)
    if not resume and is_main_process():
        atomic_write_text(out / CONFIG_FILE, config_to_yaml(cfg))
        artifacts = {
            "kind": "vqa",
            "model": cfg.model.name,
            "vocab": data.vocab.tokens,
            "answers": data.answers,
        }
        atomic_write_text(out / ARTIFACTS_FILE, json.dumps(artifacts))
    result: FitResult = fit(task, cfg.train, out, resume=resume, progress=progress)
    summary: dict[str, Any] = {
        "run_dir": str(out), "best_epoch": result.best_epoch + 1,
        "best_val_accuracy": max(h["accuracy"] for h in result.history) if result.history else None,
        "train_seconds": result.train_seconds, "train_samples_per_second": result.samples_per_second,
    }  # fmt: skip
    if evaluate_test and result.best_epoch >= 0 and is_main_process():
        model = load_model(out)
        res = evaluate_split(model, data.test, cfg.train.eval_images_per_batch)
        summary["test_accuracy"] = res["accuracy"]
        summary["test_accuracy_by_type"] = res["accuracy_by_type"]
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary


def load_artifacts(run_dir: Path) -> dict[str, Any]:
    """The run's vocabulary and answers; checks that it is a VQA run."""
    art = read_run_json(run_dir, ARTIFACTS_FILE, "is not a mumo run")
    if art.get("kind") != "vqa":
        raise CheckpointError(f"{run_dir} holds a {art.get('kind', 'unknown')!r} checkpoint, not a VQA model")
    return art


def load_model(run_dir: Path, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
    """The trained model of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run_dir = Path(run_dir)
    art = load_artifacts(run_dir)
    cfg = config_from_yaml(run_dir / CONFIG_FILE)
    model = trainable_model(cfg, art["vocab"], len(art["answers"]), example=None)
    load_weights(model, checkpoint_dir(run_dir, which))
    model = getattr(model, "vqa", model)  # drop the attention-training wrapper
    return model.to(resolve_device(device)).eval()
