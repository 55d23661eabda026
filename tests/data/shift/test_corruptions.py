import itertools

import pytest
import torch
from scipy.ndimage import gaussian_filter

from mumo.data.shift.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from mumo.data.shift.ood import corrupted_split
from mumo.data.vqa.easy_vqa import test_images as easy_vqa_test_images
from mumo.errors import ConfigError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _quantised(x):  # an 8-bit image in [0, 1]: corruption of it is measured, not quantisation
    return (x * 255).round() / 255


@pytest.fixture(scope="module")
def images():  # (4, 3, 64, 64) real easy-VQA test images in [0, 1]
    return easy_vqa_test_images(64)[:4].float() / 255


def test_every_corruption_gives_a_valid_8_bit_image_seeded_and_not_in_place(images):
    before = images.clone()
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            out = corrupt(images, name, severity, _gen())
            assert out.shape == images.shape and out.dtype == images.dtype, name
            assert out.min() >= 0 and out.max() <= 1, name
            assert torch.allclose(out * 255, (out * 255).round(), atol=1e-4), name  # multiples of 1/255
            assert torch.equal(out, corrupt(images, name, severity, _gen())), name  # seeded
    assert torch.equal(images, before)


def test_severity_makes_every_corruption_stronger(images):
    images = _quantised(images * 0.7)  # darker: brightness has little to raise in easy-VQA's bright images
    for name in CORRUPTIONS:
        change = [float((corrupt(images, name, s, _gen()) - images).abs().mean()) for s in SEVERITIES]
        assert change[0] < change[-1], (name, change)
        assert all(a <= b + 1e-3 for a, b in itertools.pairwise(change)), (name, change)


def test_the_noises_have_their_imagenet_c_statistics():
    grey = _quantised(torch.full((8, 3, 32, 32), 0.5))
    # shot noise: Poisson(x c) / c has mean x and variance x / c (severity 3: c = 12)
    shot = corrupt(grey, "shot_noise", 3, _gen())
    assert abs(float(shot.mean()) - 0.5) < 0.01 and abs(float(shot.var()) - 0.5 / 12) < 0.003
    # impulse noise: a fraction c of the values (channels apart) set to 0 or 1, half each (severity 5: c = 0.27)
    imp = corrupt(grey, "impulse_noise", 5, _gen())
    hit = imp != grey
    assert abs(float(hit.float().mean()) - 0.27) < 0.01
    assert set(imp[hit].unique().tolist()) == {0.0, 1.0} and abs(float(imp[hit].mean()) - 0.5) < 0.02
    # Gaussian noise: the std of ImageNet-C severity 1 (0.08)
    assert abs(float((corrupt(grey, "gaussian_noise", 1, _gen()) - grey).std()) - 0.08) < 0.005


def test_contrast_scales_the_deviation_from_each_channel_mean(images):
    out = corrupt(images, "contrast", 2, _gen())  # c = 0.3
    means = images.mean((2, 3), keepdim=True)
    assert torch.allclose(out, (images - means) * 0.3 + means, atol=0.5 / 255 + 1e-6)


def test_brightness_raises_the_value_and_keeps_the_hue():
    pixel = torch.tensor([0.4, 0.2, 0.1]).view(1, 3, 1, 1)  # value 0.4
    out = corrupt(pixel, "brightness", 1, _gen())  # value + 0.1 = 0.5: RGB scaled by 0.5 / 0.4
    assert torch.allclose(out.flatten(), _quantised(torch.tensor([0.5, 0.25, 0.125])), atol=1e-6)
    black = corrupt(torch.zeros(1, 3, 1, 1), "brightness", 5, _gen())  # black turns grey at value 0.5
    assert torch.allclose(black.flatten(), torch.full((3,), 128 / 255), atol=1e-6)
    white = torch.ones(1, 3, 2, 2)
    assert torch.equal(corrupt(white, "brightness", 5, _gen()), white)  # the value saturates at 1


def test_gaussian_blur_scales_its_sigma_with_the_image_side(images):
    out = corrupt(images, "gaussian_blur", 5, _gen())  # sigma 6 px at 224 px: 6 * 64 / 224 at 64 px
    sigma = 6 * 64 / 224
    ref = gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma), mode="nearest")
    assert torch.allclose(out, _quantised(torch.from_numpy(ref)), atol=1e-6)
    flat = torch.full((1, 3, 16, 16), 0.2)
    assert torch.allclose(corrupt(flat, "gaussian_blur", 5, _gen()), _quantised(flat))  # nothing to blur


def test_pixelate_makes_blocks_and_jpeg_compresses(images):
    out = corrupt(images, "pixelate", 5, _gen())  # 64 px -> 16 px -> 64 px: constant 4x4 blocks
    blocks = out.unfold(2, 4, 4).unfold(3, 4, 4)  # (B, 3, 16, 16, 4, 4)
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))
    jpeg = corrupt(images, "jpeg_compression", 5, _gen())
    assert 0 < float((jpeg - images).abs().mean()) < 0.1  # lossy, but the same picture


def test_bad_corruption_or_severity_is_a_clear_error(images, easy_vqa_data):
    with pytest.raises(ConfigError, match="unknown corruption 'fog'"):
        corrupt(images, "fog", 1, _gen())
    for severity in (0, 6):
        with pytest.raises(ConfigError, match="severity must be one of 1-5"):
            corrupt(images, "contrast", severity, _gen())
    test = easy_vqa_data.test.subset_images(torch.arange(2), "t")
    from dataclasses import replace

    features = replace(test, images=torch.zeros(2, 5, 8))  # region features, not pixels
    with pytest.raises(ConfigError, match="needs image pixels"):
        corrupted_split(features, "contrast", 1)


def test_corrupted_split_keeps_the_questions_and_corrupts_every_image(easy_vqa_data):
    test = easy_vqa_data.test.subset_images(torch.arange(300), "t")  # two chunks of 256
    out = corrupted_split(test, "impulse_noise", 3, seed=1)
    assert out.name == "t+impulse_noise3" and out.images.dtype == torch.uint8
    assert torch.equal(out.tokens, test.tokens) and torch.equal(out.image_index, test.image_index)
    changed = (out.images != test.images).flatten(1).float().mean(1)  # (300,) share of values hit
    # 9 % of the values hit, less those already 0 or 1 (saturated colours): every image, the last chunk's too
    assert changed.min() > 0.04 and changed.max() <= 0.11
    assert torch.equal(out.images, corrupted_split(test, "impulse_noise", 3, seed=1).images)
    assert not torch.equal(out.images, corrupted_split(test, "impulse_noise", 3, seed=2).images)
