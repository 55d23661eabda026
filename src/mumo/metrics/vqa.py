"""VQA accuracy from logits and soft targets (exact match when targets are one-hot)."""

from __future__ import annotations

from collections import defaultdict

import torch


def soft_accuracy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-question score of the argmax answer: (N, C), (N, C) -> (N,) in [0, 1]."""
    return targets.gather(1, logits.argmax(dim=1, keepdim=True)).squeeze(1)


def accuracy_by_type(scores: torch.Tensor, types: list[str]) -> dict[str, float]:
    """Mean score per question type: scores (N,), types (N,) -> {type: accuracy}."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for s, t in zip(scores.tolist(), types, strict=True):
        sums[t] += s
        counts[t] += 1
    return {t: sums[t] / counts[t] for t in sorted(sums)}
