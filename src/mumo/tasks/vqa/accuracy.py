"""Answers over a split and their soft VQA accuracy, overall, per question type and per relation family."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from mumo.data.vqa.sort_of_clevr import FAMILIES, is_relational
from mumo.data.vqa.split import VQASplit, image_batches
from mumo.errors import MumoError
from mumo.metrics.vqa import accuracy_by_type, soft_accuracy

if TYPE_CHECKING:  # accelerate costs 0.1 s to import; only training passes an Accelerator
    from accelerate import Accelerator


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
