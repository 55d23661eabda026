"""evaluate_run: the library function behind `mumo evaluate` (the CLI only prints its report)."""

from __future__ import annotations

import pytest

from mumo.errors import ConfigError
from mumo.tasks import get_task
from mumo.tasks.vqa.accuracy import evaluate_split
from mumo.tasks.vqa.data import load_data
from mumo.tasks.vqa.evaluate import EvaluateOptions, evaluate_run
from mumo.tasks.vqa.model import load_model


def test_report_matches_a_direct_pass_and_caps_the_split(tiny_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig

    cfg = Run(tiny_run).config(RunConfig)
    split = load_data(cfg).test.first_images(20)
    direct = evaluate_split(load_model(tiny_run), split, cfg.train.eval_batch_size)

    report = evaluate_run(tiny_run, EvaluateOptions(images=20, progress=False))
    assert report["num_questions"] == split.num_questions < load_data(cfg).test.num_questions
    assert report["accuracy"] == direct["accuracy"]
    assert report["accuracy_by_type"] == direct["accuracy_by_type"]
    assert report.lines()[0].startswith(f"test accuracy {direct['accuracy']:.4f} on {split.num_questions} questions")
    assert "ece" not in report  # no uncertainty asked for


def test_the_registry_reaches_the_same_function(tiny_run):
    task = get_task("vqa")
    report = task.evaluate(tiny_run, task.evaluation_options(images=10, mc_samples=3, density_images=0, progress=False))
    figures = report.to_dict()
    assert figures["mc_samples"] == 3 and 0.0 <= figures["ece"] <= 1.0
    assert figures["accuracy_mean_prediction"] == pytest.approx(figures["accuracy"], abs=0.2)
    assert any(line.startswith("ece") for line in report.lines())
    # the reliable-VQA selective figures, for the predictive entropy and for every score
    keys = {"coverage_at_1_risk", "coverage_at_5_risk", "aurc", "augrc", "best_effective_reliability_1",
            "best_effective_reliability_10", "best_effective_reliability_100"}  # fmt: skip
    assert set(figures["reliable_vqa_by_score"]) == set(figures["auroc_misclassification_by_score"])
    for rv in (figures["reliable_vqa"], *figures["reliable_vqa_by_score"].values()):
        assert set(rv) == keys
        assert 0 <= rv["coverage_at_1_risk"] <= rv["coverage_at_5_risk"] <= 1
        assert 0 <= rv["augrc"] <= min(0.5, rv["aurc"]) + 1e-12 and rv["aurc"] <= 1
        assert 0 <= rv["best_effective_reliability_100"] <= rv["best_effective_reliability_10"]
        assert rv["best_effective_reliability_10"] <= rv["best_effective_reliability_1"] <= 1
    assert figures["reliable_vqa"] == figures["reliable_vqa_by_score"]["predictive_entropy"]
    assert any(line.startswith("augrc (VQA accuracy)") for line in report.lines())
    assert any(line.startswith("best Φ_1 / Φ_10 / Φ_100") for line in report.lines())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"split": "train"}, "--split must be"),
        ({"images": 0}, "--images must be >= 1"),
        ({"severity": 2}, "--severity needs --corruption"),
        ({"corruption": "gaussian_noise", "pixel_noise": 0.1}, "choose one"),
        ({"pixel_noise": float("nan")}, "--pixel-noise must be"),
        ({"ood": "moon"}, "unknown OOD set"),
        ({"temperature": "hot"}, "--temperature must be"),
        ({"temperature": "-1"}, "--temperature must be > 0"),
    ],
)
def test_bad_options_fail_before_any_model_is_loaded(options, message):
    with pytest.raises(ConfigError, match=message):
        EvaluateOptions(**options)


def test_a_corruption_defaults_to_severity_3():
    assert EvaluateOptions(corruption="contrast").shift == {"corruption": {"name": "contrast", "severity": 3}}


def test_results_file_needs_a_vqa_v2_run(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="needs a vqa-v2 run"):
        evaluate_run(tiny_run, EvaluateOptions(results_json=tmp_path / "r.json", progress=False))
    assert not (tmp_path / "r.json").exists()
