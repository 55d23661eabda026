import numpy as np

from mumo.data.sort_of_clevr import COLORS, render_scene


def test_scenes_have_six_distinct_colours_no_overlaps_and_masks_inside_boxes():
    rng = np.random.default_rng(0)
    for _ in range(50):
        image, objects = render_scene(rng)
        assert image.shape == (75, 75, 3) and image.dtype == np.uint8
        assert [o.color for o in objects] == list(COLORS)
        masks = np.stack([o.mask for o in objects])
        assert masks.sum(0).max() == 1  # no pixel belongs to two objects
        for o in objects:
            x0, y0, x1, y1 = o.box
            ys, xs = np.nonzero(o.mask)
            assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
            # the object's pixels carry its colour
            assert (image[o.center[1], o.center[0]] == COLORS[o.color]).all()


def test_same_seed_same_scene():
    a, _ = render_scene(np.random.default_rng(7))
    b, _ = render_scene(np.random.default_rng(7))
    assert np.array_equal(a, b)
