"""``VQAPredictor.predict_many``: B questions in one forward pass give the answers of B ``predict`` calls."""

from __future__ import annotations

import easy_vqa
import pytest
import torch

from mumo.data.text import Vocab
from mumo.errors import MumoError
from mumo.models import create_model
from mumo.runs import Run
from mumo.serve.predict import load
from mumo.tasks.vqa.ensemble import DeepEnsemble
from mumo.tasks.vqa.predictor import VQAPredictor
from tests._close import assert_close
from tests.conftest import tiny_config

N = 5  # items per batch


@pytest.fixture(scope="module")
def items() -> tuple[list[str], list[str]]:
    """N easy-VQA test images with one question each, all different."""
    questions, _, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    picked = range(0, 40 * N, 40)
    return [paths[image_ids[i]] for i in picked], [questions[i] for i in picked]


@pytest.fixture(scope="module")
def predictor(tiny_run) -> VQAPredictor:
    return load(tiny_run, device="cpu")


def check_batch_equals_singles(predictor: VQAPredictor, images: list, questions: list[str], **options) -> None:
    many = predictor.predict_many(images, questions, **options)
    assert len(many) == len(images)
    for image, question, batched in zip(images, questions, many, strict=True):
        alone = predictor.predict(image, question, **options)
        assert batched.question == question
        assert_close(batched.to_dict(), alone.to_dict())


@pytest.mark.parametrize(
    "options",
    [{}, {"mc_samples": 6}, {"mc_samples": 4, "mc_scope": "attflat", "top_k": 5}, {"abstain": 0.5}],
    ids=["deterministic", "mc", "mc-attflat", "abstain"],
)
def test_a_batch_answers_as_each_item_alone(predictor, items, options):
    check_batch_equals_singles(predictor, *items, **options)


def test_mc_samples_of_an_item_do_not_depend_on_its_batch(predictor, items):
    """Each row draws the masks a batch of that row alone draws: the same item in two batches, same figures."""
    images, questions = items
    first = predictor.predict_many(images, questions, mc_samples=5)[2]
    again = predictor.predict_many(images[2:4], questions[2:4], mc_samples=5)[0]
    assert_close(first.to_dict(), again.to_dict())
    other_seed = predictor.predict_many(images, questions, mc_samples=5, seed=1)[2]
    assert other_seed.uncertainty.epistemic != first.uncertainty.epistemic  # the seed still matters


def test_image_uncertainty_is_per_item(predictor, items):
    images, questions = items
    check_batch_equals_singles(predictor, images[:3], questions[:3], mc_samples=3, image_uncertainty=True,
                               question_bank_size=4)  # fmt: skip


def test_logit_noise_and_a_stochastic_trunk_and_an_ensemble_are_per_item(tiny_run, items):
    """An aleatoric head (per-row logit noise), CNN dropout (the naive T-pass path) and two members."""
    art = Run(tiny_run).artifacts
    cfg = tiny_config("model.aleatoric=kendall-gal", "model.cnn_dropout=0.2")
    models = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        models.append(create_model(cfg.model, vocab=art["vocab"], num_answers=len(art["answers"])).eval())
    vocab, answers = Vocab(art["vocab"]), art["answers"]
    images, questions = items
    one = VQAPredictor(models[0], cfg, vocab, answers)
    check_batch_equals_singles(one, images, questions)
    check_batch_equals_singles(one, images, questions, mc_samples=4)
    both = VQAPredictor(DeepEnsemble(models), cfg, vocab, answers)
    check_batch_equals_singles(both, images, questions, mc_samples=3)


def test_bad_batches_are_refused(predictor, items):
    images, questions = items
    assert predictor.predict_many([], []) == []
    with pytest.raises(MumoError, match="2 images but 1 questions"):
        predictor.predict_many(images[:2], questions[:1])
    with pytest.raises(MumoError, match="question is empty"):
        predictor.predict_many(images[:2], [questions[0], "  "])
