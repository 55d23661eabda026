"""Temperature scaling against hand-worked and generated cases."""

from __future__ import annotations

import math

import pytest
import torch

from mumo.errors import MumoError
from mumo.uncertainty.temperature import fit_temperature, temperature_nll


def test_nll_by_hand():
    logits, labels = torch.tensor([[0.0, math.log(3.0)]]), torch.tensor([1])
    assert temperature_nll(logits, labels, 1.0) == pytest.approx(math.log(4 / 3))  # p = 3/4
    assert temperature_nll(logits, labels, 0.5) == pytest.approx(math.log(10 / 9))  # p = 9/10
    assert temperature_nll(logits, labels, 1e6) == pytest.approx(math.log(2), abs=1e-6)  # uniform


def test_recovers_the_temperature_of_overconfident_logits():
    gen = torch.Generator().manual_seed(0)
    true = 2.0 * torch.randn(40_000, 5, generator=gen)  # a calibrated model's logits
    labels = torch.multinomial(true.softmax(-1), 1, generator=gen)[:, 0]  # labels drawn from it
    t = fit_temperature(2.5 * true, labels)  # the same model, over-confident by a factor 2.5
    assert t == pytest.approx(2.5, rel=0.03)
    best = temperature_nll(2.5 * true, labels, t)
    for other in (1.0, t * 0.9, t * 1.1):
        assert best <= temperature_nll(2.5 * true, labels, other)


def test_a_perfect_held_out_set_stops_at_the_lower_bound():
    logits = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
    assert fit_temperature(logits, torch.tensor([0, 1]), bounds=(0.1, 10.0)) == pytest.approx(0.1, rel=1e-3)


@pytest.mark.parametrize(
    ("logits", "labels", "bounds", "message"),
    [
        (torch.zeros(0, 3), torch.zeros(0, dtype=torch.long), (0.05, 20.0), "zero samples"),
        (torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]), (0.05, 20.0), "NaN"),
        (torch.zeros(2, 3), torch.tensor([0, 3]), (0.05, 20.0), "labels must lie"),
        (torch.zeros(2, 3), torch.tensor([0, 1]), (2.0, 1.0), "bounds"),
    ],
)
def test_bad_input_is_a_clear_error(logits, labels, bounds, message):
    with pytest.raises(MumoError, match=message):
        fit_temperature(logits, labels, bounds=bounds)
