"""Image-level epistemic uncertainty: MC-dropout disagreement over a bank of training questions.

A question's own mutual information (MI) misses many out-of-distribution images. Asked "is there a
red circle?" about uniform noise, an easy-VQA model answers a confident, correct "no" under every
dropout mask, so the MI of that answer is ~0 (benchmarks/results/uncertainty.md: per-question OOD
AUROC 0.64-0.76). Whether the model knows the *image* is better asked of the image: pose K
questions drawn from the training set (the question bank) about it, run T dropout passes, and
average the K mutual informations. The score belongs to the image; every question about the image
carries it. It is still an MC-dropout epistemic score (no density, no OOD data), and it costs K
questions per image (the image encoder runs once per image on the fast path).

Layouts: K bank questions, I images, T passes; :func:`bank_mutual_information` returns (I, K).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mumo.data.vqa.split import VQASplit, image_batches, progress_bar
from mumo.errors import MumoError
from mumo.runs import Run
from mumo.tasks.vqa.predictive import members, model_device, predictive_probs
from mumo.types import VQABatch
from mumo.uncertainty.mc_dropout import check_num_samples
from mumo.uncertainty.scores import mutual_information

DEFAULT_BANK_SIZE = 8


@dataclass(frozen=True)
class QuestionBank:
    """K distinct questions (their texts and (K, L) token rows) to ask about any image."""

    questions: list[str]
    tokens: torch.Tensor  # (K, L) int64

    def __len__(self) -> int:
        return len(self.questions)


def question_bank(split: VQASplit, size: int = DEFAULT_BANK_SIZE, *, seed: int = 0) -> QuestionBank:
    """``size`` distinct questions of ``split`` (the training split), drawn uniformly at random.

    Drawn from the distinct question texts, not weighted by how often each is asked, and seeded, so
    the same run and seed always give the same bank. A split with fewer distinct questions gives
    them all. The bank is the first ``size`` questions of :func:`question_order`.

    Raises:
        MumoError: ``size`` < 1 or a split without questions.
    """
    if size < 1:
        raise MumoError(f"the question bank needs at least 1 question, not {size}")
    return question_order(split, seed=seed, limit=size)


def question_order(split: VQASplit, *, seed: int = 0, limit: int | None = None) -> QuestionBank:
    """The distinct questions of ``split`` in a seeded random order (the first ``limit`` of them): every
    question bank of this split and seed is a prefix of it.

    Raises:
        MumoError: a split without questions.
    """
    if split.num_questions == 0:
        raise MumoError(f"the {split.name!r} split holds no questions to draw a question bank from")
    first: dict[str, int] = {}
    for i, q in enumerate(split.questions):
        first.setdefault(q, i)
    rows = torch.tensor(list(first.values()))  # (U,) first occurrence of each distinct text
    gen = torch.Generator().manual_seed(seed)
    pick = rows[torch.randperm(len(rows), generator=gen)[:limit]]  # (K,)
    return QuestionBank([split.questions[i] for i in pick.tolist()], split.tokens[pick].clone())


QUESTIONS_FILE = "question_bank.json"
SAVED_QUESTIONS = 1024  # a run keeps this many of its training questions' order: banks up to this size need no data


def save_question_order(run: Run, split: VQASplit, *, seed: int) -> None:
    """Attach the order of the training split's distinct questions to a run (``RUN/question_bank.json``), so that
    inference can draw a question bank without loading the training set."""
    order = question_order(split, seed=seed, limit=SAVED_QUESTIONS)
    distinct = len(set(split.questions))
    run.write_json(QUESTIONS_FILE, {"seed": seed, "distinct_questions": distinct, "questions": order.questions,
                                    "tokens": order.tokens.tolist()})  # fmt: skip


def saved_question_bank(run: Run, size: int, *, seed: int) -> QuestionBank | None:
    """The bank :func:`question_bank` would draw from the run's training split, read from the run's saved question
    order; None when the run has none (runs trained before it was saved), it was drawn with another seed, or
    ``size`` is larger than what was saved."""
    saved = run.read_json(QUESTIONS_FILE)
    if saved is None or saved["seed"] != seed:
        return None
    if size > len(saved["questions"]) and len(saved["questions"]) < saved["distinct_questions"]:
        return None
    return QuestionBank(saved["questions"][:size], torch.tensor(saved["tokens"][:size], dtype=torch.long))


@torch.no_grad()
def bank_mutual_information(
    model: nn.Module,
    images: torch.Tensor,
    bank: QuestionBank,
    *,
    mc_samples: int | None,
    mc_scope: str = "all",
    seed: int = 0,
) -> torch.Tensor:
    """Mutual information (I, K) of the answers to every bank question about each of I images.

    ``images`` is a float (I, 3, H, W) batch in [0, 1] (or (I, R, D) region features) on the model's
    device. ``model`` may be a :class:`~mumo.tasks.vqa.ensemble.DeepEnsemble`; then ``mc_samples`` may be None
    (each member deterministic: the mutual information is the members' disagreement).

    Raises:
        MumoError: T < 1 or too large, the model has no dropout, or NaN / infinite outputs; one model and no
            ``mc_samples``.
    """
    if mc_samples is not None:
        check_num_samples(mc_samples)
    elif len(members(model)) < 2:
        raise MumoError("the image mutual information needs MC dropout (mc_samples) or an ensemble of models")
    n, k = images.shape[0], len(bank)
    batch = VQABatch(
        images=images,
        tokens=bank.tokens.to(images.device).repeat(n, 1),  # (I*K, L): image-major
        image_index=torch.arange(n, device=images.device).repeat_interleave(k),  # (I*K,)
    )
    probs = predictive_probs(model, batch, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed)  # (T, I*K, C)
    return mutual_information(probs).view(n, k)


def split_image_mutual_information(
    model: nn.Module,
    split: VQASplit,
    bank: QuestionBank,
    *,
    mc_samples: int | None,
    mc_scope: str = "all",
    images_per_batch: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> torch.Tensor:
    """Mean bank mutual information (I,) of every image of a split, on the CPU (``progress``: a bar on a TTY)."""
    if split.num_images == 0:
        raise MumoError(f"the {split.name!r} split holds no images")
    device = model_device(model)
    out = torch.empty(split.num_images)
    batches = image_batches(split.num_images, images_per_batch, shuffle=False, pad=False)
    for i, idx in enumerate(progress_bar(batches, f"{split.name}: question bank", progress)):
        images = split.images[idx]
        images = images.float().div(255.0) if images.dtype == torch.uint8 else images  # (B, 3, H, W) in [0, 1]
        mi = bank_mutual_information(
            model, images.to(device), bank, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed + i
        )  # (B, K)
        out[idx] = mi.mean(1).cpu()
    return out
