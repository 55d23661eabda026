"""Deep ensembles of VQA runs (Lakshminarayanan et al. 2017; under shift: Ovadia et al. 2019).

M runs of one recipe, trained as ensemble members (``train.member=k``: the same data split, their own
initial weights, batch order and dropout masks), answer together: their predictive samples stack along T,
member-major, (M·T, N, C) with T MC-dropout passes each or (M, N, C) with dropout off, and every score of
:mod:`mumo.uncertainty.scores` applies unchanged. The mutual information is then the members'
disagreement (plus each member's dropout spread). :func:`mumo.tasks.vqa.uncertainty.predictive_probs`
takes the members as a list.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.config import RunConfig
from mumo.data.vqa.split import VQASplit
from mumo.errors import ConfigError
from mumo.metrics.vqa import soft_accuracy
from mumo.runs import Run
from mumo.tasks.vqa.accuracy import accuracy_report
from mumo.tasks.vqa.model import load_artifacts, load_model


def check_members(runs: Sequence[Path], *, same_split: bool) -> list[RunConfig]:
    """The configs of ensemble runs, after checking that they can answer together.

    Members must share the answer list, the vocabulary and the image preprocessing; with ``same_split``
    (evaluation) also the data set and its split (``data.*`` and ``train.seed``), so that no member trained on
    the questions the ensemble is evaluated on.

    Raises:
        ConfigError: no runs, a run listed twice, or members that differ in any of the above.
    """
    runs = [Path(r) for r in runs]
    if not runs:
        raise ConfigError("an ensemble needs at least one run")
    seen = [r.resolve() for r in runs]
    if len(set(seen)) < len(seen):
        raise ConfigError("an ensemble lists the same run twice; its members must be different runs")
    first_art, first_cfg = load_artifacts(runs[0]), Run(runs[0]).config(RunConfig)
    cfgs = [first_cfg]
    for run in runs[1:]:
        art, cfg = load_artifacts(run), Run(run).config(RunConfig)
        if art["answers"] != first_art["answers"] or art["vocab"] != first_art["vocab"]:
            raise ConfigError(
                f"{run} has another answer list or vocabulary than {runs[0]}: ensemble members must be trained on "
                "the same data set"
            )
        d, d0 = cfg.data, first_cfg.data
        if (d.image_size, d.max_question_len) != (d0.image_size, d0.max_question_len):
            raise ConfigError(
                f"{run} preprocesses inputs differently from {runs[0]} (data.image_size {d.image_size} vs "
                f"{d0.image_size}, data.max_question_len {d.max_question_len} vs {d0.max_question_len})"
            )
        if same_split and (d != d0 or cfg.train.seed != first_cfg.train.seed):
            raise ConfigError(
                f"{run} was trained on another data split than {runs[0]} (data.* or train.seed differ): its "
                "training questions may be in the evaluated split. Train ensemble members with the same seed and "
                "train.member=1, 2, ... instead"
            )
        cfgs.append(cfg)
    return cfgs


def load_ensemble(
    runs: Sequence[Path], *, which: str = "best", device: str = "auto", same_split: bool = True
) -> list[nn.Module]:
    """The members' models, checked by :func:`check_members`, each in eval mode on ``device``."""
    check_members(runs, same_split=same_split)
    return [load_model(Path(r), which, device) for r in runs]


def ensemble_accuracy(mean: torch.Tensor, split: VQASplit) -> dict[str, Any]:
    """Accuracy of the argmax of the mean probabilities (N, C), overall and per question type."""
    return accuracy_report(soft_accuracy(mean, split.targets), split)
