"""Sort-of-CLEVR scenes (Santoro et al. 2017, arXiv:1706.01427 §3.2; reference §1.2): the renderer.

75x75 white images with 6 objects, one per colour (red, blue, green, orange, yellow, gray), each a
square or a circle, never overlapping. Every object comes with its colour, shape, centre, box and a
pixel mask, the ground truth that explanation work scores maps against. Question generation and the
``mumo data sort-of-clevr`` command build on this renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "blue": (0, 0, 255),
    "green": (0, 128, 0),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
}
SHAPES = ("square", "circle")
IMAGE_SIZE = 75
OBJECT_SIZE = 5  # half side of a square, radius of a circle (pixels)


@dataclass
class SceneObject:
    """One object of a scene."""

    color: str
    shape: str
    center: tuple[int, int]  # (x, y) pixels
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive
    mask: np.ndarray  # (H, W) bool


def render_scene(
    rng: np.random.Generator, *, size: int = IMAGE_SIZE, half: int = OBJECT_SIZE
) -> tuple[np.ndarray, list[SceneObject]]:
    """One scene: an (H, W, 3) uint8 image and its 6 objects (one per colour, no overlaps)."""
    centers: list[tuple[int, int]] = []
    while len(centers) < len(COLORS):
        c = tuple(int(v) for v in rng.integers(half, size - half, 2))
        # boxes of side 2*half+1 overlap unless the centres differ by more than 2*half in x or y
        if all(abs(c[0] - o[0]) > 2 * half + 1 or abs(c[1] - o[1]) > 2 * half + 1 for o in centers):
            centers.append(c)  # type: ignore[arg-type]
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    objects = []
    for (name, rgb), (x, y) in zip(COLORS.items(), centers, strict=True):
        shape = SHAPES[int(rng.integers(2))]
        box = (x - half, y - half, x + half, y + half)
        layer = Image.new("L", (size, size), 0)
        (ImageDraw.Draw(layer).rectangle if shape == "square" else ImageDraw.Draw(layer).ellipse)(box, fill=255)
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=rgb)
        objects.append(SceneObject(name, shape, (x, y), box, np.asarray(layer) > 0))
    return np.asarray(image), objects
