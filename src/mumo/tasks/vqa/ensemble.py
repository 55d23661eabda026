"""Deep ensembles of VQA runs (Lakshminarayanan et al. 2017; under shift: Ovadia et al. 2019).

M runs of one recipe, trained as ensemble members (``train.member=k``: the same data split, their own
initial weights, batch order and dropout masks), answer together: their predictive samples stack along T,
member-major, (M·T, N, C) with T MC-dropout passes each or (M, N, C) with dropout off, and every score of
:mod:`mumo.uncertainty.scores` applies unchanged. The mutual information is then the members'
disagreement (plus each member's dropout spread). The ensemble is one ``nn.Module``, :class:`DeepEnsemble`, that
:func:`mumo.tasks.vqa.predictive.predictive_probs` and everything above it take wherever one model goes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.data.vqa.split import VQASplit
from mumo.errors import ConfigError, MumoError
from mumo.metrics.vqa import soft_accuracy
from mumo.runs import Run
from mumo.tasks.vqa.accuracy import accuracy_report
from mumo.tasks.vqa.config import RunConfig
from mumo.tasks.vqa.model import load_artifacts, load_model


class DeepEnsemble(nn.Module):
    """M models answering together, held in an ``nn.ModuleList``: ``.to()``, ``.eval()`` and ``state_dict()``
    reach every member. Calling it runs every member on the same inputs and returns their M outputs in order;
    the predictive samples (member-major, member k seeded apart) come from
    :func:`mumo.tasks.vqa.predictive.predictive_probs`.

    Raises:
        MumoError: no members.
    """

    def __init__(self, members: Iterable[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        if not len(self.members):
            raise MumoError("an ensemble needs at least one model")

    def __len__(self) -> int:
        return len(self.members)

    def __iter__(self) -> Iterator[nn.Module]:
        return iter(self.members)

    def forward(self, *inputs: Any, **options: Any) -> list[Any]:
        return [m(*inputs, **options) for m in self.members]


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
) -> DeepEnsemble:
    """The runs' models as one ensemble, checked by :func:`check_members`, in eval mode on ``device``."""
    check_members(runs, same_split=same_split)
    return DeepEnsemble(load_model(Path(r), which, device) for r in runs).eval()


def ensemble_accuracy(mean: torch.Tensor, split: VQASplit) -> dict[str, Any]:
    """Accuracy of the argmax of the mean probabilities (N, C), overall and per question type."""
    return accuracy_report(soft_accuracy(mean, split.targets), split)
