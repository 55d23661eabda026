"""The renderer of mumo scenes: object shapes as masks, and a scene (place + objects) as an image and a graph.

:func:`shape_mask` draws one of the eight shapes with PIL at 4x resolution and keeps the pixels it covers at
least half, so shapes keep their outline even at 64 px. :func:`render_scene` places the caller's objects at
random, in order (later objects on top), with rejection sampling: every object keeps at least
:data:`MIN_VISIBLE` of its pixels visible and no two centres are closer than :data:`MIN_DISTANCE` of the
image side. It paints the background of the place (:func:`~.places.draw_place`), then each object: solid
(its colour) or striped (diagonal stripes of its colour and a lighter shade, a darker one for yellow and
cyan), with a thin dark outline drawn just outside the shape.

Visible masks are exact: object k's visible mask is its shape minus the shapes *and outlines* of the later
objects, so every visible pixel shows object k's own fill (the outline of a later object covers k too).
Outline pixels belong to no object. Boxes are those of the whole shape, occluded parts included.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from mumo.data.scenes.graph import COLORS, MATERIALS, SHAPES, SIZES, Scene, SceneObject
from mumo.data.scenes.places import draw_place

RADIUS = {"small": 0.06, "large": 0.1}  # of the image side
MIN_VISIBLE = 0.6  # every object keeps at least this fraction of its pixels visible
MIN_DISTANCE = 0.06  # of the image side: no two centres closer than this
OUTLINE = (24, 24, 28)  # the thin dark outline around every object
MAX_LAYOUTS = 200  # whole layouts tried before giving up
MAX_TRIES = 40  # positions tried per object within one layout
_SUPERSAMPLE = 4


def object_radius(size_name: str, image_size: int) -> float:
    """The radius (half extent) in pixels of an object of size ``size_name`` ("small" or "large")."""
    if size_name not in RADIUS:
        raise ValueError(f"unknown object size {size_name!r}; expected one of {SIZES}")
    return RADIUS[size_name] * image_size


def outline_width(image_size: int) -> int:
    """Width in pixels of the dark outline around each object: 1 px up to 191 px, 2 px at 192-319 px, ..."""
    return max(1, round(image_size / 128))


def stripe_color(color: str) -> tuple[int, int, int]:
    """The second shade of a striped object: its colour lightened, or darkened for light colours."""
    rgb = np.asarray(COLORS[color], np.float64)
    light = rgb @ (0.299, 0.587, 0.114) > 150  # yellow, cyan
    shade = rgb * 0.55 if light else rgb + 0.55 * (255 - rgb)
    return tuple(math.floor(c + 0.5) for c in shade)  # type: ignore[return-value]


def shape_mask(shape: str, center: tuple[float, float], radius: float, image_size: int) -> np.ndarray:
    """The full outline of one shape as a mask.

    Args:
        shape: one of :data:`~.graph.SHAPES`.
        center: (x, y) in pixels (pixel x's centre is at x), need not be integer.
        radius: half extent in pixels: the mask lies within ``center`` +- ``radius`` on both axes.
        image_size: the image side in pixels.

    Returns:
        (image_size, image_size) bool, cut at the frame.
    """
    half = math.ceil(radius) + 1
    ox, oy = math.floor(center[0]) - half, math.floor(center[1]) - half
    patch = _shape_patch(shape, (center[0] - ox, center[1] - oy), radius, 2 * half + 1)  # (P, P)
    mask = np.zeros((image_size, image_size), dtype=bool)
    ya, xa = max(oy, 0), max(ox, 0)
    yb, xb = min(oy + patch.shape[0], image_size), min(ox + patch.shape[1], image_size)
    if ya < yb and xa < xb:
        mask[ya:yb, xa:xb] = patch[ya - oy : yb - oy, xa - ox : xb - ox]
    return mask


def _polygon(shape: str) -> list[tuple[float, float]] | None:
    """The outline of a polygonal shape in units of the radius, centred on 0 (y downwards); None for round ones."""
    if shape == "square":
        a = 0.85
        return [(-a, -a), (a, -a), (a, a), (-a, a)]
    if shape == "triangle":
        return [(0.0, -1.0), (1.0, 0.85), (-1.0, 0.85)]
    if shape == "diamond":
        return [(0.0, -1.0), (0.75, 0.0), (0.0, 1.0), (-0.75, 0.0)]
    if shape == "cross":
        w = 0.33
        return [
            (-w, -1),
            (w, -1),
            (w, -w),
            (1, -w),
            (1, w),
            (w, w),
            (w, 1),
            (-w, 1),
            (-w, w),
            (-1, w),
            (-1, -w),
            (-w, -w),
        ]
    if shape == "star":  # five points, outer radius 1, moved down so that it spans -0.905..0.905
        angles = -np.pi / 2 + np.arange(10) * np.pi / 5
        rho = np.where(np.arange(10) % 2 == 0, 1.0, 0.5)
        return list(zip(rho * np.cos(angles), rho * np.sin(angles) + 0.095, strict=True))
    if shape == "heart":  # the classic parametric heart, 2 wide and 1.81 tall
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        hx = 16 * np.sin(t) ** 3
        hy = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return list(zip(hx / 16, -(hy + 2.54) / 16, strict=True))
    return None


def _shape_patch(shape: str, center: tuple[float, float], radius: float, side: int) -> np.ndarray:
    """A shape drawn on a (side, side) patch around ``center`` (patch pixel coordinates): (side, side) bool.

    Drawn with PIL on an "L" layer at 4x resolution, box-averaged back, kept where more than half covered, and
    cut to ``center`` +- ``radius``.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")
    k = _SUPERSAMPLE
    layer = Image.new("L", (side * k, side * k), 0)
    draw = ImageDraw.Draw(layer)
    # Pixel x spans [x, x + 1), so its k sub-pixels have centres k * (x + 0.5) - 0.5 + (0, ..., k - 1). PIL
    # truncates coordinates and fills both ends: shifting by half a sub-pixel and shrinking by as much makes it
    # fill the sub-pixels whose centres lie inside the shape.
    cx, cy = (center[0] + 0.5) * k, (center[1] + 0.5) * k
    r = radius * k - 0.5
    if shape in ("circle", "ring"):
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        if shape == "ring":
            ri = 0.5 * radius * k + 0.5  # the hole grows by the half sub-pixel the disc shrank
            draw.ellipse((cx - ri, cy - ri, cx + ri, cy + ri), fill=0)
    else:
        draw.polygon([(cx + r * px, cy + r * py) for px, py in _polygon(shape)], fill=255)
    patch = np.asarray(layer.reduce(k)) > 128  # (side, side): more than half covered
    grid = np.arange(side)
    inside = np.abs(grid - center[0]) <= radius, np.abs(grid - center[1]) <= radius  # (side,), (side,)
    return patch & inside[1][:, None] & inside[0][None, :]


def _dilate(mask: np.ndarray, width: int) -> np.ndarray:
    """Binary dilation by a (2w+1, 2w+1) square; the mask must have ``width`` empty pixels on each side."""
    out = mask.copy()
    for _ in range(width):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        out = grown
    return out


class _Sprite:
    """One object ready to place: its shape, outline and paint on a patch around an integer centre."""

    def __init__(self, attrs: dict, image_size: int) -> None:
        for key, values in (("shape", SHAPES), ("color", COLORS), ("size", SIZES), ("material", MATERIALS)):
            if attrs[key] not in values:
                raise ValueError(f"unknown object {key} {attrs[key]!r}; expected one of {tuple(values)}")
        self.attrs = {k: attrs[k] for k in ("shape", "color", "size", "material")}
        self.radius = object_radius(attrs["size"], image_size)
        width = outline_width(image_size)
        self.half = math.ceil(self.radius) + width  # the patch reaches this far from the centre pixel
        side = 2 * self.half + 1
        self.mask = _shape_patch(attrs["shape"], (self.half, self.half), self.radius, side)  # (P, P)
        solid = self.mask if attrs["shape"] != "ring" else _shape_patch("circle", (self.half,) * 2, self.radius, side)
        self.outline = _dilate(solid, width) & ~solid  # (P, P): outside only, so a ring's hole stays open
        self.cover = self.mask | self.outline  # (P, P): what this object hides of earlier ones
        self.area = int(self.mask.sum())
        paint = np.empty((side, side, 3), np.uint8)  # (P, P, 3)
        paint[:] = COLORS[attrs["color"]]
        if attrs["material"] == "striped":
            period = max(3.0, 0.7 * self.radius)  # along an axis; across the stripes ~ radius / 2
            u = np.arange(side)
            paint[np.mod((u[:, None] + u[None, :]) / period, 1.0) >= 0.5] = stripe_color(attrs["color"])
        self.paint = paint
        rows, cols = np.nonzero(self.mask)
        self.extent = (int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max()))  # patch box


def _layout(
    rng: np.random.Generator, sprites: list[_Sprite], image_size: int
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Random centres for the sprites (in order) and the owner map.

    Returns:
        centres [(x, y)] and the owner map (H, W) int16: the index of the object visible at each pixel, -1 for
        background, -2 for outline pixels.

    Raises:
        RuntimeError: no valid layout after :data:`MAX_LAYOUTS` tries.
    """
    min_d2 = (MIN_DISTANCE * image_size) ** 2
    areas = np.array([s.area for s in sprites], np.int64)
    need = np.ceil(MIN_VISIBLE * areas).astype(np.int64)
    for _ in range(MAX_LAYOUTS):
        owner = np.full((image_size, image_size), -1, np.int16)  # (H, W)
        visible = areas.copy()
        centres: list[tuple[int, int]] = []
        for k, sp in enumerate(sprites):
            lo, hi = sp.half, image_size - 1 - sp.half
            if hi < lo:
                raise ValueError(f"an object of radius {sp.radius:.1f} px does not fit a {image_size} px image")
            for x, y in rng.integers(lo, hi + 1, (MAX_TRIES, 2)):
                if any((x - cx) ** 2 + (y - cy) ** 2 < min_d2 for cx, cy in centres):
                    continue
                region = owner[y - sp.half : y + sp.half + 1, x - sp.half : x + sp.half + 1]  # (P, P) view
                hidden = np.bincount(region[sp.cover] + 2, minlength=k + 2)[2:]  # (k,) pixels of each taken
                if np.any(visible[:k] - hidden < need[:k]):
                    continue
                visible[:k] -= hidden
                region[sp.outline] = -2
                region[sp.mask] = k
                centres.append((int(x), int(y)))
                break
            else:
                break  # this object found no place: start the layout again
        if len(centres) == len(sprites):
            return centres, owner
    raise RuntimeError(
        f"no layout of {len(sprites)} objects at {image_size} px keeps {MIN_VISIBLE:.0%} of each visible "
        f"after {MAX_LAYOUTS} tries"
    )


def render_scene(
    rng: np.random.Generator, *, place: str, objects: list[dict], image_size: int
) -> tuple[np.ndarray, Scene]:
    """Render one scene: the place's background and the objects drawn over it in order.

    Args:
        rng: the only source of randomness (same state, same scene).
        place: one of :data:`~.graph.PLACES`.
        objects: attribute dicts ``{"shape", "color", "size", "material"}``, in drawing order (later on top).
        image_size: the image side in pixels.

    Returns:
        The image, (H, W, 3) uint8, and its :class:`~.graph.Scene` (integer centres, whole-shape boxes and
        disjoint visible masks, (O, H, W) bool).

    Raises:
        RuntimeError: no layout keeps every object :data:`MIN_VISIBLE` visible (too many objects for the image).
    """
    sprites = [_Sprite(o, image_size) for o in objects]
    image = draw_place(place, rng, image_size)  # (H, W, 3)
    centres, owner = _layout(rng, sprites, image_size)
    scene_objects = []
    for sp, (x, y) in zip(sprites, centres, strict=True):
        region = image[y - sp.half : y + sp.half + 1, x - sp.half : x + sp.half + 1]  # (P, P, 3) view
        region[sp.outline] = OUTLINE
        region[sp.mask] = sp.paint[sp.mask]
        x0, y0, x1, y1 = sp.extent
        box = (x - sp.half + x0, y - sp.half + y0, x - sp.half + x1, y - sp.half + y1)
        scene_objects.append(SceneObject(**sp.attrs, center=(x, y), box=box))
    masks = owner[None] == np.arange(len(sprites), dtype=np.int16)[:, None, None]  # (O, H, W)
    return image, Scene(place, scene_objects, image_size, masks)
