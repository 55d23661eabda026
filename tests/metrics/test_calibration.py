"""Hand-worked checks of ECE, MCE, reliability bins, NLL and Brier score."""

from __future__ import annotations

import math

import pytest
import torch

from mumo.errors import MumoError
from mumo.metrics.calibration import (
    adaptive_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)

ALL_METRICS = [
    expected_calibration_error,
    adaptive_calibration_error,
    maximum_calibration_error,
    reliability_bins,
    negative_log_likelihood,
    brier_score,
]


def four_samples() -> tuple[torch.Tensor, torch.Tensor]:
    """Four samples in three of five bins (0, .2], (.2, .4], (.4, .6], (.6, .8], (.8, 1]."""
    probs = torch.tensor(
        [
            [0.90, 0.10, 0.00, 0.00],  # conf .90, argmax 0, label 0: right, bin 4
            [0.70, 0.30, 0.00, 0.00],  # conf .70, argmax 0, label 1: wrong, bin 3
            [0.30, 0.25, 0.25, 0.20],  # conf .30, argmax 0, label 0: right, bin 1
            [0.10, 0.85, 0.05, 0.00],  # conf .85, argmax 1, label 1: right, bin 4
        ],
        dtype=torch.float64,
    )
    return probs, torch.tensor([0, 1, 0, 1])


def test_ece_four_samples_by_hand():
    probs, labels = four_samples()
    # bin 4: 2 samples, acc 1, conf .875 -> 2/4 * .125 = .0625; bin 3: 1/4 * |0 - .7| = .175; bin 1: 1/4 * |1 - .3|
    assert expected_calibration_error(probs, labels, n_bins=5) == pytest.approx(0.0625 + 0.175 + 0.175)
    assert maximum_calibration_error(probs, labels, n_bins=5) == pytest.approx(0.7)


def test_adaptive_ece_four_samples_by_hand():
    probs, labels = four_samples()
    # by confidence: .30 (right), .70 (wrong) | .85 (right), .90 (right)
    # 2 equal-mass bins: |0.5 - 0.5| = 0 and |1 - .875| = .125, each weighing 1/2
    assert adaptive_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.0625)
    # one sample per bin: the mean of |right - conf| = (.7 + .7 + .15 + .1) / 4
    assert adaptive_calibration_error(probs, labels, n_bins=4) == pytest.approx(0.4125)
    assert adaptive_calibration_error(probs, labels, n_bins=40) == pytest.approx(0.4125)  # more bins than samples
    # one bin: |acc - mean conf| = |.75 - .6875|
    assert adaptive_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.0625)


def test_reliability_bins_four_samples_by_hand():
    bins = reliability_bins(*four_samples(), n_bins=5)
    assert bins["count"] == [0, 1, 0, 1, 2]
    assert bins["edges"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for got, want in zip(bins["confidence"], [math.nan, 0.3, math.nan, 0.7, 0.875], strict=True):
        assert got == pytest.approx(want, nan_ok=True)
    for got, want in zip(bins["accuracy"], [math.nan, 1.0, math.nan, 0.0, 1.0], strict=True):
        assert got == pytest.approx(want, nan_ok=True)


def test_perfectly_calibrated_set_has_zero_ece_and_mce():
    # four samples at confidence .75 of which three are right, plus two right one-hot predictions
    probs = torch.tensor([[0.75, 0.25]] * 4 + [[1.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 0, 1, 0, 1])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-7)
    assert maximum_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-7)


def test_confidence_one_falls_in_the_last_bin():
    # A wrong one-hot (conf 1.0) and a right .95 share the last bin (14/15, 1]: acc .5, conf .975 -> ECE = MCE = .475.
    # torchmetrics gives conf 1.0 a bin of its own and returns ECE .525, MCE 1.0, hence the hand-written binning.
    probs = torch.tensor([[1.0, 0.0], [0.95, 0.05]], dtype=torch.float64)
    labels = torch.tensor([1, 0])
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.475)
    assert maximum_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.475)
    assert reliability_bins(probs, labels, n_bins=15)["count"][-1] == 2


def test_bins_are_right_closed():
    # conf exactly .5 with two bins belongs to (0, .5], not (.5, 1]
    bins = reliability_bins(torch.tensor([[0.5, 0.5]]), torch.tensor([0]), n_bins=2)
    assert bins["count"] == [1, 0]


def test_ece_matches_torchmetrics_away_from_bin_edges():
    multiclass_calibration_error = pytest.importorskip(
        "torchmetrics.functional.classification"
    ).multiclass_calibration_error
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 7, generator=gen, dtype=torch.float64), dim=1)
    labels = torch.randint(0, 7, (500,), generator=gen)
    for norm, ours in [("l1", expected_calibration_error), ("max", maximum_calibration_error)]:
        want = float(multiclass_calibration_error(probs, labels, num_classes=7, n_bins=15, norm=norm))
        assert ours(probs, labels, n_bins=15) == pytest.approx(want, abs=1e-5)


def test_nll_by_hand():
    assert negative_log_likelihood(torch.eye(3), torch.tensor([0, 1, 2])) == pytest.approx(0.0)
    assert negative_log_likelihood(torch.full((2, 5), 0.2), torch.tensor([0, 3])) == pytest.approx(math.log(5))
    probs = torch.tensor([[0.5, 0.5], [0.25, 0.75]])
    assert negative_log_likelihood(probs, torch.tensor([0, 1])) == pytest.approx(-(math.log(0.5) + math.log(0.75)) / 2)
    # a confident wrong one-hot prediction is clamped at 1e-12 instead of giving inf
    assert negative_log_likelihood(torch.tensor([[1.0, 0.0]]), torch.tensor([1])) == pytest.approx(-math.log(1e-12))


def test_brier_by_hand():
    assert brier_score(torch.eye(3), torch.tensor([0, 1, 2])) == pytest.approx(0.0)
    assert brier_score(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([2])) == pytest.approx(2.0)
    # uniform over 4 classes: (1 - 1/4)^2 + 3 * (1/4)^2 = 3/4
    assert brier_score(torch.full((3, 4), 0.25), torch.tensor([0, 1, 3])) == pytest.approx(0.75)


def test_inputs_are_left_untouched():
    probs, labels = four_samples()
    before = (probs.clone(), labels.clone())
    for metric in ALL_METRICS:
        metric(probs, labels)
    assert torch.equal(probs, before[0])
    assert torch.equal(labels, before[1])


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_empty_input_raises(metric):
    with pytest.raises(MumoError, match="empty"):
        metric(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64))


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_probs_raise(metric, bad):
    probs = torch.tensor([[0.5, 0.5], [bad, 0.0]])
    with pytest.raises(MumoError, match="probabilities hold NaN or infinite values"):
        metric(probs, torch.tensor([0, 1]))


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize(
    ("probs", "labels"),
    [
        (torch.full((3, 2), 0.5), torch.tensor([0, 1])),  # N differs
        (torch.full((3,), 0.5), torch.tensor([0, 1, 0])),  # probs not (N, C)
        (torch.full((2, 2), 0.5), torch.tensor([[0], [1]])),  # labels not (N,)
    ],
)
def test_shape_mismatch_raises(metric, probs, labels):
    with pytest.raises(MumoError, match="shape"):
        metric(probs, labels)


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize("labels", [torch.tensor([0.0, 1.0]), torch.tensor([0, 2]), torch.tensor([-1, 0])])
def test_bad_labels_raise(metric, labels):
    with pytest.raises(MumoError, match="labels"):
        metric(torch.full((2, 2), 0.5), labels)


@pytest.mark.parametrize("n_bins", [0, -3, 2.5])
@pytest.mark.parametrize("metric", [expected_calibration_error, adaptive_calibration_error])
def test_bad_n_bins_raises(n_bins, metric):
    with pytest.raises(MumoError, match="n_bins"):
        metric(torch.full((2, 2), 0.5), torch.tensor([0, 1]), n_bins=n_bins)
