"""Ground-truth masks: grid pooling, Sort-of-CLEVR question masks, easy-VQA shape segmentation on real images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mumo.data.images import load_image
from mumo.data.vqa.masks import easy_vqa_shape_masks, pool_to_grid, question_step_maps, sort_of_clevr_question_masks
from mumo.data.vqa.sort_of_clevr import generate, load_masks, load_sort_of_clevr, read_records
from mumo.errors import MumoError


def test_pool_to_grid_exact_quadrants():
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, :32, :32] = True  # top-left quadrant of a 2x2 grid
    masks[1] = True
    grid = pool_to_grid(masks, (2, 2))
    assert grid.shape == (2, 4) and grid.dtype == torch.float32
    torch.testing.assert_close(grid, torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]))
    half = torch.zeros(1, 64, 64)
    half[0, :16, :16] = 1.0  # a quarter of cell 0 of a 2x2 grid
    assert pool_to_grid(half, (2, 2))[0].tolist() == [0.25, 0.0, 0.0, 0.0]


def test_pool_to_grid_75px_onto_4x4():
    """75 is not a multiple of 4: adaptive bins [floor(i*75/4), ceil((i+1)*75/4)) overlap by a pixel."""
    masks = torch.zeros(1, 75, 75, dtype=torch.bool)
    masks[0, 60:70, 5:15] = True  # inside row 3 (pixels 56..74), column 0 (pixels 0..18)
    grid = pool_to_grid(masks, (4, 4))  # (1, 16) row-major
    assert grid.shape == (1, 16)
    assert grid[0].nonzero().flatten().tolist() == [12]
    assert grid[0, 12].item() == pytest.approx(100 / (19 * 19))
    rng = np.random.default_rng(0)
    masks = torch.from_numpy(rng.random((3, 75, 75)) > 0.7)
    bins = [(math.floor(i * 75 / 4), math.ceil((i + 1) * 75 / 4)) for i in range(4)]
    expected = torch.tensor(
        [[masks[n, r0:r1, c0:c1].float().mean().item() for r0, r1 in bins for c0, c1 in bins] for n in range(3)]
    )
    torch.testing.assert_close(pool_to_grid(masks, (4, 4)), expected)


def test_pool_to_grid_bad_input():
    with pytest.raises(MumoError, match="N, H, W"):
        pool_to_grid(torch.zeros(64, 64), (4, 4))
    with pytest.raises(MumoError, match="grid"):
        pool_to_grid(torch.zeros(1, 64, 64), (4, 0))


@pytest.fixture(scope="module")
def clevr_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sort_of_clevr")
    generate(root, n_train=3, n_test=2, seed=0)
    return root


@pytest.mark.parametrize("split", ["train", "test"])
def test_sort_of_clevr_question_masks(clevr_root, split):
    masks = sort_of_clevr_question_masks(clevr_root, split)
    data, _, _ = load_sort_of_clevr(clevr_root, split=split, image_size=32)  # resizing images leaves masks alone
    records = read_records(clevr_root, split)
    assert masks.dtype == torch.bool
    assert masks.shape == (data.num_questions, 75, 75)
    q = 0
    for r, record in enumerate(records):
        objects = load_masks(clevr_root, record)  # (6, H, W)
        for question in record["questions"]:
            assert data.questions[q] == question["question"] and data.image_index[q].item() == r
            expected = np.logical_or.reduce(objects[question["objects"]])
            assert np.array_equal(masks[q].numpy(), expected)
            x, y = record["objects"][question["objects"][0]]["center"]
            assert masks[q, y, x]  # the asked-about object is in the mask
            q += 1
    assert q == data.num_questions


def test_sort_of_clevr_question_masks_relational_union(clevr_root):
    records = read_records(clevr_root, "train")
    masks = sort_of_clevr_question_masks(clevr_root, "train")
    sizes = [int(load_masks(clevr_root, records[0])[i].sum()) for i in range(6)]
    for q, question in enumerate(records[0]["questions"]):  # objects never overlap: areas add up
        assert int(masks[q].sum()) == sum(sizes[i] for i in question["objects"])


def test_question_step_maps_follow_each_reasoning_step(clevr_root):
    """Step 0 covers the asked-about object, step 1 the objects the answer is read from, step 2 (counts) all;
    every object carries unit mass however many cells it covers."""
    data, _, _ = load_sort_of_clevr(clevr_root, split="train", object_masks=True)
    assert data.object_masks.shape == (3, 6, 75, 75) and data.question_objects.shape == (60, 3, 6)
    batch = data.batch(torch.tensor([2, 0]))
    steps = question_step_maps(batch.object_masks, batch.image_index, batch.question_objects, (5, 5))  # (40, 3, 25)
    assert steps.shape == (40, 3, 25)
    records = read_records(clevr_root, "train")
    union = sort_of_clevr_question_masks(clevr_root, "train")  # (60, 75, 75)

    def unit(masks: np.ndarray) -> torch.Tensor:  # (k, H, W) -> (25,): each object's coverage scaled to sum 1
        cells = pool_to_grid(torch.from_numpy(masks), (5, 5))  # (k, 25)
        return (cells / cells.sum(-1, keepdim=True)).sum(0)

    for n, q in enumerate(batch.question_ids.tolist()):
        question = records[q // 20]["questions"][q % 20]
        objects, idx = load_masks(clevr_root, records[q // 20]), question["objects"]  # (6, H, W)
        torch.testing.assert_close(steps[n, 0], unit(objects[idx[:1]]))
        on_mask = pool_to_grid(union[q : q + 1], (5, 5))[0] > 0  # (25,) cells the question's objects touch
        if question["family"] == "same_shape_count":
            torch.testing.assert_close(steps[n, 1], unit(objects[idx]))
            torch.testing.assert_close(steps[n, 2], unit(objects))
            assert steps[n, 2].sum().item() == pytest.approx(6.0)
        elif question["family"] in ("closest_shape", "furthest_shape"):
            torch.testing.assert_close(steps[n, 1], unit(objects[idx[1:2]]))
            assert (steps[n, 2] == 0).all()
        else:
            torch.testing.assert_close(steps[n, 1], steps[n, 0])
            assert (steps[n, 2] == 0).all()
        assert torch.equal((steps[n, :2].sum(0) > 0), on_mask)  # steps 0-1 cover exactly the question's objects
    with pytest.raises(MumoError, match="do not fit"):
        question_step_maps(batch.object_masks, batch.image_index, batch.question_objects[..., :4], (5, 5))


def _easy_vqa_images(n: int) -> torch.Tensor:
    import easy_vqa

    paths = easy_vqa.get_train_image_paths()
    images = np.stack([load_image(paths[i]) for i in sorted(paths)[:n]])  # (I, H, W, 3)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()  # (I, 3, H, W) uint8


def test_easy_vqa_shape_masks_on_real_images():
    images = _easy_vqa_images(40)
    before = images.clone()
    masks = easy_vqa_shape_masks(images)
    assert torch.equal(images, before)
    assert masks.shape == (40, 64, 64) and masks.dtype == torch.bool
    x = images.double()  # (I, 3, H, W)
    for img, m in zip(x, masks, strict=True):
        assert 0.005 < m.double().mean() < 0.4
        background = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], dim=1).median(dim=1).values
        inside = img[:, m].mean(dim=1)  # (3,) mean colour of the mask
        assert (inside - background).norm() > 100
        outside = img[:, ~m]  # (3, P)
        assert (outside - background[:, None]).norm(dim=0).max() < 100
        # the shape's own colour (the most frequent non-background colour) is where the mask is
        far = (img - background[:, None, None]).norm(dim=0) > 100  # (H, W)
        colours, counts = img[:, far].T.unique(dim=0, return_counts=True)
        core = (img == colours[counts.argmax()][:, None, None]).all(dim=0)  # (H, W)
        assert m[core].all()
        ys, xs = torch.nonzero(m, as_tuple=True)
        cy, cx = torch.nonzero(core, as_tuple=True)
        assert abs(ys.double().mean() - cy.double().mean()) < 1.5
        assert abs(xs.double().mean() - cx.double().mean()) < 1.5


def test_easy_vqa_shape_masks_cleanup():
    image = np.full((64, 64, 3), (245, 238, 240), dtype=np.uint8)
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 40) ** 2 + (xx - 20) ** 2 <= 10**2
    image[disc] = (0, 128, 128)
    image[40, 20] = (245, 238, 240)  # a background-coloured hole in the shape
    image[5, 55] = (0, 0, 0)  # an isolated speck of noise
    image[0, 10] = (0, 0, 0)  # noise on the border does not move the median background
    masks = easy_vqa_shape_masks(torch.from_numpy(image).permute(2, 0, 1)[None])
    assert np.array_equal(masks[0].numpy(), disc)
    blank = torch.full((1, 3, 16, 16), 240, dtype=torch.uint8)
    assert not easy_vqa_shape_masks(blank).any()


def test_easy_vqa_shape_masks_bad_input():
    with pytest.raises(MumoError, match="uint8"):
        easy_vqa_shape_masks(torch.zeros(1, 3, 8, 8))
    with pytest.raises(MumoError, match="shape"):
        easy_vqa_shape_masks(torch.zeros(3, 8, 8, dtype=torch.uint8))
