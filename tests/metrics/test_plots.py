"""The plots write non-empty PNGs that Pillow opens, and reject bad input."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from mumo.errors import MumoError
from mumo.metrics.plots import plot_reliability_diagram, plot_risk_coverage, plot_uncertainty_histograms
from mumo.metrics.uncertainty import risk_coverage_curve


def assert_png(path) -> None:
    assert path.is_file()
    assert path.stat().st_size > 0
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0


def test_reliability_diagram(tmp_path):
    gen = torch.Generator().manual_seed(0)
    probs = torch.softmax(2 * torch.randn(200, 5, generator=gen), dim=1)
    probs[:3] = torch.eye(5)[:3]  # confidence 1.0 and empty bins must not break the plot
    labels = torch.randint(0, 5, (200,), generator=gen)
    path = plot_reliability_diagram(probs, labels, tmp_path / "nested" / "reliability.png", title="test")
    assert path == tmp_path / "nested" / "reliability.png"
    assert_png(path)


def test_uncertainty_histograms(tmp_path):
    groups = {"correct": torch.rand(50) * 0.5, "wrong": torch.rand(20) * 0.5 + 0.5, "constant": torch.full((5,), 0.3)}
    path = plot_uncertainty_histograms(groups, str(tmp_path / "hist.png"), xlabel="entropy (nats)", title="t")
    assert_png(path)


def test_uncertainty_histograms_symlog_for_heavy_tails(tmp_path):
    # a negative log density: most in-distribution values near -250, OOD values spread up to thousands
    groups = {"in-distribution": -250 + torch.randn(200) * 20, "OOD": torch.rand(100) * 7000 - 300}
    path = plot_uncertainty_histograms(groups, tmp_path / "sym.png", xlabel="nats", symlog=True)
    assert_png(path)


def test_risk_coverage(tmp_path):
    correct = torch.tensor([True, False, True, True, False, True])
    scores = torch.tensor([0.1, 0.9, 0.2, 0.3, 0.8, 0.4])
    curves = {"entropy": risk_coverage_curve(scores, correct), "random": risk_coverage_curve(-scores, correct)}
    assert_png(plot_risk_coverage(curves, tmp_path / "rc.png", title="risk-coverage"))


def test_plot_errors(tmp_path):
    with pytest.raises(MumoError, match="empty"):
        plot_reliability_diagram(torch.zeros(0, 3), torch.zeros(0, dtype=torch.int64), tmp_path / "a.png")
    with pytest.raises(MumoError, match="probabilities hold NaN"):
        plot_reliability_diagram(torch.tensor([[math.nan, 1.0]]), torch.tensor([0]), tmp_path / "a.png")
    with pytest.raises(MumoError, match="at least one"):
        plot_uncertainty_histograms({}, tmp_path / "b.png", xlabel="x")
    with pytest.raises(MumoError, match="empty"):
        plot_uncertainty_histograms({"a": torch.zeros(0)}, tmp_path / "b.png", xlabel="x")
    with pytest.raises(MumoError, match="NaN"):
        plot_uncertainty_histograms({"a": torch.tensor([math.inf])}, tmp_path / "b.png", xlabel="x")
    with pytest.raises(MumoError, match="at least one"):
        plot_risk_coverage({}, tmp_path / "c.png")
    with pytest.raises(MumoError, match="differ in shape"):
        plot_risk_coverage({"m": (torch.tensor([0.5, 1.0]), torch.tensor([0.0]))}, tmp_path / "c.png")
    assert not list(tmp_path.iterdir())
