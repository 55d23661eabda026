"""Shared fixtures: tiny configs, easy-VQA loaded once, a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_OVERRIDES = [
    "model.hidden=16", "model.heads=2", "model.layers=1", "model.ff=32", "model.flat_mlp=16",
    "model.flat_out=32", "model.word_dim=16", "model.cnn_channels=[8,8,16,16]", "model.cnn_pool=4",
    "train.batch_size=16", "train.eval_batch_size=64", "train.lr=3e-3", "train.warmup_epochs=0",
    "train.decay_epochs=[]",
]  # fmt: skip


def tiny_config(*extra: str):
    from mumo.tasks import load_config

    return load_config("mcan-cpu", [*TINY_OVERRIDES, *extra])


@pytest.fixture(scope="session")
def easy_vqa_data():
    from mumo.tasks import load_config
    from mumo.tasks.vqa.data import load_data

    return load_data(load_config("mcan-cpu"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny model trained for 2 epochs on 300 easy-VQA images."""
    from mumo.tasks.vqa.train import train_vqa

    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = tiny_config("train.epochs=2", "data.max_train_images=300")
    train_vqa(cfg, out, progress=False, evaluate_test=False)
    return out


@pytest.fixture(scope="session")
def tiny_member_run(tmp_path_factory) -> Path:
    """A second deep-ensemble member of ``tiny_run``'s recipe (train.member=1: the same split, other weights)."""
    from mumo.tasks.vqa.train import train_vqa

    out = tmp_path_factory.mktemp("runs") / "tiny-member1"
    cfg = tiny_config("train.epochs=2", "data.max_train_images=300", "train.member=1")
    train_vqa(cfg, out, progress=False, evaluate_test=False)
    return out


@pytest.fixture(scope="session")
def shape_png(tmp_path_factory) -> Path:
    """A real easy-VQA test image (a shape on a light background), copied to a temporary file."""
    import shutil

    import easy_vqa

    path = tmp_path_factory.mktemp("img") / "shape.png"
    shutil.copy(easy_vqa.get_test_image_paths()[0], path)
    return path
