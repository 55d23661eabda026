"""VQA v2 official formats: a tiny fixture in the official JSON layout, with COCO-named images and npz features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mumo.cli.__main__ import build_app
from mumo.data.vqa.vqa_v2 import SOFT_SCORES, load_vqa_v2, normalize_answer, soft_score
from mumo.errors import MumoError
from tests.conftest import tiny_config

DIM = 8  # feature size of the fixture
TRAIN_IMAGES = (9, 42, 1000, 123456)
VAL_IMAGES = (7, 8)


def _train_qa() -> list[tuple[str, str, list[str]]]:
    """(answer_type, multiple_choice_answer, 10 answers) for the 12 training questions."""
    qa = [
        ("yes/no", "Yes.", ["yes"] * 4 + ["no"] * 3 + ["two"] * 2 + ["red"]),
        ("number", "two", ["2", "two", "Two"] + ["1,000"] * 7),
        ("other", "A dog", ["a dog"] * 10),
    ]
    qa += [("yes/no", "yes", ["yes"] * 10)] * 8
    qa.append(("yes/no", "yes", ["maybe"] * 10))  # "maybe" is never a multiple-choice answer
    return qa


def _write_split(root: Path, split: str, year: str, image_ids, qa, first_qid: int) -> None:
    questions, annotations = [], []
    for i, (atype, mc, answers) in enumerate(qa):
        image_id = image_ids[i % len(image_ids)]
        qid = first_qid + i
        questions.append({"question_id": qid, "image_id": image_id, "question": f"What is thing {i} in the image?"})
        annotations.append({
            "question_id": qid, "image_id": image_id, "answer_type": atype, "question_type": "what is",
            "multiple_choice_answer": mc,
            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1} for j, a in enumerate(answers)],
        })  # fmt: skip
    name = f"{split}{year}"
    (root / f"v2_OpenEnded_mscoco_{name}_questions.json").write_text(json.dumps({"questions": questions}))
    (root / f"v2_mscoco_{name}_annotations.json").write_text(json.dumps({"annotations": annotations}))
    rng = np.random.default_rng(len(qa))
    (root / "images" / name).mkdir(parents=True)
    (root / "features" / name).mkdir(parents=True)
    for k, image_id in enumerate(image_ids):
        pixels = rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / name / f"COCO_{name}_{image_id:012d}.jpg")
        x = rng.standard_normal((DIM, 3 + k)).astype(np.float32)  # (D, N)
        np.savez(root / "features" / name / f"{image_id}.npz", x=x)


def make_vqa_v2(root: Path, *, with_val: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    _write_split(root, "train", "2014", TRAIN_IMAGES, _train_qa(), first_qid=1000)
    if with_val:
        _write_split(root, "val", "2014", VAL_IMAGES, [("yes/no", "yes", ["yes"] * 10)] * 4, first_qid=5000)
    return root


@pytest.fixture
def root(tmp_path) -> Path:
    return make_vqa_v2(tmp_path / "vqa")


def _targets_by_qid(split, report, answers):
    return {
        qid: {a: float(split.targets[i, j]) for j, a in enumerate(answers) if split.targets[i, j] > 0}
        for i, qid in enumerate(report["question_ids"])
    }


def test_normalisation_is_official_plus_comma_deletion():
    assert normalize_answer("Yes.") == "yes"
    assert normalize_answer("Two") == "2"
    assert normalize_answer("a dog") == "dog"
    assert normalize_answer("1,000") == "1000"
    assert normalize_answer("dont know") == "don't know"
    assert normalize_answer("2.5") == "2.5"


def test_soft_scores_follow_the_reference_table():
    assert SOFT_SCORES == (0.0, 0.3, 0.6, 0.9, 1.0)
    assert [soft_score(k) for k in range(11)] == [0.0, 0.3, 0.6, 0.9] + [1.0] * 7


def test_answer_list_keeps_answers_seen_more_than_min_count(root):
    _, _, answers, _ = load_vqa_v2(root, split="train", features=False)  # default 8: "yes" is seen 10 times
    assert answers == ["yes"]
    assert load_vqa_v2(root, split="train", features=False, min_answer_count=9)[2] == ["yes"]
    assert load_vqa_v2(root, split="train", features=False, min_answer_count=10)[2] == []  # more than, not equal
    assert load_vqa_v2(root, split="train", features=False, min_answer_count=0)[2] == ["yes", "2", "dog"]


def test_soft_targets_types_and_unanswerable_count(root):
    split, _, answers, rep = load_vqa_v2(root, split="train", features=False, min_answer_count=0)
    t = _targets_by_qid(split, rep, answers)
    assert t[1000] == pytest.approx({"yes": 1.0, "2": 0.6})  # 4 yes, 2 "two"; "no", "red" are not in the list
    assert t[1001] == pytest.approx({"2": 0.9})  # "2", "two", "Two"; "1000" is not in the list
    assert t[1002] == pytest.approx({"dog": 1.0})
    assert t[1011] == {}
    assert rep["unanswerable"] == 1 and rep["num_questions"] == 12 and rep["num_images"] == 4
    assert rep["answers_out_of_list"] == 4 + 7 + 10
    types = dict(zip(rep["question_ids"], split.question_types, strict=True))
    assert (types[1000], types[1001], types[1002]) == ("yes/no", "number", "other")
    _, _, answers, rep = load_vqa_v2(root, split="train", features=False)
    assert rep["unanswerable"] == 3  # only "yes" is in the default list


def test_images_variant(root):
    split, _, _, rep = load_vqa_v2(root, split="train", features=False, image_size=24)
    assert split.images.shape == (4, 3, 24, 24) and split.images.dtype == torch.uint8
    assert split.image_ids == list(TRAIN_IMAGES)
    assert split.tokens.shape == (12, 14)
    # questions are grouped by image, in file order within an image
    assert rep["question_ids"] == [1000, 1004, 1008, 1001, 1005, 1009, 1002, 1006, 1010, 1003, 1007, 1011]
    image_of_question = [split.image_ids[i] for i in split.image_index.tolist()]
    assert image_of_question == [TRAIN_IMAGES[(q - 1000) % 4] for q in rep["question_ids"]]


def test_features_variant_is_transposed_and_zero_padded(root):
    split, _, _, _ = load_vqa_v2(root, split="train", features=True, max_regions=10)
    assert split.images.shape == (4, 10, DIM) and split.images.dtype == torch.float32
    x = np.load(root / "features" / "train2014" / "42.npz")["x"]  # (D, 4)
    assert torch.equal(split.images[1, :4], torch.from_numpy(x.T))
    assert not split.images[1, 4:].any()


def test_val_split_uses_train_vocab_and_answers(tmp_path):
    root = make_vqa_v2(tmp_path / "vqa", with_val=True)
    _, vocab, answers, _ = load_vqa_v2(root, split="train", features=False)
    val, vocab2, answers2, rep = load_vqa_v2(root, split="val", features=True, vocab=vocab, answers=answers)
    assert vocab2 is vocab and answers2 == answers
    assert rep["question_ids"] == [5000, 5002, 5001, 5003] and rep["unanswerable"] == 0
    assert torch.equal(val.targets, torch.ones(4, 1))


# --- errors -------------------------------------------------------------------------------------------


def _edit_json(path: Path, key: str, fn) -> None:
    obj = json.loads(path.read_text())
    fn(obj[key])
    path.write_text(json.dumps(obj))


def test_missing_questions_file(tmp_path):
    with pytest.raises(MumoError, match=r"v2_OpenEnded_mscoco_train2014_questions\.json"):
        load_vqa_v2(tmp_path, split="train", features=False)


def test_missing_annotations_file(root):
    (root / "v2_mscoco_train2014_annotations.json").unlink()
    with pytest.raises(MumoError, match=r"v2_mscoco_train2014_annotations\.json"):
        load_vqa_v2(root, split="train", features=False)


def test_json_without_the_top_level_key(root):
    (root / "v2_mscoco_train2014_annotations.json").write_text(json.dumps({"questions": []}))
    with pytest.raises(MumoError, match=r"annotations\.json has no 'annotations' list"):
        load_vqa_v2(root, split="train", features=False)


def test_not_json(root):
    (root / "v2_OpenEnded_mscoco_train2014_questions.json").write_text("{not json")
    with pytest.raises(MumoError, match=r"questions\.json is not valid JSON"):
        load_vqa_v2(root, split="train", features=False)


@pytest.mark.parametrize(
    ("file", "key", "field"),
    [
        ("v2_OpenEnded_mscoco_train2014_questions.json", "questions", "image_id"),
        ("v2_mscoco_train2014_annotations.json", "annotations", "answers"),
        ("v2_mscoco_train2014_annotations.json", "annotations", "answer_type"),
        ("v2_mscoco_train2014_annotations.json", "annotations", "multiple_choice_answer"),
    ],
)
def test_entry_without_a_field(root, file, key, field):
    _edit_json(root / file, key, lambda items: items[3].pop(field))
    with pytest.raises(MumoError, match=rf"{file}: entry 3 has no '{field}' field"):
        load_vqa_v2(root, split="train", features=False)


def test_question_ids_differ_between_files(root):
    _edit_json(root / "v2_mscoco_train2014_annotations.json", "annotations", lambda items: items.pop(5))
    with pytest.raises(MumoError, match=r"question ids differ .* 1 without annotation \(e\.g\. \[1005\]\)"):
        load_vqa_v2(root, split="train", features=False)


def test_missing_image_file(root):
    (root / "images" / "train2014" / "COCO_train2014_000000000042.jpg").unlink()
    with pytest.raises(MumoError, match=r"image file not found: .*COCO_train2014_000000000042\.jpg"):
        load_vqa_v2(root, split="train", features=False)


def test_missing_feature_file(root):
    (root / "features" / "train2014" / "1000.npz").unlink()
    with pytest.raises(MumoError, match=r"feature file not found: .*1000\.npz"):
        load_vqa_v2(root, split="train", features=True)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (np.zeros((DIM, 101), np.float32), r"\(8, N\) float with 1 <= N <= 100"),  # too many regions
        (np.zeros((DIM + 1, 3), np.float32), r"\(8, N\) float"),  # another D than the first file's
        (np.zeros(DIM, np.float32), r"\(8, N\) float"),
        (np.zeros((DIM, 3), np.int64), r"\(8, N\) float"),  # int64 (8, 3)
    ],
)
def test_feature_file_of_the_wrong_shape_or_dtype(root, x, expected):
    np.savez(root / "features" / "train2014" / "1000.npz", x=x)
    with pytest.raises(MumoError, match=rf"feature file .*1000\.npz holds .*; expected {expected}"):
        load_vqa_v2(root, split="train", features=True)


def test_feature_file_without_key_x(root):
    np.savez(root / "features" / "train2014" / "9.npz", feats=np.zeros((DIM, 3), np.float32))
    with pytest.raises(MumoError, match=r"9\.npz has no key 'x'"):
        load_vqa_v2(root, split="train", features=True)


# --- training and the results file ----------------------------------------------------------------------


def _train_and_results(root: Path, out: Path, *extra: str) -> list[dict]:
    from mumo.tasks.vqa.train import train_vqa

    cfg = tiny_config("data.name=vqa-v2", f"data.root={root}", "train.epochs=1", "data.val_fraction=0.25", *extra)
    summary = train_vqa(cfg, out / "run", progress=False)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    result = CliRunner().invoke(
        build_app(), ["evaluate", str(out / "run"), "--results-json", str(out / "results.json"), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results_json"] == str(out / "results.json")
    records = json.loads((out / "results.json").read_text())
    assert all(set(r) == {"question_id", "answer"} for r in records)
    assert all(isinstance(r["question_id"], int) and r["answer"] == "yes" for r in records)  # the only answer
    return records


def test_train_on_images_and_write_results_for_the_carved_test_split(root, tmp_path):
    records = _train_and_results(root, tmp_path)
    ids = [r["question_id"] for r in records]
    assert len(ids) == len(set(ids)) == 3  # test = one of the four images, carved from train
    image_of = {q: TRAIN_IMAGES[(q - 1000) % 4] for q in range(1000, 1012)}
    assert len({image_of[q] for q in ids}) == 1


def test_train_on_features_and_write_results_for_val2014(tmp_path):
    root = make_vqa_v2(tmp_path / "vqa", with_val=True)
    records = _train_and_results(root, tmp_path, "model.image_encoder=regions", f"model.region_dim={DIM}")
    assert sorted(r["question_id"] for r in records) == [5000, 5001, 5002, 5003]  # exactly the annotation set
    # a shift on region features: feature noise works, pixel noise says why not
    app, run = build_app(), str(tmp_path / "run")
    result = CliRunner().invoke(app, ["evaluate", run, "--feature-noise", "1", "--mc-samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["shift"] == {"feature_noise": 1.0}
    result = CliRunner().invoke(app, ["evaluate", run, "--pixel-noise", "0.3"])
    assert result.exit_code == 2 and "region features" in result.output and "Traceback" not in result.output


def test_results_json_needs_a_vqa_v2_run(tiny_run, tmp_path):
    result = CliRunner().invoke(build_app(), ["evaluate", str(tiny_run), "--results-json", str(tmp_path / "r.json")])
    assert result.exit_code == 2 and "needs a vqa-v2 run" in result.output, result.output
    assert not (tmp_path / "r.json").exists()


def test_results_json_of_a_deep_ensemble_covers_the_same_questions(root, tmp_path):
    from mumo.tasks.vqa.train import train_vqa

    single = _train_and_results(root, tmp_path)
    cfg = tiny_config("data.name=vqa-v2", f"data.root={root}", "train.epochs=1", "data.val_fraction=0.25",
                      "train.member=1")  # fmt: skip
    train_vqa(cfg, tmp_path / "member1", progress=False, evaluate_test=False)
    out = tmp_path / "ensemble.json"
    result = CliRunner().invoke(
        build_app(),
        ["evaluate", str(tmp_path / "run"), "--ensemble", str(tmp_path / "member1"), "--results-json", str(out),
         "--density-images", "0", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ensemble_members"] == 2
    records = json.loads(out.read_text())
    # the member shares the carved split (train.member keeps train.seed): the same test questions
    assert sorted(r["question_id"] for r in records) == sorted(r["question_id"] for r in single)
    # one answer in the list ("yes"): every question whose annotators said "yes" is answered right, and the
    # others have no answer in the vocabulary, so they are wrong (not right because their all-zero targets
    # pointed at answer 0) and have no label for calibration
    result = CliRunner().invoke(build_app(), ["evaluate", str(tmp_path / "run"), "--mc-samples", "2", "--json"])
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    unanswerable = res["questions_without_a_correct_answer"]
    assert 0 < unanswerable < res["num_questions"]
    assert res["accuracy_mean_prediction"] == pytest.approx(1 - unanswerable / res["num_questions"])
