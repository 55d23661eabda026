"""OOD detection broken down by question type."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mumo.tasks.vqa_uncertainty import ood_auroc_by_type


def test_ood_auroc_by_type_separates_question_types():
    # in-distribution: 2 colour questions (low scores), 2 yes/no; OOD: the same types
    split = SimpleNamespace(question_types=["color", "color", "yes/no", "yes/no", "shape"])
    ood = SimpleNamespace(question_types=["color", "yes/no", "color", "yes/no"])
    in_scores = torch.tensor([0.1, 0.2, 0.5, 0.5, 0.3])
    ood_scores = torch.tensor([0.9, 0.5, 0.8, 0.5])
    res = ood_auroc_by_type(in_scores, split, ood_scores, ood)
    assert set(res) == {"color", "yes/no"}  # "shape" has no OOD questions: left out
    assert res["color"] == pytest.approx(1.0)  # every OOD colour question scores above every clean one
    assert res["yes/no"] == pytest.approx(0.5)  # ties everywhere
