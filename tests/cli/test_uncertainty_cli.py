"""Uncertainty through the CLI and the Python API: MC dropout, OOD, abstaining, and bad input."""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.cli.test_cli import _assert_clean_error, mumo

# Evaluate on the first 40 of the tiny run's 75 validation images (about 400 questions) where the assertions
# hold on any subset: the whole split only where a statistic needs it (an AUROC of 1/2) or the batching does.
FEW = ("--images", "40")


def test_evaluate_with_mc_samples_and_ood(tiny_run):
    result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "3", "--ood", "shapes-ood", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    for key in ("ece", "nll", "brier", "auroc_misclassification", "aurc", "auroc_ood", "fpr95_ood"):
        assert isinstance(res[key], float), key
    assert 0 <= res["ece"] <= 1 and res["nll"] > 0 and 0 <= res["auroc_ood"] <= 1
    low, high = res["auroc_misclassification_ci95"]  # bootstrap over images
    assert low <= res["auroc_misclassification"] <= high and high - low > 0
    low, high = res["auroc_ood_ci95"]
    assert low <= res["auroc_ood"] <= high
    assert res["ood_score"] == "mutual_information"
    names = {p.split("/")[-1] for p in res["plots"]}
    assert names == {"reliability_mc3.png", "uncertainty_correct_wrong_mc3.png", "risk_coverage_mc3.png",
                     "uncertainty_ood_mc3.png", "uncertainty_ood_feature_density.png",
                     "uncertainty_ood_image_mi_mc3.png"}  # fmt: skip
    # the feature density is fitted on training images by default and scored next to the MC scores, and so
    # is the image's mutual information over a bank of 8 training questions
    assert 0 <= res["auroc_ood_by_score"]["feature_density"] <= 1
    assert 0 <= res["auroc_ood_by_score"]["image_mutual_information"] <= 1
    assert set(res["auroc_ood_per_image_by_score"]) == set(res["auroc_ood_by_score"])
    for p in res["plots"]:
        assert (tiny_run / "plots" / p.split("/")[-1]).stat().st_size > 1000


def test_ood_equal_to_in_distribution_gives_auroc_one_half(tiny_run):
    result = mumo("evaluate", tiny_run, "--split", "val", "--mc-samples", "2", "--ood", "easy-vqa", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["auroc_ood"] == pytest.approx(0.5, abs=0.05)
    assert set(res["auroc_ood_by_type"]) == {"yes/no", "color", "shape"}
    for t, v in res["auroc_ood_by_type"].items():
        assert v == pytest.approx(0.5, abs=0.15), t


def test_predict_with_uncertainty_and_abstain(tiny_run, shape_png):
    result = mumo("predict", tiny_run, "--image", shape_png, "--question", "what shape is it?", "--mc-samples", "8",
                  "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    pred = json.loads(result.output)
    u = pred["uncertainty"]
    assert u["mc_samples"] == 8 and u["total"] == pytest.approx(u["aleatoric"] + u["epistemic"], abs=1e-5)
    assert not pred["abstained"]
    result = mumo("predict", tiny_run, "--image", shape_png, "--question", "what shape is it?", "--mc-samples", "8",
                  "--abstain", "0.0", "--json")  # fmt: skip
    pred = json.loads(result.output)
    assert pred["abstained"] and pred["answer"] == "don't know"
    assert pred["abstain_reason"].startswith("predictive_entropy") and pred["best_guess"]
    text = mumo("predict", tiny_run, "--image", shape_png, "--question", "what shape?", "--abstain", "0")
    assert "don't know" in text.output and "uncertainty (nats)" in text.output


def test_python_api_mc_and_abstain(tiny_run, shape_png):
    import mumo as mm

    p = mm.load(tiny_run)
    a = p.predict(shape_png, "what color is the shape?", mc_samples=10, seed=1)
    b = p.predict(shape_png, "what color is the shape?", mc_samples=10, seed=1)
    assert a == b  # seeded
    assert a.uncertainty.epistemic >= 0 and a.uncertainty.mc_samples == 10
    det = p.predict(shape_png, "what color is the shape?")
    assert det.uncertainty.epistemic == 0.0 and det.uncertainty.mc_samples == 0
    sure = p.predict(
        shape_png, "what color is the shape?", mc_samples=10, abstain=100.0, abstain_on="mutual_information"
    )
    assert not sure.abstained and sure.answer == sure.best_guess
    with pytest.raises(mm.MumoError, match="abstain_on"):
        p.predict(shape_png, "what?", abstain=0.1, abstain_on="vibes")


def test_every_json_says_which_mc_scope_ran_and_how_many_dropout_modules_sampled(tiny_run, shape_png):
    """predict and evaluate --json, and Prediction.uncertainty: ``mc_scope`` and ``mc_dropout_modules``; ``head``
    is a deprecated alias of ``attflat`` (the same masks, reported under the new name)."""
    import mumo as mm
    from mumo.tasks.vqa.model import load_model
    from mumo.uncertainty.mc_dropout import num_sampled_dropout

    model = load_model(tiny_run)
    every = 10 * model.cfg.layers + 2  # per layer: SA 4, SGA 6; plus one in each AttFlat MLP
    assert num_sampled_dropout(model, "all") == every == 12 and num_sampled_dropout(model, "attflat") == 2
    args = ("predict", tiny_run, "--image", shape_png, "--question", "what shape is it?", "--json")
    seen = {}
    for scope, expected in (("all", ("all", every)), ("attflat", ("attflat", 2)), ("head", ("attflat", 2))):
        with pytest.warns(FutureWarning) if scope == "head" else contextlib.nullcontext():
            result = mumo(*args, "--mc-samples", "4", "--mc-scope", scope)
        assert result.exit_code == 0, result.output
        u = json.loads(result.stdout)["uncertainty"]
        assert (u["mc_scope"], u["mc_dropout_modules"]) == expected, scope
        seen[scope] = u
    assert seen["head"] == seen["attflat"] != seen["all"]
    det = json.loads(mumo(*args).stdout)["uncertainty"]
    assert det["mc_scope"] is None and det["mc_dropout_modules"] == 0
    text = mumo(*args[:-1], "--mc-samples", "4", "--mc-scope", "attflat").stdout
    assert "[T=4, scope attflat: 2 dropout modules]" in text
    p = mm.load(tiny_run)
    with pytest.warns(FutureWarning, match="'head' is deprecated"):
        old = p.predict(shape_png, "what shape is it?", mc_samples=4, mc_scope="head").uncertainty
    new = p.predict(shape_png, "what shape is it?", mc_samples=4, mc_scope="attflat").uncertainty
    assert old == new and (new.mc_scope, new.mc_dropout_modules) == ("attflat", 2)
    with pytest.raises(mm.MumoError, match="scope 'encoder'"):
        p.predict(shape_png, "what shape is it?", mc_samples=4, mc_scope="encoder")
    quick = ("evaluate", tiny_run, "--split", "val", "--images", "5", "--density-images", "0", "--question-bank", "0")
    for scope, expected in (("head", ("attflat", 2)), ("all", ("all", every))):
        with pytest.warns(FutureWarning) if scope == "head" else contextlib.nullcontext():
            result = mumo(*quick, "--mc-samples", "2", "--mc-scope", scope, "--json")
        assert result.exit_code == 0, result.output
        res = json.loads(result.stdout)
        assert (res["mc_scope"], res["mc_dropout_modules"]) == expected, scope
    res = json.loads(mumo(*quick, "--abstain", "0.3", "--json").stdout)  # uncertainty figures without MC dropout
    assert res["mc_scope"] is None and res["mc_dropout_modules"] == 0


@pytest.mark.parametrize("t", ["0", "-1", "1000000"])
def test_bad_sample_counts(tiny_run, shape_png, t):
    _assert_clean_error(mumo("evaluate", tiny_run, "--mc-samples", t), "MC samples")
    _assert_clean_error(mumo("predict", tiny_run, "--image", shape_png, "--question", "what?", "--mc-samples", t),
                        "MC samples")  # fmt: skip


def test_model_without_dropout_and_unknown_ood(tiny_run, tmp_path, shape_png):
    nodrop = tmp_path / "nodrop"
    shutil.copytree(tiny_run, nodrop)
    cfg = (nodrop / "config.yaml").read_text().replace("dropout: 0.1", "dropout: 0.0")
    (nodrop / "config.yaml").write_text(cfg)
    _assert_clean_error(mumo("evaluate", nodrop, "--mc-samples", "5"), "nothing to sample")
    _assert_clean_error(mumo("predict", nodrop, "--image", shape_png, "--question", "what?", "--mc-samples", "5"),
                        "nothing to sample")  # fmt: skip
    _assert_clean_error(mumo("evaluate", tiny_run, "--ood", "cats"), "unknown OOD set")


def test_nan_logits_are_reported(tiny_run, tmp_path, shape_png):
    broken = tmp_path / "nan"
    shutil.copytree(tiny_run, broken)
    state = json.loads((broken / "state.json").read_text())
    path = broken / "checkpoints" / state["best"] / "model.safetensors"
    weights = load_file(str(path))
    weights["classifier.bias"] = torch.full_like(weights["classifier.bias"], float("nan"))
    save_file(weights, str(path))
    _assert_clean_error(mumo("predict", broken, "--image", shape_png, "--question", "what?", "--mc-samples", "3"),
                        "NaN")  # fmt: skip
    _assert_clean_error(mumo("evaluate", broken, "--split", "val", *FEW, "--mc-samples", "2"), "NaN")


def test_empty_split_is_an_error(tiny_run, easy_vqa_data):
    from mumo.errors import MumoError
    from mumo.tasks.vqa.model import load_model
    from mumo.tasks.vqa.uncertainty import evaluate_uncertainty

    empty = easy_vqa_data.val.subset_images(torch.zeros(0, dtype=torch.long), "empty")
    with pytest.raises(MumoError, match="no questions"):
        evaluate_uncertainty(load_model(tiny_run), empty, mc_samples=2)


def test_evaluate_density_images_option(tiny_run):
    result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--ood", "noise", "--density-images", "0", "--json")
    assert result.exit_code == 0, result.output
    assert "feature_density" not in json.loads(result.output)["auroc_ood_by_score"]
    result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--ood", "noise", "--density-images", "50")
    assert result.exit_code == 0, result.output
    assert "auroc_ood_feature_density" in result.output
    _assert_clean_error(mumo("evaluate", tiny_run, "--ood", "noise", "--density-images", "-1"), "--density-images")


def test_evaluate_question_bank_option(tiny_run):
    args = ("evaluate", tiny_run, "--split", "val", *FEW, "--ood", "noise", "--density-images", "0",
            "--mc-samples", "2")  # fmt: skip
    result = mumo(*args, "--question-bank", "0", "--json")
    assert result.exit_code == 0, result.output
    assert "image_mutual_information" not in json.loads(result.output)["auroc_ood_by_score"]
    result = mumo(*args, "--question-bank", "3", "--json")
    assert result.exit_code == 0, result.output
    pct = json.loads(result.output)["image_mutual_information_percentiles"]  # thresholds to abstain on
    assert 0 <= pct["p50"] <= pct["p95"] <= pct["p99"]
    result = mumo(*args, "--question-bank", "3")
    assert result.exit_code == 0, result.output
    assert (
        "auroc_ood_image_mutual_information" in result.output and "image mutual information of these" in result.output
    )
    _assert_clean_error(mumo("evaluate", tiny_run, "--mc-samples", "2", "--question-bank", "-1"), "--question-bank")


def test_predict_reports_image_uncertainty_and_can_abstain_on_it(tiny_run, shape_png):
    import mumo as mm

    result = mumo("predict", tiny_run, "--image", shape_png, "--question", "what shape is it?", "--mc-samples", "6",
                  "--image-uncertainty")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "image epistemic uncertainty" in result.output and "8 training questions" in result.output
    p = mm.load(tiny_run)
    a = p.predict(shape_png, "what shape is it?", mc_samples=6, image_uncertainty=True, question_bank_size=4)
    u = a.uncertainty
    assert u.image_epistemic is not None and u.image_epistemic >= 0 and u.question_bank_size == 4
    assert a == p.predict(shape_png, "what shape is it?", mc_samples=6, image_uncertainty=True, question_bank_size=4)
    assert p.predict(shape_png, "what shape is it?", mc_samples=6).uncertainty.image_epistemic is None
    # abstaining on it asks the bank without being told to
    out = p.predict(shape_png, "what shape is it?", mc_samples=6, abstain=-1.0, abstain_on="image_mutual_information")
    assert out.abstained and out.abstain_reason.startswith("image_mutual_information")
    with pytest.raises(mm.MumoError, match="mc_samples"):
        p.predict(shape_png, "what shape is it?", image_uncertainty=True)
    _assert_clean_error(
        mumo("predict", tiny_run, "--image", shape_png, "--question", "what?", "--image-uncertainty"), "mc_samples"
    )


def test_fit_density_then_predict_reports_it_and_can_abstain_on_it(tiny_run, shape_png, tmp_path):
    import mumo as mumo_api
    from mumo.errors import NoOODCheckWarning

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for fitted in ("feature_density.safetensors", "ood_check.safetensors"):  # as a run trained before either
        (run / fitted).unlink()
    # before fitting: abstaining on the density is a clear error, the prediction carries no density
    args = ["--image", shape_png, "--question", "what shape?", "--abstain", "0", "--abstain-on", "feature_density"]
    _assert_clean_error(mumo("predict", run, *args), "mumo fit-density")
    with pytest.warns(NoOODCheckWarning):  # nor an out-of-distribution check, and loading says so
        old = mumo_api.load(run)
    assert old.predict(shape_png, "what shape is it?").uncertainty.feature_density is None
    _assert_clean_error(mumo("fit-density", run, "--images", "0"), "--images")

    result = mumo("fit-density", run, "--images", "100", "--json")
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["fit_images"] == 100 and res["classes"] >= 2 and (run / "feature_density.safetensors").exists()
    assert mumo_api.load(run).density.fit_questions == res["fit_questions"] > 100  # saved and read back
    q = res["validation_quantiles"]
    assert q["p50"] <= q["p95"] <= q["p99"]

    result = mumo("predict", run, "--image", shape_png, "--question", "what shape is it?", "--json")
    u = json.loads(result.output)["uncertainty"]
    assert isinstance(u["feature_density"], float) and 0 <= u["feature_density_quantile"] <= 1
    # the density reads the deterministic feature, also when the answer comes from MC-dropout passes
    mc = mumo_api.load(run).predict(shape_png, "what shape is it?", mc_samples=4).uncertainty
    assert mc.feature_density == pytest.approx(u["feature_density"], rel=1e-5) and mc.epistemic > 0
    pred = mumo_api.load(run).predict(shape_png, "what shape is it?", abstain=u["feature_density"] - 1,
                                      abstain_on="feature_density")  # fmt: skip
    assert pred.abstained and pred.abstain_reason.startswith("feature_density")
    assert not mumo_api.load(run).predict(shape_png, "what shape is it?", abstain=u["feature_density"] + 1,
                                          abstain_on="feature_density").abstained  # fmt: skip
    text = mumo("predict", run, "--image", shape_png, "--question", "what shape is it?").output
    assert "feature density:" in text and "of validation questions" in text

    # a damaged density file is a clear error, not a traceback
    (run / "feature_density.safetensors").write_bytes(b"not a safetensors file")
    _assert_clean_error(mumo("predict", run, "--image", shape_png, "--question", "what shape is it?"), "fit-density")


def test_evaluate_reports_what_abstaining_would_do(tiny_run):
    result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--abstain", "0.3", "--json")
    assert result.exit_code == 0, result.output
    sel = {s["threshold"]: s for s in json.loads(result.output)["selective"]}
    assert set(sel) == {0.01, 0.1, 0.3, 0.5}
    coverages = [sel[t]["coverage"] for t in sorted(sel)]
    assert coverages == sorted(coverages)  # a higher threshold answers more
    for s in sel.values():
        assert s["accuracy"] <= s["coverage"] and 0 <= s["pavpu"] <= 1
    text = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--abstain", "0.3").output
    assert "abstain above 0.3 nats: answers" in text and "PAvPU" in text


def test_evaluate_a_deep_ensemble(tiny_run, tiny_member_run):
    result = mumo("evaluate", tiny_run, "--ensemble", tiny_member_run, "--split", "val", *FEW, "--ood", "noise",
                  "--density-images", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    res = json.loads(result.output)
    assert res["ensemble"] == [str(tiny_run), str(tiny_member_run)] and res["ensemble_members"] == 2
    # no dropout sampling, yet two members: the epistemic score is their disagreement
    assert res["mc_samples"] == 0 and res["ood_score"] == "mutual_information"
    assert res["mean_uncertainty"]["mutual_information"] > 0
    assert 0 <= res["auroc_ood_by_score"]["image_mutual_information"] <= 1  # the bank asked of both members
    assert set(res["auroc_misclassification_by_type"]) == {"yes/no", "color", "shape"}
    assert any("ensemble2_deterministic" in p for p in res["plots"])
    # the accuracy is the members' mean answer's: the same as the mean prediction's exact-match accuracy here
    assert res["accuracy"] == pytest.approx(res["accuracy_mean_prediction"], abs=1e-6)
    text = mumo("evaluate", tiny_run, "--ensemble", tiny_member_run, "--split", "val", *FEW, "--density-images", "0")
    assert text.exit_code == 0 and "deep ensemble of 2 runs" in text.output


def test_evaluate_runs_an_ensembles_members_once_over_the_split(tiny_run, tiny_member_run, monkeypatch):
    import mumo.tasks.vqa.predictive as vu

    calls, real = [], vu.predictive_probs  # one call per batch of images, for all members

    def counting(model, batch, **kw):
        calls.append(kw.get("mc_samples"))
        return real(model, batch, **kw)

    monkeypatch.setattr(vu, "predictive_probs", counting)
    args = ["--split", "val", "--density-images", "0", "--question-bank", "0", "--temperature", "none", "--json"]
    assert mumo("evaluate", tiny_run, "--ensemble", tiny_member_run, "--mc-samples", "2", *args).exit_code == 0
    batches = calls.count(2)  # MC dropout needs its own passes, after the accuracy's
    assert batches > 0 and calls == [None] * batches + [2] * batches
    calls.clear()
    result = mumo("evaluate", tiny_run, "--ensemble", tiny_member_run, "--feature-noise", "2", *args)
    assert result.exit_code == 0, result.output
    assert calls == [None] * batches  # accuracy and uncertainty figures share one pass of each member...
    res = json.loads(result.output)  # ... so under feature noise they are measured on the same noise draw
    assert res["accuracy"] == pytest.approx(res["accuracy_mean_prediction"], abs=1e-6)


def test_ensemble_members_from_another_split_are_refused(tiny_run, tiny_member_run, tmp_path):
    reseeded = tmp_path / "reseeded"
    shutil.copytree(tiny_member_run, reseeded)
    cfg = (reseeded / "config.yaml").read_text()
    (reseeded / "config.yaml").write_text(cfg.replace("  seed: 0\n", "  seed: 3\n"))
    result = mumo("evaluate", tiny_run, "--ensemble", reseeded, "--split", "val")
    _assert_clean_error(result, "train.member")
    result = mumo("evaluate", tiny_run, "--ensemble", tmp_path / "missing", "--split", "val")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_predict_with_a_deep_ensemble(tiny_run, tiny_member_run, shape_png):
    result = mumo("predict", tiny_run, "--ensemble", tiny_member_run, "--image", shape_png, "--question",
                  "what shape is it?", "--image-uncertainty", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    u = json.loads(result.output)["uncertainty"]
    assert u["ensemble_members"] == 2 and u["mc_samples"] == 0
    assert u["total"] == pytest.approx(u["aleatoric"] + u["epistemic"], abs=1e-5) and u["epistemic"] > 0
    assert u["image_epistemic"] > 0
    # the Python API: a list of runs, abstaining on the members' disagreement
    import mumo as mumo_api

    pred = mumo_api.load([tiny_run, tiny_member_run], device="cpu").predict(
        shape_png, "what shape is it?", mc_samples=2, abstain=0.0, abstain_on="mutual_information"
    )
    assert pred.abstained and pred.uncertainty.ensemble_members == 2 and pred.uncertainty.mc_samples == 2
    text = mumo("predict", tiny_run, "--ensemble", tiny_member_run, "--image", shape_png, "--question", "what shape?")
    assert "2 ensemble members" in text.output


def test_evaluate_under_pixel_and_feature_noise(tiny_run):
    clean = json.loads(mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "2", "--density-images",
                            "50", "--question-bank", "0", "--json").output)  # fmt: skip
    assert "shift" not in clean
    clean_plot = tiny_run / "plots" / "reliability_mc2.png"
    before = clean_plot.read_bytes()
    for flag, std, subdir in (("--pixel-noise", "0.5", "pixel-noise-0.5"), ("--feature-noise", "3", "feature-noise-3")):
        result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "2", "--density-images", "50",
                      "--question-bank", "0", flag, std, "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        res = json.loads(result.output)
        assert res["shift"] == {flag[2:].replace("-", "_"): float(std)}
        assert res["num_questions"] == clean["num_questions"]
        # the shift reaches the model: the answers' probabilities change
        assert res["nll"] != pytest.approx(clean["nll"], rel=1e-3), flag
        # its plots go into their own folder; the clean ones stay as they were
        assert {p.split("/")[-2] for p in res["plots"]} == {subdir}
        assert clean_plot.read_bytes() == before
    text = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--pixel-noise", "0.3", "--ood", "noise",
                "--density-images", "0")  # fmt: skip
    assert text.exit_code == 0 and "under pixel noise std 0.3" in text.output and "auroc_ood" in text.output


def test_evaluate_under_an_imagenet_c_corruption(tiny_run):
    clean = json.loads(mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "2", "--density-images",
                            "0", "--question-bank", "0", "--json").output)  # fmt: skip
    runs = {}
    for severity in ("1", "5"):
        result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "2", "--density-images", "0",
                      "--question-bank", "0", "--corruption", "impulse_noise", "--severity", severity,
                      "--json")  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[severity] = res = json.loads(result.output)
        assert res["shift"] == {"corruption": {"name": "impulse_noise", "severity": int(severity)}}
        assert {p.split("/")[-2] for p in res["plots"]} == {f"corruption-impulse_noise-{severity}"}
    # the corruption reaches the model, and the severity is passed on
    assert runs["5"]["nll"] != pytest.approx(clean["nll"], rel=1e-3)
    assert runs["5"]["nll"] != pytest.approx(runs["1"]["nll"], rel=1e-3)
    text = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--corruption", "gaussian_blur", "--ood", "noise",
                "--density-images", "0")  # fmt: skip
    assert text.exit_code == 0, text.output
    assert "under gaussian blur severity 3" in text.output and "auroc_ood" in text.output  # severity 3 by default


def test_bad_corruptions(tiny_run):
    def evaluate(*args):
        return mumo("evaluate", tiny_run, "--split", "val", "--density-images", "0", *args)

    _assert_clean_error(evaluate("--corruption", "fog"), "unknown corruption 'fog'; choose one of: gaussian_noise")
    for severity in ("0", "6"):
        _assert_clean_error(evaluate("--corruption", "contrast", "--severity", severity), "severity must be one of 1-5")
    _assert_clean_error(evaluate("--severity", "2"), "--severity needs --corruption")
    _assert_clean_error(evaluate("--corruption", "contrast", "--pixel-noise", "0.1"), "choose one")


@pytest.mark.parametrize("value", ["0", "-0.1", "nan", "inf"])
def test_bad_noise_levels(tiny_run, value):
    for flag in ("--pixel-noise", "--feature-noise"):
        _assert_clean_error(mumo("evaluate", tiny_run, "--split", "val", flag, value), flag)


def test_evaluate_json_writes_undefined_figures_as_null(tiny_run, monkeypatch):
    # an interval from too few wrong answers is undefined (NaN in Python); --json must stay strict JSON
    import functools

    import mumo.tasks.vqa.uncertainty as vu

    monkeypatch.setattr(
        vu, "misclassification_auroc_interval", functools.partial(vu.misclassification_auroc_interval, min_count=10**9)
    )
    result = mumo("evaluate", tiny_run, "--split", "val", *FEW, "--mc-samples", "2", "--density-images", "0",
                  "--question-bank", "0", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "NaN" not in result.output and "Infinity" not in result.output
    res = json.loads(result.output)
    assert res["auroc_misclassification_ci95"] == [None, None]
    assert isinstance(res["auroc_misclassification"], float)
