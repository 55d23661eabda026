"""What to explain: small callables ``target(output, batch) -> (N,)``, one scalar per question.

A CAM method back-propagates the sum of the per-question scores. Rows are independent when the
explained layer is per question (MCAN's default: the image regions entering the co-attention), so
every question gets its own map from one backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mumo.types import VQABatch, VQAOutput
from mumo.uncertainty.losses import soft_cross_entropy


def _answers(output: VQAOutput, answers: torch.Tensor | None) -> torch.Tensor:
    """(N,) the given answer indices, or the predicted ones."""
    return output.logits.argmax(-1) if answers is None else answers.to(output.logits.device)


@dataclass
class AnswerLogit:
    """The logit of an answer (default: the predicted one). ``answers``: (N,) indices."""

    answers: torch.Tensor | None = None

    def __call__(self, output: VQAOutput, batch: VQABatch) -> torch.Tensor:
        idx = _answers(output, self.answers)  # (N,)
        return output.logits.gather(1, idx[:, None]).squeeze(1)  # (N,)


@dataclass
class AnswerLogProb:
    """log softmax(logits) of an answer (default: the predicted one)."""

    answers: torch.Tensor | None = None

    def __call__(self, output: VQAOutput, batch: VQABatch) -> torch.Tensor:
        idx = _answers(output, self.answers)  # (N,)
        return F.log_softmax(output.logits, -1).gather(1, idx[:, None]).squeeze(1)  # (N,)


@dataclass
class TargetLogLikelihood:
    """Σ_c target_c log softmax(z)_c: the log-likelihood of the ground-truth soft answers (the
    negated soft cross-entropy). Uses ``batch.targets`` unless ``targets`` (N, C) is given."""

    targets: torch.Tensor | None = None

    def __call__(self, output: VQAOutput, batch: VQABatch) -> torch.Tensor:
        targets = self.targets if self.targets is not None else batch.targets
        if targets is None:
            raise ValueError("TargetLogLikelihood needs ground-truth targets (batch.targets)")
        return -soft_cross_entropy(output.logits, targets.to(output.logits.device))  # (N,)


@dataclass
class NegativeEntropy:
    """−H[softmax(z)]: high where the model is sure (explains what makes it certain)."""

    def __call__(self, output: VQAOutput, batch: VQABatch) -> torch.Tensor:
        log_p = F.log_softmax(output.logits, -1)  # (N, C)
        return (log_p.exp() * log_p).sum(-1)  # (N,)


TARGETS = {"logit": AnswerLogit, "log-prob": AnswerLogProb, "neg-entropy": NegativeEntropy}
