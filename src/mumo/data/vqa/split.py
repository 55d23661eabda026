"""A VQA split held in memory, grouped by image, and the image-batch sampler.

easy-VQA has about ten questions per image, so a batch is a set of *images* with all their questions:
the image encoder runs once per image per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from mumo.data.images import load_image
from mumo.data.text import Vocab
from mumo.errors import MumoError
from mumo.types import VQABatch

T = TypeVar("T")


@dataclass
class VQASplit:
    """One split of a VQA data set.

    Shapes: I images, Q questions, L tokens, C answers.
    """

    name: str
    images: torch.Tensor  # (I, 3, H, W) uint8, or (I, R, D) float region features
    tokens: torch.Tensor  # (Q, L) int64
    image_index: torch.Tensor  # (Q,) int64 into images
    targets: torch.Tensor  # (Q, C) float soft scores
    questions: list[str]  # (Q,) question texts
    question_types: list[str]  # (Q,) e.g. "yes/no", "color", "shape"
    image_ids: list[int]  # (I,) the data set's own image ids
    # Optional ground truth for training attention (Sort-of-CLEVR): O objects per image, G reasoning steps
    object_masks: torch.Tensor | None = None  # (I, O, h, w) bool, each object's pixels
    question_objects: torch.Tensor | None = None  # (Q, G, O) float, the objects each step of a question looks at

    def __post_init__(self) -> None:
        order = torch.argsort(self.image_index, stable=True)
        counts = torch.bincount(self.image_index, minlength=self.num_images)
        # questions of image i are order[offsets[i]:offsets[i + 1]]
        self._order = order
        self._offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_questions(self) -> int:
        return int(self.tokens.shape[0])

    def questions_of(self, image_indices: torch.Tensor) -> torch.Tensor:
        """Indices of every question about the given images, in image order."""
        parts = [self._order[self._offsets[i] : self._offsets[i + 1]] for i in image_indices.tolist()]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def batch(self, image_indices: torch.Tensor) -> VQABatch:
        """The batch of the given images and all of their questions."""
        q = self.questions_of(image_indices)
        local = torch.empty(self.num_images, dtype=torch.long)
        local[image_indices] = torch.arange(len(image_indices))
        images = self.images[image_indices]
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)  # (B, 3, H, W) in [0, 1]
        return VQABatch(
            images=images,
            tokens=self.tokens[q],
            image_index=local[self.image_index[q]],
            targets=self.targets[q],
            question_ids=q,
            object_masks=None if self.object_masks is None else self.object_masks[image_indices],
            question_objects=None if self.question_objects is None else self.question_objects[q],
        )

    def subset_images(self, image_indices: torch.Tensor, name: str | None = None) -> VQASplit:
        """A new split holding only the given images and their questions."""
        image_indices = torch.as_tensor(image_indices, dtype=torch.long)
        q = self.questions_of(image_indices)
        remap = torch.full((self.num_images,), -1, dtype=torch.long)
        remap[image_indices] = torch.arange(len(image_indices))
        ql = q.tolist()
        return VQASplit(
            name=name or self.name,
            images=self.images[image_indices],
            tokens=self.tokens[q],
            image_index=remap[self.image_index[q]],
            targets=self.targets[q],
            questions=[self.questions[i] for i in ql],
            question_types=[self.question_types[i] for i in ql],
            image_ids=[self.image_ids[i] for i in image_indices.tolist()],
            object_masks=None if self.object_masks is None else self.object_masks[image_indices],
            question_objects=None if self.question_objects is None else self.question_objects[q],
        )

    def first_images(self, n: int) -> VQASplit:
        """The first ``min(n, num_images)`` images and their questions, named ``"{name}[:{n}]"``."""
        n = min(n, self.num_images)
        return self.subset_images(torch.arange(n), f"{self.name}[:{n}]")


def image_batches(
    num_images: int,
    images_per_batch: int,
    *,
    shuffle: bool,
    seed: int = 0,
    epoch: int = 0,
    rank: int = 0,
    world_size: int = 1,
    pad: bool = True,
) -> list[torch.Tensor]:
    """Batches of image indices for one epoch on one process.

    The order depends only on (seed, epoch), so a resumed run sees the same batches. With several
    processes, each takes every ``world_size``-th batch; with ``pad`` the list is first padded by
    wrapping around so that every process runs the same number of steps (training); without it every
    batch is seen exactly once across processes (evaluation).
    """
    if shuffle:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(num_images, generator=gen)
    else:
        order = torch.arange(num_images)
    batches = list(order.split(images_per_batch))
    if world_size > 1 and pad:
        per_rank = -(-len(batches) // world_size)
        batches = (batches * world_size)[: per_rank * world_size]
    return batches[rank::world_size] if world_size > 1 else batches


def carve_validation(
    full: VQASplit, *, val_fraction: float, seed: int, max_train_images: int = 0
) -> tuple[VQASplit, VQASplit]:
    """Split a training split into (train, val) *by image* with a seeded permutation.

    ``max_train_images`` > 0 keeps only that many training images (and a quarter as many for val),
    for smoke runs.
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(full.num_images, generator=gen)
    n_val = max(1, round(val_fraction * full.num_images))
    val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
    if max_train_images > 0:
        train_idx = train_idx[:max_train_images]
        val_idx = val_idx[: max(1, max_train_images // 4)]
    return full.subset_images(train_idx, "train"), full.subset_images(val_idx, "val")


def progress_bar(batches: Iterable[T], desc: str, enabled: bool) -> Iterable[T]:
    """``batches`` with a progress bar on stderr when ``enabled`` and stderr is a terminal."""
    batches = list(batches)
    return tqdm(batches, desc=desc, disable=None if enabled else True, leave=False)


def split_from_records(
    name: str,
    root: Path,
    records: list[dict],
    *,
    answers: list[str],
    vocab: Vocab | None,
    max_question_len: int,
    image_size: int,
    what: str,
    progress: bool = False,
) -> tuple[VQASplit, Vocab]:
    """A split of a generated set (Sort-of-CLEVR, mumo scenes) from its ``.jsonl`` records, and its vocabulary.

    Each record names its image file (``image``, relative to ``root``; resized to ``image_size``) and its
    questions (``question``, ``family``, ``answer``); targets are one-hot over ``answers``, ``question_types`` the
    families. ``vocab`` None builds one from these questions.

    Raises:
        MumoError: an image file is missing (``what`` names the set), or an answer is not in ``answers``.
    """
    images = []
    for r in tqdm(records, desc=f"loading {what} {name}", disable=None if progress else True, leave=False):
        path = root / r["image"]
        if not path.is_file():
            raise MumoError(f"incomplete {what} directory: {path} is missing")
        images.append(load_image(path, size=image_size))
    if images:
        images_t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (I, 3, H, W) uint8
    else:
        images_t = torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8)
    qs = [(row, q) for row, r in enumerate(records) for q in r["questions"]]
    texts = [q["question"] for _, q in qs]
    answer_index = {a: i for i, a in enumerate(answers)}
    unknown = sorted({q["answer"] for _, q in qs} - set(answer_index))
    if unknown:
        raise MumoError(f"{root / name}.jsonl has answers outside meta.json's answer list: {unknown[:5]}")
    if vocab is None:
        vocab = Vocab.build(texts)
    targets = torch.zeros(len(qs), len(answers))  # (Q, C)
    if qs:
        targets[torch.arange(len(qs)), torch.tensor([answer_index[q["answer"]] for _, q in qs])] = 1.0
    tokens = vocab.encode_batch(texts, max_question_len) if qs else torch.zeros(0, max_question_len, dtype=torch.long)
    split = VQASplit(
        name=name,
        images=images_t,
        tokens=tokens,  # (Q, L)
        image_index=torch.tensor([row for row, _ in qs], dtype=torch.long),
        targets=targets,
        questions=texts,
        question_types=[q["family"] for _, q in qs],
        image_ids=[int(r["image_id"]) for r in records],
    )
    return split, vocab
