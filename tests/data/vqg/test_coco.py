"""VQG-COCO in the release's format: a made-up fixture (tests/fixtures/vqg_coco) with COCO 2014 captions and
images, every split, both folders and file-name conventions, and every bad input."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from mumo.data.vqg.coco import VQG_COCO_SPLITS, coco_file_names, load_vqg_coco
from mumo.errors import MumoError

FIXTURE = Path(__file__).parents[2] / "fixtures" / "vqg_coco"
IDS = {
    "train": ("184613", "9448", "403385", "554625"),
    "val": ("262148", "393221", "397133"),
    "test": ("131075", "480023", "37777"),
}
VAL2014 = {"554625", "397133", "37777"}  # the fixture's val2014 images; the others are train2014 images
CAPTIONS = [FIXTURE / "annotations" / "captions_train2014.json", FIXTURE / "annotations" / "captions_val2014.json"]
HEADER = "image_id,image_url,questions"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A writable copy of the fixture, for the broken variants."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "vqg"))


def _write_csv(root: Path, split: str, lines: list[str]) -> None:
    (root / VQG_COCO_SPLITS[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------- reading the fixture


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_each_split_in_csv_order_with_images_on_disk(split: str) -> None:
    records = load_vqg_coco(FIXTURE, split)
    assert tuple(r.image_id for r in records) == IDS[split]
    for r in records:
        assert r.image.is_file()
        year = "val2014" if r.image_id in VAL2014 else "train2014"
        assert r.image == FIXTURE / "images" / year / f"COCO_{year}_{int(r.image_id):012d}.jpg"
        assert len(r.questions) == (4 if r.image_id == "403385" else 5)
        assert all(q == q.strip() and q for q in r.questions)
        assert r.captions == () and r.place is None and r.tags == () and r.scene is None


def test_split_sizes_and_files_are_the_release_s() -> None:
    assert dict(VQG_COCO_SPLITS) == {
        "train": "coco_train_all.csv",
        "val": "coco_val_all.csv",
        "test": "coco_test_all.csv",
    }
    assert coco_file_names(9448) == (
        "COCO_train2014_000000009448.jpg",
        "COCO_val2014_000000009448.jpg",
        "000000009448.jpg",
    )


def test_questions_kept_as_written() -> None:
    pizza = load_vqg_coco(FIXTURE, "train")[1]
    assert pizza.questions == (
        "What kind of pizza is that?",
        "Who made the pizza, you or a restaurant?",  # a quoted cell with a comma stays one question
        "Is it still hot?",
        "How many slices are left?",
        "What is the topping on the left",  # no "?" added, case kept
    )


def test_test_split_ratings_column_is_ignored() -> None:
    first_line = (FIXTURE / "coco_test_all.csv").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == HEADER + ",ratings"
    assert all(len(r.questions) == 5 for r in load_vqg_coco(FIXTURE, "test"))


def test_captions_joined_by_image_id_from_both_files() -> None:
    records = load_vqg_coco(FIXTURE, "train", captions=CAPTIONS)
    by_id = {r.image_id: r for r in records}
    assert all(len(r.captions) == 5 for r in records)
    assert by_id["184613"].captions == (
        "A brown dog leaps to catch a flying disc.",
        "A dog jumping in the air in a grassy park.",
        "a dog catching a frisbee above the grass",
        "A dog mid-jump with a frisbee in its mouth.",  # trailing space stripped
        "The dog is playing frisbee outside.",
    )
    assert by_id["554625"].captions[0] == "A cat sitting in a bathroom sink."  # from captions_val2014.json
    assert load_vqg_coco(FIXTURE, "val", captions=CAPTIONS)[0].captions[-1] == "A man biking on the street."


def test_one_captions_file_as_a_path(root: Path) -> None:
    _write_csv(root, "val", [HEADER, "262148,u,What is the man riding?", "393221,u,Whose birthday is it?"])
    records = load_vqg_coco(root, "val", captions=str(CAPTIONS[0]))
    assert [len(r.captions) for r in records] == [5, 5]


def test_two_image_folders_given_explicitly_match_the_default() -> None:
    folders = [FIXTURE / "images" / "train2014", str(FIXTURE / "images" / "val2014")]
    for split in VQG_COCO_SPLITS:
        assert load_vqg_coco(FIXTURE, split, images=folders) == load_vqg_coco(FIXTURE, split)


def test_image_folders_are_searched_in_order(root: Path) -> None:
    train, val = root / "images" / "train2014", root / "images" / "val2014"
    shutil.copy(train / "COCO_train2014_000000009448.jpg", val / "COCO_val2014_000000009448.jpg")
    assert load_vqg_coco(root, "train", images=[train, val])[1].image == train / "COCO_train2014_000000009448.jpg"
    assert load_vqg_coco(root, "train", images=[val, train])[1].image == val / "COCO_val2014_000000009448.jpg"


def test_2017_file_names_in_one_folder(root: Path, tmp_path: Path) -> None:
    flat = tmp_path / "train2017"
    flat.mkdir()
    for path in (root / "images").glob("*/*.jpg"):
        shutil.copy(path, flat / f"{int(path.stem.rsplit('_', 1)[1]):012d}.jpg")
    records = load_vqg_coco(root, "test", images=flat)
    assert [r.image.name for r in records] == ["000000131075.jpg", "000000480023.jpg", "000000037777.jpg"]


def test_2017_layout_under_the_default_folder(root: Path) -> None:
    images = root / "images"
    (images / "train2017").mkdir()
    for path in images.glob("*2014/*.jpg"):
        shutil.move(path, images / "train2017" / f"{int(path.stem.rsplit('_', 1)[1]):012d}.jpg")
    assert [r.image.parent.name for r in load_vqg_coco(root, "val")] == ["train2017"] * 3


def test_the_file_name_the_captions_json_gives_is_used(root: Path) -> None:
    path = root / "annotations" / "captions_val2014.json"
    coco = json.loads(path.read_text(encoding="utf-8"))
    coco["images"][0]["file_name"] = "cat.jpg"  # image 554625
    path.write_text(json.dumps(coco), encoding="utf-8")
    (root / "images" / "val2014" / "COCO_val2014_000000554625.jpg").rename(root / "images" / "cat.jpg")
    captions = [root / "annotations" / "captions_train2014.json", path]
    assert load_vqg_coco(root, "train", captions=captions)[3].image == root / "images" / "cat.jpg"


@pytest.mark.parametrize(("max_images", "n"), [(0, 4), (1, 1), (2, 2), (4, 4), (100, 4)])
def test_max_images_keeps_the_first(max_images: int, n: int) -> None:
    records = load_vqg_coco(FIXTURE, "train", max_images=max_images)
    assert tuple(r.image_id for r in records) == IDS["train"][:n]


def test_max_images_checks_only_the_kept_images(root: Path) -> None:
    (root / "images" / "val2014" / "COCO_val2014_000000554625.jpg").unlink()  # the 4th train image
    assert len(load_vqg_coco(root, "train", max_images=3, captions=CAPTIONS[:1])) == 3
    with pytest.raises(MumoError, match="1 of 4 images not found"):
        load_vqg_coco(root, "train")


def test_deterministic_and_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = load_vqg_coco(FIXTURE, "val", captions=CAPTIONS)
    assert first == load_vqg_coco(FIXTURE, "val", captions=CAPTIONS)
    assert [r.captions for r in first] == [r.captions for r in load_vqg_coco(FIXTURE, "val", captions=CAPTIONS)]


def test_byte_order_mark_and_crlf_are_read(root: Path) -> None:
    text = (root / "coco_val_all.csv").read_text(encoding="utf-8")
    (root / "coco_val_all.csv").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    read = [(r.image_id, r.questions, r.image.name) for r in load_vqg_coco(root, "val")]
    assert read == [(r.image_id, r.questions, r.image.name) for r in load_vqg_coco(FIXTURE, "val")]


# ------------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("split", ["dev", "validation", "coco_train_all", ""])
def test_unknown_split_lists_the_valid_ones(split: str) -> None:
    with pytest.raises(MumoError, match=r"must be one of train, val, test, not"):
        load_vqg_coco(FIXTURE, split)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_max_images(bad) -> None:
    with pytest.raises(MumoError, match="max_images must be a whole number >= 0"):
        load_vqg_coco(FIXTURE, "train", max_images=bad)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MumoError, match=r"VQG-COCO directory not found: .*nowhere"):
        load_vqg_coco(tmp_path / "nowhere", "train")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MumoError, match="not a directory"):
        load_vqg_coco(tmp_path / "file", "train")


def test_missing_question_file_names_it_and_the_files_found(root: Path) -> None:
    (root / "coco_val_all.csv").unlink()
    with pytest.raises(MumoError) as err:
        load_vqg_coco(root, "val")
    message = str(err.value)
    assert "val question file not found" in message and str(root / "coco_val_all.csv") in message
    assert "annotations/, coco_test_all.csv, coco_train_all.csv, images/" in message
    assert "\n" not in message


def test_missing_question_file_in_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(MumoError, match=r"coco_test_all.csv; the folder holds nothing \(it is empty\)"):
        load_vqg_coco(tmp_path, "test")


def test_csv_without_the_needed_columns_names_them(root: Path) -> None:
    _write_csv(root, "train", ["image,image_url,question", "184613,u,What?"])
    with pytest.raises(
        MumoError, match=r"lacks column image_id, questions: .*the header has image, image_url, question"
    ):
        load_vqg_coco(root, "train")
    _write_csv(root, "train", ["image_id,image_url", "184613,u"])
    with pytest.raises(MumoError, match=r"lacks column questions: VQG-COCO needs image_id, questions"):
        load_vqg_coco(root, "train")


def test_empty_csv(root: Path) -> None:
    (root / "coco_train_all.csv").write_text("", encoding="utf-8")
    with pytest.raises(MumoError, match=r"the header has none \(the file is empty\)"):
        load_vqg_coco(root, "train")


def test_header_only_csv(root: Path) -> None:
    _write_csv(root, "train", [HEADER])
    with pytest.raises(MumoError, match=r"has no image with a question \(rows without one: 0\)"):
        load_vqg_coco(root, "train")


def test_rows_without_a_question_are_skipped_with_a_count(root: Path) -> None:
    _write_csv(
        root,
        "val",
        [HEADER, "262148,u,What is the man riding?", "393221,u,", "397133,u, --- --- ", "9448,u,  Is it hot?  ---"],
    )
    with pytest.warns(UserWarning, match="VQG-COCO val: skipped 2 rows without a question"):
        records = load_vqg_coco(root, "val")
    assert [(r.image_id, r.questions) for r in records] == [
        ("262148", ("What is the man riding?",)),
        ("9448", ("Is it hot?",)),
    ]


def test_no_row_with_a_question_is_an_error(root: Path) -> None:
    _write_csv(root, "test", [HEADER + ",ratings", "131075,u,,", "480023,u,---,"])
    with pytest.raises(MumoError, match=r"has no image with a question \(rows without one: 2\)"):
        load_vqg_coco(root, "test")


@pytest.mark.parametrize("image_id", ["abc", "", "-3", "12.0"])
def test_bad_image_id_names_the_line(root: Path, image_id: str) -> None:
    _write_csv(root, "train", [HEADER, "184613,u,Why?", f"{image_id},u,What?"])
    with pytest.raises(MumoError, match=r"coco_train_all.csv, line 3: image_id .* is not a COCO image id"):
        load_vqg_coco(root, "train")


def test_duplicate_image_id(root: Path) -> None:
    _write_csv(root, "train", [HEADER, "184613,u,Why?", "9448,u,Who?", "184613,u,What?"])
    with pytest.raises(MumoError, match=r"line 4: image 184613 appears again \(first on line 2\)"):
        load_vqg_coco(root, "train")


def test_not_utf8(root: Path) -> None:
    (root / "coco_train_all.csv").write_bytes(HEADER.encode() + b"\n184613,u,Caf\xe9?\n")
    with pytest.raises(MumoError, match="is not UTF-8 text"):
        load_vqg_coco(root, "train")


def test_images_absent_names_count_paths_and_folders(root: Path) -> None:
    for image_id in ("184613", "403385"):
        (root / "images" / "train2014" / f"COCO_train2014_{int(image_id):012d}.jpg").unlink()
    with pytest.raises(MumoError) as err:
        load_vqg_coco(root, "train")
    message = str(err.value)
    assert "VQG-COCO train: 2 of 4 images not found" in message
    assert str(root / "images" / "COCO_train2014_000000184613.jpg") in message
    assert str(root / "images" / "COCO_train2014_000000403385.jpg") in message
    for folder in ("images", "images/train2014", "images/val2014"):
        assert str(root / folder) in message
    assert "\n" not in message


def test_images_absent_with_explicit_folders(root: Path) -> None:
    train = root / "images" / "train2014"
    with pytest.raises(MumoError, match=r"1 of 4 images not found, e\.g\. .*COCO_train2014_000000554625.jpg; searched"):
        load_vqg_coco(root, "train", images=[train])


def test_image_folder_missing(root: Path) -> None:
    with pytest.raises(MumoError, match=r"image folder not found: .*elsewhere"):
        load_vqg_coco(root, "train", images=[root / "images", root / "elsewhere"])
    with pytest.raises(MumoError, match="images= is an empty list"):
        load_vqg_coco(root, "train", images=[])
    shutil.rmtree(root / "images")
    with pytest.raises(MumoError, match=r"image folder not found: .*images \(the default\); pass images="):
        load_vqg_coco(root, "train")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", r"is not a COCO captions file: expected \{\"images\""),
        ('{"images": []}', r"is not a COCO captions file: it has no 'annotations' list"),
        ('{"annotations": [], "images": {}}', r"is not a COCO captions file: it has no 'images' list"),
        ('{"images": [{"id": 1}], "annotations": []}', r"images\[0\] lacks 'id' or 'file_name'"),
        (
            '{"images": [], "annotations": [{"image_id": 1, "text": "a"}]}',
            r"annotations\[0\] lacks 'image_id' or 'caption'",
        ),
        ('{"images": [], "annotations": ["a dog"]}', r"annotations\[0\] lacks"),
        ('{"images": [{"id": "x", "file_name": "a.jpg"}], "annotations": []}', r"images\[0\] has id 'x', not a COCO"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_captions_not_in_coco_format(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "captions.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MumoError, match=message):
        load_vqg_coco(FIXTURE, "train", captions=[CAPTIONS[0], path])


def test_captions_file_missing(tmp_path: Path) -> None:
    with pytest.raises(MumoError, match=r"COCO captions file not found: .*captions_val2017.json"):
        load_vqg_coco(FIXTURE, "train", captions=tmp_path / "captions_val2017.json")


def test_images_without_a_caption_are_an_error() -> None:
    with pytest.raises(MumoError) as err:
        load_vqg_coco(FIXTURE, "train", captions=CAPTIONS[:1])  # 554625 is a val2014 image
    message = str(err.value)
    assert "VQG-COCO train: 1 of 4 images have no caption in" in message
    assert "captions_train2014.json, e.g. ids 554625; pass the captions JSON of every COCO split" in message
