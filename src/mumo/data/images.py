"""Robust image loading: any Pillow mode in, RGB uint8 out, clear errors for bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from mumo.errors import ImageError, check_input_file

ImageInput = str | Path | Image.Image | np.ndarray

MAX_PIXELS = 64_000_000  # larger images are refused as possible decompression bombs


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB: alpha is composited on white, 16/32-bit and float are rescaled."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.round().astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _from_array(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3, 4):
        raise ImageError(f"image array must be (H, W), (H, W, 3) or (H, W, 4), not {tuple(arr.shape)}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageError("image array holds NaN or infinite values")
        arr = arr * 255.0 if arr.max() <= 1.0 else arr
        arr = np.clip(arr, 0, 255).round().astype(np.uint8)
    return _to_rgb(Image.fromarray(arr))


def load_image(image: ImageInput, size: int | None = None) -> np.ndarray:
    """Load an image as an (H, W, 3) uint8 array, optionally resized to ``size`` x ``size``.

    Args:
        image: a path, a PIL image or an (H, W[, C]) array (uint8, or float in [0, 1] or [0, 255]).
        size: square output size (bilinear); None keeps the original size.

    Raises:
        ImageError: missing, empty, truncated or non-image file, or a decompression bomb.
    """
    if isinstance(image, np.ndarray):
        img = _from_array(image)
    elif isinstance(image, Image.Image):
        img = _to_rgb(image)
    elif isinstance(image, (str, Path)):
        img = _open(Path(image))
    else:
        raise ImageError(f"image must be a path, a PIL image or an array, not {type(image).__name__}")
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.array(img, dtype=np.uint8)  # a writable copy


def _open(path: Path) -> Image.Image:
    check_input_file(path, "image", ImageError)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"image {path} is {w}x{h} pixels, over the {MAX_PIXELS:,}-pixel limit "
                        "(possible decompression bomb)"
                    )
                img.load()
                return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"image {path} refused as a possible decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"not an image file (format not recognised): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read image {path} (truncated or corrupt?): {exc}") from None
