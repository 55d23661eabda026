"""Sort-of-CLEVR scenes (Santoro et al. 2017, arXiv:1706.01427 §3.2; reference §1.2): the renderer.

75x75 white images with 6 objects, one per colour (red, blue, green, orange, yellow, gray), each a
square or a circle, never overlapping. Every object comes with its colour, shape, centre, box and a
pixel mask, the ground truth that explanation work scores maps against.

Per image, 20 questions (10 non-relational, 10 relational), each in the paper's binary form (see
:data:`QUESTION_BITS`) and in English; :func:`generate` writes a data set to disk (``mumo data
sort-of-clevr``) and :func:`load_sort_of_clevr` reads one split back as a :class:`VQASplit`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from mumo.data._output import check_seed, read_jsonl, staged_output, write_npz
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit, split_from_records
from mumo.errors import MumoError

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "blue": (0, 0, 255),
    "green": (0, 128, 0),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
}
SHAPES = ("square", "circle")
IMAGE_SIZE = 75
OBJECT_SIZE = 5  # half side of a square, radius of a circle (pixels)


@dataclass
class SceneObject:
    """One object of a scene."""

    color: str
    shape: str
    center: tuple[int, int]  # (x, y) pixels
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), inclusive
    mask: np.ndarray  # (H, W) bool


def render_scene(
    rng: np.random.Generator, *, size: int = IMAGE_SIZE, half: int = OBJECT_SIZE
) -> tuple[np.ndarray, list[SceneObject]]:
    """One scene: an (H, W, 3) uint8 image and its 6 objects (one per colour, no overlaps)."""
    centers: list[tuple[int, int]] = []
    while len(centers) < len(COLORS):
        c = tuple(int(v) for v in rng.integers(half, size - half, 2))
        # boxes of side 2*half+1 overlap unless the centres differ by more than 2*half in x or y
        if all(abs(c[0] - o[0]) > 2 * half + 1 or abs(c[1] - o[1]) > 2 * half + 1 for o in centers):
            centers.append(c)  # type: ignore[arg-type]
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    objects = []
    for (name, rgb), (x, y) in zip(COLORS.items(), centers, strict=True):
        shape = SHAPES[int(rng.integers(2))]
        box = (x - half, y - half, x + half, y + half)
        layer = Image.new("L", (size, size), 0)
        (ImageDraw.Draw(layer).rectangle if shape == "square" else ImageDraw.Draw(layer).ellipse)(box, fill=255)
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=rgb)
        objects.append(SceneObject(name, shape, (x, y), box, np.asarray(layer) > 0))
    return np.asarray(image), objects


# --------------------------------------------------------------------------------------------------
# Questions (paper §3.2 and Supp. D; kimhc6028/relational-networks ``sort_of_clevr_generator.py``)
# --------------------------------------------------------------------------------------------------

# Question families, in binary-encoding order: 3 non-relational, then 3 relational.
NON_RELATIONAL_FAMILIES = ("shape", "left_right", "top_bottom")
RELATIONAL_FAMILIES = ("closest_shape", "furthest_shape", "same_shape_count")
FAMILIES = NON_RELATIONAL_FAMILIES + RELATIONAL_FAMILIES
QUESTIONS_PER_KIND = 10  # per image: 10 non-relational + 10 relational

# The paper's answer set: no yes/no. The reference implementation has 10 logits, reusing yes/no for
# left/top and right/bottom and the colour slots for the counts; here every answer has its own entry.
ANSWERS = ("left", "right", "top", "bottom", "square", "circle", "1", "2", "3", "4", "5", "6")

# Binary encoding, QUESTION_BITS = 11 (paper: "6 bits colour one-hot + 5 bits question type/subtype"):
#   bits 0-5   colour one-hot, in COLORS order (red, blue, green, orange, yellow, gray)
#   bit  6     non-relational
#   bit  7     relational
#   bits 8-10  subtype one-hot: shape / left_right / top_bottom (non-relational),
#              closest_shape / furthest_shape / same_shape_count (relational)
# (The PyTorch reference uses 18 dims: colour at 0-5, 6-11 unused, type at 12-13, subtype at 15-17.)
QUESTION_BITS = len(COLORS) + 2 + 3

_TEMPLATES = {
    "shape": "what is the shape of the {} object?",
    "left_right": "is the {} object on the left or right of the image?",
    "top_bottom": "is the {} object at the top or bottom of the image?",
    "closest_shape": "what is the shape of the object closest to the {} object?",
    "furthest_shape": "what is the shape of the object furthest from the {} object?",
    "same_shape_count": "how many objects have the same shape as the {} object?",
}


def is_relational(family: str) -> bool:
    """Whether a question family is relational (``VQASplit.question_types`` holds family names)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown Sort-of-CLEVR question family {family!r}")
    return family in RELATIONAL_FAMILIES


def question_text(color: str, family: str) -> str:
    """The English form of a question, e.g. ``what is the shape of the red object?``."""
    return _TEMPLATES[family].format(color)


def encode_question(color: str, family: str) -> np.ndarray:
    """The paper's binary form of a question: (QUESTION_BITS,) uint8, layout above."""
    bits = np.zeros(QUESTION_BITS, dtype=np.uint8)
    bits[list(COLORS).index(color)] = 1
    rel = is_relational(family)
    bits[len(COLORS) + int(rel)] = 1
    subtypes = RELATIONAL_FAMILIES if rel else NON_RELATIONAL_FAMILIES
    bits[len(COLORS) + 2 + subtypes.index(family)] = 1
    return bits


def decode_question(bits: np.ndarray | list[int]) -> tuple[str, str]:
    """(colour, family) of a binary question; inverse of :func:`encode_question`."""
    b = np.asarray(bits)
    n = len(COLORS)
    if b.shape != (QUESTION_BITS,) or b[:n].sum() != 1 or b[n : n + 2].sum() != 1 or b[n + 2 :].sum() != 1:
        raise ValueError(f"not a Sort-of-CLEVR question encoding: {b.tolist()}")
    color = list(COLORS)[int(b[:n].argmax())]
    subtypes = RELATIONAL_FAMILIES if b[n + 1] else NON_RELATIONAL_FAMILIES
    return color, subtypes[int(b[n + 2 :].argmax())]


@dataclass(frozen=True)
class Question:
    """One question about a scene.

    ``objects`` are indices into the scene's objects: the asked-about object first, then the closest
    or furthest object, or the other objects of the same shape (relational questions).
    """

    family: str
    color: str
    answer: str
    objects: tuple[int, ...]

    @property
    def relational(self) -> bool:
        return is_relational(self.family)

    @property
    def text(self) -> str:
        return question_text(self.color, self.family)

    @property
    def encoding(self) -> np.ndarray:
        return encode_question(self.color, self.family)


def answer_question(objects: list[SceneObject], color: str, family: str, *, size: int = IMAGE_SIZE) -> Question:
    """Answer one question from the scene metadata.

    Left/top mean a centre coordinate below ``size / 2`` (image y grows downwards). Distances are
    between centres; ties for closest/furthest go to the first object in COLORS order.
    """
    i = next(k for k, o in enumerate(objects) if o.color == color)
    x, y = objects[i].center
    if family == "shape":
        return Question(family, color, objects[i].shape, (i,))
    if family == "left_right":
        return Question(family, color, "left" if x < size / 2 else "right", (i,))
    if family == "top_bottom":
        return Question(family, color, "top" if y < size / 2 else "bottom", (i,))
    if family == "same_shape_count":
        same = [k for k, o in enumerate(objects) if k != i and o.shape == objects[i].shape]
        return Question(family, color, str(len(same) + 1), (i, *same))
    others = [k for k in range(len(objects)) if k != i]
    d2 = [(objects[k].center[0] - x) ** 2 + (objects[k].center[1] - y) ** 2 for k in others]
    if family == "closest_shape":
        j = others[d2.index(min(d2))]
    elif family == "furthest_shape":
        j = others[d2.index(max(d2))]
    else:
        raise ValueError(f"unknown Sort-of-CLEVR question family {family!r}")
    return Question(family, color, objects[j].shape, (i, j))


def attention_objects(family: str, objects: tuple[int, ...] | list[int]) -> tuple[tuple[int, ...], ...]:
    """Where a question's reasoning steps look: (asked-about object, objects the answer is read from, objects counted).

    Step 0 is the asked-about object. Step 1 is that object again for a non-relational question, the closest /
    furthest object, or the objects of its shape for ``same_shape_count``. Step 2 is empty (``()``) except for
    ``same_shape_count``: every object of the scene, since an attention average over the objects of one shape
    says which shape they are but not how many there are, where one over all six says how many of each shape
    there are (a count combines that with the asked-about object's shape: ``model.answer_mlp``).
    ``objects`` is a question's ``objects`` field (the asked-about object first).
    """
    first = (int(objects[0]),)
    if family in ("closest_shape", "furthest_shape"):
        return first, (int(objects[1]),), ()
    if family == "same_shape_count":
        return first, tuple(int(i) for i in objects), tuple(range(len(COLORS)))
    if family in NON_RELATIONAL_FAMILIES:
        return first, first, ()
    raise ValueError(f"unknown Sort-of-CLEVR question family {family!r}")


def scene_questions(objects: list[SceneObject], rng: np.random.Generator) -> list[Question]:
    """10 non-relational then 10 relational questions, each with a random colour and subtype."""
    questions = []
    for families in (NON_RELATIONAL_FAMILIES, RELATIONAL_FAMILIES):
        for _ in range(QUESTIONS_PER_KIND):
            color = objects[int(rng.integers(len(objects)))].color
            questions.append(answer_question(objects, color, families[int(rng.integers(len(families)))]))
    return questions


# --------------------------------------------------------------------------------------------------
# The data set on disk: ``mumo data sort-of-clevr`` and the loader
# --------------------------------------------------------------------------------------------------

FORMAT_VERSION = 1
SPLITS = ("train", "test")
META_FILE = "meta.json"
# Images per split at most: a guard against a mistyped count. Each image takes about 4.9 KB (its jsonl line
# 4.1 KB, PNG 0.5 KB, masks 0.3 KB), 12 KB on a file system of 4 KB blocks: 1,000,000 images are ~12 GB and
# 2,000,000 files on disk, ~25 minutes to write, and 17 GB of pixels once loaded (load_sort_of_clevr).
MAX_IMAGES = 1_000_000


def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    # one independent stream per image: the output does not depend on generation order
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), index]))


def _write_example(out_dir: Path, split: str, index: int, seed: int) -> dict:
    rng = _image_rng(seed, split, index)
    image, objects = render_scene(rng)
    questions = scene_questions(objects, rng)
    name = f"{index:05d}"
    Image.fromarray(image).save(out_dir / "images" / split / f"{name}.png", format="PNG", compress_level=6)
    write_npz(out_dir / "masks" / split / f"{name}.npz", masks=np.stack([o.mask for o in objects]))
    return {
        "image_id": index,
        "image": f"images/{split}/{name}.png",
        "masks": f"masks/{split}/{name}.npz",
        "objects": [
            {"color": o.color, "shape": o.shape, "center": list(o.center), "box": list(o.box)} for o in objects
        ],
        "questions": [
            {
                "family": q.family,
                "relational": q.relational,
                "question": q.text,
                "encoding": q.encoding.tolist(),
                "answer": q.answer,
                "objects": list(q.objects),
            }
            for q in questions
        ],
    }


def check_arguments(out_dir: str | Path, *, n_train: int, n_test: int, seed: int) -> None:
    """Raise MumoError, before anything is written, unless ``out_dir`` is absent or an empty directory, both
    counts lie in [1, MAX_IMAGES] and the seed in [0, 2**32)."""
    for name, n in (("train", n_train), ("test", n_test)):
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
            why = ""
            if isinstance(n, int) and n > MAX_IMAGES:
                why = f" ({n:,} images would take about {n * 12e3 / 1e9:,.0f} GB on disk)"
            elif name == "test" and n == 0:
                why = " (mumo train reports its test accuracy on this split)"
            raise MumoError(f"{name} image count must be between 1 and {MAX_IMAGES:,}, not {n!r}{why}")
    check_seed(seed)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MumoError(f"{out} exists and is not an empty directory; choose another output directory")


def generate(
    out_dir: str | Path,
    *,
    n_train: int,
    n_test: int,
    seed: int,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Write a Sort-of-CLEVR data set to ``out_dir`` (which must be absent or empty).

    Layout: ``images/{split}/{i:05d}.png`` (75x75 RGB), ``masks/{split}/{i:05d}.npz`` (key ``masks``,
    (6, 75, 75) bool in COLORS order), ``{split}.jsonl`` (one line per image: its files, objects and 20
    questions) and ``meta.json``, written last. The same seed gives byte-identical files.

    Every argument is checked before anything is written. The set is built in a folder beside ``out_dir``
    and renamed to it when complete: an error or Ctrl-C leaves ``out_dir`` as it was
    (:func:`mumo.data._output.staged_output`).

    Args:
        progress: called with 1 after each image (e.g. ``tqdm.update``).

    Returns:
        The contents of ``meta.json``.

    Raises:
        MumoError: ``out_dir`` is a file or a non-empty directory, a count is outside [1, MAX_IMAGES], or the
            seed outside [0, 2**32).
    """
    check_arguments(out_dir, n_train=n_train, n_test=n_test, seed=seed)
    counts = {"train": n_train, "test": n_test}
    with staged_output(out_dir) as out:
        for split in SPLITS:
            (out / "images" / split).mkdir(parents=True, exist_ok=True)
            (out / "masks" / split).mkdir(parents=True, exist_ok=True)
            with open(out / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
                for i in range(counts[split]):
                    f.write(json.dumps(_write_example(out, split, i, seed), separators=(",", ":")) + "\n")
                    if progress is not None:
                        progress(1)
        meta = _meta(seed, counts)
        (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _meta(seed: int, counts: dict[str, int]) -> dict:
    return {
        "format": "mumo-sort-of-clevr",
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "counts": counts,
        "questions_per_image": 2 * QUESTIONS_PER_KIND,
        "image_size": IMAGE_SIZE,
        "colors": list(COLORS),
        "shapes": list(SHAPES),
        "families": {f: is_relational(f) for f in FAMILIES},
        "answers": list(ANSWERS),
        "encoding": "bits 0-5 colour one-hot (colors order); bit 6 non-relational; bit 7 relational; "
        "bits 8-10 subtype one-hot (families order within its kind)",
    }


def read_meta(root: str | Path) -> dict:
    """``meta.json`` of a generated data set, checked for completeness and format version."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise MumoError(
            f"incomplete Sort-of-CLEVR directory: {path} is missing (generate it with `mumo data sort-of-clevr`)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MumoError(f"{path} is not valid JSON: {exc}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if version != FORMAT_VERSION:
        raise MumoError(
            f"{path} has Sort-of-CLEVR format version {version}, this mumo reads version {FORMAT_VERSION}; "
            "regenerate it with `mumo data sort-of-clevr`"
        )
    return meta


def read_records(root: str | Path, split: str) -> list[dict]:
    """The parsed ``{split}.jsonl`` lines (objects, questions, file names) of a generated data set."""
    if split not in SPLITS:
        raise MumoError(f"Sort-of-CLEVR split must be one of {', '.join(SPLITS)}, not {split!r}")
    root = Path(root)
    meta = read_meta(root)
    return read_jsonl(root / f"{split}.jsonl", expected=meta.get("counts", {}).get(split), what="Sort-of-CLEVR")


def load_masks(root: str | Path, record: dict) -> np.ndarray:
    """(6, H, W) bool object masks of one record, in COLORS order."""
    path = Path(root) / record["masks"]
    if not path.is_file():
        raise MumoError(f"incomplete Sort-of-CLEVR directory: {path} is missing")
    with np.load(path) as z:
        return z["masks"]


def load_sort_of_clevr(
    root: str | Path,
    *,
    split: str,
    vocab: Vocab | None = None,
    max_question_len: int = 14,
    image_size: int = IMAGE_SIZE,
    object_masks: bool = False,
) -> tuple[VQASplit, Vocab, list[str]]:
    """Load one split of a generated data set as a :class:`VQASplit` of English questions.

    ``question_types`` holds the family names (:data:`FAMILIES`); :func:`is_relational` tells the
    relational ones apart. Targets are one-hot over the returned answer list (:data:`ANSWERS`).

    Args:
        root: the directory ``generate`` wrote.
        split: ``train`` or ``test``.
        vocab: token vocabulary; None builds one from this split's questions (pass train's to test).
        max_question_len: tokens per question.
        image_size: images are resized to this square size (75 = original).
        object_masks: also load every image's object masks (at 75 px, 6 x 75 x 75 bool = 34 KB an image) and
            per question the objects of its three reasoning steps (:func:`attention_objects`), for training
            attention on them (``objective.attention_loss=masks``).

    Raises:
        MumoError: missing ``meta.json``, ``{split}.jsonl``, image or mask file, or another format version.
    """
    root = Path(root)
    records = read_records(root, split)
    answers = list(read_meta(root)["answers"])
    out, vocab = split_from_records(
        split, root, records, answers=answers, vocab=vocab, max_question_len=max_question_len, image_size=image_size,
        what="Sort-of-CLEVR",
    )  # fmt: skip
    if object_masks:
        out.object_masks = torch.from_numpy(
            np.stack([load_masks(root, r) for r in records]) if records else np.zeros((0, len(COLORS), 1, 1), bool)
        )  # (I, 6, H, W) bool
        qs = [q for r in records for q in r["questions"]]  # in the split's question order
        steps = torch.zeros(len(qs), 3, len(COLORS))  # (Q, 3, 6): the objects of each reasoning step
        for n, q in enumerate(qs):
            for step, idx in enumerate(attention_objects(q["family"], q["objects"])):
                steps[n, step, list(idx)] = 1.0
        out.question_objects = steps
    return out, vocab, answers
