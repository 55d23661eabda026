"""mumo scenes on disk: determinism, invariants of every record, the compositional split, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mumo.data.scenes import dataset
from mumo.data.scenes.captions import check_plan, parse_caption
from mumo.data.scenes.graph import Scene
from mumo.data.scenes.program import reasoning_steps
from mumo.data.scenes.questions import ANSWERS, FAMILIES, execute, parse
from mumo.errors import MumoError

N_IMAGES, SIZE = 24, 64


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenes") / "set"
    dataset.generate(root, n_images=N_IMAGES, seed=3, size=SIZE, workers=1)
    return root


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def all_records(root: Path) -> dict[str, list[dict]]:
    return {s: dataset.read_records(root, s) for s in dataset.SPLITS}


def test_the_same_seed_gives_byte_identical_files_whatever_the_workers(scenes, tmp_path):
    dataset.generate(tmp_path / "again", n_images=N_IMAGES, seed=3, size=SIZE, workers=2)
    assert files_of(tmp_path / "again") == files_of(scenes)
    dataset.generate(tmp_path / "other", n_images=N_IMAGES, seed=4, size=SIZE, workers=1)
    assert files_of(tmp_path / "other")["train.jsonl"] != files_of(scenes)["train.jsonl"]


def test_layout_counts_and_meta(scenes):
    meta = dataset.read_meta(scenes)
    assert meta["counts"] == dataset.split_counts(N_IMAGES) == {"train": 18, "val": 2, "test": 2, "test-shift": 2}
    assert meta["answers"] == list(ANSWERS) and meta["families"] == list(FAMILIES)
    for split, records in all_records(scenes).items():
        assert [r["image_id"] for r in records] == list(range(meta["counts"][split]))
        for r in records:
            assert (scenes / r["image"]).is_file() and (scenes / r["masks"]).is_file()
            assert len(r["captions"]) == dataset.CAPTIONS_PER_IMAGE and r["place"] in r["tags"]
            assert len(r["questions"]) == meta["questions_per_image"]


def test_every_record_is_true_of_its_scene(scenes):
    """Masks inside boxes and disjoint, answers equal to executing the program (and the parsed text), captions
    true of the scene graph once parsed back from their text."""
    for records in all_records(scenes).values():
        for r in records:
            masks = dataset.load_masks(scenes, r)  # (O, H, W)
            scene = Scene.from_graph(r, SIZE, masks)
            assert masks.shape == (len(r["objects"]), SIZE, SIZE)
            assert masks.sum(0).max() <= 1  # disjoint
            for o, m in zip(r["objects"], masks, strict=True):
                x0, y0, x1, y1 = o["box"]
                ys, xs = np.nonzero(m)
                assert len(xs) > 0 and xs.min() >= x0 and xs.max() <= x1 and ys.min() >= y0 and ys.max() <= y1
            assert {k: [list(p) for p in v] for k, v in scene.relations.items()} == r["relations"]
            for q in r["questions"]:
                assert q["answer"] in ANSWERS and q["family"] in FAMILIES
                assert execute(q["program"], scene) == q["answer"]
                assert parse(q["question"]) == q["program"]
                assert all(0 <= i < len(r["objects"]) for i in q["objects"])
                first, last = reasoning_steps(q["program"], scene)
                assert set(first) | set(last) <= set(q["objects"])
                if q["family"].startswith("place"):
                    assert first == last == []
            for caption in r["captions"]:
                plan = parse_caption(caption)
                assert plan is not None and check_plan(plan, scene), caption


def test_the_compositional_split_holds_out_its_pairs_and_places(scenes):
    held = {tuple(p) for p in dataset.HELD_OUT_PAIRS}
    for split, records in all_records(scenes).items():
        for r in records:
            shifted = dataset.is_shifted(r["place"], r["objects"])
            assert shifted == (split == "test-shift"), (split, r["place"], r["objects"])
    rng = np.random.default_rng(0)
    layouts = [dataset.sample_layout(rng, "train") for _ in range(2000)]
    assert not any(p in dataset.HELD_OUT_PLACES for p, _ in layouts)
    assert not any((o["color"], o["shape"]) in held for _, objs in layouts for o in objs)
    shift = [dataset.sample_layout(rng, "test-shift") for _ in range(2000)]
    assert all(dataset.is_shifted(p, objs) for p, objs in shift)
    assert {p for p, _ in shift} >= set(dataset.HELD_OUT_PLACES)
    assert {(o["color"], o["shape"]) for _, objs in shift for o in objs} >= held


def test_question_masks_union_the_referred_objects(scenes):
    masks = dataset.question_masks(scenes, "test")
    records = dataset.read_records(scenes, "test")
    assert masks.shape == (sum(len(r["questions"]) for r in records), SIZE, SIZE)
    q = 0
    for r in records:
        objects = dataset.load_masks(scenes, r)
        for question in r["questions"]:
            expected = objects[question["objects"]].any(0) if question["objects"] else np.zeros((SIZE, SIZE), bool)
            assert np.array_equal(masks[q], expected)
            q += 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_images": 0}, "image count must be between 4"),
        ({"n_images": -5}, "image count must be between 4"),
        ({"n_images": 3}, "image count must be between 4"),
        ({"n_images": 2_000_000}, "GB on disk"),
        ({"size": 63}, "image size must be between 64 and 256"),
        ({"size": 257}, "image size must be between 64 and 256"),
        ({"seed": -1}, "seed must be between"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    args = {"n_images": 8, "seed": 0, "size": SIZE, **kwargs}
    with pytest.raises(MumoError, match=message):
        dataset.generate(tmp_path / "out", workers=1, **args)
    assert list(tmp_path.iterdir()) == []


def test_a_non_empty_directory_is_refused_unless_overwrite_and_a_scenes_set(scenes, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(MumoError, match="pass --overwrite"):
        dataset.generate(other, n_images=4, size=SIZE, workers=1)
    with pytest.raises(MumoError, match="not one"):
        dataset.generate(other, n_images=4, size=SIZE, workers=1, overwrite=True)
    assert (other / "keep.txt").read_text() == "mine"
    previous = tmp_path / "previous"
    dataset.generate(previous, n_images=4, seed=1, size=SIZE, workers=1)
    dataset.generate(previous, n_images=8, seed=1, size=SIZE, workers=1, overwrite=True)
    assert dataset.read_meta(previous)["counts"]["train"] == 5


def test_an_interrupted_generation_leaves_no_directory_that_loads(tmp_path):
    def interrupt(_n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        dataset.generate(tmp_path / "out", n_images=8, size=SIZE, workers=1, progress=interrupt)
    assert list(tmp_path.iterdir()) == []  # no partial folder, no --out


def test_missing_files_and_other_versions_are_named(scenes, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(scenes, broken)
    record = dataset.read_records(broken, "test")[0]
    (broken / record["masks"]).unlink()
    with pytest.raises(MumoError, match=r"masks/test/00000.npz is missing"):
        dataset.question_masks(broken, "test")
    (broken / "val.jsonl").unlink()
    with pytest.raises(MumoError, match=r"val.jsonl is missing"):
        dataset.read_records(broken, "val")
    meta = json.loads((broken / "meta.json").read_text())
    (broken / "meta.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(MumoError, match="format version 99"):
        dataset.read_meta(broken)
    (broken / "meta.json").unlink()
    with pytest.raises(MumoError, match=r"meta.json is missing \(generate the set with `mumo data scenes`\)"):
        dataset.read_records(broken, "train")
