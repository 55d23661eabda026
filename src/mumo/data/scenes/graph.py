"""The world of mumo scenes and its scene graph: what a scene holds, and the relations between its objects.

A scene is a place (the background) and 3-9 objects drawn in order over it, later objects on top. Each object
has a shape, a colour (CLEVR's eight), a size, a material, its centre, the box of its whole outline and its
*visible* mask: the pixels of it that no later object covers. Everything a caption, a tag list or a question
says about a scene is computed from this graph, never from pixels, so every answer and mask is exact.

Relations (:func:`relations`), for a pair (i, j) read "object i is REL object j", in image coordinates (x to
the right, y downwards):

- ``left``: ``x_i < x_j - margin``; ``right``: ``x_i > x_j + margin``;
- ``above``: ``y_i < y_j - margin``; ``below``: ``y_i > y_j + margin``;
- ``near``: centres closer than ``NEAR * size`` (symmetric).

``margin = MARGIN * size``: centres closer than that in x are neither left nor right of each other, so that a
relation the image shows only by a pixel or two is never asked about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

# CLEVR's colours (clevr-dataset-gen: ``data/properties.json``), in its order
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond", "ring", "heart")
SIZES = ("small", "large")
MATERIALS = ("solid", "striped")
PLACES = ("beach", "meadow", "desert", "snowfield", "night sky", "forest", "room", "street")
ATTRIBUTES = {"shape": SHAPES, "color": tuple(COLORS), "size": SIZES, "material": MATERIALS}
RELATIONS = ("left", "right", "above", "below", "near")

MIN_OBJECTS, MAX_OBJECTS = 3, 9
MIN_SIZE, MAX_SIZE, DEFAULT_SIZE = 64, 256, 128  # image side in pixels
MARGIN = 0.04  # of the image side: closer centres are neither left/right (above/below) of each other
NEAR = 0.25  # of the image side: centres closer than this are near each other


@dataclass
class SceneObject:
    """One object of a scene (its visible mask is ``Scene.masks[index]``)."""

    shape: str
    color: str
    size: str
    material: str
    center: tuple[int, int]  # (x, y) pixels
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1) inclusive: the whole outline, occluded parts included

    def attributes(self) -> dict[str, str]:
        return {"shape": self.shape, "color": self.color, "size": self.size, "material": self.material}

    def to_dict(self) -> dict:
        return {**self.attributes(), "center": list(self.center), "box": list(self.box)}

    @classmethod
    def from_dict(cls, d: dict) -> SceneObject:
        return cls(d["shape"], d["color"], d["size"], d["material"], tuple(d["center"]), tuple(d["box"]))


@dataclass
class Scene:
    """A place, its objects (in drawing order: later ones on top) and their visible masks."""

    place: str
    objects: list[SceneObject]
    image_size: int
    masks: np.ndarray = field(repr=False)  # (O, H, W) bool, visible pixels; disjoint

    @cached_property
    def relations(self) -> dict[str, list[tuple[int, int]]]:
        """:func:`relations` of the objects (computed once; do not change ``objects`` afterwards)."""
        return relations(self.objects, self.image_size)

    def graph(self) -> dict:
        """The scene graph as JSON-ready data (masks are stored apart, as ``.npz``)."""
        return {
            "place": self.place,
            "objects": [o.to_dict() for o in self.objects],
            "relations": {k: [list(p) for p in v] for k, v in self.relations.items()},
        }

    @classmethod
    def from_graph(cls, graph: dict, image_size: int, masks: np.ndarray | None = None) -> Scene:
        objects = [SceneObject.from_dict(o) for o in graph["objects"]]
        if masks is None:
            masks = np.zeros((len(objects), image_size, image_size), dtype=bool)
        return cls(graph["place"], objects, image_size, masks)


def relations(objects: list[SceneObject], image_size: int) -> dict[str, list[tuple[int, int]]]:
    """Every (i, j), i != j, with "object i is REL object j", for each relation in :data:`RELATIONS`."""
    margin, near = MARGIN * image_size, NEAR * image_size
    out: dict[str, list[tuple[int, int]]] = {r: [] for r in RELATIONS}
    for i, a in enumerate(objects):
        for j, b in enumerate(objects):
            if i == j:
                continue
            dx, dy = a.center[0] - b.center[0], a.center[1] - b.center[1]
            if dx < -margin:
                out["left"].append((i, j))
            if dx > margin:
                out["right"].append((i, j))
            if dy < -margin:
                out["above"].append((i, j))
            if dy > margin:
                out["below"].append((i, j))
            if dx * dx + dy * dy < near * near:
                out["near"].append((i, j))
    return out


def related(scene: Scene, relation: str, j: int) -> list[int]:
    """The objects i with "object i is ``relation`` object j", in object order."""
    return [i for i, k in scene.relations[relation] if k == j]
