"""mumo scenes as a VQA data set: one split of a generated set (``mumo data scenes``) as a :class:`VQASplit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mumo.data.images import load_image
from mumo.data.scenes.dataset import read_meta, read_records
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit
from mumo.errors import MumoError


def load_scenes(
    root: str | Path,
    *,
    split: str,
    vocab: Vocab | None = None,
    max_question_len: int = 20,
    image_size: int | None = None,
    progress: bool = False,
) -> tuple[VQASplit, Vocab, list[str]]:
    """Load one split (``train``, ``val``, ``test`` or ``test-shift``) of a generated mumo scenes set.

    ``question_types`` holds the question families; targets are one-hot over the set's answer list.

    Args:
        root: the directory ``mumo data scenes`` wrote.
        vocab: token vocabulary; None builds one from this split's questions (pass train's to the others).
        max_question_len: tokens per question (longer questions are cut).
        image_size: images are resized to this square size (None: as generated).
        progress: a progress bar over the images on stderr.

    Raises:
        MumoError: a missing or incomplete data set, or one of another format version.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    meta = read_meta(root)
    records = read_records(root, split)
    answers = list(meta["answers"])
    answer_index = {a: i for i, a in enumerate(answers)}
    size = image_size or int(meta["image_size"])
    images = []
    for r in tqdm(records, desc=f"loading scenes {split}", disable=None if progress else True, leave=False):
        path = root / r["image"]
        if not path.is_file():
            raise MumoError(f"incomplete mumo scenes directory: {path} is missing")
        images.append(load_image(path, size=size))
    if images:
        images_t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (I, 3, H, W) uint8
    else:
        images_t = torch.zeros(0, 3, size, size, dtype=torch.uint8)
    qs = [(row, q) for row, r in enumerate(records) for q in r["questions"]]
    texts = [q["question"] for _, q in qs]
    unknown = sorted({q["answer"] for _, q in qs} - set(answer_index))
    if unknown:
        raise MumoError(f"{root / split}.jsonl has answers outside meta.json's answer list: {unknown[:5]}")
    if vocab is None:
        vocab = Vocab.build(texts)
    targets = torch.zeros(len(qs), len(answers))
    if qs:
        targets[torch.arange(len(qs)), torch.tensor([answer_index[q["answer"]] for _, q in qs])] = 1.0
    split_out = VQASplit(
        name=split,
        images=images_t,
        tokens=vocab.encode_batch(texts, max_question_len)
        if qs
        else torch.zeros(0, max_question_len, dtype=torch.long),
        image_index=torch.tensor([row for row, _ in qs], dtype=torch.long),
        targets=targets,
        questions=texts,
        question_types=[q["family"] for _, q in qs],
        image_ids=[int(r["image_id"]) for r in records],
    )
    return split_out, vocab, answers
