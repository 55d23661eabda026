"""What a question-generation data set gives per image: :class:`VQGImage`.

Every VQG data set in mumo (mumo scenes, VQG-COCO) is read into a list of these, one per image, so the task,
the metrics and the benchmark never look at a data set's own files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VQGImage:
    """One image and what a question generator may read or is scored against.

    ``questions``: the reference questions (VQG-COCO: 5 per image; mumo scenes: the image's questions).
    ``captions``: the caption cue's candidates (COCO: 5 per image; empty when the data set has none).
    ``place``: the place label (mumo scenes), ``None`` when the data set has none (VQG-COCO).
    ``tags``: image-level tags (mumo scenes: place, shapes, colours, sizes, materials present), may be empty.
    ``scene``: the image's scene-graph record when the data set has one (a mumo scenes jsonl line), which the
    executor checks generated questions against; ``None`` otherwise.
    """

    image_id: str
    image: Path
    questions: tuple[str, ...]
    captions: tuple[str, ...] = ()
    place: str | None = None
    tags: tuple[str, ...] = ()
    scene: dict[str, Any] | None = field(default=None, compare=False, repr=False)
