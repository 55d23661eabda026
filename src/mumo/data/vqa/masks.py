"""Ground-truth object masks for scoring explanation maps, and their pooling onto a model's feature grid.

- Sort-of-CLEVR ships exact object masks: `sort_of_clevr_question_masks` unions the objects each question refers to.
- easy-VQA images are one shape on a plain light background: `easy_vqa_shape_masks` segments it from the colours.
- `pool_to_grid` turns image-resolution masks into (N, R) cell coverages, the ``truth`` of `mumo.metrics.attention`.
- `question_step_maps` does it per question and reasoning step from a batch's per-image object masks (training
  attention on them: ``objective.attention_loss=masks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from mumo.data.vqa import sort_of_clevr
from mumo.errors import MumoError

SHAPE_THRESHOLD = 60.0  # RGB distance from the background above which a pixel belongs to the shape (max ≈ 441)


def pool_to_grid(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Fraction of each grid cell covered by each mask.

    Adaptive average pooling (``torch.nn.functional.adaptive_avg_pool2d``): when the image size is not a multiple
    of the grid (75 px onto 4x4), neighbouring cells share a border row or column of pixels.

    Args:
        masks: (N, H, W) bool, or float weights in [0, 1], at image resolution.
        grid: (rows, cols) of the feature grid, e.g. the ``grid_shape`` a `GridCNN` returns.

    Returns:
        Coverage in [0, 1], (N, rows * cols) float32, cells in row-major order.

    Raises:
        MumoError: On a non-(N, H, W) mask tensor or a grid that is not two positive integers.
    """
    if masks.ndim != 3:
        raise MumoError(f"masks must have shape (N, H, W), got {tuple(masks.shape)}")
    if len(grid) != 2 or any(not isinstance(g, int) or g < 1 for g in grid):
        raise MumoError(f"grid must be two positive integers (rows, cols), got {grid!r}")
    rows, cols = grid
    n = masks.shape[0]
    x = masks.detach().to(torch.float32).unsqueeze(1)  # (N, 1, H, W)
    return F.adaptive_avg_pool2d(x, (rows, cols)).reshape(n, rows * cols)  # (N, rows * cols)


def question_step_maps(
    object_masks: torch.Tensor, image_index: torch.Tensor, question_objects: torch.Tensor, grid: tuple[int, int]
) -> torch.Tensor:
    """Per question and reasoning step, the grid coverage of the objects that step looks at.

    Args:
        object_masks: (B, O, H, W) bool object masks of a batch's images (``VQABatch.object_masks``).
        image_index: (N,) which of the B images each question asks about.
        question_objects: (N, G, O) weights of the objects each step looks at (``VQABatch.question_objects``).
        grid: (rows, cols) of the model's feature grid.

    Returns:
        (N, G, rows * cols): the weighted sum of the objects' cell coverages, each object's coverage scaled to sum
        to 1 over the grid first, so that every object weighs the same whatever its size (a circle covers less
        than a square); all zero for a step that looks at no object.

    Raises:
        MumoError: On shapes that do not fit together.
    """
    if object_masks.ndim != 4 or question_objects.ndim != 3 or question_objects.shape[-1] != object_masks.shape[1]:
        raise MumoError(
            f"object masks (B, O, H, W) and question objects (N, G, O) do not fit: "
            f"{tuple(object_masks.shape)} and {tuple(question_objects.shape)}"
        )
    b, o = object_masks.shape[:2]
    cells = pool_to_grid(object_masks.flatten(0, 1), grid).view(b, o, -1)  # (B, O, R)
    cells = cells / cells.sum(-1, keepdim=True).clamp_min(1e-12)  # each object sums to 1
    return torch.einsum("ngo,nor->ngr", question_objects.to(cells.dtype), cells[image_index])  # (N, G, R)


def sort_of_clevr_question_masks(root: str | Path, split: str) -> torch.Tensor:
    """Per question, the union of the masks of the objects it refers to, at the original 75 px.

    Questions come in the order `mumo.data.vqa.sort_of_clevr.load_sort_of_clevr` lists them (records in order, then
    each record's questions in order), so row q matches question q of the loaded split whatever ``image_size``
    the loader resized images to: pooling to the feature grid (`pool_to_grid`) removes the resolution.

    Args:
        root: The directory `mumo.data.vqa.sort_of_clevr.generate` wrote.
        split: ``train`` or ``test``.

    Returns:
        Masks, (Q, H, W) bool.

    Raises:
        MumoError: On a missing or incomplete data set, or a question that refers to no or unknown objects.
    """
    records = sort_of_clevr.read_records(root, split)
    out: list[np.ndarray] = []
    size = (sort_of_clevr.IMAGE_SIZE, sort_of_clevr.IMAGE_SIZE)
    for record in records:
        objects = sort_of_clevr.load_masks(root, record)  # (6, H, W) bool, COLORS order
        size = objects.shape[1:]
        for q in record["questions"]:
            idx = list(q["objects"])
            if not idx or any(not 0 <= i < len(objects) for i in idx):
                raise MumoError(
                    f"Sort-of-CLEVR {split} image {record['image_id']}: question {q['question']!r} refers to "
                    f"objects {idx}, the scene has {len(objects)}"
                )
            out.append(objects[idx].any(axis=0))  # (H, W)
    if not out:
        return torch.zeros(0, *size, dtype=torch.bool)
    return torch.from_numpy(np.stack(out))  # (Q, H, W) bool


def easy_vqa_shape_masks(images: torch.Tensor, *, threshold: float = SHAPE_THRESHOLD) -> torch.Tensor:
    """Segment the single shape of each easy-VQA image from its plain background.

    The background colour is the per-channel median of the border pixels (the shape touches the border in about
    a tenth of the images, never most of it). A pixel is foreground when its RGB distance from that colour exceeds
    ``threshold``; anti-aliased edge pixels fall on either side. The mask is cleaned by keeping the largest
    connected component (8-connectivity) and filling its holes. On the 5000 easy-VQA images the backgrounds are
    light (every channel >= 230) and flat, the mean shape colour lies >= 150 from it (yellow and gray included),
    so the threshold only decides anti-aliased edge pixels and the clean-up changes no pixel; it is there for
    resized or re-encoded images.

    Args:
        images: (I, 3, H, W) uint8, as ``VQASplit.images`` of `mumo.data.vqa.easy_vqa.load_easy_vqa`.
        threshold: RGB distance (0-255 scale, Euclidean) from the background colour.

    Returns:
        Masks, (I, H, W) bool; all False for an image with no pixel over the threshold.

    Raises:
        MumoError: On a non-(I, 3, H, W) or non-uint8 tensor.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise MumoError(f"images must have shape (I, 3, H, W), got {tuple(images.shape)}")
    if images.dtype != torch.uint8:
        raise MumoError(f"images must be uint8, got {images.dtype}")
    x = images.detach().cpu().numpy().astype(np.float32)  # (I, 3, H, W)
    border = np.concatenate([x[:, :, 0, :], x[:, :, -1, :], x[:, :, :, 0], x[:, :, :, -1]], axis=2)  # (I, 3, 2W + 2H)
    background = np.median(border, axis=2)  # (I, 3)
    distance = np.linalg.norm(x - background[:, :, None, None], axis=1)  # (I, H, W)
    raw = distance > threshold  # (I, H, W)
    masks = np.zeros_like(raw)
    eight = np.ones((3, 3), dtype=bool)
    for i, m in enumerate(raw):
        labels, n = ndimage.label(m, structure=eight)  # (H, W) component ids, 0 = background
        if n == 0:
            continue
        largest = 1 + int(np.argmax(np.bincount(labels.ravel())[1:]))
        masks[i] = ndimage.binary_fill_holes(labels == largest)
    return torch.from_numpy(masks)  # (I, H, W) bool
