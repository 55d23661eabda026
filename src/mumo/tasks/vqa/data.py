"""The VQA task's data sets: easy-VQA, Sort-of-CLEVR, mumo scenes and VQA v2, loaded by name from a config."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mumo.data._output import cache_dir
from mumo.data.text import Vocab
from mumo.data.vqa.split import VQASplit
from mumo.errors import ConfigError
from mumo.tasks.vqa.config import RunConfig

DATASETS = ("easy-vqa", "sort-of-clevr", "scenes", "vqa-v2")


@dataclass
class VQAData:
    """Splits plus the vocabulary and answer list."""

    train: VQASplit
    val: VQASplit
    test: VQASplit
    vocab: Vocab
    answers: list[str]


def load_data(cfg: RunConfig) -> VQAData:
    """Load the data set named by ``cfg.data.name``."""
    d = cfg.data
    if cfg.objective.attention_loss == "masks" and d.name not in ("sort-of-clevr", "scenes"):
        raise ConfigError(
            f"objective.attention_loss=masks trains attention on ground-truth object masks, which {d.name} does not "
            "have; "
            "use data.name=sort-of-clevr or scenes, or another attention_loss (mse, aan, paan, gca)"
        )
    if d.name == "easy-vqa":
        from mumo.data.vqa.easy_vqa import load_easy_vqa

        ds = load_easy_vqa(
            val_fraction=d.val_fraction, seed=cfg.train.seed, max_question_len=d.max_question_len,
            image_size=d.image_size, max_train_images=d.max_train_images,
        )  # fmt: skip
        return VQAData(ds.train, ds.val, ds.test, ds.vocab, ds.answers)
    if d.name == "sort-of-clevr":
        return _load_sort_of_clevr(cfg)
    if d.name == "scenes":
        return _load_scenes(cfg)
    if d.name == "vqa-v2":  # test = the val2014 files when present, else carved from train like val
        from mumo.data.vqa.split import carve_validation
        from mumo.data.vqa.vqa_v2 import has_split, load_vqa_v2

        if not d.root:
            raise ConfigError("data.name=vqa-v2 needs data.root: the directory of the official VQA v2 files")
        kw = dict(features=cfg.model.image_encoder == "regions", max_question_len=d.max_question_len,
                  image_size=d.image_size)  # fmt: skip
        full, vocab, answers, rep = load_vqa_v2(d.root, split="train", **kw)
        if has_split(d.root, "val"):
            test, _, _, test_rep = load_vqa_v2(d.root, split="val", vocab=vocab, answers=answers, **kw)
        else:
            full, test = carve_validation(full, val_fraction=d.val_fraction, seed=cfg.train.seed + 1)
            test.name, test_rep = "test", None
        train, val = carve_validation(
            full, val_fraction=d.val_fraction, seed=cfg.train.seed, max_train_images=d.max_train_images
        )
        for r in (rep, test_rep):
            if r and r["unanswerable"]:
                print(f"VQA v2 {r['split']}: {r['unanswerable']} of {r['num_questions']} questions have no "
                      f"answer in the {len(answers)}-answer list (all-zero targets)", file=sys.stderr)  # fmt: skip
        return VQAData(train, val, test, vocab, answers)
    raise ConfigError(f"unknown VQA data set {d.name!r}; choose one of: {', '.join(DATASETS)}")


def sort_of_clevr_root(cfg: RunConfig) -> Path:
    """The Sort-of-CLEVR directory a config reads: ``data.root``, or the cached default data set
    (9,800 / 200 images, seed 0), generated on first use."""
    from mumo.data.vqa import sort_of_clevr as soc

    if cfg.data.root:
        return Path(cfg.data.root)
    root = cache_dir() / "sort-of-clevr-v1-seed0"
    if not (root / "meta.json").exists():
        if root.exists():  # an interrupted generation: start again
            import shutil

            shutil.rmtree(root)
        print(f"generating Sort-of-CLEVR into {root} (first use)", file=sys.stderr)
        soc.generate(root, n_train=9800, n_test=200, seed=0)
    return root


def _load_sort_of_clevr(cfg: RunConfig) -> VQAData:
    """Sort-of-CLEVR from ``data.root``, or generated once (9,800 / 200 images, seed 0) into the cache."""
    from mumo.data.vqa import sort_of_clevr as soc
    from mumo.data.vqa.split import carve_validation

    d = cfg.data
    root = sort_of_clevr_root(cfg)
    full, vocab, answers = soc.load_sort_of_clevr(
        root, split="train", max_question_len=d.max_question_len, image_size=d.image_size,
        object_masks=cfg.objective.attention_loss == "masks",
    )  # fmt: skip
    test, _, _ = soc.load_sort_of_clevr(
        root, split="test", vocab=vocab, max_question_len=d.max_question_len, image_size=d.image_size
    )
    train, val = carve_validation(
        full, val_fraction=d.val_fraction, seed=cfg.train.seed, max_train_images=d.max_train_images
    )
    return VQAData(train, val, test, vocab, list(answers))


def scenes_root(cfg: RunConfig) -> Path:
    """The mumo scenes directory a config reads: ``data.root``, or the cached default set (10,000 images at 128 px,
    seed 0), generated on first use (about a minute on 2 cores)."""
    from mumo.data.scenes.dataset import default_root

    return Path(cfg.data.root) if cfg.data.root else default_root()


def _load_scenes(cfg: RunConfig) -> VQAData:
    """mumo scenes' train, val and test splits from ``data.root``, or the cached default set."""
    from mumo.data.vqa.scenes import load_scenes

    d = cfg.data
    root = scenes_root(cfg)
    kw = dict(max_question_len=d.max_question_len, image_size=d.image_size)
    masks = cfg.objective.attention_loss == "masks"  # training reads them; val and test never do
    train, vocab, answers = load_scenes(root, split="train", object_masks=masks, **kw)
    val, _, _ = load_scenes(root, split="val", vocab=vocab, **kw)
    test, _, _ = load_scenes(root, split="test", vocab=vocab, **kw)
    if d.max_train_images > 0:
        train = train.first_images(d.max_train_images)
        val = val.first_images(max(1, d.max_train_images // 4))
        train.name, val.name = "train", "val"
    return VQAData(train, val, test, vocab, answers)


def scenes_shift_split(cfg: RunConfig, vocab: Vocab) -> VQASplit:
    """The ``test-shift`` split of a run's mumo scenes set: held-out colour-shape pairs and places."""
    from mumo.data.vqa.scenes import load_scenes

    if cfg.data.name != "scenes":
        raise ConfigError(
            f"scenes-shift is the compositional split of mumo scenes; this run trained on {cfg.data.name}"
        )
    split, _, _ = load_scenes(
        scenes_root(cfg), split="test-shift", vocab=vocab, max_question_len=cfg.data.max_question_len,
        image_size=cfg.data.image_size,
    )  # fmt: skip
    return split
