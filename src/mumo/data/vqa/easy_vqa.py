"""easy-VQA (reference §1.1) from the ``easy-vqa`` package: 64x64 images, one shape, 13 answers.

The validation split is carved out of train *by image* with a seeded permutation; the test split is
used only for final evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mumo.data.images import load_image
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit, carve_validation
from mumo.errors import MumoError

SHAPES = ("rectangle", "circle", "triangle")


def question_type(answer: str) -> str:
    """easy-VQA question type from its answer: ``yes/no``, ``shape`` or ``color``."""
    if answer in ("yes", "no"):
        return "yes/no"
    return "shape" if answer in SHAPES else "color"


@dataclass
class EasyVQA:
    """The three splits plus the vocabulary and answer list they were encoded with."""

    train: VQASplit
    val: VQASplit
    test: VQASplit
    vocab: Vocab
    answers: list[str]


def _package():
    try:
        import easy_vqa
    except ImportError:  # pragma: no cover - it is a core dependency
        raise MumoError("easy-VQA needs the 'easy-vqa' package: pip install easy-vqa") from None
    return easy_vqa


def _raw_split(
    split: str, vocab: Vocab | None, answers: list[str], max_len: int, image_size: int
) -> tuple[VQASplit, list[str]]:
    pkg = _package()
    texts, ans, img_ids = pkg.get_train_questions() if split == "train" else pkg.get_test_questions()
    paths = pkg.get_train_image_paths() if split == "train" else pkg.get_test_image_paths()
    ids = sorted(paths)
    row = {image_id: i for i, image_id in enumerate(ids)}
    images = np.stack([load_image(paths[i], size=image_size) for i in ids])  # (I, H, W, 3)
    images_t = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (I, 3, H, W) uint8
    if vocab is None:
        vocab = Vocab.build(texts)
    answer_index = {a: i for i, a in enumerate(answers)}
    targets = torch.zeros(len(texts), len(answers))
    targets[torch.arange(len(texts)), torch.tensor([answer_index[a] for a in ans])] = 1.0
    out = VQASplit(
        name=split,
        images=images_t,
        tokens=vocab.encode_batch(list(texts), max_len),
        image_index=torch.tensor([row[i] for i in img_ids], dtype=torch.long),
        targets=targets,
        questions=list(texts),
        question_types=[question_type(a) for a in ans],
        image_ids=ids,
    )
    return out, list(texts)


def test_images(size: int = 64) -> torch.Tensor:
    """The easy-VQA test images (1,000), sorted by id, resized to ``size``: (I, 3, size, size) uint8."""
    paths = _package().get_test_image_paths()
    images = np.stack([load_image(paths[i], size=size) for i in sorted(paths)])  # (I, H, W, 3)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def load_easy_vqa(
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_question_len: int = 14,
    image_size: int = 64,
    max_train_images: int = 0,
) -> EasyVQA:
    """Load easy-VQA with a validation split carved out of train by image.

    Args:
        val_fraction: fraction of the 4,000 training images held out for validation.
        seed: seeds the train/val split (and the subset when ``max_train_images`` > 0).
        max_question_len: tokens per question.
        image_size: images are resized to this square size (64 = original).
        max_train_images: keep only this many training images (0 = all), for smoke runs.
    """
    answers = list(_package().get_answers())
    pkg = _package()
    vocab = Vocab.build(pkg.get_train_questions()[0])
    full, _ = _raw_split("train", vocab, answers, max_question_len, image_size)
    test, _ = _raw_split("test", vocab, answers, max_question_len, image_size)
    train, val = carve_validation(full, val_fraction=val_fraction, seed=seed, max_train_images=max_train_images)
    return EasyVQA(
        train=train,
        val=val,
        test=test,
        vocab=vocab,
        answers=answers,
    )
