"""VQG-COCO (Mostafazadeh et al. 2016, "Generating Natural Questions About an Image", arXiv:1603.06059) read
into :class:`~mumo.data.vqg.records.VQGImage` records, one per image.

The release (``Visual_Question_Generation_dataset_1.0.zip``, microsoft.com download id 53670) ships one CSV per
source and split; VQG-COCO's, kept in ``root`` as shipped, are::

    coco_train_all.csv   2,500 images   image_id,image_url,questions
    coco_val_all.csv     1,249 images   image_id,image_url,questions
    coco_test_all.csv    1,249 images   image_id,image_url,questions,ratings

``image_id`` is the COCO image id; ``questions`` holds an image's (usually 5) questions joined by ``---``, as
written (capitals and ``?`` kept, the odd one without ``?``; a cell with commas is quoted); ``ratings`` (test only)
holds a quality rating (mostly 1-3) per question, also joined by ``---``, and is not read here. ``image_url`` is a
2016 web link (the COCO ones no longer resolve) and is not read either: images are found on disk by id, under each
folder of ``images``, in order, as the file the captions JSON names for the id, ``COCO_train2014_<id:012d>.jpg``,
``COCO_val2014_<id:012d>.jpg`` or ``<id:012d>.jpg`` (the 2017 names). Captions come from COCO's
``captions_{train,val}2014.json``: ``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "id",
"caption"}]}``.

Where these facts come from (public repositories that read the release): the file names and split sizes from
badripatro/Visual_Question_Generation ``data/coco_vqg_prepro.ipynb`` (2,500 / 1,249 / 1,249, ``split('---')``) and
amb467/vqg ``app/load_images.py`` (``coco_{train,val,test}_all.csv``, columns ``image_id``, ``image_url``); the
columns per split, the ``---`` separators, the ratings and the dead links from the release's COCO CSVs as
redistributed (with columns added) in malimustafaa/vqg-Natural-Question-Generation ``data/raw/coco_*_all_clean.csv``
and its README.

Rows are kept in CSV order. A row with no question is skipped with a warning that counts them; a split left with
no image is an error. Every other problem (a missing file or column, an unknown split, images or captions not
found) is a :class:`~mumo.errors.MumoError` naming what was expected.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Sequence
from pathlib import Path

from mumo.data._output import read_json
from mumo.data.vqg.records import VQGImage
from mumo.errors import MumoError

VQG_COCO_SPLITS = {"train": "coco_train_all.csv", "val": "coco_val_all.csv", "test": "coco_test_all.csv"}
QUESTION_SEPARATOR = "---"
REQUIRED_COLUMNS = ("image_id", "questions")
IMAGES_FOLDER = "images"  # the default image folder under root
COCO_SUBFOLDERS = ("train2014", "val2014", "train2017", "val2017")  # searched under the default folder too
_SHOWN = 3  # how many missing images or captions an error names


def coco_file_names(image_id: int) -> tuple[str, ...]:
    """The names a COCO image may have on disk: the 2014 train and val names, then the 2017 name."""
    return (f"COCO_train2014_{image_id:012d}.jpg", f"COCO_val2014_{image_id:012d}.jpg", f"{image_id:012d}.jpg")


def load_vqg_coco(
    root: str | Path,
    split: str,
    *,
    images: str | Path | Sequence[str | Path] | None = None,
    captions: str | Path | Sequence[str | Path] | None = None,
    max_images: int = 0,
) -> list[VQGImage]:
    """One :class:`VQGImage` per image of a VQG-COCO split, in CSV order.

    Args:
        root: the folder holding the release's CSVs as shipped (``coco_train_all.csv`` ...).
        split: ``train``, ``val`` or ``test``.
        images: the COCO image folder, or several (e.g. ``train2014`` and ``val2014``), searched in order. By
            default ``root/images`` and those of its ``train2014``, ``val2014``, ``train2017``, ``val2017``
            subfolders that exist.
        captions: a COCO captions JSON (``captions_train2014.json``) or several; every image must then have a
            caption in one of them. Without, records have no captions.
        max_images: keep only the first this many images (after rows without a question are skipped); 0 keeps all.

    Raises:
        MumoError: an unknown split, a missing folder or file, a CSV without the needed columns or with a bad
            image id, no image with a question, images not found on disk, a captions file that is not COCO's,
            or an image without a caption when captions are given.
    """
    if split not in VQG_COCO_SPLITS:
        raise MumoError(f"VQG-COCO split must be one of {', '.join(VQG_COCO_SPLITS)}, not {split!r}")
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 0:
        raise MumoError(f"max_images must be a whole number >= 0 (0 keeps every image), not {max_images!r}")
    root = Path(root)
    if not root.exists():
        raise MumoError(f"VQG-COCO directory not found: {root}")
    if not root.is_dir():
        raise MumoError(f"VQG-COCO path is not a directory: {root}")

    rows, skipped = _read_questions(root, split)
    if skipped:
        warnings.warn(f"VQG-COCO {split}: skipped {skipped} rows without a question", UserWarning, stacklevel=2)
    if max_images:
        rows = rows[:max_images]
    folders = _image_folders(root, images)
    caption_files = _as_paths(captions)
    file_names, captions_by_id = read_coco_captions(caption_files) if caption_files else ({}, {})

    paths = {image_id: _find_image(image_id, folders, file_names.get(image_id)) for image_id, _ in rows}
    missing = [image_id for image_id, path in paths.items() if path is None]
    if missing:
        shown = ", ".join(str(folders[0] / (file_names.get(i) or coco_file_names(i)[0])) for i in missing[:_SHOWN])
        raise MumoError(
            f"VQG-COCO {split}: {len(missing)} of {len(rows)} images not found, e.g. {shown}; searched "
            f"{', '.join(str(f) for f in folders)} for COCO_train2014_<id>.jpg, COCO_val2014_<id>.jpg and "
            f"<id>.jpg (12-digit ids); pass images= the COCO image folders"
        )
    if caption_files:
        uncaptioned = [image_id for image_id, _ in rows if not captions_by_id.get(image_id)]
        if uncaptioned:
            raise MumoError(
                f"VQG-COCO {split}: {len(uncaptioned)} of {len(rows)} images have no caption in "
                f"{', '.join(str(p) for p in caption_files)}, e.g. ids {', '.join(map(str, uncaptioned[:_SHOWN]))}; "
                f"pass the captions JSON of every COCO split the images come from"
            )
    return [
        VQGImage(
            image_id=str(image_id),
            image=paths[image_id],
            questions=questions,
            captions=tuple(captions_by_id.get(image_id, ())),
        )
        for image_id, questions in rows
    ]


def _read_questions(root: Path, split: str) -> tuple[list[tuple[int, tuple[str, ...]]], int]:
    """(COCO image id, questions) per row of a split's CSV that has a question, in file order, each question
    stripped; and how many rows had none."""
    path = root / VQG_COCO_SPLITS[split]
    if not path.is_file():
        raise MumoError(
            f"VQG-COCO {split} question file not found: {path}; the folder holds {_listing(root)} "
            f"(put the release's {', '.join(VQG_COCO_SPLITS.values())} in it as shipped)"
        )
    rows, seen, skipped = [], {}, 0
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            absent = [c for c in REQUIRED_COLUMNS if c not in columns]
            if absent:
                found = ", ".join(columns) if columns else "none (the file is empty)"
                raise MumoError(
                    f"{path} lacks column {', '.join(absent)}: VQG-COCO needs {', '.join(REQUIRED_COLUMNS)}, "
                    f"the header has {found}"
                )
            reader.fieldnames = columns
            for row in reader:
                line = reader.line_num
                image_id = _image_id(row.get("image_id"), path, line)
                questions = tuple(q.strip() for q in (row.get("questions") or "").split(QUESTION_SEPARATOR))
                questions = tuple(q for q in questions if q)
                if not questions:
                    skipped += 1
                    continue
                if image_id in seen:
                    first = seen[image_id]
                    raise MumoError(f"{path}, line {line}: image {image_id} appears again (first on line {first})")
                seen[image_id] = line
                rows.append((image_id, questions))
    except UnicodeDecodeError as exc:
        raise MumoError(f"{path} is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise MumoError(f"{path} is not a readable CSV: {exc}") from None
    if not rows:
        raise MumoError(f"{path} has no image with a question (rows without one: {skipped})")
    return rows, skipped


def read_coco_captions(paths: Sequence[str | Path]) -> tuple[dict[int, str], dict[int, list[str]]]:
    """From COCO captions JSONs: the file name of each image id, and its captions (stripped, in file order)."""
    file_names: dict[int, str] = {}
    captions: dict[int, list[str]] = {}
    for path in map(Path, paths):
        images, annotations = _read_coco_json(path)
        for image in images:
            file_names.setdefault(int(image["id"]), str(image["file_name"]))
        for annotation in annotations:
            captions.setdefault(int(annotation["image_id"]), []).append(str(annotation["caption"]).strip())
    return file_names, captions


def _read_coco_json(path: Path) -> tuple[list[dict], list[dict]]:
    expected = 'expected {"images": [{"id", "file_name"}], "annotations": [{"image_id", "caption"}]}'
    obj = read_json(path, "COCO captions")
    if not isinstance(obj, dict):
        raise MumoError(f"{path} is not a COCO captions file: {expected}")
    for key, fields in (("images", ("id", "file_name")), ("annotations", ("image_id", "caption"))):
        entries = obj.get(key)
        if not isinstance(entries, list):
            raise MumoError(f"{path} is not a COCO captions file: it has no {key!r} list; {expected}")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or any(f not in entry for f in fields):
                raise MumoError(
                    f"{path} is not a COCO captions file: {key}[{i}] lacks {' or '.join(repr(f) for f in fields)}; "
                    f"{expected}"
                )
            if not _is_whole(entry[fields[0]]):
                raise MumoError(f"{path}: {key}[{i}] has {fields[0]} {entry[fields[0]]!r}, not a COCO image id")
    return obj["images"], obj["annotations"]


def _image_id(value: str | None, path: Path, line: int) -> int:
    text = (value or "").strip()
    if not text.isdigit():
        raise MumoError(f"{path}, line {line}: image_id {text!r} is not a COCO image id (a whole number)")
    return int(text)


def _is_whole(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdigit())


def _as_paths(value: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def _image_folders(root: Path, images: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if images is None:
        default = root / IMAGES_FOLDER
        if not default.is_dir():
            raise MumoError(
                f"VQG-COCO image folder not found: {default} (the default); pass images= the COCO image folders, "
                f"e.g. train2014 and val2014"
            )
        return [default] + [default / s for s in COCO_SUBFOLDERS if (default / s).is_dir()]
    folders = _as_paths(images)
    if not folders:
        raise MumoError("images= is an empty list; pass the COCO image folders, e.g. train2014 and val2014")
    for folder in folders:
        if not folder.is_dir():
            raise MumoError(f"VQG-COCO image folder not found: {folder}")
    return folders


def _find_image(image_id: int, folders: Sequence[Path], named: str | None) -> Path | None:
    names = ((named,) if named else ()) + coco_file_names(image_id)
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _listing(folder: Path, limit: int = 10) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    if not names:
        return "nothing (it is empty)"
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
