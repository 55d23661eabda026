"""Typed containers passed between data, models, training and serving."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class VQABatch:
    """A batch of questions grouped by image: the image side runs once per image.

    Shapes: B images, N questions (each question belongs to one of the B images), L tokens, C answers.
    """

    images: torch.Tensor  # (B, 3, H, W) float in [0, 1], or (B, R, D) region features
    tokens: torch.Tensor  # (N, L) int64 token ids, PAD = 0
    image_index: torch.Tensor  # (N,) int64, which of the B images each question asks about
    targets: torch.Tensor | None = None  # (N, C) soft answer scores in [0, 1]
    question_ids: torch.Tensor | None = None  # (N,) int64 index of each question in its split

    def to(self, device: torch.device | str) -> VQABatch:
        """The same batch on ``device``."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return VQABatch(
            move(self.images), move(self.tokens), move(self.image_index), move(self.targets),
            move(self.question_ids),
        )  # fmt: skip


@dataclass
class VQAOutput:
    """What a VQA model returns: answer logits and, when asked, attention weights."""

    logits: torch.Tensor  # (N, C)
    attentions: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class AnswerScore:
    """One candidate answer and its probability."""

    answer: str
    probability: float


@dataclass
class Prediction:
    """The result of :meth:`mumo.serve.predict.VQAPredictor.predict`."""

    question: str
    answer: str  # the top answer
    probability: float  # its probability (softmax over the answer logits)
    top_k: list[AnswerScore]

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "question": self.question,
            "answer": self.answer,
            "probability": self.probability,
            "top_k": [{"answer": a.answer, "probability": a.probability} for a in self.top_k],
        }
