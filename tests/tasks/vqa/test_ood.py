"""The default out-of-distribution check: fitted by training, stored with the run, refitted by fit-density."""

from __future__ import annotations

import shutil

import pytest
import torch

from mumo.data.shift.ood import ood_split
from mumo.errors import MumoError
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.data import load_data
from mumo.tasks.vqa.model import load_model
from mumo.tasks.vqa.ood import OOD_FILE, load_ood_check, pooled_image_features, split_image_features
from mumo.uncertainty.knn import conformal_threshold
from tests.reliability._cli import mumo


@pytest.fixture(scope="module")
def fitted(tiny_run):
    data = load_data(Run(tiny_run).config(RunConfig))
    return load_ood_check(tiny_run), load_model(tiny_run), data


def test_training_stores_the_check_with_its_stated_false_refusal_bound(tiny_run, fitted):
    check, _, data = fitted
    assert (tiny_run / OOD_FILE).is_file() and check is not None
    n = check.reference.numel()
    assert n == data.val.num_images and check.bank.shape[0] == data.train.num_images
    assert check.alpha == pytest.approx(max(0.01, 1 / (n + 1)))
    assert check.threshold == conformal_threshold(check.reference, check.alpha)
    assert torch.allclose(check.bank.norm(dim=-1), torch.ones(check.bank.shape[0]))


def test_it_refuses_images_unlike_the_training_images_and_few_like_them(fitted):
    check, model, data = fitted
    test = data.test.first_images(200)
    flagged = {"test": (check.score(split_image_features(model, test)) > check.threshold).float().mean().item()}
    for name in ("photos", "noise", "textures"):
        scores = check.score(split_image_features(model, ood_split(name, test, seed=1)))
        flagged[name] = (scores > check.threshold).float().mean().item()
    assert flagged["test"] <= 0.05, flagged
    assert min(flagged["photos"], flagged["noise"], flagged["textures"]) >= 0.9, flagged


def test_pooled_features_are_the_mean_and_spread_over_cells():
    grid = torch.tensor([[[1.0, 0.0], [3.0, 2.0]]])  # (N=1, R=2, C=2)
    assert torch.equal(pooled_image_features(grid), torch.tensor([[2.0, 1.0, 1.0, 1.0]]))


def test_a_run_without_a_check_loads_as_none_and_a_corrupted_one_is_named(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / OOD_FILE).unlink()
    assert load_ood_check(run) is None
    (run / OOD_FILE).write_bytes(b"not safetensors")
    with pytest.raises(MumoError, match=f"corrupted run: {run / OOD_FILE}"):
        load_ood_check(run)


def test_fit_density_fits_the_check_for_a_run_trained_without_one(tiny_run, tmp_path, fitted):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    (run / OOD_FILE).unlink()
    result = mumo("fit-density", run, "--images", "50", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert f"wrote {run / OOD_FILE}" in result.stdout
    refit = load_ood_check(run)
    assert refit.threshold == pytest.approx(fitted[0].threshold, rel=1e-5)  # the same as training's


def _photo(tmp_path, seed: int = 0):
    import numpy as np
    from PIL import Image

    from mumo.data.shift.ood import _photo_crop, _photographs

    path = tmp_path / f"photo{seed}.png"
    Image.fromarray(_photo_crop(np.random.default_rng(seed), 64, _photographs())).save(path)
    return path


def test_predict_says_dont_know_about_a_photograph_by_default_and_why(tiny_run, shape_png, tmp_path):
    import mumo as mumo_api

    predictor = mumo_api.load(tiny_run, device="cpu")
    pred = predictor.predict(_photo(tmp_path), "what color is the shape?", mc_samples=4)
    o = pred.out_of_distribution
    assert o["out_of_distribution"] and o["score"] > o["threshold"] and o["method"] == "image_knn"
    assert pred.abstained and pred.answer == "don't know" and pred.best_guess == pred.top_k[0].answer
    assert pred.abstain_reason.startswith("out of distribution")
    assert pred.to_dict()["out_of_distribution"] == o
    answered = predictor.predict(_photo(tmp_path), "what color is the shape?", ood_check=False)
    assert not answered.abstained and answered.out_of_distribution["out_of_distribution"]  # reported, not acted on
    own = predictor.predict(shape_png, "what color is the shape?")
    assert not own.out_of_distribution["out_of_distribution"] and not own.abstained
    # the score depends on the image only, and MC passes do not move it
    other = predictor.predict(shape_png, "what shape is in the image?", mc_samples=4)
    assert other.out_of_distribution["score"] == pytest.approx(own.out_of_distribution["score"], rel=1e-5)


def test_a_run_trained_before_the_check_still_answers_and_says_so_once(tiny_run, shape_png, tmp_path):
    import mumo as mumo_api
    from mumo.errors import NoOODCheckWarning

    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    (run / OOD_FILE).unlink()
    with pytest.warns(NoOODCheckWarning, match="no out-of-distribution check"):
        predictor = mumo_api.load(run, device="cpu")
    pred = predictor.predict(_photo(tmp_path), "what color is the shape?")
    assert pred.out_of_distribution is None and not pred.abstained
    result = mumo("predict", run, "--image", _photo(tmp_path), "--question", "what color is the shape?", "--json")
    assert result.returncode == 0 and result.stderr.count("note: ") == 1 and "mumo fit-density" in result.stderr


def test_the_cli_reports_the_check_and_no_ood_check_turns_the_refusal_off(tiny_run, tmp_path):
    import json

    args = ["predict", tiny_run, "--image", _photo(tmp_path), "--question", "what color is the shape?"]
    text = mumo(*args)
    assert text.returncode == 0 and text.stdout.startswith("don't know (out of distribution")
    assert "image: OUT OF DISTRIBUTION" in text.stdout
    off = json.loads(mumo(*args, "--no-ood-check", "--json").stdout)
    assert not off["abstained"] and off["out_of_distribution"]["out_of_distribution"]
