"""Image-level epistemic uncertainty from a bank of training questions."""

from __future__ import annotations

import pytest
import torch

from mumo.errors import MumoError
from mumo.tasks.vqa.question_bank import bank_mutual_information, question_bank, split_image_mutual_information


@pytest.fixture(scope="module")
def run_data(tiny_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    return load_model(tiny_run), load_data(Run(tiny_run).config(RunConfig))


def test_the_bank_is_distinct_training_questions_drawn_with_a_seed(easy_vqa_data):
    train = easy_vqa_data.train
    bank = question_bank(train, 8, seed=0)
    assert len(bank) == 8 and len(set(bank.questions)) == 8
    assert bank.tokens.shape == (8, train.tokens.shape[1])
    for q, row in zip(bank.questions, bank.tokens, strict=True):  # each row encodes its text, as in the split
        i = train.questions.index(q)
        assert torch.equal(row, train.tokens[i])
    assert question_bank(train, 8, seed=0).questions == bank.questions
    assert question_bank(train, 8, seed=1).questions != bank.questions
    tiny = train.subset_images(torch.arange(2), "two images")
    assert len(question_bank(tiny, 1000)) == len(set(tiny.questions))  # capped at the distinct questions


def test_bad_banks_are_clear_errors(easy_vqa_data):
    with pytest.raises(MumoError, match="at least 1"):
        question_bank(easy_vqa_data.train, 0)
    empty = easy_vqa_data.train.subset_images(torch.zeros(0, dtype=torch.long), "empty")
    with pytest.raises(MumoError, match="no questions"):
        question_bank(empty, 4)


def test_bank_mutual_information_is_one_score_per_image_and_question(run_data):
    model, data = run_data
    bank = question_bank(data.train, 5, seed=0)
    images = data.val.batch(torch.arange(3)).images  # (3, 3, H, W) floats
    mi = bank_mutual_information(model, images, bank, mc_samples=6, seed=2)
    assert mi.shape == (3, 5) and bool((mi >= 0).all())
    assert torch.equal(mi, bank_mutual_information(model, images, bank, mc_samples=6, seed=2))  # seeded
    with pytest.raises(MumoError, match="MC samples must be"):
        bank_mutual_information(model, images, bank, mc_samples=0)


def test_split_scores_follow_batches_and_every_question_carries_its_image(run_data):
    from mumo.data.shift.ood import ood_split
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    model, data = run_data
    val = data.val.subset_images(torch.arange(12), "v")
    bank = question_bank(data.train, 4, seed=0)
    per_image = split_image_mutual_information(model, val, bank, mc_samples=4, images_per_batch=5, seed=0)
    assert per_image.shape == (12,)
    # batches of 5 images: the first batch's scores are what one call on those 5 images gives
    direct = bank_mutual_information(model, val.batch(torch.arange(5)).images, bank, mc_samples=4, seed=0)
    torch.testing.assert_close(per_image[:5], direct.mean(1))

    res = evaluate_uncertainty(model, val, mc_samples=4, ood=ood_split("noise", val, seed=0), question_bank=bank)
    assert "image_mutual_information" in res["auroc_ood_by_score"]
    assert "image_mutual_information" in res["auroc_misclassification_by_score"]
    same = evaluate_uncertainty(model, val, mc_samples=4, ood=val, question_bank=bank)
    assert same["auroc_ood_by_score"]["image_mutual_information"] == pytest.approx(0.5)
    # without MC dropout there is no spread to average: the score is left out
    det = evaluate_uncertainty(model, val, mc_samples=None, ood=val, question_bank=bank)
    assert "image_mutual_information" not in det["auroc_ood_by_score"]


def test_inference_draws_the_bank_from_the_run_without_loading_the_training_set(tiny_run, tmp_path, monkeypatch):
    # a run saves its training questions' order; the predictor's bank is the one drawn from the training split
    import shutil

    import mumo.tasks.vqa.data as vqa_data
    from mumo.runs import Run
    from mumo.serve.predict import load
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.question_bank import QUESTIONS_FILE

    cfg = Run(tiny_run).config(RunConfig)
    expected = {k: question_bank(vqa_data.load_data(cfg).train, k, seed=cfg.train.seed) for k in (1, 8, 500)}
    assert (tiny_run / QUESTIONS_FILE).exists()

    def no_data(_cfg):
        raise AssertionError("inference loaded the training set")

    monkeypatch.setattr(vqa_data, "load_data", no_data)
    predictor = load(tiny_run, device="cpu")
    for k, bank in expected.items():  # 500 > the distinct questions: all of them, as from the split
        got = predictor.question_bank(k)
        assert got.questions == bank.questions and torch.equal(got.tokens, bank.tokens)
    monkeypatch.undo()

    old = tmp_path / "old-run"  # a run trained before the order was saved still draws its bank, from the data
    shutil.copytree(tiny_run, old)
    (old / QUESTIONS_FILE).unlink()
    assert load(old, device="cpu").question_bank(8).questions == expected[8].questions
