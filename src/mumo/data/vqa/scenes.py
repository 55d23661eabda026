"""mumo scenes as a VQA data set: one split of a generated set (``mumo data scenes``) as a :class:`VQASplit`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mumo.data.scenes.dataset import load_masks, read_meta, read_records
from mumo.data.scenes.graph import MAX_OBJECTS, Scene
from mumo.data.scenes.program import reasoning_steps
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit, split_from_records


def load_scenes(
    root: str | Path,
    *,
    split: str,
    vocab: Vocab | None = None,
    max_question_len: int = 20,
    image_size: int | None = None,
    object_masks: bool = False,
    progress: bool = False,
) -> tuple[VQASplit, Vocab, list[str]]:
    """Load one split (``train``, ``val``, ``test`` or ``test-shift``) of a generated mumo scenes set.

    ``question_types`` holds the question families; targets are one-hot over the set's answer list.

    Args:
        root: the directory ``mumo data scenes`` wrote.
        vocab: token vocabulary; None builds one from this split's questions (pass train's to the others).
        max_question_len: tokens per question (longer questions are cut).
        image_size: images are resized to this square size (None: as generated).
        object_masks: also load every image's visible object masks (as generated, padded to 9 objects: 147 KB an
            image at 128 px) and per question the objects of its two reasoning steps
            (:func:`mumo.data.scenes.program.reasoning_steps`), for training attention on them
            (``objective.attention_loss=masks``).
        progress: a progress bar over the images on stderr.

    Raises:
        MumoError: a missing or incomplete data set, or one of another format version.
    """
    root = Path(root)
    meta = read_meta(root)
    records = read_records(root, split)
    answers = list(meta["answers"])
    split_out, vocab = split_from_records(
        split, root, records, answers=answers, vocab=vocab, max_question_len=max_question_len,
        image_size=image_size or int(meta["image_size"]), what="mumo scenes", progress=progress,
    )  # fmt: skip
    if object_masks:
        split_out.object_masks, split_out.question_objects = _reasoning_masks(root, records, int(meta["image_size"]))
    return split_out, vocab, answers


def _reasoning_masks(root: Path, records: list[dict], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(I, O, H, W) bool visible masks padded to MAX_OBJECTS, and (Q, 2, O) the objects of each question's two
    reasoning steps (records in order, then their questions)."""
    masks = np.zeros((len(records), MAX_OBJECTS, size, size), dtype=bool)
    steps = []
    for i, r in enumerate(records):
        m = load_masks(root, r)  # (o, H, W)
        masks[i, : len(m)] = m
        scene = Scene.from_graph(r, size)
        for q in r["questions"]:
            row = np.zeros((2, MAX_OBJECTS), dtype=np.float32)
            for step, objects in enumerate(reasoning_steps(q["program"], scene)):
                row[step, objects] = 1.0
            steps.append(row)
    steps_t = torch.from_numpy(np.stack(steps)) if steps else torch.zeros(0, 2, MAX_OBJECTS)
    return torch.from_numpy(masks), steps_t  # (I, O, H, W), (Q, 2, O)
