import pytest
import torch

from mumo.data.shift.ood import OOD_SETS, gaussian_noise_split, ood_split
from mumo.errors import ConfigError
from mumo.tasks.vqa.uncertainty import per_image_mean


def test_ood_sets_keep_the_questions_and_change_the_images(easy_vqa_data):
    test = easy_vqa_data.test.subset_images(torch.arange(20), "t")
    for name in OOD_SETS:
        ood = ood_split(name, test, seed=0)
        assert ood.images.shape == test.images.shape and ood.images.dtype == torch.uint8
        assert torch.equal(ood.tokens, test.tokens) and torch.equal(ood.image_index, test.image_index)
        assert torch.equal(ood.images, test.images) == (name == "easy-vqa")
    assert torch.equal(ood_split("shapes-ood", test, seed=1).images, ood_split("shapes-ood", test, seed=1).images)
    with pytest.raises(ConfigError, match="unknown OOD set"):
        ood_split("cats", test)


def test_pixel_noise_shift(easy_vqa_data):
    test = easy_vqa_data.test.subset_images(torch.arange(10), "t")
    noisy = gaussian_noise_split(test, 0.2, seed=0)
    diff = (noisy.images.float() - test.images.float()) / 255
    assert 0.1 < diff.std() < 0.2  # clipping at 0 and 1 shrinks it a little
    assert torch.equal(noisy.images, gaussian_noise_split(test, 0.2, seed=0).images)


def test_per_image_mean(easy_vqa_data):
    split = easy_vqa_data.test.subset_images(torch.arange(3), "t")
    scores = torch.arange(split.num_questions, dtype=torch.float)
    means = per_image_mean(scores, split)
    for i in range(3):
        assert means[i] == scores[split.image_index == i].mean()


def test_easy_vqa_images_are_far_ood_for_a_model_of_another_size(easy_vqa_data):
    from dataclasses import replace

    from mumo.data.vqa.easy_vqa import test_images

    # a 75-px split (the size of Sort-of-CLEVR scenes) gets easy-VQA test images resized to 75 px
    test = easy_vqa_data.test.subset_images(torch.arange(5), "t")
    like = replace(test, images=torch.zeros(5, 3, 75, 75, dtype=torch.uint8))
    ood = ood_split("easy-vqa", like)
    assert ood.images.shape == (5, 3, 75, 75) and ood.name == "easy-vqa"
    assert torch.equal(ood.images, test_images(75)[:5])
    # more images than the 1,000 easy-VQA test images: reused in order
    big = replace(test, images=torch.zeros(1001, 3, 64, 64, dtype=torch.uint8))
    assert torch.equal(ood_split("easy-vqa", big).images[1000], test.images[0])
