"""Deep ensembles: one nn.Module, members' samples stacked along T, the member seed, and the members' compatibility
checks."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from mumo.errors import ConfigError, MumoError
from mumo.tasks.vqa.ensemble import DeepEnsemble
from mumo.tasks.vqa.predictive import MEMBER_SEED_STRIDE, members, predictive_probs
from mumo.uncertainty.scores import mutual_information
from tests.conftest import tiny_config


def _models_and_batch(tiny_run, tiny_member_run):
    from mumo.runs import Run
    from mumo.tasks.vqa.config import RunConfig
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    val = load_data(Run(tiny_run).config(RunConfig)).val
    return load_model(tiny_run), load_model(tiny_member_run), val.batch(torch.arange(4))


def test_deterministic_members_stack_along_t(tiny_run, tiny_member_run):
    a, b, batch = _models_and_batch(tiny_run, tiny_member_run)
    probs = predictive_probs(DeepEnsemble([a, b]), batch)
    assert probs.shape == (2, batch.tokens.shape[0], probs.shape[-1])  # (M, N, C)
    assert torch.allclose(probs[0], predictive_probs(a, batch)[0])
    assert torch.allclose(probs[1], predictive_probs(b, batch)[0])
    # two differently initialised members disagree somewhere: the ensemble's mutual information is positive
    assert mutual_information(probs).max() > 1e-4
    # an "ensemble" of one model twice has nothing to disagree about
    twice = predictive_probs(DeepEnsemble([a, a]), batch)
    assert torch.allclose(mutual_information(twice), torch.zeros(batch.tokens.shape[0]), atol=1e-6)


def test_mc_members_are_member_major_and_seeded_per_member(tiny_run, tiny_member_run):
    a, b, batch = _models_and_batch(tiny_run, tiny_member_run)
    probs = predictive_probs(DeepEnsemble([a, b]), batch, mc_samples=3, seed=5)
    assert probs.shape[0] == 6  # (M·T, N, C)
    assert torch.allclose(probs[:3], predictive_probs(a, batch, mc_samples=3, seed=5))
    assert torch.allclose(probs[3:], predictive_probs(b, batch, mc_samples=3, seed=5 + MEMBER_SEED_STRIDE))


def test_an_ensemble_of_one_model_answers_as_the_model(tiny_run, tiny_member_run):
    a, _, batch = _models_and_batch(tiny_run, tiny_member_run)
    one = DeepEnsemble([a])
    for mc in (None, 3):  # member 0 keeps the seed: bit-identical, deterministic or MC
        assert torch.equal(predictive_probs(one, batch, mc_samples=mc, seed=5),
                           predictive_probs(a, batch, mc_samples=mc, seed=5))  # fmt: skip
    with torch.no_grad():  # calling the ensemble: every member's output, in order
        (out,) = one(batch)
        assert torch.equal(out.logits, a(batch).logits)


def test_ensemble_is_a_module_that_reaches_every_member():
    from mumo.models import create_model
    from tests.conftest import tiny_config

    cfg = tiny_config()
    a, b = (create_model(cfg.model, vocab=["<pad>", "<unk>", "red"], num_answers=3) for _ in range(2))
    ensemble = DeepEnsemble([a, b])
    assert isinstance(ensemble, nn.Module) and len(ensemble) == 2 and members(ensemble) == [a, b]
    assert members(a) == [a]  # one model is an ensemble of itself
    assert {n.split(".")[1] for n in ensemble.state_dict()} == {"0", "1"}  # members.0.*, members.1.*
    ensemble.eval()
    assert not any(m.training for m in ensemble.modules())
    ensemble.train()
    assert all(m.training for m in a.modules()) and all(m.training for m in b.modules())
    ensemble.to(torch.float64)
    assert all(p.dtype == torch.float64 for m in (a, b) for p in m.parameters())
    with pytest.raises(MumoError, match="at least one model"):
        DeepEnsemble([])


def test_member_shares_the_split_and_changes_the_weights(easy_vqa_data):
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.train import build_task

    cfg0, cfg1 = tiny_config("data.max_train_images=50"), tiny_config("data.max_train_images=50", "train.member=1")
    assert cfg0.train.init_seed == cfg0.train.seed and cfg1.train.init_seed != cfg1.train.seed
    d0, d1 = load_data(cfg0), load_data(cfg1)
    assert d0.val.questions == d1.val.questions and d0.train.questions == d1.train.questions
    w0 = next(build_task(cfg0, d0).model.parameters())
    w1 = next(build_task(cfg1, d1).model.parameters())
    assert not torch.equal(w0, w1)
    with pytest.raises(ConfigError, match=r"train\.member"):
        tiny_config("train.member=-1")


def test_members_must_answer_alike(tiny_run, tiny_member_run, tmp_path):
    from mumo.tasks.vqa.ensemble import check_members, load_ensemble

    ensemble = load_ensemble([tiny_run, tiny_member_run], device="cpu")
    assert isinstance(ensemble, DeepEnsemble) and len(ensemble) == 2 and not ensemble.training
    with pytest.raises(ConfigError, match="twice"):
        check_members([tiny_run, tiny_run], same_split=True)
    # another answer list: another data set
    other = tmp_path / "other-answers"
    shutil.copytree(tiny_run, other)
    art = json.loads((other / "artifacts.json").read_text())
    art["answers"] = list(reversed(art["answers"]))
    (other / "artifacts.json").write_text(json.dumps(art))
    with pytest.raises(ConfigError, match="answer list"):
        check_members([tiny_run, other], same_split=False)
    # another train.seed: another validation split; fine for answering, refused for evaluation
    reseeded = tmp_path / "reseeded"
    shutil.copytree(tiny_member_run, reseeded)
    cfg = (reseeded / "config.yaml").read_text()
    assert "  seed: 0\n" in cfg
    (reseeded / "config.yaml").write_text(cfg.replace("  seed: 0\n", "  seed: 3\n"))
    assert len(check_members([tiny_run, reseeded], same_split=False)) == 2
    with pytest.raises(ConfigError, match=r"train\.member"):
        check_members([tiny_run, reseeded], same_split=True)
