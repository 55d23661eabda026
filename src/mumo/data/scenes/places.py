"""The places of mumo scenes: one procedural background painter per place in :data:`~.graph.PLACES`.

Each place has its own layout (a horizon, bands, a floor line), its own muted palette, texture noise and a few
props (clouds, flowers, dunes, mountains, stars and a crescent moon, trunks, a window or a door, buildings and
lane markings), randomised per image in position, number and shade, so that a small CNN tells the places apart
from pixels while the saturated, outlined objects drawn on top stay easy to see. No prop looks like an object:
props are either tiny (flowers, stars), pale (clouds, the moon, which is a crescent), muted or cut by the frame.

Everything is vectorised numpy on an (S, S, 3) float32 canvas (noise is a low-resolution random grid upscaled
with PIL's bilinear resize): about 1-2 ms per background at 128 px. Sizes scale with the image side.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import numpy as np
from PIL import Image

from mumo.data.scenes.graph import PLACES

Painter = Callable[[np.random.Generator, int], np.ndarray]


def draw_place(place: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A random background of one place.

    Args:
        place: one of :data:`~.graph.PLACES`.
        rng: the only source of randomness.
        size: the image side in pixels (64..256 in mumo scenes; any size >= 16 works).

    Returns:
        (size, size, 3) uint8 image.
    """
    if place not in _PAINTERS:
        raise ValueError(f"unknown place {place!r}; expected one of {PLACES}")
    canvas = _PAINTERS[place](rng, size)  # (S, S, 3) float32
    grain, light = _GRAIN[place], _noise(rng, size, 3, 3)  # (S, S): per-image illumination
    canvas += (grain * (rng.random((size, size), dtype=np.float32) - 0.5) + 6.0 * light)[..., None]
    return np.clip(canvas, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Helpers: colours, noise, bands and curves
# --------------------------------------------------------------------------------------------------


def _rgb(rng: np.random.Generator, base: tuple[int, int, int], jitter: float = 10.0) -> np.ndarray:
    """A shade of ``base``: (3,) float32, each channel moved by up to ``jitter``, plus a common brightness shift."""
    shift = rng.uniform(-jitter, jitter, 3) + rng.uniform(-jitter, jitter)
    return (np.asarray(base, np.float32) + shift).astype(np.float32)


def _noise(rng: np.random.Generator, size: int, rows: int, cols: int) -> np.ndarray:
    """Smooth noise: a (rows, cols) standard normal grid upscaled bilinearly to (size, size) float32.

    Few rows and many columns give vertical streaks (grass, bark), many rows and few columns horizontal ones.
    """
    grid = rng.standard_normal((max(rows, 2), max(cols, 2))).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((size, size), Image.Resampling.BILINEAR))


def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel rows (S, 1) and columns (1, S), float32."""
    r = np.arange(size, dtype=np.float32)
    return r[:, None], r[None, :]


def _gradient(y: np.ndarray, y0: float, y1: float, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Rows blending from ``top`` at row y0 to ``bottom`` at row y1 (clamped): (S, 1, 3) float32."""
    t = np.clip((y - y0) / max(y1 - y0, 1.0), 0.0, 1.0)[..., None]  # (S, 1, 1)
    return top + t * (bottom - top)


def _curve(rng: np.random.Generator, size: int, base: float, amp: float, waves: float) -> np.ndarray:
    """A wavy line across the image, one row per column: (1, S) float32 (two random sines around ``base``)."""
    x = np.arange(size, dtype=np.float32) / size
    f1, f2 = rng.uniform(0.5, 1.0) * waves, rng.uniform(1.0, 2.0) * waves
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    y = base + amp * (0.7 * np.sin(2 * np.pi * f1 * x + p1) + 0.3 * np.sin(2 * np.pi * f2 * x + p2))
    return y.astype(np.float32)[None, :]


def _dots(
    canvas: np.ndarray, rng: np.random.Generator, n: int, rows: tuple[float, float], colors: np.ndarray, dot: int
) -> None:
    """Paint ``n`` square dots of side ``dot`` at random places between pixel rows ``rows``, in place.

    ``colors`` is (K, 3): each dot takes one of them at random.
    """
    size = canvas.shape[0]
    lo, hi = int(rows[0]), max(int(rows[1]) - dot, int(rows[0]) + 1)
    ys, xs = rng.integers(lo, hi, n), rng.integers(0, size - dot + 1, n)  # (n,), (n,)
    col = colors[rng.integers(0, len(colors), n)]  # (n, 3)
    for dy in range(dot):
        for dx in range(dot):
            canvas[np.clip(ys + dy, 0, size - 1), xs + dx] = col


def _fill(canvas: np.ndarray, x0: float, y0: float, x1: float, y1: float, color: np.ndarray) -> None:
    """Fill the rectangle [x0, x1) x [y0, y1) (pixels, clipped to the canvas) with ``color``, in place."""
    size = canvas.shape[0]
    xa, xb = max(math.floor(x0 + 0.5), 0), min(math.floor(x1 + 0.5), size)
    ya, yb = max(math.floor(y0 + 0.5), 0), min(math.floor(y1 + 0.5), size)
    if xa < xb and ya < yb:
        canvas[ya:yb, xa:xb] = color


# --------------------------------------------------------------------------------------------------
# The painters: each returns an (S, S, 3) float32 canvas
# --------------------------------------------------------------------------------------------------


def _beach(rng: np.random.Generator, s: int) -> np.ndarray:
    """Pale sky, a sea band with foam lines, wet and dry sand, clouds, sometimes an island, a few shells."""
    y, x = _coords(s)
    h = rng.uniform(0.28, 0.42) * s  # horizon
    shore = _curve(rng, s, h + rng.uniform(0.13, 0.22) * s, 0.02 * s, 1.5)  # (1, S)
    sky = _gradient(y, 0, h, _rgb(rng, (150, 185, 215)), _rgb(rng, (200, 215, 225)))
    sea = _gradient(y, h, float(shore.mean()), _rgb(rng, (55, 110, 140)), _rgb(rng, (85, 150, 160)))
    sea = sea + 8.0 * _noise(rng, s, s // 3, 3)[..., None]  # horizontal wave streaks
    sand = _gradient(y, float(shore.mean()), s, _rgb(rng, (205, 185, 140)), _rgb(rng, (220, 200, 160)))
    wet = sand * 0.82
    canvas = np.where(
        (y < h)[..., None],
        sky,
        np.where((y < shore)[..., None], sea, np.where((y < shore + 0.03 * s)[..., None], wet, sand)),
    )  # (S, S, 3)
    canvas = np.ascontiguousarray(canvas, dtype=np.float32)
    # foam lines on the sea: short wavy bright runs
    for _ in range(rng.integers(3, 7)):
        row = rng.uniform(h + 0.02 * s, float(shore.min()) - 1)
        x0, x1 = sorted(rng.uniform(0, s, 2))
        cols = (x >= x0) & (x <= x1)  # (1, S)
        wave = np.clip(np.round(row + 0.01 * s * np.sin(x / s * 20 + rng.uniform(0, 6))), 0, s - 1).astype(int)
        canvas[wave[cols], x[cols].astype(int)] = _rgb(rng, (205, 225, 228), 6)
    # an island on the horizon
    if rng.random() < 0.5:
        cx, w, top = rng.uniform(0, s), rng.uniform(0.15, 0.35) * s, rng.uniform(0.02, 0.05) * s
        hump = h - top * np.sqrt(np.clip(1 - ((x - cx) / (w / 2)) ** 2, 0, 1))  # (1, S)
        canvas[((y >= hump) & (y < h) & (np.abs(x - cx) < w / 2))] = _rgb(rng, (115, 135, 145), 6)
    # clouds: clusters of pale puffs, cut into soft blobs by noise
    top = int(h)  # rows of sky
    puffs = np.zeros((top, s), np.float32)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(0, s), rng.uniform(0.05, 0.8) * h
        for _ in range(rng.integers(3, 6)):
            px, py, r = cx + rng.uniform(-0.1, 0.1) * s, cy + rng.uniform(-0.02, 0.02) * s, rng.uniform(0.03, 0.06) * s
            np.maximum(puffs, 1 - ((x - px) ** 2 + (2.0 * (y[:top] - py)) ** 2) / r**2, out=puffs)
    cloud = np.clip(puffs * 3, 0, 1)[..., None]  # (h, S, 1)
    canvas[:top] += cloud * (_rgb(rng, (235, 238, 240), 4) - canvas[:top]) * 0.85
    _dots(
        canvas,
        rng,
        int(rng.integers(6, 16) * (s / 128) ** 2),
        (float(shore.max()) + 4, s),
        np.array([[235, 225, 205], [175, 155, 125], [225, 205, 195]], np.float32),
        max(1, s // 128),
    )
    return canvas


def _meadow(rng: np.random.Generator, s: int) -> np.ndarray:
    """A low sky, a dark treeline, grass with vertical blade streaks and scattered pale flowers."""
    y, _ = _coords(s)
    h = rng.uniform(0.15, 0.3) * s
    trees = _curve(rng, s, h - rng.uniform(0.03, 0.06) * s, 0.015 * s, 6.0)  # (1, S)
    trees = trees + 0.012 * s * _noise(rng, s, 2, s // 4)[:1]  # bumpy crowns
    sky = _gradient(y, 0, h, _rgb(rng, (160, 190, 215)), _rgb(rng, (205, 215, 220)))
    grass = _gradient(y, h, s, _rgb(rng, (140, 165, 100)), _rgb(rng, (105, 145, 70)))
    blades = 9.0 * _noise(rng, s, 6, s // 2) + 6.0 * _noise(rng, s, 5, 5)  # (S, S)
    grass = grass + blades[..., None] * np.array([0.8, 1.0, 0.6], np.float32)
    canvas = np.where((y < trees)[..., None], sky, np.where((y < h)[..., None], _rgb(rng, (85, 110, 80), 6), grass))
    canvas = np.ascontiguousarray(canvas, dtype=np.float32)  # (S, S, 3)
    flowers = np.array([[238, 236, 225], [228, 180, 195], [200, 185, 222], [236, 225, 172]], np.float32)
    n = int(rng.integers(25, 70) * (s / 128) ** 2)
    _dots(canvas, rng, n, (h + 0.04 * s, s), flowers[rng.permutation(4)[: rng.integers(2, 5)]], max(1, s // 96))
    return canvas


def _desert(rng: np.random.Generator, s: int) -> np.ndarray:
    """Warm hazy sky with a soft glow, distant mesas, layered dunes with crest highlights and wind ripples."""
    y, x = _coords(s)
    h = rng.uniform(0.3, 0.45) * s
    sky = _gradient(y, 0, h, _rgb(rng, (175, 195, 215)), _rgb(rng, (230, 215, 190)))
    gx, gy, sig = rng.uniform(0, s), rng.uniform(0.1, 0.7) * h, 0.15 * s
    sky = sky + (28.0 * np.exp(-((x - gx) ** 2 + (y - gy) ** 2) / (2 * sig**2)))[..., None]  # (S, S, 3) glow
    canvas = np.ascontiguousarray(np.where((y < h)[..., None], sky, _rgb(rng, (215, 170, 115))), dtype=np.float32)
    # mesas: flat-topped trapezoids standing on the horizon
    for _ in range(rng.integers(1, 3)):
        cx, w, top = rng.uniform(0, s), rng.uniform(0.12, 0.3) * s, rng.uniform(0.04, 0.1) * s
        half = w / 2 - (h - y) / top * 0.25 * w  # (S, 1): narrower towards the top
        canvas[(y >= h - top) & (y < h) & (np.abs(x - cx) < half)] = _rgb(rng, (170, 135, 118), 6)
    # dunes, far to near: each fills below its crest line with its own shade
    sand = _rgb(rng, (215, 170, 115))
    bases = np.sort(rng.uniform(h + 0.05 * s, 0.9 * s, rng.integers(3, 6)))
    for b in bases:
        crest = _curve(rng, s, b, rng.uniform(0.03, 0.08) * s, rng.uniform(0.6, 1.6))  # (1, S)
        below = y >= crest  # (S, S)
        shade = sand * rng.uniform(0.86, 1.06)
        canvas[below] = shade
        canvas[below & (y < crest + max(1.0, 0.012 * s))] = np.minimum(shade * 1.12, 255)  # lit crest
        canvas[below & (y >= crest + 0.012 * s) & (y < crest + 0.05 * s)] *= 0.93  # lee shadow
    period = rng.uniform(0.025, 0.04) * s
    ripples = 5.0 * np.sin(2 * np.pi * (y + 0.02 * s * np.sin(x / s * 9 + rng.uniform(0, 6))) / period)
    canvas += (ripples * (y >= h))[..., None]
    return canvas


def _snowfield(rng: np.random.Generator, s: int) -> np.ndarray:
    """Pale sky, two ranges of blue-grey mountains, white-blue snow with soft shadows and a receding fence."""
    y, x = _coords(s)
    h = rng.uniform(0.25, 0.42) * s
    canvas = _gradient(y, 0, h, _rgb(rng, (185, 200, 220)), _rgb(rng, (220, 228, 236)))
    canvas = np.ascontiguousarray(np.broadcast_to(canvas, (s, s, 3)), dtype=np.float32)
    for tone, lo, hi in (((170, 182, 202), 0.08, 0.2), ((150, 165, 188), 0.03, 0.1)):  # far, then near range
        k = int(rng.integers(4, 9))
        px = np.sort(rng.uniform(-0.1, 1.1, 2 * k + 1)) * s
        py = (
            h
            - np.where(np.arange(2 * k + 1) % 2 == 0, rng.uniform(lo, hi, 2 * k + 1), rng.uniform(0, lo, 2 * k + 1)) * s
        )
        ridge = np.interp(x[0], px, py)[None, :]  # (1, S)
        canvas[(y >= ridge) & (y < h)] = _rgb(rng, tone, 6)
    snow = _gradient(y, h, s, _rgb(rng, (222, 230, 242), 5), _rgb(rng, (240, 244, 250), 4))
    shadow = np.clip(_noise(rng, s, 5, 4) - 0.2, 0, 1.5)[..., None] * np.array([-26, -18, -6], np.float32)
    drifts = 6.0 * np.sin(2 * np.pi * (y / (rng.uniform(0.06, 0.1) * s) + 0.5 * np.sin(x / s * 7)))[..., None]
    canvas = np.where((y < h)[..., None], canvas, snow + shadow + drifts * np.array([1.0, 1.0, 0.4], np.float32))
    canvas = np.ascontiguousarray(canvas, dtype=np.float32)
    # a fence receding towards the horizon: posts shrink and crowd as they go back
    y_near, y_far = rng.uniform(0.75, 0.95) * s, h + rng.uniform(0.05, 0.15) * s
    x_near, x_far = rng.choice([-1, 1]) * rng.uniform(0.1, 0.6) * s + s / 2, rng.uniform(0.2, 0.8) * s
    post = _rgb(rng, (95, 85, 80), 8)
    for t in np.linspace(0, 1, int(rng.integers(5, 9))) ** 0.7:
        py, px = y_near + t * (y_far - y_near), x_near + t * (x_far - x_near)
        height, width = (1 - 0.7 * t) * 0.08 * s, max(1.0, (1 - 0.6 * t) * 0.012 * s)
        _fill(canvas, px - width / 2, py - height, px + width / 2, py, post)
    return canvas


def _night_sky(rng: np.random.Generator, s: int) -> np.ndarray:
    """Dark blue sky with a faint milky way, stars, a pale crescent moon and black hills at the bottom."""
    y, x = _coords(s)
    ground = _curve(rng, s, rng.uniform(0.74, 0.88) * s, 0.04 * s, 1.2)  # (1, S)
    canvas = _gradient(y, 0, float(ground.mean()), _rgb(rng, (10, 14, 38), 5), _rgb(rng, (32, 42, 78), 6))
    angle, offset = rng.uniform(0, np.pi), rng.uniform(0.2, 0.8) * s
    d = (x - s / 2) * np.sin(angle) - (y - offset) * np.cos(angle)  # (S, S) distance to the band's axis
    band = np.exp(-(d**2) / (2 * (0.09 * s) ** 2)) * np.clip(0.6 + 0.5 * _noise(rng, s, 6, 6), 0, 1.5)
    canvas = canvas + band[..., None] * np.array([22, 24, 34], np.float32)
    canvas = np.ascontiguousarray(canvas, dtype=np.float32)  # (S, S, 3)
    stars = np.linspace(110, 235, 6, dtype=np.float32)[:, None] * np.array([[1.0, 1.0, 1.05]], np.float32)
    _dots(canvas, rng, int(rng.integers(50, 130) * (s / 128) ** 2), (0, float(ground.min())), stars, 1)
    if s >= 192:  # a few bigger stars at large sizes
        _dots(canvas, rng, int(rng.integers(4, 10)), (0, float(ground.min())), stars[3:], 2)
    # crescent moon: a pale disc minus a shifted disc, never a full yellow circle
    r = rng.uniform(0.045, 0.075) * s
    mx, my = rng.uniform(r + 2, s - r - 2), rng.uniform(r + 2, max(0.45 * s, r + 3))
    a, k = rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.6) * r
    d1 = (x - mx) ** 2 + (y - my) ** 2
    d2 = (x - mx - k * np.cos(a)) ** 2 + (y - my - k * np.sin(a)) ** 2
    canvas += (10.0 * np.exp(-d1 / (2 * (2.0 * r) ** 2)))[..., None]  # faint halo
    canvas[(d1 < r**2) & (d2 >= r**2)] = _rgb(rng, (222, 226, 215), 5)
    canvas[y >= ground] = _rgb(rng, (12, 15, 22), 4)
    return canvas


def _forest(rng: np.random.Generator, s: int) -> np.ndarray:
    """Misty green-grey air, pale far trunks, a dark irregular canopy, dark near trunks, a litter floor, bushes."""
    y, x = _coords(s)
    g = rng.uniform(0.74, 0.88) * s  # ground line
    canvas = _gradient(y, 0, g, _rgb(rng, (150, 165, 140)), _rgb(rng, (105, 125, 100)))
    canvas = np.ascontiguousarray(np.broadcast_to(canvas, (s, s, 3)), dtype=np.float32)
    far = _rgb(rng, (118, 124, 108), 6)
    for _ in range(rng.integers(6, 11)):
        cx, w = rng.uniform(0, s), rng.uniform(0.012, 0.03) * s
        _fill(canvas, cx - w / 2, 0, cx + w / 2, g - rng.uniform(0, 0.04) * s, far * rng.uniform(0.95, 1.05))
    edge = _curve(rng, s, rng.uniform(0.1, 0.22) * s, 0.04 * s, 3.0) + 0.05 * s * _noise(rng, s, s // 8, s // 6)
    canvas[y < edge] = _rgb(rng, (70, 96, 72), 6)  # canopy with a ragged lower edge
    trunk = _rgb(rng, (72, 60, 50), 6)
    for _ in range(rng.integers(3, 7)):
        cx, w = rng.uniform(0, s), rng.uniform(0.035, 0.08) * s
        _fill(canvas, cx - w / 2, 0, cx + w / 2, g + rng.uniform(0, 0.05) * s, trunk * rng.uniform(0.85, 1.1))
    canvas += (7.0 * _noise(rng, s, 4, s // 2))[..., None]  # bark and light streaks
    floor = _rgb(rng, (98, 88, 62)) + (10.0 * _noise(rng, s, s // 6, s // 6))[..., None]  # (S, S, 3) leaf litter
    canvas = np.where((y >= g)[..., None], floor, canvas)
    canvas = np.ascontiguousarray(canvas, dtype=np.float32)
    bush = _rgb(rng, (62, 88, 56), 6)
    for _ in range(rng.integers(2, 5)):  # low bushes on the ground line: clusters of flattened puffs
        cx = rng.uniform(0, s)
        for _ in range(rng.integers(3, 6)):
            px, py = cx + rng.uniform(-0.06, 0.06) * s, g + rng.uniform(-0.03, 0.02) * s
            rx, ry = rng.uniform(0.04, 0.07) * s, rng.uniform(0.02, 0.035) * s
            canvas[((x - px) / rx) ** 2 + ((y - py) / ry) ** 2 < 1] = bush * rng.uniform(0.9, 1.1)
    return canvas


_WALLS = ((200, 190, 170), (172, 186, 172), (186, 180, 196), (202, 182, 166), (178, 190, 198))


def _room(rng: np.random.Generator, s: int) -> np.ndarray:
    """A pastel wall (maybe wallpaper), a skirting board, a plank floor, a window and maybe a door and a picture."""
    y, x = _coords(s)
    f = rng.uniform(0.62, 0.78) * s  # floor line
    wall = _rgb(rng, _WALLS[rng.integers(len(_WALLS))], 6)
    canvas = _gradient(y, 0, f, wall * 0.92, wall) + np.zeros((1, s, 1), np.float32)  # (S, S, 3)
    if rng.random() < 0.6:  # wallpaper stripes
        period = rng.uniform(0.05, 0.1) * s
        canvas[: int(f)] += (5.0 * np.sign(np.sin(2 * np.pi * x / period)))[0, :, None]
    # window in one half of the wall, door (or a picture) in the other
    left = rng.random() < 0.5
    ww, wh = rng.uniform(0.18, 0.28) * s, rng.uniform(0.22, 0.34) * s
    wx = rng.uniform(0.05, 0.45) * s + (0 if left else 0.5 * s) - ww * (0 if left else 0.5)
    wy = rng.uniform(0.06, max(0.07, (f / s) - 0.1 - wh / s)) * s
    frame, border = _rgb(rng, (226, 222, 214), 4), max(1.0, 0.02 * s)
    _fill(canvas, wx - border, wy - border, wx + ww + border, wy + wh + border, frame)
    pane = _gradient(y, wy, wy + wh, _rgb(rng, (160, 188, 210), 6), _rgb(rng, (196, 210, 218), 6))  # (S, 1, 3)
    ya, yb, xa, xb = int(wy), int(wy + wh), max(int(wx), 0), min(int(wx + ww), s)
    canvas[ya:yb, xa:xb] = pane[ya:yb]
    bar = max(1.0, 0.012 * s)
    _fill(canvas, wx + ww / 2 - bar / 2, wy, wx + ww / 2 + bar / 2, wy + wh, frame)  # mullions
    _fill(canvas, wx, wy + wh / 2 - bar / 2, wx + ww, wy + wh / 2 + bar / 2, frame)
    _fill(canvas, wx - 2 * border, wy + wh, wx + ww + 2 * border, wy + wh + 2 * border, frame * 0.95)  # sill
    other = rng.uniform(0.55, 0.8) * s if left else rng.uniform(0.05, 0.3) * s
    if rng.random() < 0.6:  # a door standing on the floor line
        dw, dh = rng.uniform(0.15, 0.2) * s, rng.uniform(0.42, 0.52) * s
        wood = _rgb(rng, (122, 88, 64), 8)
        _fill(canvas, other - border, f - dh - border, other + dw + border, f, frame * 0.9)
        _fill(canvas, other, f - dh, other + dw, f, wood)
        for top, bottom in ((0.08, 0.45), (0.55, 0.92)):  # two recessed panels
            _fill(canvas, other + 0.2 * dw, f - dh + top * dh, other + 0.8 * dw, f - dh + bottom * dh, wood * 0.88)
        knob = max(1.0, 0.015 * s)
        _fill(canvas, other + 0.82 * dw, f - 0.5 * dh, other + 0.82 * dw + knob, f - 0.5 * dh + knob, frame * 0.8)
    elif rng.random() < 0.7:  # a small landscape picture
        pw, ph, py = rng.uniform(0.12, 0.2) * s, rng.uniform(0.08, 0.14) * s, rng.uniform(0.12, 0.3) * s
        _fill(canvas, other - border, py - border, other + pw + border, py + ph + border, _rgb(rng, (95, 75, 60), 6))
        _fill(canvas, other, py, other + pw, py + ph * 0.6, _rgb(rng, (165, 180, 190), 8))
        _fill(canvas, other, py + ph * 0.6, other + pw, py + ph, _rgb(rng, (130, 150, 110), 8))
    # floor planks, getting taller towards the viewer, with staggered seams
    wood = _rgb(rng, (150, 112, 80), 8)
    canvas[int(f) :] = wood + (6.0 * _noise(rng, s, s // 3, 4))[int(f) :, :, None]
    n = int(rng.integers(5, 8))
    bounds = f + (s - f) * (np.arange(n + 1) / n) ** 1.4
    line = max(1, round(s / 128))
    for a, b in itertools.pairwise(bounds):
        canvas[int(a) : int(a) + line] = wood * 0.75
        step, off = rng.uniform(0.25, 0.45) * s, rng.uniform(0, 0.45 * s)
        for sx in np.arange(off, s, step):
            _fill(canvas, sx, a, sx + line, b, wood * 0.8)
    _fill(canvas, 0, f - 0.03 * s, s, f, _rgb(rng, (215, 210, 200), 6))  # skirting board
    return canvas


_BUILDINGS = ((152, 108, 92), (142, 142, 146), (182, 172, 152), (132, 142, 158), (168, 150, 128))


def _street(rng: np.random.Generator, s: int) -> np.ndarray:
    """Sky, a row of buildings with window grids, a slab pavement with a kerb and lamp posts, a road with lanes."""
    y, x = _coords(s)
    p = rng.uniform(0.5, 0.6) * s  # pavement top
    r = p + rng.uniform(0.09, 0.14) * s  # kerb / road top
    canvas = _gradient(y, 0, p, _rgb(rng, (170, 188, 205)), _rgb(rng, (202, 208, 215))) + np.zeros(
        (1, s, 1), np.float32
    )
    bx = -rng.uniform(0, 0.1) * s
    while bx < s:
        bw, top = rng.uniform(0.15, 0.32) * s, rng.uniform(0.05, 0.32) * s
        color = _rgb(rng, _BUILDINGS[rng.integers(len(_BUILDINGS))], 8)
        _fill(canvas, bx, top, bx + bw, p, color)
        sp = rng.uniform(0.05, 0.075) * s
        win = ((np.mod(x - bx - 0.3 * sp, sp) < 0.5 * sp) & (x > bx + 0.2 * sp) & (x < bx + bw - 0.6 * sp)) & (
            (np.mod(y - top - 0.4 * sp, sp) < 0.55 * sp) & (y > top + 0.3 * sp) & (y < p - 0.9 * sp)
        )  # (S, S)
        canvas[win] = color * 0.68
        bx += bw
    canvas[int(p) : int(r)] = _rgb(rng, (170, 168, 160), 6)
    slab = rng.uniform(0.07, 0.11) * s
    canvas[int(p) : int(r)] -= (10.0 * (np.mod(x + rng.uniform(0, slab), slab) < max(1.0, s / 128)))[0, :, None]
    road = _rgb(rng, (112, 113, 118), 6)
    canvas[int(r) :] = road
    _fill(canvas, 0, r - max(2.0, 0.02 * s), s, r, _rgb(rng, (196, 196, 190), 4))  # kerb
    paint, thick = _rgb(rng, (226, 226, 216), 4), max(1.0, 0.014 * s)
    ly = r + (s - r) * rng.uniform(0.45, 0.6)
    dash, gap, off = rng.uniform(0.07, 0.11) * s, rng.uniform(0.05, 0.08) * s, rng.uniform(0, 0.15) * s
    for dx in np.arange(-off, s, dash + gap):
        _fill(canvas, dx, ly - thick / 2, dx + dash, ly + thick / 2, paint)  # centre line
    _fill(canvas, 0, r + 0.04 * s, s, r + 0.04 * s + thick * 0.8, paint * 0.95)  # edge line
    canvas[int(r) :] += (5.0 * _noise(rng, s, s // 4, s // 4))[int(r) :, :, None]
    lamp, w = _rgb(rng, (58, 62, 68), 5), max(1.0, 0.012 * s)
    for _ in range(rng.integers(1, 4)):  # lamp posts on the pavement
        lx, foot = rng.uniform(0.05, 0.95) * s, rng.uniform(p + 0.02 * s, r - 0.02 * s)
        top = foot - rng.uniform(0.3, 0.4) * s
        _fill(canvas, lx, top, lx + w, foot, lamp)
        _fill(canvas, lx - 0.05 * s, top, lx + w, top + w, lamp)
    return canvas


_PAINTERS: dict[str, Painter] = {
    "beach": _beach,
    "meadow": _meadow,
    "desert": _desert,
    "snowfield": _snowfield,
    "night sky": _night_sky,
    "forest": _forest,
    "room": _room,
    "street": _street,
}
_GRAIN = {  # amplitude of the per-pixel grain, per place
    "beach": 10.0,
    "meadow": 14.0,
    "desert": 8.0,
    "snowfield": 6.0,
    "night sky": 5.0,
    "forest": 14.0,
    "room": 6.0,
    "street": 12.0,
}
