"""The Clever Hans probe: does a VQA model look at the image, or answer from the question alone?

Every question of a split is answered four times:

- ``real``: with its own image;
- ``blank_image``: with an all-zero image (pixels, or region features: then every region counts as padding);
- ``shuffled_image``: with another image of the split, from a seeded derangement of the image indices,
  so that no question keeps its own image;
- ``blank_question``: with the tokens all PAD except one UNK at position 0, as ``MCANVQA`` does for
  ``model.blank=question``.

The answer change rate is the fraction of questions whose argmax answer differs between ``real`` and
``shuffled_image``. The rule, overall and per question type:

    looks_at_image = answer_change_rate >= min_change_rate
                     and accuracy_real - accuracy_shuffled_image >= min_accuracy_drop

i.e. a model is flagged when its answers barely move with the image (it ignores the image), or when
another image costs it (almost) no accuracy (whatever it reads in the image does not help it answer).
Accuracies are fractions in [0, 1], so the default ``min_accuracy_drop=0.01`` is one point. Per-type
verdicts over few questions are noisy; ``num_questions`` says how many each one rests on.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.data.text import PAD_ID, UNK_ID
from mumo.data.vqa.split import VQASplit, image_batches
from mumo.errors import ConfigError, MumoError
from mumo.metrics.vqa import accuracy_by_type, soft_accuracy
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.types import VQABatch

CONDITIONS = ("real", "blank_image", "shuffled_image", "blank_question")
SPLITS = ("val", "test")


def derangement(n: int, *, seed: int = 0) -> torch.Tensor:
    """A seeded random permutation of ``range(n)`` with no fixed point, uniform over all such ones.

    Rejection sampling: about e = 2.72 draws of ``randperm`` on average, whatever ``n``.

    Raises:
        MumoError: ``n < 2`` (one image cannot be paired with another).
    """
    if n < 2:
        raise MumoError(f"shuffling images across questions needs at least 2 images; the split has {n}")
    gen = torch.Generator().manual_seed(seed)
    identity = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=gen)
        if not bool((perm == identity).any()):
            return perm


def _blank_question(tokens: torch.Tensor) -> torch.Tensor:
    """(N, L) token ids -> (N, L) all PAD except UNK at position 0, as ``MCANVQA._front`` for blank=question."""
    blank = torch.full_like(tokens, PAD_ID)
    blank[:, 0] = UNK_ID
    return blank


def _logits(model: nn.Module, batch: VQABatch, condition: str, regions: bool) -> torch.Tensor:
    """Answer logits of every question of a batch, on the CPU: (N, C)."""
    logits = model(batch).logits.float().cpu()  # (N, C)
    if not torch.isfinite(logits).all():
        hint = ""
        if condition == "blank_image" and regions:
            hint = " (all-zero region features make every region padding; this model cannot handle that)"
        raise MumoError(f"the model produced NaN or infinite logits with the {condition} condition{hint}")
    return logits


def _judge(r: dict[str, Any], *, min_change_rate: float, min_accuracy_drop: float) -> tuple[bool, str]:
    """The flag rule of the module docstring, and a one-sentence verdict that says which part fired."""
    change, real, shuffled = r["answer_change_rate"], r["accuracy_real"], r["accuracy_shuffled_image"]
    drop = real - shuffled
    facts = (
        f"{change:.1%} of answers change when each question gets another image, and accuracy goes from "
        f"{real:.1%} to {shuffled:.1%}"
    )
    reasons = []
    if change < min_change_rate:
        reasons.append(f"fewer than {min_change_rate:.1%} of answers change")
    if drop < min_accuracy_drop:
        reasons.append(f"another image costs less than {100 * min_accuracy_drop:.1f} accuracy points")
    if not reasons:
        return True, f"Looks at the image: {facts}."
    return False, f"Answers without looking at the image (Clever Hans): {facts}; {' and '.join(reasons)}."


@torch.no_grad()
def probe_vqa(
    model: nn.Module,
    split: VQASplit,
    *,
    images_per_batch: int = 128,
    seed: int = 0,
    min_change_rate: float = 0.05,
    min_accuracy_drop: float = 0.01,
) -> dict[str, Any]:
    """Accuracy with the real, blanked and shuffled image and with the question blanked; flag Clever Hans.

    The model runs in eval mode on its own device and is returned to its previous mode; the split is not
    changed. See the module docstring for the conditions and the ``looks_at_image`` rule.

    Args:
        model: a VQA model, ``model(VQABatch).logits`` of shape (N, C).
        split: I >= 2 images and their questions.
        images_per_batch: images per forward pass (with all their questions).
        seed: seed of the derangement that pairs each image's questions with another image.
        min_change_rate: below this fraction of changed answers the model is flagged.
        min_accuracy_drop: an accuracy drop from real to shuffled images below this (a fraction; 0.01 is
            one point) flags the model.

    Returns:
        ``accuracy_real``, ``accuracy_blank_image``, ``accuracy_shuffled_image``, ``accuracy_blank_question``,
        ``answer_change_rate``, ``looks_at_image``, ``verdict``, ``num_questions``, the same per question
        type under ``by_type``, and ``num_images``, ``seed``, ``min_change_rate``, ``min_accuracy_drop``.
    """
    if split.num_questions == 0:
        raise MumoError(f"the {split.name} split has no questions to probe")
    if images_per_batch < 1:
        raise ConfigError(f"images_per_batch must be >= 1, not {images_per_batch}")
    other = derangement(split.num_images, seed=seed)  # (I,) image i's questions get image other[i]
    regions = split.images.dtype.is_floating_point and split.images.dim() == 3  # (I, R, D) features
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    answers = {c: torch.empty(split.num_questions, dtype=torch.long) for c in CONDITIONS}  # (Q,) argmax each
    scores = {c: torch.empty(split.num_questions) for c in CONDITIONS}  # (Q,) soft accuracy each
    was_training = model.training
    model.eval()
    try:
        for image_idx in image_batches(split.num_images, images_per_batch, shuffle=False):
            real = split.batch(image_idx)
            q = real.question_ids  # (N,) rows of the split
            batches = {
                "real": real,
                "blank_image": dataclasses.replace(real, images=torch.zeros_like(real.images)),
                # the images of other[image_idx], in the same order: question j of image idx[k] sees other[idx[k]]
                "shuffled_image": dataclasses.replace(real, images=split.batch(other[image_idx]).images),
                "blank_question": dataclasses.replace(real, tokens=_blank_question(real.tokens)),
            }
            for condition, batch in batches.items():
                logits = _logits(model, batch.to(device), condition, regions)  # (N, C)
                answers[condition][q] = logits.argmax(dim=1)
                scores[condition][q] = soft_accuracy(logits, real.targets)
    finally:
        model.train(was_training)

    changed = (answers["real"] != answers["shuffled_image"]).float()  # (Q,)
    types = split.question_types
    by_acc = {c: accuracy_by_type(s, types) for c, s in scores.items()}
    by_change = accuracy_by_type(changed, types)
    counts = Counter(types)
    thresholds = {"min_change_rate": min_change_rate, "min_accuracy_drop": min_accuracy_drop}

    def summary(acc: dict[str, float], change: float, n: int) -> dict[str, Any]:
        r: dict[str, Any] = {f"accuracy_{c}": acc[c] for c in CONDITIONS}
        r["answer_change_rate"] = change
        r["looks_at_image"], r["verdict"] = _judge(r, **thresholds)
        r["num_questions"] = n
        return r

    overall = {c: float(s.mean()) for c, s in scores.items()}
    res = summary(overall, float(changed.mean()), split.num_questions)
    res["by_type"] = {t: summary({c: by_acc[c][t] for c in CONDITIONS}, by_change[t], counts[t]) for t in by_change}
    res.update(num_images=split.num_images, seed=seed, **thresholds)
    return res


def probe_run(
    run_dir: Path | str,
    split: str = "test",
    *,
    max_images: int | None = None,
    seed: int = 0,
    images_per_batch: int | None = None,
    min_change_rate: float = 0.05,
    min_accuracy_drop: float = 0.01,
    device: str = "auto",
) -> dict[str, Any]:
    """:func:`probe_vqa` on a split of a trained VQA run (its best checkpoint, its own data config), with
    the model on ``device`` (``auto``: a GPU if there is one).

    Args:
        run_dir: the run directory.
        split: ``"val"`` or ``"test"``.
        max_images: probe a seeded random sample of this many images (and all their questions); None = all.
        seed: seed of the sample and of the derangement.
        images_per_batch: None = the run's ``train.eval_batch_size``.
        min_change_rate, min_accuracy_drop: thresholds of the ``looks_at_image`` rule.

    Raises:
        CheckpointError: ``run_dir`` is not a run directory, or not a VQA run.
        ConfigError: bad ``split`` or ``max_images``.
    """
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    if split not in SPLITS:
        raise ConfigError(f"--split must be 'val' or 'test', not {split!r}")
    if max_images is not None and max_images < 2:
        raise ConfigError(f"--images must be at least 2 (each question needs another image), not {max_images}")
    run_dir = Path(run_dir)
    model = load_model(run_dir, device=device)  # checks that it is a VQA run before any data is loaded
    cfg = Run(run_dir).config(RunConfig)
    target = getattr(load_data(cfg), split)
    if max_images is not None and max_images < target.num_images:
        gen = torch.Generator().manual_seed(seed)
        target = target.subset_images(torch.randperm(target.num_images, generator=gen)[:max_images].sort().values)
    res = probe_vqa(
        model, target, images_per_batch=images_per_batch or cfg.train.eval_batch_size, seed=seed,
        min_change_rate=min_change_rate, min_accuracy_drop=min_accuracy_drop,
    )  # fmt: skip
    return {"run": str(run_dir), "split": split, **res}
