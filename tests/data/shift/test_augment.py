import torch

from mumo.data.shift.augment import add_pixel_noise, random_pixel_noise
from mumo.data.shift.ood import gaussian_noise_split


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _grey(*shape):  # an 8-bit grey, (..., 3, H, W) in [0, 1]: quantising leaves it unchanged
    return torch.full(shape, 128 / 255)


def test_pixel_noise_has_the_asked_std_and_stays_a_valid_8_bit_image():
    pixels = torch.full((4, 3, 32, 32), 0.5)
    noisy = add_pixel_noise(pixels, 0.1, _gen())
    assert abs(float((noisy - pixels).std()) - 0.1) < 0.005  # far from 0 and 1: no clipping
    assert torch.equal(pixels, torch.full((4, 3, 32, 32), 0.5))  # not in place
    strong = add_pixel_noise(pixels, 2.0, _gen())
    assert strong.min() == 0 and strong.max() == 1  # clipped
    assert torch.allclose(strong * 255, (strong * 255).round(), atol=1e-4)  # multiples of 1/255
    assert torch.equal(noisy, add_pixel_noise(pixels, 0.1, _gen()))  # seeded
    assert not torch.equal(noisy, add_pixel_noise(pixels, 0.1, _gen(1)))


def test_pixel_noise_takes_one_std_per_image():
    pixels = _grey(2, 3, 16, 16)
    noisy = add_pixel_noise(pixels, torch.tensor([0.0, 0.2]).view(2, 1, 1, 1), _gen())
    assert torch.equal(noisy[0], pixels[0])
    assert abs(float((noisy[1] - pixels[1]).std()) - 0.2) < 0.02


def test_random_pixel_noise_draws_each_images_std_from_zero_to_the_maximum():
    pixels = _grey(400, 3, 16, 16)
    noisy = random_pixel_noise(pixels, 0.1, _gen())
    per_image = (noisy - pixels).flatten(1).std(1)  # (400,) ≈ each image's s ~ U[0, 0.1]
    assert per_image.max() < 0.11 and per_image.min() < 0.01
    assert abs(float(per_image.mean()) - 0.05) < 0.005  # the mean of U[0, 0.1]
    assert torch.equal(random_pixel_noise(pixels, 0.0, _gen()), pixels)
    assert torch.equal(noisy, random_pixel_noise(pixels, 0.1, _gen()))


def test_the_evaluation_shift_is_the_same_noise(easy_vqa_data):
    test = easy_vqa_data.test.subset_images(torch.arange(5), "t")
    shifted = gaussian_noise_split(test, 0.3, seed=4)
    direct = add_pixel_noise(test.images.float() / 255, 0.3, _gen(4))
    assert torch.equal(shifted.images, (direct * 255).round().to(torch.uint8))
