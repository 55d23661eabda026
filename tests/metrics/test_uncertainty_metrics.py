"""Hand-worked checks of misclassification/OOD detection, risk–coverage, AURC, AUGRC, coverage at a risk level,
effective reliability and PAvPU."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from mumo.errors import MumoError
from mumo.metrics.uncertainty import (
    augrc,
    aurc,
    best_effective_reliability,
    coverage_at_risk,
    effective_reliability,
    fpr_at_95_tpr,
    misclassification_aupr,
    misclassification_auroc,
    misclassification_auroc_interval,
    ood_aupr,
    ood_auroc,
    ood_auroc_interval,
    pavpu,
    risk_at_coverage,
    risk_coverage_curve,
)

T, F = True, False


def test_misclassification_perfect_and_reversed():
    scores = torch.tensor([0.1, 0.2, 0.8, 0.9])
    correct = torch.tensor([T, T, F, F])
    assert misclassification_auroc(scores, correct) == pytest.approx(1.0)
    assert misclassification_aupr(scores, correct) == pytest.approx(1.0)
    assert misclassification_auroc(-scores, correct) == pytest.approx(0.0)


def test_misclassification_by_hand():
    # wrong (positive) scores .35, .8 vs right .1, .4: pairs won 3 of 4 -> AUROC .75
    # ranked .8 (wrong), .4 (right), .35 (wrong), .1: precision 1 at recall .5, 2/3 at recall 1 -> AP = 5/6
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    correct = torch.tensor([T, T, F, F])
    assert misclassification_auroc(scores, correct) == pytest.approx(0.75)
    assert misclassification_aupr(scores, correct) == pytest.approx(5 / 6)


def test_misclassification_accepts_integer_flags():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8])
    assert misclassification_auroc(scores, torch.tensor([1, 1, 0, 0])) == pytest.approx(0.75)


@pytest.mark.parametrize("flag", [T, F])
def test_misclassification_single_class_is_nan(flag):
    scores, correct = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([flag] * 3)
    assert math.isnan(misclassification_auroc(scores, correct))
    assert math.isnan(misclassification_aupr(scores, correct))


def test_ood_perfect_separation():
    id_scores, ood_scores = torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.7, 0.9])
    assert ood_auroc(id_scores, ood_scores) == pytest.approx(1.0)
    assert ood_aupr(id_scores, ood_scores) == pytest.approx(1.0)
    assert fpr_at_95_tpr(id_scores, ood_scores) == pytest.approx(0.0)


def test_ood_identical_sets():
    same = torch.tensor([0.1, 0.5, 0.9])
    assert ood_auroc(same, same.clone()) == pytest.approx(0.5)
    # all scores tied: one threshold flags everything, precision = prevalence 1/4 at recall 1
    assert ood_aupr(torch.full((3,), 0.3), torch.full((1,), 0.3)) == pytest.approx(0.25)
    assert fpr_at_95_tpr(torch.full((3,), 0.3), torch.full((1,), 0.3)) == pytest.approx(1.0)


def test_fpr_at_95_tpr_constructed():
    # OOD scores 1..20: TPR >= .95 first at threshold 2 (19 of 20 flagged; threshold 3 flags only 18).
    # ID scores >= 2 are 2.5, 3.5, 10.5 -> FPR 3/10. Threshold 1.5 also reaches TPR .95 but with FPR .4.
    ood_scores = torch.arange(1, 21, dtype=torch.float64)
    id_scores = torch.tensor([0.5, 1.5, 2.5, 3.5, 10.5, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert fpr_at_95_tpr(id_scores, ood_scores) == pytest.approx(0.3)


def test_risk_coverage_and_aurc_by_hand():
    # sorted by uncertainty: .1 right, .2 wrong, .3 right, .4 wrong -> cumulative errors 0, 1, 1, 2
    scores = torch.tensor([0.1, 0.4, 0.2, 0.3])
    correct = torch.tensor([T, F, F, T])
    coverage, risk = risk_coverage_curve(scores, correct)
    assert coverage.dtype == risk.dtype == torch.float64
    assert coverage.tolist() == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert risk.tolist() == pytest.approx([0.0, 1 / 2, 1 / 3, 1 / 2])
    assert aurc(scores, correct) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)


def test_risk_coverage_ties_contribute_their_average_error_whatever_the_input_order():
    for correct in (torch.tensor([F, T]), torch.tensor([T, F])):
        _, risk = risk_coverage_curve(torch.tensor([0.2, 0.2]), correct)
        assert risk.tolist() == pytest.approx([0.5, 0.5])
    # [.2 wrong, .2 right] then .5 right: the tie spreads one error over its two positions
    for correct in (torch.tensor([F, T, T]), torch.tensor([T, F, T])):
        scores = torch.tensor([0.2, 0.2, 0.5])
        _, risk = risk_coverage_curve(scores, correct)
        assert risk.tolist() == pytest.approx([0.5, 0.5, 1 / 3])
        assert aurc(scores, correct) == pytest.approx(4 / 9)
        assert risk_at_coverage(scores, correct, 0.3) == pytest.approx(0.5)  # inside the tie: its average
        assert coverage_at_risk(scores, correct, 0.0) == 0.0  # answering the right one alone splits the tie
        assert coverage_at_risk(scores, correct, 0.4) == pytest.approx(1.0)
        # generalized risk: (0, 0), (2/3, 1/3), (1, 1/3) -> 1/9 + 1/9
        assert augrc(scores, correct) == pytest.approx(2 / 9)


def test_pavpu_by_hand():
    # certain (<= .5): samples 0, 1, 4. accurate-certain: 0, 4; inaccurate-uncertain: 3 -> 3 / 5
    scores = torch.tensor([0.1, 0.2, 0.6, 0.9, 0.5])
    correct = torch.tensor([T, F, T, F, T])
    assert pavpu(scores, correct, threshold=0.5) == pytest.approx(0.6)
    assert pavpu(scores, correct, threshold=1.0) == pytest.approx(0.6)  # all certain -> accuracy 3/5
    assert pavpu(scores, correct, threshold=0.0) == pytest.approx(0.4)  # all uncertain -> error rate 2/5


SELECTIVE_METRICS = [risk_coverage_curve, aurc, augrc, risk_at_coverage, coverage_at_risk]
SELECTIVE_METRICS += [lambda s, c: effective_reliability(s, c, threshold=0.5, cost=1.0)]
SELECTIVE_METRICS += [lambda s, c: best_effective_reliability(s, c, cost=10.0)]
BINARY_METRICS = [misclassification_auroc, misclassification_aupr, lambda s, c: pavpu(s, c, threshold=0.5)]
SCORE_METRICS = BINARY_METRICS + SELECTIVE_METRICS
OOD_METRICS = [ood_auroc, ood_aupr, fpr_at_95_tpr]


@pytest.mark.parametrize("metric", SCORE_METRICS)
def test_empty_scores_raise(metric):
    with pytest.raises(MumoError, match="empty"):
        metric(torch.zeros(0), torch.zeros(0, dtype=torch.bool))


@pytest.mark.parametrize("metric", SCORE_METRICS)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_scores_raise(metric, bad):
    with pytest.raises(MumoError, match="uncertainty scores hold NaN or infinite values"):
        metric(torch.tensor([0.1, bad]), torch.tensor([T, F]))


@pytest.mark.parametrize("metric", SCORE_METRICS)
@pytest.mark.parametrize(
    ("scores", "correct"),
    [
        (torch.tensor([0.1, 0.2, 0.3]), torch.tensor([T, F])),
        (torch.tensor([[0.1, 0.2]]), torch.tensor([T, F])),
    ],
)
def test_shape_mismatch_raises(metric, scores, correct):
    with pytest.raises(MumoError, match="shape"):
        metric(scores, correct)


@pytest.mark.parametrize("metric", BINARY_METRICS)
@pytest.mark.parametrize("correct", [torch.tensor([0, 2]), torch.tensor([0.0, 1.0])])
def test_non_binary_correct_raises(metric, correct):
    with pytest.raises(MumoError, match="correct must be"):
        metric(torch.tensor([0.1, 0.2]), correct)


@pytest.mark.parametrize("metric", SELECTIVE_METRICS)
@pytest.mark.parametrize(
    "correct", [torch.tensor([0, 2]), torch.tensor([-0.5, 0.5]), torch.tensor([math.nan, 1.0]), torch.tensor([1j, 0j])]
)
def test_correctness_outside_0_1_raises(metric, correct):
    with pytest.raises(MumoError, match="correct must be"):
        metric(torch.tensor([0.1, 0.2]), correct)


@pytest.mark.parametrize("metric", SELECTIVE_METRICS)
def test_selective_metrics_take_hard_and_soft_correctness_alike(metric):
    scores = torch.tensor([0.3, 0.1, 0.2, 0.1])
    hard = torch.tensor([T, F, T, T])
    for same in (hard.long(), hard.double(), hard.float()):
        a, b = metric(scores, hard), metric(scores, same)
        if isinstance(a, tuple):
            assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
        else:
            assert a == b


@pytest.mark.parametrize("metric", OOD_METRICS)
def test_ood_errors(metric):
    ok = torch.tensor([0.1, 0.2])
    with pytest.raises(MumoError, match="empty"):
        metric(ok, torch.zeros(0))
    with pytest.raises(MumoError, match="empty"):
        metric(torch.zeros(0), ok)
    with pytest.raises(MumoError, match="uncertainty scores hold NaN or infinite values"):
        metric(ok, torch.tensor([math.nan]))
    with pytest.raises(MumoError, match="shape"):
        metric(ok.reshape(2, 1), ok)


def test_pavpu_non_finite_threshold_raises():
    with pytest.raises(MumoError, match="threshold"):
        pavpu(torch.tensor([0.1, 0.2]), torch.tensor([T, F]), threshold=math.nan)


def test_selective_answering_by_hand():
    from mumo.metrics.uncertainty import selective_answering

    # five answers: certain-right, certain-wrong, uncertain-wrong, uncertain-right, certain-right
    scores = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.3])
    correct = torch.tensor([True, False, False, True, True])
    res = selective_answering(scores, correct, 0.5)
    assert res == {"threshold": 0.5, "coverage": 0.6, "risk": pytest.approx(1 / 3), "accuracy": 0.4,
                   "pavpu": pytest.approx(0.6)}  # fmt: skip
    assert selective_answering(scores, correct, 1.0)["risk"] == pytest.approx(0.4)  # answers all
    none = selective_answering(scores, correct, 0.0)
    assert none["coverage"] == 0 and math.isnan(none["risk"]) and none["accuracy"] == 0
    with pytest.raises(MumoError, match="finite"):
        selective_answering(scores, correct, float("nan"))


def test_risk_at_coverage_and_coverage_at_risk_by_hand():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5])
    correct = torch.tensor([True, True, False, True, False])
    # risk among the k most certain: 0, 0, 1/3, 1/4, 2/5
    assert risk_at_coverage(scores, correct, 0.8) == pytest.approx(0.25)
    assert risk_at_coverage(scores, correct, 0.4) == pytest.approx(0.0)
    assert risk_at_coverage(scores, correct, 0.5) == pytest.approx(1 / 3)  # ceil(2.5) = 3 samples
    assert risk_at_coverage(scores, correct, 1.0) == pytest.approx(0.4)
    assert coverage_at_risk(scores, correct, 0.05) == pytest.approx(0.4)
    assert coverage_at_risk(scores, correct, 0.3) == pytest.approx(0.8)  # the last k under the risk, not the first
    assert coverage_at_risk(scores, correct, 1.0) == pytest.approx(1.0)
    assert coverage_at_risk(scores, ~correct, 0.05) == 0.0  # the most certain answer is already wrong
    with pytest.raises(MumoError, match="coverage"):
        risk_at_coverage(scores, correct, 0.0)
    with pytest.raises(MumoError, match="risk"):
        coverage_at_risk(scores, correct, 1.5)


# --- reliable-VQA selective figures: coverage at a risk level, AUGRC, effective reliability ---------------------


def test_soft_correctness_by_hand():
    # VQA accuracy 1, .6, 0, .3 in order of uncertainty: errors 0, .4, 1, .7, cumulative 0, .4, 1.4, 2.1
    scores = torch.tensor([0.4, 0.1, 0.3, 0.2])
    acc = torch.tensor([0.3, 1.0, 0.0, 0.6])
    _, risk = risk_coverage_curve(scores, acc)
    assert risk.tolist() == pytest.approx([0.0, 0.2, 1.4 / 3, 0.525])
    assert aurc(scores, acc) == pytest.approx((0.2 + 1.4 / 3 + 0.525) / 4)
    assert risk_at_coverage(scores, acc, 0.5) == pytest.approx(0.2)
    assert coverage_at_risk(scores, acc, 0.01) == pytest.approx(0.25)  # C@1%
    assert coverage_at_risk(scores, acc, 0.05) == pytest.approx(0.25)  # C@5%
    assert coverage_at_risk(scores, acc, 0.2) == pytest.approx(0.5)  # risk exactly at the level counts
    assert coverage_at_risk(scores, acc, 0.5) == pytest.approx(0.75)  # the largest coverage, risk 1.4/3
    # generalized risk 0, .1, .35, .525 at coverages 1/4 .. 1, from (0, 0), trapezoids of width 1/4
    assert augrc(scores, acc) == pytest.approx(0.25 * (0 + 0.05 + 0.225 + 0.4375))
    # answering costs c only where the accuracy is 0: values 1, .6, -c, .3
    assert effective_reliability(scores, acc, threshold=0.25, cost=1) == pytest.approx(1.6 / 4)
    assert effective_reliability(scores, acc, threshold=0.45, cost=1) == pytest.approx(0.9 / 4)
    assert effective_reliability(scores, acc, threshold=0.45, cost=10) == pytest.approx(-8.1 / 4)
    assert effective_reliability(scores, acc, threshold=0.0, cost=10) == 0.0  # abstains on everything
    assert best_effective_reliability(scores, acc, cost=1) == pytest.approx(0.4)
    assert best_effective_reliability(scores, acc, cost=100) == pytest.approx(0.4)
    assert best_effective_reliability(scores, acc, cost=0) == pytest.approx(1.9 / 4)  # no cost: answer all


def test_effective_reliability_by_hand():
    # five answers: certain-right, certain-wrong, uncertain-wrong, uncertain-right, certain-right
    scores = torch.tensor([0.1, 0.2, 0.9, 0.8, 0.3])
    correct = torch.tensor([T, F, F, T, T])
    assert effective_reliability(scores, correct, 0.5, cost=1) == pytest.approx(1 / 5)  # (1 - 1 + 1) / 5
    assert effective_reliability(scores, correct, 0.5, cost=10) == pytest.approx(-8 / 5)
    assert effective_reliability(scores, correct, 1.0, cost=0) == pytest.approx(3 / 5)  # Φ_0 = accuracy
    # in order of uncertainty the values are 1, -c, 1, 1, -c: running sums for c = 1: 1, 0, 1, 2, 1
    assert best_effective_reliability(scores, correct, cost=1) == pytest.approx(2 / 5)
    assert best_effective_reliability(scores, correct, cost=10) == pytest.approx(1 / 5)  # only the first
    assert best_effective_reliability(scores, correct, cost=100) == pytest.approx(1 / 5)


def test_effective_reliability_answers_ties_together():
    scores = torch.tensor([0.5, 0.5, 0.9])
    for correct in (torch.tensor([T, F, T]), torch.tensor([F, T, T])):
        assert effective_reliability(scores, correct, 0.5, cost=10) == pytest.approx(-9 / 3)
        # answering only the right one of the tie is not a threshold: abstain (0) beats (1 - 10) / 3
        assert best_effective_reliability(scores, correct, cost=10) == 0.0
        assert best_effective_reliability(scores, correct, cost=0.5) == pytest.approx(1.5 / 3)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_all_right_and_all_wrong(n):
    scores = torch.linspace(0, 1, n)
    right, wrong = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    assert aurc(scores, right) == 0.0 and aurc(scores, wrong) == 1.0
    assert augrc(scores, right) == 0.0 and augrc(scores, wrong) == pytest.approx(0.5)
    assert risk_at_coverage(scores, right, 0.5) == 0.0 and risk_at_coverage(scores, wrong, 0.5) == 1.0
    assert coverage_at_risk(scores, right, 0.0) == 1.0
    assert coverage_at_risk(scores, wrong, 0.99) == 0.0 and coverage_at_risk(scores, wrong, 1.0) == 1.0
    for cost in (1, 10, 100):
        assert effective_reliability(scores, right, 1.0, cost) == 1.0
        assert effective_reliability(scores, wrong, 1.0, cost) == -cost
        assert best_effective_reliability(scores, right, cost) == 1.0
        assert best_effective_reliability(scores, wrong, cost) == 0.0  # abstaining on everything


def test_one_tied_group_is_all_or_nothing():
    scores = torch.full((4,), 0.7)
    correct = torch.tensor([T, T, T, F])
    assert aurc(scores, correct) == pytest.approx(0.25)  # the risk is the group's error rate at every k
    assert augrc(scores, correct) == pytest.approx(0.125)  # a straight line from (0, 0) to (1, 1/4)
    assert coverage_at_risk(scores, correct, 0.2) == 0.0 and coverage_at_risk(scores, correct, 0.25) == 1.0
    assert best_effective_reliability(scores, correct, cost=1) == pytest.approx(0.5)
    assert best_effective_reliability(scores, correct, cost=10) == 0.0


def test_cost_and_threshold_are_checked():
    scores, correct = torch.tensor([0.1, 0.2]), torch.tensor([T, F])
    for cost in (-1.0, math.nan, math.inf):
        with pytest.raises(MumoError, match="cost"):
            effective_reliability(scores, correct, 0.5, cost)
        with pytest.raises(MumoError, match="cost"):
            best_effective_reliability(scores, correct, cost)
    with pytest.raises(MumoError, match="threshold"):
        effective_reliability(scores, correct, math.nan, 1.0)


def _figures(scores: torch.Tensor, correct: torch.Tensor) -> list[float]:
    out = [aurc(scores, correct), augrc(scores, correct)]
    out += [risk_at_coverage(scores, correct, c) for c in (0.1, 0.35, 0.8, 1.0)]
    out += [coverage_at_risk(scores, correct, r) for r in (0.0, 0.01, 0.05, 0.3, 0.5)]
    out += [best_effective_reliability(scores, correct, c) for c in (0, 1, 10, 100)]
    out += [effective_reliability(scores, correct, t, 10) for t in (1.0, 2.0)]
    return out + risk_coverage_curve(scores, correct)[1].tolist()


@pytest.mark.parametrize("soft", [False, True])
def test_no_figure_depends_on_the_input_order_of_tied_scores(soft):
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (40,), generator=gen).double()  # 4 distinct values: every sample is tied
    correct = torch.rand(40, generator=gen) < 0.6
    if soft:  # VQA-accuracy-like values, some 0
        correct = correct * torch.randint(1, 4, (40,), generator=gen) / 3
    base = _figures(scores, correct)
    for _ in range(5):
        perm = torch.randperm(40, generator=gen)
        assert _figures(scores[perm], correct[perm]) == pytest.approx(base, rel=1e-12, abs=1e-12)


def test_aurc_and_augrc_are_their_means_over_every_order_of_the_tied_samples():
    scores = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 2.0], dtype=torch.float64)
    correct = torch.tensor([1.0, 0.0, 0.3, 0.0, 1.0, 1.0], dtype=torch.float64)
    seen = []
    for perm in itertools.permutations(range(6)):
        broken = scores + torch.tensor(perm, dtype=torch.float64) * 1e-3  # breaks every tie, keeps the groups
        seen.append([aurc(broken, correct), augrc(broken, correct), risk_at_coverage(broken, correct, 0.5)])
    assert np.mean(seen, axis=0).tolist() == pytest.approx(
        [aurc(scores, correct), augrc(scores, correct), risk_at_coverage(scores, correct, 0.5)]
    )


def test_threshold_figures_match_a_brute_force_over_thresholds():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(1, 30))
        s = rng.integers(0, 6, n).astype(float)
        acc = np.where(rng.random(n) < 0.4, 0.0, rng.choice([0.3, 0.6, 0.9, 1.0], n))
        scores, correct = torch.from_numpy(s), torch.from_numpy(acc)
        thresholds = np.unique(s)
        answered = [s <= t for t in thresholds]  # (U,) masks: what each threshold answers
        cov = np.array([0.0] + [m.mean() for m in answered])
        gen_risk = np.array([0.0] + [(1 - acc[m]).sum() / n for m in answered])
        assert augrc(scores, correct) == pytest.approx(np.sum(np.diff(cov) * (gen_risk[1:] + gen_risk[:-1]) / 2))
        for r in (0.0, 0.05, 0.3, 0.6):
            ok = [m.mean() for m in answered if (1 - acc[m]).mean() <= r]
            assert coverage_at_risk(scores, correct, r) == pytest.approx(max(ok, default=0.0))
        for c in (1, 10, 100):
            phis = [effective_reliability(scores, correct, t, c) for t in thresholds]
            assert best_effective_reliability(scores, correct, c) == pytest.approx(max([0.0, *phis]))


def test_augrc_agrees_with_torch_uncertaintys_integration_up_to_1_over_n():
    # torch-uncertainty: trapezoid of the generalized risk over coverages k/N, k = 1..N, divided by 1 - 1/N
    gen = torch.Generator().manual_seed(2)
    for n in (10, 100, 1000):
        scores = torch.rand(n, generator=gen, dtype=torch.float64)
        correct = torch.rand(n, generator=gen) < torch.linspace(0.9, 0.3, n)[scores.argsort().argsort()]
        errors = (~correct[scores.argsort()]).double()
        cov = torch.arange(1, n + 1, dtype=torch.float64) / n
        theirs = float(torch.trapezoid(errors.cumsum(0) / n, cov) / (1 - 1 / n))
        assert augrc(scores, correct) == pytest.approx(theirs, abs=1.0 / n)


# --- bootstrap interval of the misclassification AUROC ----------------------------------------------------------


def test_interval_of_a_perfect_ranking_is_a_point_and_too_few_errors_give_none():
    scores = torch.tensor([0.1, 0.2, 0.3, 0.8, 0.9])
    correct = torch.tensor([T, T, T, F, F])
    assert misclassification_auroc_interval(scores, correct, resamples=200, min_count=1) == (1.0, 1.0)
    low, high = misclassification_auroc_interval(scores, correct)  # 2 errors < min_count = 10
    assert math.isnan(low) and math.isnan(high)
    scores, correct = torch.linspace(0, 1, 40), torch.arange(40) < 30  # the top 10 are wrong: 10 is enough
    assert misclassification_auroc_interval(scores, correct, resamples=200) == (1.0, 1.0)


def test_interval_holds_the_estimate_covers_the_truth_and_narrows_with_data():
    # right answers' scores ~ N(0, 1), wrong ones' ~ N(1, 1): AUROC = Phi(1 / sqrt 2) = 0.7602
    truth = 0.5 * (1 + math.erf(0.5))
    gen = torch.Generator().manual_seed(0)
    covered, widths = 0, []
    for trial in range(40):
        correct = torch.rand(400, generator=gen) < 0.7
        scores = torch.randn(400, generator=gen) + (~correct).float()
        low, high = misclassification_auroc_interval(scores, correct, level=0.9, resamples=300, seed=trial)
        assert low <= misclassification_auroc(scores, correct) <= high
        covered += low <= truth <= high
        widths.append(high - low)
    assert 32 <= covered <= 40  # a 90 % interval: about 36 of 40
    correct = torch.rand(4000, generator=gen) < 0.7
    scores = torch.randn(4000, generator=gen) + (~correct).float()
    low, high = misclassification_auroc_interval(scores, correct, level=0.9, resamples=200)
    assert high - low < 0.5 * sum(widths) / len(widths)  # 10x the data: about sqrt(10) narrower


def test_groups_resample_together_and_widen_the_interval_when_they_repeat_outcomes():
    # 60 images, 10 questions each sharing their image's score and outcome: only 60 independent draws
    gen = torch.Generator().manual_seed(1)
    correct = (torch.rand(60, generator=gen) < 0.6).repeat_interleave(10)
    scores = (torch.randn(60, generator=gen)).repeat_interleave(10) + (~correct).float()
    groups = torch.arange(60).repeat_interleave(10)
    iid = misclassification_auroc_interval(scores, correct, resamples=200)
    clustered = misclassification_auroc_interval(scores, correct, groups=groups, resamples=200)
    assert clustered[1] - clustered[0] > 2 * (iid[1] - iid[0])  # about sqrt(10) wider


def test_interval_undefined_and_bad_input():
    ones = torch.ones(4, dtype=torch.bool)
    low, high = misclassification_auroc_interval(torch.rand(4), ones)  # nothing wrong: no AUROC
    assert math.isnan(low) and math.isnan(high)
    scores, correct = torch.rand(4), torch.tensor([T, F, T, F])
    for kwargs, fragment in (({"level": 1.0}, "level"), ({"level": 0.0}, "level"), ({"resamples": 0}, "resamples"),
                             ({"groups": torch.zeros(3, dtype=torch.long)}, "groups")):  # fmt: skip
        with pytest.raises(MumoError, match=fragment):
            misclassification_auroc_interval(scores, correct, **kwargs)
    with pytest.raises(MumoError, match="NaN"):
        misclassification_auroc_interval(torch.tensor([0.1, float("nan"), 0.2, 0.3]), correct)


def test_batched_weighted_auroc_equals_sklearns():
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from mumo.metrics.uncertainty import _weighted_aurocs

    rng = np.random.default_rng(0)
    scores = rng.integers(0, 12, 300).astype(float)  # many ties
    positive = rng.random(300) < 0.3
    group = rng.integers(0, 40, 300)
    counts = rng.integers(0, 3, (25, 40))
    counts[0] = 0  # an empty resample: no AUROC
    counts[1, np.unique(group[positive])] = 0  # no positive weight left
    got = _weighted_aurocs(scores, positive, group, counts)
    assert np.isnan(got[0]) and np.isnan(got[1])
    for b in range(2, 25):
        assert got[b] == pytest.approx(roc_auc_score(positive, scores, sample_weight=counts[b, group]), abs=1e-12)


def test_ood_interval_is_the_misclassification_interval_with_ood_as_wrong():
    gen = torch.Generator().manual_seed(2)
    id_scores, ood_scores = torch.randn(120, generator=gen), torch.randn(80, generator=gen) + 1.0
    id_groups, ood_groups = torch.arange(120) // 3, torch.arange(80) // 4  # questions per image
    got = ood_auroc_interval(id_scores, ood_scores, id_groups=id_groups, ood_groups=ood_groups, resamples=300)
    groups = torch.cat([id_groups, ood_groups + 1000])  # the two sides' images stay apart
    is_id = torch.arange(200) < 120
    assert got == misclassification_auroc_interval(torch.cat([id_scores, ood_scores]), is_id, groups=groups,
                                                   resamples=300)  # fmt: skip
    assert got[0] <= ood_auroc(id_scores, ood_scores) <= got[1]
    same = ood_auroc_interval(id_scores, id_scores.clone(), resamples=300)  # OOD = ID: about one half
    assert same[0] < 0.5 < same[1]
    with pytest.raises(MumoError, match="ood_groups"):
        ood_auroc_interval(id_scores, ood_scores, ood_groups=torch.zeros(3, dtype=torch.long))
