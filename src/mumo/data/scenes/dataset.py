"""mumo scenes on disk: ``mumo data scenes`` writes a data set, :func:`load_scenes` reads a split back.

A data set of N images has four splits by image: ``train`` (70 %), ``val``, ``test`` and ``test-shift`` (10 %
each). ``test-shift`` is a compositional split in the spirit of CLEVR-CoGenT: the colour-shape pairs of
:data:`HELD_OUT_PAIRS` and the places of :data:`HELD_OUT_PLACES` never appear in the other three splits, and every
``test-shift`` image shows at least one of them, which makes it a natural near-out-of-distribution set.

Layout (``format_version`` 1)::

    DIR/meta.json                      written last: the format, seed, counts, vocabularies, held-out pairs
    DIR/{split}.jsonl                  one line per image, in order (below)
    DIR/images/{split}/{i:05d}.png     RGB, size x size
    DIR/masks/{split}/{i:05d}.npz      key "masks": (O, size, size) bool, each object's visible pixels

A ``{split}.jsonl`` line: ``image_id``, ``image`` and ``masks`` (paths relative to DIR), ``place``, ``objects``
(shape, color, size, material, center (x, y), box (x0, y0, x1, y1) inclusive, in drawing order: later on top),
``relations`` (relation -> [[i, j], ...]: object i is REL object j), ``captions`` (5), ``tags``, ``questions``
(each: ``question``, ``family``, ``template``, ``program``, ``answer``, ``objects``: the objects it refers to).

Images are generated in chunks of :data:`CHUNK` with one random stream and one answer balancer each, so the
output is byte-identical for a seed whatever the number of worker processes.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from mumo.data._output import check_seed, read_jsonl, staged_output, write_npz
from mumo.data.scenes import graph
from mumo.errors import MumoError

FORMAT = "mumo-scenes"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test", "test-shift")
FRACTIONS = {"val": 0.1, "test": 0.1, "test-shift": 0.1}  # train: the rest
META_FILE = "meta.json"
CHUNK = 250  # images per random stream and answer balancer
CAPTIONS_PER_IMAGE = 5
MAX_IMAGES = 1_000_000  # a guard against a mistyped count: ~40 KB an image on disk
DEFAULT_IMAGES = 10_000
# CoGenT-style held-out pairs: one shape per colour, every colour and shape still seen with seven partners
HELD_OUT_PAIRS = (
    ("gray", "heart"),
    ("red", "star"),
    ("blue", "ring"),
    ("green", "cross"),
    ("brown", "diamond"),
    ("purple", "triangle"),
    ("cyan", "square"),
    ("yellow", "circle"),
)
HELD_OUT_PLACES = ("snowfield", "street")
SHIFT_PLACE_RATE = 0.5  # test-shift images in a held-out place
SHIFT_OBJECT_RATE = 0.3  # test-shift objects drawn from a held-out pair


def split_counts(n_images: int) -> dict[str, int]:
    """Images per split for ``n_images`` in all: 10 % each for val, test and test-shift (at least 1), train the rest."""
    counts = {s: max(1, round(f * n_images)) for s, f in FRACTIONS.items()}
    return {"train": n_images - sum(counts.values()), **counts}


def check_arguments(out_dir: str | Path, *, n_images: int, seed: int, size: int, overwrite: bool = False) -> None:
    """Raise MumoError, before anything is written, on a bad count, seed or size, or an output directory that
    exists and is not empty (unless ``overwrite`` and it holds a previous mumo scenes set)."""
    if isinstance(n_images, bool) or not isinstance(n_images, int) or not len(SPLITS) <= n_images <= MAX_IMAGES:
        why = ""
        if isinstance(n_images, int) and n_images > MAX_IMAGES:
            why = f" ({n_images:,} images would take about {n_images * 40e3 / 1e9:,.0f} GB on disk)"
        raise MumoError(
            f"image count must be between {len(SPLITS)} (one per split: {', '.join(SPLITS)}) and {MAX_IMAGES:,}, "
            f"not {n_images!r}{why}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or not graph.MIN_SIZE <= size <= graph.MAX_SIZE:
        raise MumoError(f"image size must be between {graph.MIN_SIZE} and {graph.MAX_SIZE} pixels, not {size!r}")
    check_seed(seed)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not out.is_dir():
            raise MumoError(f"{out} exists and is not a directory; choose another output directory")
        if not overwrite:
            raise MumoError(f"{out} exists and is not empty; choose another output directory or pass --overwrite")
        meta = out / META_FILE
        try:
            is_scenes = json.loads(meta.read_text(encoding="utf-8")).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            is_scenes = False
        if not is_scenes:
            raise MumoError(
                f"--overwrite replaces a previous mumo scenes data set, and {out} is not one (no {META_FILE} "
                "of format mumo-scenes); choose another output directory"
            )


def sample_layout(rng: np.random.Generator, split: str) -> tuple[str, list[dict[str, str]]]:
    """A place and 3-9 objects' attributes for an image of ``split``.

    Outside ``test-shift`` the held-out places and colour-shape pairs never occur. In ``test-shift`` an image is in
    a held-out place with probability :data:`SHIFT_PLACE_RATE`, each object is a held-out pair with probability
    :data:`SHIFT_OBJECT_RATE`, and an image that would show neither gets one held-out pair object.
    """
    shift = split == "test-shift"
    seen_places = [p for p in graph.PLACES if p not in HELD_OUT_PLACES]
    if shift and rng.random() < SHIFT_PLACE_RATE:
        place = HELD_OUT_PLACES[int(rng.integers(len(HELD_OUT_PLACES)))]
    else:
        place = seen_places[int(rng.integers(len(seen_places)))]
    held = set(HELD_OUT_PAIRS)
    seen_pairs = [(c, s) for c in graph.COLORS for s in graph.SHAPES if (c, s) not in held]
    n = int(rng.integers(graph.MIN_OBJECTS, graph.MAX_OBJECTS + 1))
    objects = []
    for _ in range(n):
        pool = HELD_OUT_PAIRS if shift and rng.random() < SHIFT_OBJECT_RATE else seen_pairs
        color, shape = pool[int(rng.integers(len(pool)))]
        objects.append(
            {
                "shape": shape,
                "color": color,
                "size": graph.SIZES[int(rng.integers(len(graph.SIZES)))],
                "material": graph.MATERIALS[int(rng.integers(len(graph.MATERIALS)))],
            }
        )
    if shift and place not in HELD_OUT_PLACES and not any((o["color"], o["shape"]) in held for o in objects):
        color, shape = HELD_OUT_PAIRS[int(rng.integers(len(HELD_OUT_PAIRS)))]
        objects[int(rng.integers(n))].update(color=color, shape=shape)
    return place, objects


def is_shifted(place: str, objects: list[dict]) -> bool:
    """Whether an image shows a held-out place or colour-shape pair."""
    held = set(HELD_OUT_PAIRS)
    return place in HELD_OUT_PLACES or any((o["color"], o["shape"]) in held for o in objects)


def _chunk_rng(seed: int, split: str, chunk: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), chunk]))


def _generate_chunk(job: tuple[str, str, int, int, int, int]) -> list[dict]:
    """Render, write and describe images [start, stop) of a split: one random stream, one answer balancer."""
    from mumo.data.scenes.captions import captions, tags
    from mumo.data.scenes.questions import QUESTIONS_PER_IMAGE, Balancer, sample_questions
    from mumo.data.scenes.render import render_scene

    out, split, chunk, seed, size, n_images = job
    rng = _chunk_rng(seed, split, chunk)
    balancer = Balancer()
    records = []
    for index in range(chunk * CHUNK, min((chunk + 1) * CHUNK, n_images)):
        place, attributes = sample_layout(rng, split)
        image, scene = render_scene(rng, place=place, objects=attributes, image_size=size)
        questions = sample_questions(scene, rng, QUESTIONS_PER_IMAGE, balancer)
        name = f"{index:05d}"
        Image.fromarray(image).save(Path(out, "images", split, f"{name}.png"), format="PNG", compress_level=6)
        write_npz(Path(out, "masks", split, f"{name}.npz"), masks=scene.masks)
        records.append(
            {
                "image_id": index,
                "image": f"images/{split}/{name}.png",
                "masks": f"masks/{split}/{name}.npz",
                **scene.graph(),
                "captions": captions(scene, rng, CAPTIONS_PER_IMAGE),
                "tags": tags(scene),
                "questions": [
                    {
                        "question": q.text,
                        "family": q.family,
                        "template": q.template,
                        "program": q.program,
                        "answer": q.answer,
                        "objects": list(q.objects),
                    }
                    for q in questions
                ],
            }
        )
    return records


def _pool(workers: int):
    """A pool of ``workers`` forked processes, or None to work in this process (one worker, or no fork)."""
    if workers <= 1 or sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_interrupts)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the parent, which stops them and removes the unfinished set (no worker tracebacks)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def generate(
    out_dir: str | Path,
    *,
    n_images: int = DEFAULT_IMAGES,
    seed: int = 0,
    size: int = graph.DEFAULT_SIZE,
    overwrite: bool = False,
    workers: int | None = None,
    progress: Callable[[int], object] | None = None,
) -> dict:
    """Write a mumo scenes data set to ``out_dir`` (layout in the module docstring); the same seed and size give
    byte-identical files.

    Every argument is checked before anything is written. The set is built in a folder beside ``out_dir`` and
    renamed to it when complete (an error or Ctrl-C leaves ``out_dir`` as it was; with ``overwrite`` a previous
    set there is replaced only then).

    Args:
        n_images: images in all splits together (:func:`split_counts`).
        size: image side in pixels, 64 to 256.
        overwrite: replace a previous mumo scenes set in ``out_dir``.
        workers: processes (default: the CPUs, at most 8); on Linux only, one elsewhere.
        progress: called with the number of images each time a chunk is finished (e.g. ``tqdm.update``).

    Returns:
        The contents of ``meta.json``.

    Raises:
        MumoError: a bad argument (:func:`check_arguments`), or writing failed.
    """
    check_arguments(out_dir, n_images=n_images, seed=seed, size=size, overwrite=overwrite)
    counts = split_counts(n_images)
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    with staged_output(out_dir, replace=overwrite) as out:
        jobs = []
        for split in SPLITS:
            (out / "images" / split).mkdir(parents=True)
            (out / "masks" / split).mkdir(parents=True)
            jobs += [(str(out), split, c, seed, size, counts[split]) for c in range(-(-counts[split] // CHUNK))]
        with contextlib.ExitStack() as stack:
            pool = _pool(min(workers, len(jobs)))
            if pool is not None:
                stack.callback(pool.join)
                stack.callback(pool.terminate)
            files = {
                s: stack.enter_context(open(out / f"{s}.jsonl", "w", encoding="utf-8", newline="\n")) for s in SPLITS
            }
            chunks = pool.imap(_generate_chunk, jobs) if pool else map(_generate_chunk, jobs)
            for (_, split, *_), records in zip(jobs, chunks, strict=True):
                for r in records:
                    files[split].write(json.dumps(r, separators=(",", ":")) + "\n")
                if progress is not None:
                    progress(len(records))
        meta = _meta(seed, size, counts)
        (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def _meta(seed: int, size: int, counts: dict[str, int]) -> dict:
    from mumo.data.scenes.questions import ANSWERS, FAMILIES, QUESTIONS_PER_IMAGE

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "image_size": size,
        "counts": counts,
        "questions_per_image": QUESTIONS_PER_IMAGE,
        "captions_per_image": CAPTIONS_PER_IMAGE,
        "shapes": list(graph.SHAPES),
        "colors": {k: list(v) for k, v in graph.COLORS.items()},
        "sizes": list(graph.SIZES),
        "materials": list(graph.MATERIALS),
        "places": list(graph.PLACES),
        "relations": list(graph.RELATIONS),
        "families": list(FAMILIES),
        "answers": list(ANSWERS),
        "held_out": {"pairs": [list(p) for p in HELD_OUT_PAIRS], "places": list(HELD_OUT_PLACES)},
    }


def read_meta(root: str | Path) -> dict:
    """``meta.json`` of a generated data set, checked for completeness, format and version."""
    path = Path(root) / META_FILE
    if not path.is_file():
        raise MumoError(
            f"incomplete mumo scenes directory: {path} is missing (generate the set with `mumo data scenes`)"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MumoError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MumoError(f"{path} is not a mumo scenes data set (format {FORMAT!r} expected)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise MumoError(
            f"{path} has mumo scenes format version {meta.get('format_version')}, this mumo reads version "
            f"{FORMAT_VERSION}; regenerate it with `mumo data scenes`"
        )
    return meta


def read_records(root: str | Path, split: str) -> list[dict]:
    """The parsed ``{split}.jsonl`` lines of a generated data set, checked against ``meta.json``'s count."""
    if split not in SPLITS:
        raise MumoError(f"mumo scenes split must be one of {', '.join(SPLITS)}, not {split!r}")
    root = Path(root)
    meta = read_meta(root)
    return read_jsonl(root / f"{split}.jsonl", expected=meta.get("counts", {}).get(split), what="mumo scenes")


def load_masks(root: str | Path, record: dict) -> np.ndarray:
    """(O, H, W) bool visible masks of one record's objects, in drawing order."""
    path = Path(root) / record["masks"]
    if not path.is_file():
        raise MumoError(f"incomplete mumo scenes directory: {path} is missing")
    with np.load(path) as z:
        return z["masks"]


def question_masks(root: str | Path, split: str) -> np.ndarray:
    """Per question (records in order, then their questions), the union of the visible masks of the objects it
    refers to: (Q, H, W) bool; all False for a question that refers to no object (a place question)."""
    out = []
    size = int(read_meta(root)["image_size"])
    for record in read_records(root, split):
        masks = load_masks(root, record)  # (O, H, W)
        for q in record["questions"]:
            idx = [int(i) for i in q["objects"]]
            if any(not 0 <= i < len(masks) for i in idx):
                raise MumoError(
                    f"mumo scenes {split} image {record['image_id']}: question {q['question']!r} refers to "
                    f"objects {idx}, the scene has {len(masks)}"
                )
            out.append(masks[idx].any(axis=0) if idx else np.zeros((size, size), bool))
    return np.stack(out) if out else np.zeros((0, size, size), bool)


def default_root() -> Path:
    """The cached default set (10,000 images at 128 px, seed 0) under :func:`~mumo.data._output.cache_dir`,
    generated on first use (about a minute on 2 cores), with a progress bar on stderr."""
    from mumo.data._output import cache_dir

    root = cache_dir() / f"scenes-v{FORMAT_VERSION}-seed0"
    if not (root / META_FILE).exists():
        from tqdm.auto import tqdm

        if root.exists() and any(root.iterdir()):  # not a scenes set (no meta.json): an old partial set; replace it
            import shutil

            shutil.rmtree(root)
        print(f"generating mumo scenes into {root} (first use)", file=sys.stderr)
        with tqdm(total=DEFAULT_IMAGES, desc="scenes", unit="img", leave=False) as bar:
            generate(root, n_images=DEFAULT_IMAGES, seed=0, progress=bar.update)
    return root
