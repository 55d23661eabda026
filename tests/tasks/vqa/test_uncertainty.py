"""OOD detection broken down by question type."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mumo.errors import MumoError
from mumo.tasks.vqa.uncertainty import misclassification_auroc_by_type, ood_auroc_by_type


def test_ood_auroc_by_type_separates_question_types():
    # in-distribution: 2 colour questions (low scores), 2 yes/no; OOD: the same types
    split = SimpleNamespace(question_types=["color", "color", "yes/no", "yes/no", "shape"])
    ood = SimpleNamespace(question_types=["color", "yes/no", "color", "yes/no"])
    in_scores = torch.tensor([0.1, 0.2, 0.5, 0.5, 0.3])
    ood_scores = torch.tensor([0.9, 0.5, 0.8, 0.5])
    res = ood_auroc_by_type(in_scores, split, ood_scores, ood)
    assert set(res) == {"color", "yes/no"}  # "shape" has no OOD questions: left out
    assert res["color"] == pytest.approx(1.0)  # every OOD colour question scores above every clean one
    assert res["yes/no"] == pytest.approx(0.5)  # ties everywhere


def test_misclassification_auroc_by_type_ranks_within_each_type():
    # pooled, every colour question outranks every yes/no one; within each type the wrong answer scores highest
    split = SimpleNamespace(question_types=["color", "color", "color", "yes/no", "yes/no", "yes/no", "shape"])
    scores = torch.tensor([1.0, 1.2, 1.5, 0.1, 0.2, 0.6])
    correct = torch.tensor([True, True, False, True, True, False])
    scores, correct = torch.cat([scores, torch.tensor([0.3])]), torch.cat([correct, torch.tensor([True])])
    res = misclassification_auroc_by_type(scores, correct, split)
    assert res["color"] == pytest.approx(1.0) and res["yes/no"] == pytest.approx(1.0)
    assert res["shape"] != res["shape"]  # one question, answered right: undefined (NaN)


def test_split_features_are_the_fused_vectors_the_classifier_reads(tiny_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.density import split_features
    from mumo.tasks.vqa.model import load_model

    model = load_model(tiny_run)
    val = load_data(Run(tiny_run).config(RunConfig)).val.subset_images(torch.arange(6), "v")
    feats = split_features(model, val, images_per_batch=4)  # two batches
    assert feats.shape == (val.num_questions, model.cfg.flat_out)
    with torch.no_grad():
        batch = val.batch(torch.arange(6))
        logits = model(batch).logits
    # the captured vectors, in question order, are what the answer classifier turned into the logits
    assert torch.allclose(model.classifier(feats[batch.question_ids]), logits, atol=1e-5)


def test_feature_density_joins_the_scores_and_separates_noise_images(tiny_run):
    from mumo.data.shift.ood import ood_split
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    model = load_model(tiny_run)
    data = load_data(Run(tiny_run).config(RunConfig))
    val = data.val.subset_images(torch.arange(40), "v")
    fit = data.train.subset_images(torch.arange(200), "fit")
    res = evaluate_uncertainty(model, val, mc_samples=None, ood=ood_split("noise", val, seed=0), density_fit=fit)
    assert "feature_density" in res["auroc_misclassification_by_score"]
    assert "feature_density" in res["auroc_ood_per_image_by_score"]
    # uniform noise images are far from every training feature even for a 2-epoch model
    assert res["auroc_ood_by_score"]["feature_density"] > 0.9
    assert res["ood_score"] == "predictive_entropy"  # the headline score is unchanged
    same = evaluate_uncertainty(model, val, mc_samples=None, ood=val, density_fit=fit)
    assert same["auroc_ood_by_score"]["feature_density"] == pytest.approx(0.5)
    # a density fitted beforehand (e.g. outside a feature-noise context) gives the same figures
    from mumo.tasks.vqa.density import fit_split_density

    pre = evaluate_uncertainty(model, val, mc_samples=None, ood=val, density=fit_split_density(model, fit))
    assert pre["auroc_ood_by_score"] == same["auroc_ood_by_score"]


def test_run_density_quantile_is_the_fraction_of_validation_scores_below():
    from mumo.tasks.vqa.density import RunDensity

    density = RunDensity(gaussians=None, reference=torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert density.quantile(torch.tensor([0.5, 2.5, 9.0])).tolist() == [0.0, 0.5, 1.0]
    assert [density.percentile(q) for q in (0, 50, 99, 100)] == [1.0, 3.0, 4.0, 4.0]


def test_image_feature_noise_reaches_every_member_and_is_released(tiny_run, tiny_member_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.ensemble import DeepEnsemble
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.predictive import image_feature_noise, predictive_probs

    models = DeepEnsemble([load_model(tiny_run), load_model(tiny_member_run)])
    batch = load_data(Run(tiny_run).config(RunConfig)).val.batch(torch.arange(4))
    clean = predictive_probs(models, batch)  # (2, N, C)
    assert not clean.requires_grad  # evaluation builds no graph
    with image_feature_noise(models, 5.0, seed=1):
        noisy = predictive_probs(models, batch)
    with image_feature_noise(models, 5.0, seed=1):
        again = predictive_probs(models, batch)
    assert torch.equal(noisy, again)  # seeded
    for k in range(2):  # each member's answers moved
        assert not torch.allclose(noisy[k], clean[k], atol=1e-4), k
    assert torch.equal(predictive_probs(models, batch), clean)  # hooks gone
    assert all(not m.image_encoder._forward_hooks for m in models)


def test_mcan_offers_every_capability_and_other_models_get_the_generic_paths():
    from mumo.explain.hooks import resolve_layer
    from mumo.models import create_model
    from mumo.tasks.vqa.density import split_features
    from mumo.tasks.vqa.explain import check_method
    from mumo.types import Explainable, HasDensityLayer, ScopedDropout, TrunkHead
    from mumo.uncertainty.mc_dropout import dropout_modules, has_fast_path
    from tests.conftest import tiny_config

    mcan = create_model(tiny_config().model, vocab=["<pad>", "<unk>", "red"], num_answers=3)
    for capability in (TrunkHead, ScopedDropout, Explainable, HasDensityLayer):
        assert isinstance(mcan, capability), capability.__name__
    plain = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert not any(isinstance(plain, c) for c in (TrunkHead, ScopedDropout, Explainable, HasDensityLayer))
    assert not has_fast_path(plain) and dropout_modules(plain) == [plain[1]]
    with pytest.raises(MumoError, match=r"scope 'head' is not offered by this model; choose one of: all$"):
        dropout_modules(plain, "head")
    with pytest.raises(MumoError, match="Sequential declares no default explanation layer"):
        resolve_layer(plain, None)
    with pytest.raises(MumoError, match=r"no image feature layer \(explain_layer\) for gradcam"):
        check_method(plain, "gradcam")
    check_method(plain, "attention")  # needs no layer
    with pytest.raises(MumoError, match=r"Sequential declares no density_layer\(\)"):
        split_features(plain, None)


def test_exact_match_counts_any_tied_top_answer_and_none_for_an_unanswerable_question():
    from mumo.tasks.vqa.uncertainty import exact_match

    targets = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.3, 1.0, 0.0], [0.6, 0.6, 0.0]])
    probs = torch.tensor([[0.1, 0.2, 0.7], [0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    correct, labels, answerable = exact_match(probs, targets)
    assert correct.tolist() == [True, False, False, True]  # tied top answers 1 and 2: answer 2 is right
    assert answerable.tolist() == [True, False, True, True]  # all-zero targets: no true answer at all
    assert labels[[0, 2, 3]].tolist() == [2, 1, 1]  # the predicted one when tied, else the top one
