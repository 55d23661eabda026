"""Distribution shift and out-of-distribution images for a VQA split, generated (nothing downloaded).

- :func:`gaussian_noise_split` — near shift: N(0, std²) pixel noise on every image (pixels in [0, 1]).
- :func:`corrupted_split` — near shift: an ImageNet-C corruption (noise, blur, brightness, contrast, JPEG,
  pixelation) at severity 1-5 on every image.
- :func:`ood_split` — far OOD: the same questions asked about images unlike anything in easy-VQA:
  ``sort-of-clevr`` (scenes of another data set: six small squares and circles of six colours),
  ``shapes-ood`` (stars, crosses, rings, pentagons in unseen colours on dark or striped backgrounds),
  ``noise`` (uniform pixel noise), ``photos`` (crops of the real photographs that ship with scikit-learn and
  matplotlib: a Chinese temple, a flower, Grace Hopper), ``textures`` (smooth colour fields, stripes,
  checkerboards), ``drawings`` (pen strokes on paper), or ``easy-vqa`` (easy-VQA test images).

Sets named after a data set are OOD only for a model trained on another one: ``easy-vqa`` images are
far OOD for a Sort-of-CLEVR model and the in-distribution sanity check (AUROC ≈ 0.5) for an easy-VQA
model; ``sort-of-clevr`` scenes the other way round.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial

import numpy as np
import torch
from PIL import Image, ImageDraw

from mumo.data.shift.augment import add_pixel_noise
from mumo.data.shift.corruptions import check_corruption, corrupt
from mumo.data.vqa.easy_vqa import test_images
from mumo.data.vqa.sort_of_clevr import render_scene
from mumo.data.vqa.split import VQASplit
from mumo.errors import ConfigError

OOD_SETS = ("sort-of-clevr", "shapes-ood", "noise", "photos", "textures", "drawings", "easy-vqa")
_OOD_COLORS = [(160, 32, 240), (255, 105, 180), (255, 140, 0), (250, 250, 250), (0, 255, 127), (139, 69, 19)]


def _check_pixels(split: VQASplit, shift: str) -> None:
    if split.images.dtype != torch.uint8:
        raise ConfigError(
            f"{shift} needs image pixels; this split holds region features: use feature noise "
            "(mumo evaluate --feature-noise, mumo.uncertainty.shift.feature_noise)"
        )


def gaussian_noise_split(split: VQASplit, std: float, *, seed: int = 0) -> VQASplit:
    """A copy of ``split`` with N(0, std²) noise added to its [0, 1] pixels (clipped, re-quantised)."""
    _check_pixels(split, "pixel noise")
    noisy = add_pixel_noise(split.images.float() / 255.0, std, torch.Generator().manual_seed(seed))
    return replace(split, name=f"{split.name}+noise{std:g}", images=(noisy * 255).round().to(torch.uint8))


def corrupted_split(split: VQASplit, corruption: str, severity: int, *, seed: int = 0) -> VQASplit:
    """A copy of ``split`` with every image under an ImageNet-C ``corruption`` at ``severity`` (1-5;
    :mod:`mumo.data.shift.corruptions`), 256 images at a time (bounded memory); seeded.

    Raises:
        ConfigError: unknown corruption or severity, or a split of region features.
    """
    check_corruption(corruption, severity)
    _check_pixels(split, "an image corruption")
    g = torch.Generator().manual_seed(seed)
    chunks = [corrupt(chunk.float() / 255.0, corruption, severity, g) for chunk in split.images.split(256)]
    images = (torch.cat(chunks) * 255).round().to(torch.uint8)  # (N, 3, H, W)
    return replace(split, name=f"{split.name}+{corruption}{severity}", images=images)


def _polygon(cx: float, cy: float, r: float, n: int, star: bool, rot: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(n * (2 if star else 1)):
        radius = r if not star or i % 2 == 0 else r * 0.45
        a = rot + math.pi * 2 * i / (n * (2 if star else 1))
        pts.append((cx + radius * math.cos(a), cy + radius * math.sin(a)))
    return pts


def _shape_image(rng: np.random.Generator, size: int) -> np.ndarray:
    s = size * 2  # draw at 2x, downsample like easy-VQA
    if rng.random() < 0.5:
        bg = tuple(int(v) for v in rng.integers(0, 60, 3))
        img = Image.new("RGB", (s, s), bg)
    else:
        img = Image.new("RGB", (s, s), (20, 20, 20))
        d = ImageDraw.Draw(img)
        c = tuple(int(v) for v in rng.integers(60, 200, 3))
        for x in range(0, s, 8):
            d.line([(x, 0), (x, s)], fill=c, width=3)
    d = ImageDraw.Draw(img)
    color = _OOD_COLORS[rng.integers(len(_OOD_COLORS))]
    cx, cy = rng.uniform(0.3, 0.7, 2) * s
    r = rng.uniform(0.15, 0.3) * s
    kind = rng.integers(4)
    if kind == 0:
        d.polygon(_polygon(cx, cy, r, 5, True, rng.uniform(0, 6.3)), fill=color)
    elif kind == 1:
        w = r * 0.35
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=color)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=color)
    elif kind == 2:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=color, width=max(2, int(r * 0.3)))
    else:
        d.polygon(_polygon(cx, cy, r, 5, False, rng.uniform(0, 6.3)), fill=color)
    return np.asarray(img.resize((size, size), Image.BILINEAR))


def _photographs() -> list[np.ndarray]:
    """The real photographs installed with scikit-learn (china.jpg, flower.jpg) and matplotlib
    (grace_hopper.jpg), as (H, W, 3) uint8 arrays; nothing is downloaded."""
    from pathlib import Path

    import matplotlib
    import sklearn.datasets

    paths = [*sklearn.datasets.load_sample_images().filenames]
    paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _photo_crop(rng: np.random.Generator, size: int, photos: list[np.ndarray]) -> np.ndarray:
    """A random square crop (20-100 % of the shorter side) of one of ``photos``, resized to ``size``."""
    im = photos[rng.integers(len(photos))]
    h, w = im.shape[:2]
    s = int(rng.uniform(0.2, 1.0) * min(h, w))
    y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
    return np.asarray(Image.fromarray(im[y : y + s, x : x + s]).resize((size, size), Image.BILINEAR))


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field, stripes at a random angle, or a checkerboard, in random colours."""
    kind = rng.integers(3)
    if kind == 0:
        z = rng.normal(size=(8, 8, 3))  # upsampled bicubically: a smooth field
        z = ((z - z.min()) / (np.ptp(z) + 1e-9) * 255).astype(np.uint8)
        return np.asarray(Image.fromarray(z).resize((size, size), Image.BICUBIC))
    yy, xx = np.mgrid[0:size, 0:size] / size  # (size, size) each
    freq = rng.uniform(3, 12)
    if kind == 1:
        a = rng.uniform(0, math.pi)
        mask = np.sin(2 * math.pi * freq * (xx * math.cos(a) + yy * math.sin(a))) > 0
    else:
        mask = (np.floor(xx * freq) + np.floor(yy * freq)) % 2 == 0
    c1, c2 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    return np.where(mask[..., None], c1, c2).astype(np.uint8)  # (size, size, 3)


def _drawing(rng: np.random.Generator, size: int) -> np.ndarray:
    """3-9 pen strokes (mostly black polylines) on off-white paper."""
    s = size * 2
    img = Image.new("RGB", (s, s), (250, 250, 245))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 10))):
        pts = [tuple(float(v) for v in rng.uniform(0, s, 2)) for _ in range(int(rng.integers(2, 6)))]
        ink = (0, 0, 0) if rng.random() < 0.7 else tuple(int(v) for v in rng.integers(0, 200, 3))
        d.line(pts, fill=ink, width=int(rng.integers(1, 5)))
    return np.asarray(img.resize((size, size), Image.BILINEAR))


def ood_split(name: str, like: VQASplit, *, seed: int = 0) -> VQASplit:
    """The questions of ``like`` about out-of-distribution images of the same size.

    Raises:
        ConfigError: unknown OOD set name.
    """
    if name not in OOD_SETS:
        raise ConfigError(f"unknown OOD set {name!r}; choose one of: {', '.join(OOD_SETS)}")
    if like.images.dtype != torch.uint8:
        raise ConfigError(f"the {name!r} OOD set needs a pixel-image model")
    n, _, h, w = like.images.shape
    rng = np.random.default_rng(seed)
    if name == "easy-vqa":
        pool = test_images(h)  # (1000, 3, h, h): image i of an easy-VQA test split is test image i
        images = pool[torch.arange(n) % pool.shape[0]]
    elif name == "noise":
        images = torch.from_numpy(rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8))
    elif name == "sort-of-clevr":
        scenes = [Image.fromarray(render_scene(rng)[0]).resize((w, h), Image.BILINEAR) for _ in range(n)]
        images = torch.from_numpy(np.stack([np.asarray(s) for s in scenes])).permute(0, 3, 1, 2)
    else:
        draw = {"shapes-ood": _shape_image, "textures": _texture, "drawings": _drawing}.get(name)
        if name == "photos":
            draw = partial(_photo_crop, photos=_photographs())
        images = torch.from_numpy(np.stack([draw(rng, h) for _ in range(n)])).permute(0, 3, 1, 2)
    return replace(like, name=name, images=images.contiguous())
