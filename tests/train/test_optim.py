"""The learning-rate schedule against mcan-vqa's."""

from __future__ import annotations

import pytest

from mumo.config import TrainConfig
from mumo.train.optim import lr_factor


def test_mcan_schedule_decays_after_epochs_10_and_12_as_mcan_vqa_does():
    """mcan-vqa: warm-up 1/4, 2/4, 3/4; ``if epoch in [10, 12]: lr *= 0.2`` with a 0-based epoch at its start, so
    epochs 1-10 (1-based) run at the full rate, 11-12 at 0.2x and 13 at 0.04x."""
    cfg = TrainConfig(epochs=13, warmup_epochs=3, decay_epochs=[10, 12], decay_rate=0.2)
    expected = [0.25, 0.5, 0.75] + [1.0] * 7 + [0.2, 0.2, 0.04]
    assert [lr_factor(e, cfg) for e in range(13)] == pytest.approx(expected)


def test_the_shipped_mcan_cpu_preset_keeps_the_schedule_it_was_tuned_with():
    """mcan-cpu was tuned when decay_epochs counted one epoch earlier ([9, 11] then, [8, 10] now): 0.2x from the
    9th epoch, 0.04x from the 11th."""
    from mumo.tasks import load_config

    cfg = load_config("mcan-cpu").train
    factors = [lr_factor(e, cfg) for e in range(cfg.epochs)]
    assert factors[7] == 1.0 and factors[8] == pytest.approx(cfg.decay_rate)
    assert factors[10] == pytest.approx(cfg.decay_rate**2)
