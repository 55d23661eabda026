"""Explanation maps of a trained VQA run: scores against ground-truth masks, and one explained example."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from mumo.data.vqa.split import VQASplit
from mumo.errors import MumoError
from mumo.explain.gradcam import grad_cam
from mumo.explain.targets import AnswerLogit, AnswerLogProb
from mumo.runs import Run
from mumo.tasks.vqa import explain as vqa_explain
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.explain import (
    EXPLAIN_METHODS,
    ExplainOptions,
    evaluate_explanations,
    explain_batch,
    explain_example,
    explain_run,
    ground_truth_maps,
    map_target,
)
from mumo.tasks.vqa.model import load_artifacts
from tests.conftest import tiny_config

SCORE_KEYS = {"rank_correlation", "pointing_game", "energy_in_mask", "count", "undefined"}
FAST = ExplainOptions(samples=3)  # U-CAM with 3 dropout passes: same code path, less time


@pytest.fixture(scope="module")
def run_parts(tiny_run):
    """The tiny run's model, config and data, loaded once."""
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    cfg = Run(tiny_run).config(RunConfig)
    return load_model(tiny_run), cfg, load_data(cfg)


def _assert_scores(s: dict, count: int) -> None:
    assert s.keys() >= SCORE_KEYS
    assert s["count"] == count
    assert 0 <= s["undefined"] <= count
    rho = s["rank_correlation"]
    assert (math.isnan(rho) and s["undefined"] == count) or -1.0 <= rho <= 1.0
    assert 0.0 <= s["pointing_game"] <= 1.0
    assert 0.0 <= s["energy_in_mask"] <= 1.0


def test_explain_run_scores_every_method(tiny_run, run_parts):
    _, _, data = run_parts
    res = explain_run(tiny_run, max_images=20, progress=False)
    expected_questions = data.test.questions_of(torch.arange(20)).numel()
    assert res["run"] == str(tiny_run) and res["split"] == "test"
    assert res["grid"] == [4, 4]
    assert res["num_images"] == 20
    assert res["num_questions"] == expected_questions > 20  # every image has several questions
    assert 0.0 <= res["accuracy"] <= 1.0
    assert -1.0 <= res["attention_gradcam_rank_correlation"] <= 1.0
    assert set(res["methods"]) == {"attention", "gradcam", "ucam"}
    for entry in res["methods"].values():
        _assert_scores(entry, res["num_questions"])
        assert set(entry["by_type"]) == {"yes/no", "color", "shape"}
        assert sum(t["count"] for t in entry["by_type"].values()) == res["num_questions"]
        for t in entry["by_type"].values():
            _assert_scores(t, t["count"])
    # the attention weights are positive everywhere and the shape never fills the grid: always defined
    assert res["methods"]["attention"]["undefined"] == 0
    # what every map is the gradient of
    targets = {m: e["target"] for m, e in res["methods"].items()}
    assert targets == {"attention": None, "gradcam": "logit", "ucam": "predictive-entropy"}


def test_explain_run_val_split_and_a_subset_of_methods(tiny_run):
    res = explain_run(tiny_run, split="val", methods=("attention",), max_images=5, progress=False)
    assert res["split"] == "val" and set(res["methods"]) == {"attention"}
    assert "attention_gradcam_rank_correlation" not in res
    assert res["num_images"] == 5


def test_explain_run_bad_arguments(tiny_run, tmp_path):
    with pytest.raises(MumoError, match="split must be 'val' or 'test'"):
        explain_run(tiny_run, split="train", max_images=2, progress=False)
    with pytest.raises(MumoError, match="choose one of: attention, gradcam, ucam"):
        explain_run(tiny_run, methods=("nope",), max_images=2, progress=False)
    with pytest.raises(MumoError, match="images"):
        explain_run(tiny_run, max_images=0, progress=False)
    with pytest.raises(MumoError, match="not a mumo run"):
        explain_run(tmp_path, max_images=2, progress=False)


def test_explain_batch_maps(run_parts):
    model, _, data = run_parts
    batch = data.test.batch(torch.arange(3))
    n = batch.tokens.shape[0]
    for method in EXPLAIN_METHODS:
        maps, out = explain_batch(model, batch, method, FAST)
        assert maps.shape == (n, 16) and not maps.requires_grad
        assert torch.isfinite(maps).all() and (maps >= 0).all()
        assert tuple(out.grid) == (4, 4) and out.logits.shape[0] == n
    att, _ = explain_batch(model, batch, "attention", FAST)
    torch.testing.assert_close(att.sum(1), torch.ones(n), atol=1e-4, rtol=0)  # softmax weights over the cells
    a, _ = explain_batch(model, batch, "ucam", FAST)
    b, _ = explain_batch(model, batch, "ucam", FAST)
    torch.testing.assert_close(a, b)  # seeded dropout masks
    with pytest.raises(MumoError, match=r"model\.aleatoric=ucam"):
        explain_batch(model, batch, "ucam", ExplainOptions(ucam_variant="loss", samples=3))
    with pytest.raises(MumoError, match="choose one of"):
        ExplainOptions(ucam_variant="nope")


def test_gradcam_explains_the_answer_logit_by_default_and_the_log_prob_on_request(run_parts):
    model, _, data = run_parts
    batch = data.test.batch(torch.arange(4))
    assert ExplainOptions().target == "logit"
    logit, _ = explain_batch(model, batch, "gradcam", FAST)
    torch.testing.assert_close(logit, grad_cam(model, batch, AnswerLogit()).maps.detach())
    log_prob, _ = explain_batch(model, batch, "gradcam", ExplainOptions(samples=3, target="log-prob"))
    torch.testing.assert_close(log_prob, grad_cam(model, batch, AnswerLogProb()).maps.detach())
    assert not torch.allclose(logit, log_prob)
    shown = torch.zeros(batch.tokens.shape[0], dtype=torch.long)  # another answer than the argmax: answer 0
    other, _ = explain_batch(model, batch, "gradcam", FAST, answers=shown)
    torch.testing.assert_close(other, grad_cam(model, batch, AnswerLogit(shown)).maps.detach())
    with pytest.raises(MumoError, match="unknown Grad-CAM target 'nope'; choose one of: logit, log-prob"):
        ExplainOptions(target="nope")


SCALE = 1e6


def _saturated(model):
    """The model with its answer logits multiplied by 10^6: the same answers, softmax saturated to one-hot."""
    import copy

    sat = copy.deepcopy(model)
    with torch.no_grad():
        sat.classifier.weight.mul_(SCALE)
        sat.classifier.bias.mul_(SCALE)
    return sat


def test_the_logit_target_stays_defined_where_the_log_prob_gradient_vanishes(run_parts):
    """On a saturated prediction (p = 1 in float32) ∂log p/∂A = ∂z_c/∂A − Σ_j p_j ∂z_j/∂A is exactly 0: the
    log-prob map is all zero (undefined), while the logit's map is the unsaturated model's map, scaled."""
    model, cfg, data = run_parts
    sat = _saturated(model)
    batch = data.test.batch(torch.arange(4))
    with torch.no_grad():
        out = sat(batch)
    assert torch.equal(out.logits.argmax(-1), model(batch).logits.argmax(-1))
    probs = out.logits.softmax(-1)  # (N, C)
    saturated = (probs.max(-1).values == 1.0) & ((probs > 0).sum(-1) == 1)  # (N,) one-hot in float32
    assert saturated.float().mean() > 0.5  # most questions (the rest have nearly tied answers)
    log_prob, _ = explain_batch(sat, batch, "gradcam", ExplainOptions(samples=3, target="log-prob"))
    logit, _ = explain_batch(sat, batch, "gradcam", FAST)
    assert (log_prob[saturated] == 0).all()  # the gradient vanished: no map at all
    assert torch.isfinite(logit).all() and (logit[saturated].amax(1) > 0).all()  # each saturated question has one
    plain, _ = explain_batch(model, batch, "gradcam", FAST)
    torch.testing.assert_close(logit / SCALE, plain, rtol=1e-3, atol=1e-5)  # the scale changes, not the map
    # over a split: the logit target leaves fewer maps undefined than the log-prob
    split = data.test.subset_images(torch.arange(10))
    res = {
        t: evaluate_explanations(
            sat, cfg, split, ("gradcam",), opts=ExplainOptions(samples=3, target=t), progress=False
        )["methods"]["gradcam"]
        for t in ("logit", "log-prob")
    }
    assert res["log-prob"]["undefined"] > split.num_questions / 2
    assert res["logit"]["undefined"] < res["log-prob"]["undefined"]
    assert res["logit"]["target"] == "logit" and res["log-prob"]["target"] == "log-prob"


def test_map_target_names_what_each_map_is_the_gradient_of():
    assert map_target("attention", ExplainOptions()) is None
    assert map_target("gradcam", ExplainOptions()) == "logit"
    assert map_target("gradcam", ExplainOptions(target="log-prob")) == "log-prob"
    assert map_target("ucam", ExplainOptions()) == "predictive-entropy"  # U-CAM: an uncertainty, not an answer
    assert map_target("ucam", ExplainOptions(ucam_variant="loss", target="log-prob")) == "uncertainty-loss"
    assert map_target("ucam", ExplainOptions(ucam_variant="aleatoric", negate=True)) == "neg-aleatoric-loss"


def _synthetic_easy_vqa_split(corners: list[tuple[int, int]]) -> VQASplit:
    """64x64 light images, each with one 16x16 red square filling grid cell ``corners[i]`` of a 4x4 grid;
    two questions per image."""
    n = len(corners)
    images = torch.full((n, 3, 64, 64), 245, dtype=torch.uint8)
    for i, (r, c) in enumerate(corners):
        images[i, :, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16] = torch.tensor([220, 20, 20], dtype=torch.uint8)[
            :, None, None
        ]
    image_index = torch.arange(n).repeat_interleave(2)
    q = len(image_index)
    return VQASplit(
        name="test", images=images, tokens=torch.ones(q, 4, dtype=torch.long), image_index=image_index,
        targets=torch.zeros(q, 2), questions=["what shape?"] * q, question_types=["shape", "color"] * n,
        image_ids=list(range(n)),
    )  # fmt: skip


def test_easy_vqa_ground_truth_is_the_shape_cell():
    corners = [(0, 3), (2, 1), (3, 0)]
    split = _synthetic_easy_vqa_split(corners)
    truth = ground_truth_maps(tiny_config(), split, (4, 4))
    assert truth.shape == (6, 16)
    for qi in range(6):
        r, c = corners[qi // 2]
        expected = torch.zeros(16)
        expected[4 * r + c] = 1.0
        torch.testing.assert_close(truth[qi], expected)  # the square covers exactly its cell, nothing else


def test_easy_vqa_ground_truth_on_real_images(run_parts):
    _, cfg, data = run_parts
    split = data.test.subset_images(torch.arange(40))
    truth = ground_truth_maps(cfg, split, (4, 4))
    assert truth.shape == (split.num_questions, 16)
    assert (truth >= 0).all() and (truth <= 1).all()
    assert (truth.sum(1) > 0).all()  # every question's shape covers some cells
    assert ((truth > 0).sum(1) < 16).all()  # and no shape covers the whole image
    for i in range(split.num_images):  # every question about one image shares that image's map
        rows = truth[split.image_index == i]
        assert (rows == rows[0]).all()
    # independently of the segmentation: the cell with the most pixels far from the corner colour holds the peak
    x = split.images.float()  # (I, 3, 64, 64)
    far = (x - x[:, :, :1, :1]).norm(dim=1) > 100  # (I, 64, 64)
    per_cell = far.reshape(-1, 4, 16, 4, 16).sum((2, 4)).reshape(-1, 16)  # (I, 16) pixel counts
    first_question = torch.stack([torch.nonzero(split.image_index == i)[0, 0] for i in range(split.num_images)])
    per_image = truth[first_question]  # (I, 16)
    peak = per_cell.argmax(1)
    assert (per_image.gather(1, peak[:, None]).squeeze(1) == per_image.max(1).values).all()


def test_ground_truth_maps_refuses_data_without_masks():
    cfg = tiny_config("data.name=vqa-v2", "data.root=/nowhere")
    split = _synthetic_easy_vqa_split([(0, 0)])
    with pytest.raises(MumoError, match="no ground-truth maps for 'vqa-v2'"):
        ground_truth_maps(cfg, split, (4, 4))
    val = _synthetic_easy_vqa_split([(0, 0)]).subset_images(torch.arange(1), name="val")
    with pytest.raises(MumoError, match="test split"):
        ground_truth_maps(tiny_config("data.name=sort-of-clevr"), val, (4, 4))


def _patch_maps_from_truth(monkeypatch, truth: torch.Tensor, transform) -> None:
    """Every method's maps become ``transform`` of the ground truth of the very questions in the batch."""
    real = vqa_explain.explain_batch

    def from_truth(model, batch, method, opts):
        _, out = real(model, batch, "attention", opts)  # the model's real output (logits, grid)
        return transform(truth[batch.question_ids]), out

    monkeypatch.setattr(vqa_explain, "explain_batch", from_truth)


def test_evaluate_explanations_scores_a_perfect_map_1(run_parts, monkeypatch):
    """Maps equal to the ground truth score exactly 1 everywhere: checks that maps, questions and masks stay
    aligned through batching (5 images a batch, questions grouped by image)."""
    model, cfg, data = run_parts
    split = data.test.subset_images(torch.arange(12))
    _patch_maps_from_truth(monkeypatch, ground_truth_maps(cfg, split, (4, 4)), lambda t: t)
    res = evaluate_explanations(model, cfg, split, opts=FAST, images_per_batch=5, progress=False)
    assert res["num_questions"] == split.num_questions and res["num_images"] == 12 and res["grid"] == [4, 4]
    for m in EXPLAIN_METHODS:
        s = res["methods"][m]
        assert s["undefined"] == 0 and s["count"] == split.num_questions
        for scores in (s, *s["by_type"].values()):
            assert scores["rank_correlation"] == pytest.approx(1.0)
            assert scores["pointing_game"] == 1.0 and scores["energy_in_mask"] == pytest.approx(1.0)
    assert res["attention_gradcam_rank_correlation"] == pytest.approx(1.0)  # identical maps


def test_evaluate_explanations_scores_a_reversed_map(run_parts, monkeypatch):
    """Maps that put the least where the shape is (1 - coverage, non-negative): rank correlation -1, and the
    argmax always falls outside the shape."""
    model, cfg, data = run_parts
    split = data.test.subset_images(torch.arange(12))
    _patch_maps_from_truth(monkeypatch, ground_truth_maps(cfg, split, (4, 4)), lambda t: 1 - t)
    res = evaluate_explanations(model, cfg, split, ("attention", "gradcam"), opts=FAST, progress=False)
    for m in ("attention", "gradcam"):
        s = res["methods"][m]
        assert s["rank_correlation"] == pytest.approx(-1.0) and s["pointing_game"] == 0.0
        assert 0.0 < s["energy_in_mask"] < 1.0


def test_evaluate_explanations_with_the_wrong_images_maps(run_parts, monkeypatch):
    """Maps of another image's shape (the next image's, wrapping around) point into the mask less often."""
    model, cfg, data = run_parts
    split = data.test.subset_images(torch.arange(12))
    truth = ground_truth_maps(cfg, split, (4, 4))
    first = torch.stack([torch.nonzero(split.image_index == i)[0, 0] for i in range(12)])
    other = truth[first][(split.image_index + 1) % 12]  # (Q, R) the shape of the next image
    _patch_maps_from_truth(monkeypatch, other, lambda t: t)
    res = evaluate_explanations(model, cfg, split, ("gradcam",), opts=FAST, progress=False)
    assert res["methods"]["gradcam"]["pointing_game"] < 1.0
    assert res["methods"]["gradcam"]["rank_correlation"] < 0.9


@pytest.mark.parametrize("method", EXPLAIN_METHODS)
def test_explain_example_writes_an_overlay(tiny_run, shape_png, tmp_path, method):
    out = tmp_path / "x.png"
    res = explain_example(tiny_run, shape_png, "what shape is in the image?", method, opts=FAST, out=out)
    assert res["method"] == ("ucam-predictive" if method == "ucam" else method)
    assert res["target"] == {"attention": None, "gradcam": "logit", "ucam": "predictive-entropy"}[method]
    assert res["question"] == "what shape is in the image?"
    assert res["answer"] in load_artifacts(tiny_run)["answers"]
    assert 0.0 < res["probability"] <= 1.0
    assert res["uncertainty"]["mc_samples"] == 3  # the model has dropout: MC-dropout uncertainty
    assert res["grid"] == [4, 4]
    assert len(res["map"]) == 16 and all(math.isfinite(v) and v >= 0 for v in res["map"])
    assert res["overlay"] == str(out)
    with Image.open(out) as img:
        img.verify()
        assert img.format == "PNG"
    with Image.open(out) as img:
        assert img.size[0] > 64 and img.size[1] > 64


def test_explain_example_without_out_and_its_errors(tiny_run, shape_png, tmp_path):
    res = explain_example(tiny_run, shape_png, "what color is the shape?", "attention")
    assert "overlay" not in res and len(res["map"]) == 16
    assert sum(res["map"]) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(MumoError, match="does not exist"):
        explain_example(tiny_run, shape_png, "is there a circle?", "gradcam", out=tmp_path / "no" / "x.png")
    with pytest.raises(MumoError, match="is a directory"):
        explain_example(tiny_run, shape_png, "is there a circle?", "gradcam", out=tmp_path)
    with pytest.raises(MumoError, match="choose one of: attention, gradcam, ucam"):
        explain_example(tiny_run, shape_png, "is there a circle?", "nope")
    with pytest.raises(MumoError, match="empty"):
        explain_example(tiny_run, shape_png, "  ", "gradcam")
    opts = ExplainOptions(ucam_variant="loss", samples=3)
    with pytest.raises(MumoError, match=r"model\.aleatoric=ucam"):
        explain_example(tiny_run, shape_png, "is there a circle?", "ucam", opts=opts, out=tmp_path / "u.png")
    assert not (tmp_path / "u.png").exists() and not (tmp_path / "no").exists()
