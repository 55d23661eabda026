"""Tests for the mumo scenes renderer: place backgrounds, shape masks and whole scenes (masks, boxes, colours)."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from mumo.data.scenes.graph import ATTRIBUTES, COLORS, PLACES, SHAPES
from mumo.data.scenes.places import draw_place
from mumo.data.scenes.render import (
    MIN_DISTANCE,
    MIN_VISIBLE,
    object_radius,
    render_scene,
    shape_mask,
    stripe_color,
)


def _random_objects(rng: np.random.Generator, n: int) -> list[dict]:
    return [{k: v[rng.integers(len(v))] for k, v in ATTRIBUTES.items()} for _ in range(n)]


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _histogram(image: np.ndarray) -> np.ndarray:
    """A 4x4x4 joint colour histogram, normalised: (64,)."""
    q = (image // 64).reshape(-1, 3).astype(np.int64)  # (H*W, 3)
    h = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64)
    return h / h.sum()


# --------------------------------------------------------------------------------------------------
# Places
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("place", PLACES)
def test_every_place_renders_deterministically(place: str, size: int) -> None:
    a = draw_place(place, np.random.default_rng(3), size)
    b = draw_place(place, np.random.default_rng(3), size)
    c = draw_place(place, np.random.default_rng(4), size)
    assert a.shape == (size, size, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).mean() > 1  # randomised per image
    assert a.std() > 5  # textured, not flat


def test_unknown_place_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown place"):
        draw_place("moon base", np.random.default_rng(0), 64)


def test_places_differ_in_mean_colour() -> None:
    rng = np.random.default_rng(0)
    means = {p: np.mean([draw_place(p, rng, 64).reshape(-1, 3).mean(0) for _ in range(6)], 0) for p in PLACES}
    for a, b in itertools.combinations(PLACES, 2):
        assert np.linalg.norm(means[a] - means[b]) > 20, (a, b)


def test_places_are_separable_by_a_nearest_centroid_classifier() -> None:
    """Colour histograms alone tell the 8 places apart: the pixels carry the place."""
    rng = np.random.default_rng(0)
    centroids = np.stack([np.mean([_histogram(draw_place(p, rng, 64)) for _ in range(20)], 0) for p in PLACES])
    correct = 0
    for i, p in enumerate(PLACES):
        for _ in range(10):
            h = _histogram(draw_place(p, rng, 64))
            correct += int(np.argmin(np.abs(centroids - h).sum(1)) == i)
    assert correct / (10 * len(PLACES)) >= 0.95


# --------------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128, 256])
@pytest.mark.parametrize("offset", [(0.0, 0.0), (0.3, 0.7)])  # integer and fractional pixel centres
@pytest.mark.parametrize("shape", SHAPES)
def test_shape_mask_fills_its_box(shape: str, offset: tuple[float, float], size: int) -> None:
    cx, cy = size // 2 + offset[0], size // 3 + offset[1]
    for name in ("small", "large"):
        r = object_radius(name, size)
        mask = shape_mask(shape, (cx, cy), r, size)
        assert mask.shape == (size, size) and mask.dtype == bool and mask.any()
        x0, y0, x1, y1 = _box(mask)
        assert cx - r <= x0 and x1 <= cx + r and cy - r <= y0 and y1 <= cy + r
        assert min(x1 - x0 + 1, y1 - y0 + 1) >= 1.3 * r  # spans most of its box: about the same extent as a circle


@pytest.mark.parametrize("size", [64, 128])
def test_shapes_differ_and_sizes_differ(size: int) -> None:
    c = (size / 2, size / 2)
    masks = {s: shape_mask(s, c, object_radius("large", size), size) for s in SHAPES}
    circle = masks["circle"].sum()
    for a, b in itertools.combinations(SHAPES, 2):
        iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
        assert iou < 0.9, (a, b, iou)
    for s in SHAPES:
        assert 0.35 * circle <= masks[s].sum() <= 1.0 * circle, s  # roughly the same visual weight
        assert shape_mask(s, c, object_radius("small", size), size).sum() < 0.6 * masks[s].sum()
    assert not masks["ring"][size // 2, size // 2]  # the ring has a hole
    assert masks["circle"][size // 2, size // 2]


def test_shape_mask_is_cut_at_the_frame_and_rejects_unknown_shapes() -> None:
    mask = shape_mask("square", (1, 1), 6.0, 32)
    assert mask.shape == (32, 32) and mask[0, 0] and not mask[20:].any()
    with pytest.raises(ValueError, match="unknown shape"):
        shape_mask("hexagon", (16, 16), 5.0, 32)
    with pytest.raises(ValueError, match="unknown object size"):
        object_radius("medium", 64)


# --------------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128])
def test_render_scene_masks_boxes_and_colours(size: int) -> None:
    """~200 scenes of 9 random objects: every invariant the scene graph promises holds on every scene."""
    rng = np.random.default_rng(size)
    seconds = 0.0
    for i in range(200):
        place, objects = PLACES[i % len(PLACES)], _random_objects(rng, 9)
        start = time.perf_counter()
        image, scene = render_scene(rng, place=place, objects=objects, image_size=size)
        seconds += time.perf_counter() - start
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert scene.place == place and scene.image_size == size and len(scene.objects) == 9
        assert scene.masks.shape == (9, size, size) and scene.masks.dtype == bool
        assert scene.masks.sum(0).max() <= 1  # disjoint
        for k, (obj, attrs, visible) in enumerate(zip(scene.objects, objects, scene.masks, strict=True)):
            assert obj.attributes() == attrs
            full = shape_mask(obj.shape, obj.center, object_radius(obj.size, size), size)
            assert obj.box == _box(full)  # the box of the whole shape
            assert min(obj.box) >= 0 and max(obj.box) < size
            assert not (visible & ~full).any()  # visible pixels lie on the shape, hence inside its box
            assert visible.sum() >= MIN_VISIBLE * full.sum(), (k, visible.sum(), full.sum())
            pixels = image[visible]  # (V, 3)
            rgb = np.array(COLORS[obj.color])
            is_color = (pixels == rgb).all(1)
            if obj.material == "solid":
                assert is_color.all()
            else:
                is_shade = (pixels == np.array(stripe_color(obj.color))).all(1)
                assert (is_color | is_shade).all() and is_color.any() and is_shade.any()
        centres = np.array([o.center for o in scene.objects], float)  # (O, 2)
        d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(9) * size
        assert d.min() >= MIN_DISTANCE * size
    print(f"\nrender_scene at {size} px, 9 objects: {1000 * seconds / 200:.2f} ms per scene")


def test_render_scene_is_deterministic_given_the_rng() -> None:
    objects = _random_objects(np.random.default_rng(0), 7)
    a_img, a = render_scene(np.random.default_rng(9), place="street", objects=objects, image_size=96)
    b_img, b = render_scene(np.random.default_rng(9), place="street", objects=objects, image_size=96)
    _, c = render_scene(np.random.default_rng(10), place="street", objects=objects, image_size=96)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.graph() == b.graph()
    assert [o.center for o in a.objects] != [o.center for o in c.objects]


def test_later_objects_are_drawn_on_top() -> None:
    """Two large squares at 64 px overlap often; where they do, the pixels belong to the later one."""
    rng = np.random.default_rng(1)
    overlaps = 0
    for _ in range(50):
        objects = [{"shape": "square", "color": c, "size": "large", "material": "solid"} for c in ("red", "blue")]
        image, scene = render_scene(rng, place="room", objects=objects, image_size=64)
        first, second = (shape_mask("square", o.center, object_radius("large", 64), 64) for o in scene.objects)
        both = first & second
        overlaps += int(both.any())
        assert not scene.masks[0][both].any() and scene.masks[1][both].all()
        assert (image[both] == COLORS["blue"]).all()
    assert overlaps > 0


def test_render_scene_gives_up_when_objects_cannot_fit() -> None:
    objects = [{"shape": "square", "color": "red", "size": "large", "material": "solid"}] * 60
    with pytest.raises(RuntimeError, match="no layout"):
        render_scene(np.random.default_rng(0), place="desert", objects=objects, image_size=64)


def test_render_scene_rejects_unknown_attributes() -> None:
    objects = [{"shape": "circle", "color": "orange", "size": "small", "material": "solid"}]
    with pytest.raises(ValueError, match="unknown object color"):
        render_scene(np.random.default_rng(0), place="beach", objects=objects, image_size=64)
