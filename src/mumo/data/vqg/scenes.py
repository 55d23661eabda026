"""mumo scenes as question-generation data: one :class:`~mumo.data.vqg.records.VQGImage` per image."""

from __future__ import annotations

from pathlib import Path

from mumo.data.scenes.dataset import read_meta, read_records
from mumo.data.vqg.records import VQGImage


def load_scenes_vqg(root: str | Path, split: str, *, max_images: int = 0) -> list[VQGImage]:
    """The images of a split with their questions (all of them, in the set's order), 5 captions, place, tags and
    scene-graph record with the set's ``image_size`` (the executor checks generated questions against it).
    ``max_images`` > 0: the first that many."""
    root = Path(root)
    size = int(read_meta(root)["image_size"])
    records = read_records(root, split)
    if max_images:
        records = records[:max_images]
    return [
        VQGImage(
            image_id=f"{split}/{r['image_id']}",
            image=root / r["image"],
            questions=tuple(q["question"] for q in r["questions"]),
            captions=tuple(r["captions"]),
            place=r["place"],
            tags=tuple(r["tags"]),
            scene={**r, "image_size": size},
        )
        for r in records
    ]
