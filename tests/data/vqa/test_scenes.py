"""mumo scenes as a VQA data set: the loader, and a tiny MCAN trained, evaluated (per family, scenes-shift) and
explained against the referred objects' masks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mumo.data.scenes.dataset import generate, read_records
from mumo.data.vqa.scenes import load_scenes
from mumo.errors import ConfigError
from tests.conftest import tiny_config


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scenes") / "set"
    generate(root, n_images=40, seed=0, size=64, workers=1)
    return root


@pytest.fixture(scope="module")
def scenes_run(scenes_root, tmp_path_factory) -> Path:
    from mumo.tasks.vqa.train import train_vqa

    out = tmp_path_factory.mktemp("runs") / "scenes"
    cfg = tiny_config("data.name=scenes", f"data.root={scenes_root}", "data.max_question_len=24", "train.epochs=1")
    train_vqa(cfg, out, progress=False)
    return out


def test_a_split_loads_as_vqa_questions_with_their_families(scenes_root):
    train, vocab, answers = load_scenes(scenes_root, split="train", max_question_len=24)
    shift, _, _ = load_scenes(scenes_root, split="test-shift", vocab=vocab, max_question_len=24, image_size=32)
    records = read_records(scenes_root, "train")
    assert train.num_images == len(records) and train.images.shape[1:] == (3, 64, 64)
    assert shift.images.shape[1:] == (3, 32, 32)
    first = records[0]["questions"][0]
    assert train.questions[0] == first["question"] and train.question_types[0] == first["family"]
    assert answers[int(train.targets[0].argmax())] == first["answer"]
    assert torch.equal(train.targets.sum(1), torch.ones(train.num_questions))
    assert (train.tokens[:, 0] != 0).all()  # every question encoded, none lost to unknown tokens


def test_training_evaluating_and_explaining_on_scenes(scenes_run):
    from mumo.tasks.vqa.evaluate import EvaluateOptions, evaluate_run
    from mumo.tasks.vqa.explain import explain_run

    summary = json.loads((scenes_run / "state.json").read_text())
    assert summary["history"]
    report = evaluate_run(scenes_run, EvaluateOptions(ood="scenes-shift", mc_samples=2, progress=False)).to_dict()
    assert set(report["accuracy_by_type"]) <= {"exist", "count", "query_attribute", "relate_query", "relate_count",
                                               "relate_exist", "compare_count", "compare_attribute", "place_verify",
                                               "place_query"}  # fmt: skip
    assert 0.0 <= report["ood_accuracy"]["accuracy"] <= 1.0 and 0.0 <= report["auroc_ood"] <= 1.0
    res = explain_run(scenes_run, methods=("attention", "gradcam"), progress=False, device="cpu")
    assert res["questions_without_objects"] > 0  # place questions: nothing to point at, left out
    assert res["num_questions"] + res["questions_without_objects"] == 4 * 10
    assert 0.0 <= res["methods"]["gradcam"]["pointing_game"] <= 1.0


def test_scenes_shift_needs_a_scenes_run(tiny_run):
    from mumo.tasks.vqa.evaluate import EvaluateOptions, evaluate_run

    with pytest.raises(ConfigError, match="held-out split of mumo scenes"):
        evaluate_run(tiny_run, EvaluateOptions(ood="scenes-shift", progress=False))


def test_the_default_set_is_generated_into_the_cache_once(tmp_path, monkeypatch):
    from mumo.data.scenes import dataset
    from mumo.tasks import load_config
    from mumo.tasks.vqa.data import scenes_root

    monkeypatch.setenv("MUMO_CACHE", str(tmp_path))
    monkeypatch.setattr(dataset, "DEFAULT_IMAGES", 8)
    leftover = tmp_path / "scenes-v1-seed0"
    leftover.mkdir()
    (leftover / "train.jsonl").write_text("half a set, no meta.json\n")  # an interrupted earlier generation
    root = scenes_root(load_config("mcan-scenes"))
    assert root == leftover and dataset.read_meta(root)["counts"]["train"] == 5
    stamp = (root / "meta.json").stat().st_mtime_ns
    assert scenes_root(load_config("mcan-scenes")) == root and (root / "meta.json").stat().st_mtime_ns == stamp
    custom = load_config("mcan-scenes", [f"data.root={tmp_path / 'mine'}"])
    assert scenes_root(custom) == tmp_path / "mine"  # a root of the user's own is read, never generated


def test_attention_trains_towards_the_reasoning_steps_masks(scenes_root, tmp_path):
    from mumo.models import create_model
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import attention_objective
    from mumo.tasks.vqa.train import train_vqa

    cfg = tiny_config("data.name=scenes", f"data.root={scenes_root}", "data.max_question_len=24", "train.epochs=1",
                      "model.flat_glimpses=2", "objective.attention_loss=masks")  # fmt: skip
    data = load_data(cfg)
    train = data.train
    assert train.object_masks.shape == (train.num_images, 9, 64, 64) and train.question_objects.shape[1:] == (2, 9)
    assert data.test.object_masks is None  # evaluation never reads them
    batch = train.batch(torch.arange(4))
    vqa = create_model(cfg.model, vocab=data.vocab.tokens, num_answers=len(data.answers))
    objective = attention_objective(cfg, vqa, example=batch)
    loss, logs = objective(vqa, batch)
    assert torch.isfinite(loss) and logs["attention_term"] > 0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in vqa.parameters() if p.grad is not None)
    train_vqa(cfg, tmp_path / "run", progress=False, evaluate_test=False)  # the whole loop runs with it
