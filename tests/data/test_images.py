import numpy as np
import pytest
from PIL import Image

from mumo.data.images import MAX_PIXELS, load_image
from mumo.errors import ImageError


def _save(img: Image.Image, path, fmt=None):
    img.save(path, format=fmt)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB", "1", "I", "F"])
def test_every_mode_converts_to_rgb(tmp_path, mode):
    rgb = Image.new("RGB", (20, 10), (200, 30, 40))
    img = rgb.convert(mode) if mode not in ("I;16", "I", "F") else Image.new(mode, (20, 10))
    if mode in ("I;16", "I", "F"):
        img.putpixel((3, 3), 1000)
    fmt = "TIFF" if mode in ("CMYK", "I;16", "F", "I") else "PNG"
    path = _save(img, tmp_path / f"x.{fmt.lower()}", fmt)
    out = load_image(path, size=16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8


def test_rgba_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    out = load_image(_save(img, tmp_path / "a.png"))
    assert (out == 255).all()


def test_sixteen_bit_is_rescaled_not_clipped(tmp_path):
    arr = np.linspace(0, 60000, 64, dtype=np.uint16).reshape(8, 8)
    img = Image.fromarray(arr.astype("<u2"))
    assert img.mode == "I;16"
    path = _save(img, tmp_path / "g.png")
    out = load_image(path)
    assert out.min() == 0 and out.max() == 255 and len(np.unique(out)) > 32


def test_arrays_and_pil_images(tmp_path):
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.ones((5, 6, 3), np.float32)).max() == 255
    assert load_image(Image.new("L", (3, 3))).shape == (3, 3, 3)
    with pytest.raises(ImageError, match="array"):
        load_image(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((2, 2), np.nan))


def test_missing_empty_truncated_and_non_image_files(tmp_path):
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(tmp_path / "empty.png")
    (tmp_path / "text.png").write_text("hello, I am not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_image(tmp_path / "text.png")
    full = _save(Image.effect_noise((64, 64), 50).convert("RGB"), tmp_path / "full.png")
    data = full.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "cut.png")


def test_decompression_bomb_is_refused(tmp_path):
    side = int(MAX_PIXELS**0.5) + 100
    path = _save(Image.new("1", (side, side)), tmp_path / "bomb.png")
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(path)
