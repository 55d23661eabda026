import filecmp
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mumo.data.text import tokenize
from mumo.data.vqa.sort_of_clevr import (
    ANSWERS,
    COLORS,
    FAMILIES,
    QUESTION_BITS,
    SHAPES,
    attention_objects,
    decode_question,
    encode_question,
    generate,
    is_relational,
    load_masks,
    load_sort_of_clevr,
    question_text,
    read_records,
    render_scene,
)
from mumo.errors import MumoError


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


# --- questions, generation and loading -----------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("soc") / "data"
    generate(root, n_train=12, n_test=4, seed=3)
    return root


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_same_seed_gives_byte_identical_files_and_another_seed_differs(dataset, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    generate(again, n_train=12, n_test=4, seed=3)
    generate(other, n_train=12, n_test=4, seed=4)
    files = _files(dataset)
    assert files == _files(again) == _files(other)
    assert len(files) == 1 + 2 + 2 * (12 + 4)  # meta, 2 jsonl, png + npz per image
    for f in files:
        assert filecmp.cmp(dataset / f, again / f, shallow=False), f
    assert (dataset / "train.jsonl").read_bytes() != (other / "train.jsonl").read_bytes()
    assert (dataset / "images/train/00000.png").read_bytes() != (other / "images/train/00000.png").read_bytes()


def test_meta_and_layout(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    assert meta["format_version"] == 1 and meta["seed"] == 3
    assert meta["counts"] == {"train": 12, "test": 4}
    assert meta["colors"] == list(COLORS) and meta["answers"] == list(ANSWERS)
    assert "yes" not in ANSWERS and "no" not in ANSWERS
    assert set(ANSWERS) == {"left", "right", "top", "bottom", *SHAPES, "1", "2", "3", "4", "5", "6"}


def test_every_record_is_consistent_with_its_scene(dataset):
    for split, n in (("train", 12), ("test", 4)):
        records = read_records(dataset, split)
        assert [r["image_id"] for r in records] == list(range(n))
        for r in records:
            objs = r["objects"]
            assert [o["color"] for o in objs] == list(COLORS)  # 6 distinct colours
            image = np.asarray(Image.open(dataset / r["image"]))
            assert image.shape == (75, 75, 3)
            masks = load_masks(dataset, r)
            assert masks.shape == (6, 75, 75) and masks.dtype == bool
            assert masks.sum(0).max() == 1  # no overlaps
            for o, m in zip(objs, masks, strict=True):
                x0, y0, x1, y1 = o["box"]
                ys, xs = np.nonzero(m)
                assert xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
                assert (image[m] == COLORS[o["color"]]).all()  # the mask covers the object's pixels
            qs = r["questions"]
            assert len(qs) == 20 and [q["relational"] for q in qs] == [False] * 10 + [True] * 10
            for q in qs:
                _check_answer(q, objs)


def _check_answer(q: dict, objs: list[dict]) -> None:
    """Recompute the answer and referred objects from the object centres."""
    color, family = decode_question(q["encoding"])
    assert q["family"] == family and q["relational"] == is_relational(family)
    assert q["question"] == question_text(color, family)
    i = [o["color"] for o in objs].index(color)
    x, y = objs[i]["center"]
    assert q["objects"][0] == i
    d = [float(np.hypot(o["center"][0] - x, o["center"][1] - y)) for o in objs]
    others = [k for k in range(6) if k != i]
    if family == "shape":
        expected, refs = objs[i]["shape"], [i]
    elif family == "left_right":
        expected, refs = ("left" if x < 37.5 else "right"), [i]
    elif family == "top_bottom":
        expected, refs = ("top" if y < 37.5 else "bottom"), [i]
    elif family == "closest_shape":
        j = min(others, key=lambda k: d[k])
        expected, refs = objs[j]["shape"], [i, j]
    elif family == "furthest_shape":
        j = max(others, key=lambda k: d[k])
        expected, refs = objs[j]["shape"], [i, j]
    else:
        same = [k for k in others if objs[k]["shape"] == objs[i]["shape"]]
        expected, refs = str(len(same) + 1), [i, *same]
    assert q["answer"] == expected and q["objects"] == refs, (q, objs)
    assert q["answer"] in ANSWERS


def test_english_and_binary_encodings_agree():
    seen = set()
    for color in COLORS:
        for family in FAMILIES:
            bits = encode_question(color, family)
            assert bits.shape == (QUESTION_BITS,) == (11,) and bits.sum() == 3
            assert bits[list(COLORS).index(color)] == 1
            assert bits[6 + int(is_relational(family))] == 1
            assert decode_question(bits) == (color, family)
            text = question_text(color, family)
            assert color in tokenize(text) and len(tokenize(text)) <= 14
            seen.add((tuple(bits.tolist()), text))
    assert len({b for b, _ in seen}) == len({t for _, t in seen}) == 36  # one-to-one
    with pytest.raises(ValueError):
        decode_question([1] * 11)


def test_loader_round_trip(dataset):
    train, vocab, answers = load_sort_of_clevr(dataset, split="train")
    assert answers == list(ANSWERS)
    assert train.images.shape == (12, 3, 75, 75) and train.images.dtype == torch.uint8
    assert train.num_questions == 240 and train.tokens.shape == (240, 14)
    assert train.targets.shape == (240, len(ANSWERS)) and (train.targets.sum(1) == 1).all()
    assert set(train.question_types) <= set(FAMILIES)
    assert sum(is_relational(t) for t in train.question_types) == 120
    records = read_records(dataset, "train")
    assert train.questions[20] == records[1]["questions"][0]["question"]
    assert answers[int(train.targets[20].argmax())] == records[1]["questions"][0]["answer"]
    assert int(train.image_index[20]) == 1 and train.image_ids == list(range(12))
    image = np.array(Image.open(dataset / records[1]["image"]))
    assert torch.equal(train.images[1], torch.from_numpy(image).permute(2, 0, 1))
    batch = train.batch(torch.tensor([0, 2]))
    assert batch.images.shape == (2, 3, 75, 75) and batch.tokens.shape[0] == 40
    test, vocab2, _ = load_sort_of_clevr(dataset, split="test", vocab=vocab, image_size=32)
    assert vocab2 is vocab and test.images.shape == (4, 3, 32, 32) and test.num_questions == 80
    assert (test.tokens != 1).all()  # every test word is in the train vocabulary (no UNK)
    assert train.object_masks is None and batch.object_masks is None  # loaded only when asked for


def test_attention_objects_name_each_reasoning_step():
    assert attention_objects("shape", (3,)) == ((3,), (3,), ())
    assert attention_objects("closest_shape", (3, 1)) == ((3,), (1,), ())
    assert attention_objects("furthest_shape", (0, 5)) == ((0,), (5,), ())
    assert attention_objects("same_shape_count", (2, 0, 4)) == ((2,), (2, 0, 4), (0, 1, 2, 3, 4, 5))
    with pytest.raises(ValueError, match="family"):
        attention_objects("colour", (0,))


def test_loader_with_object_masks_carries_them_through_batches_and_subsets(dataset):
    train, _, _ = load_sort_of_clevr(dataset, split="train", image_size=32, object_masks=True)
    records = read_records(dataset, "train")
    assert train.object_masks.shape == (12, 6, 75, 75) and train.object_masks.dtype == torch.bool
    assert np.array_equal(train.object_masks[3].numpy(), load_masks(dataset, records[3]))
    question = records[1]["questions"][12]
    for step, idx in enumerate(attention_objects(question["family"], question["objects"])):
        assert train.question_objects[32, step].nonzero().flatten().tolist() == sorted(idx)
    part = train.subset_images(torch.tensor([1, 4]))
    assert torch.equal(part.object_masks, train.object_masks[[1, 4]])
    torch.testing.assert_close(part.question_objects[12], train.question_objects[32])
    batch = part.batch(torch.tensor([1]))
    assert batch.object_masks.shape == (1, 6, 75, 75) and batch.question_objects.shape == (20, 3, 6)
    torch.testing.assert_close(batch.question_objects, train.question_objects[80:100])


def test_incomplete_directory_and_version_mismatch_are_clear_errors(dataset, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(dataset, root)
    (root / "images/test/00002.png").unlink()
    with pytest.raises(MumoError, match=re.escape("00002.png")):
        load_sort_of_clevr(root, split="test")
    (root / "test.jsonl").unlink()
    with pytest.raises(MumoError, match=re.escape("test.jsonl")):
        load_sort_of_clevr(root, split="test")
    meta = json.loads((root / "meta.json").read_text())
    (root / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(MumoError, match="version 99"):
        load_sort_of_clevr(root, split="train")
    (root / "meta.json").unlink()
    with pytest.raises(MumoError, match=re.escape("meta.json")):
        load_sort_of_clevr(root, split="train")
    with pytest.raises(MumoError, match="split"):
        load_sort_of_clevr(dataset, split="val")


def test_generate_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "x.txt").write_text("keep me")
    with pytest.raises(MumoError, match="not an empty directory"):
        generate(tmp_path, n_train=1, n_test=1, seed=0)
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
