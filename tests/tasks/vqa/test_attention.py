"""Attention-supervised VQA training: every variant trains, checkpoints load as a plain model, and the
attention really moves towards its target."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from mumo.errors import ConfigError
from mumo.models import create_model
from mumo.models.mcan_vqa import MCANVQA
from mumo.tasks.vqa.model import attention_objective, load_model
from mumo.tasks.vqa.train import train_vqa
from mumo.train.checkpoint import checkpoint_dir
from tests.conftest import tiny_config


@pytest.mark.parametrize("mode", ["mse", "aan", "paan", "gca"])
def test_each_variant_trains_and_loads_as_a_plain_model(mode, tmp_path, easy_vqa_data):
    cfg = tiny_config("train.epochs=1", "data.max_train_images=48", f"objective.attention_loss={mode}")
    summary = train_vqa(cfg, tmp_path / mode, progress=False, evaluate_test=False)
    assert summary["best_val_accuracy"] is not None
    ckpt = checkpoint_dir(tmp_path / mode, "best")
    weights = load_file(ckpt / "model.safetensors")  # the bare model, nothing of the training objective
    model = load_model(tmp_path / mode)
    assert isinstance(model, MCANVQA) and set(weights) == set(model.state_dict())
    has_d = (ckpt / "attention.safetensors").exists()
    assert has_d == (mode in ("aan", "paan"))
    if has_d:
        assert all(k.startswith("discriminator.") for k in load_file(ckpt / "attention.safetensors"))
    batch = easy_vqa_data.test.batch(torch.arange(2))
    assert torch.isfinite(model(batch).logits).all()
    if has_d:  # a run written before models were saved apart (the training wrapper in model.safetensors) loads
        from safetensors.torch import save_file

        legacy = {f"vqa.{k}": v for k, v in weights.items()} | load_file(ckpt / "attention.safetensors")
        save_file(legacy, ckpt / "model.safetensors")
        (ckpt / "attention.safetensors").unlink()
        assert torch.equal(load_model(tmp_path / mode)(batch).logits, model(batch).logits)


class _Trainable(torch.nn.Module):
    """A VQA model with the objective that trains its attention, as the loop's one step sees them."""

    def __init__(self, vqa: torch.nn.Module, objective: torch.nn.Module) -> None:
        super().__init__()
        self.vqa, self.objective = vqa, objective

    @property
    def discriminator(self) -> torch.nn.Module | None:
        return self.objective.discriminator

    def forward(self, batch, *, output_attentions: bool = False, training_loss: bool = False):
        if training_loss:
            return self.objective(self.vqa, batch)
        return self.vqa(batch, output_attentions=output_attentions)


def _wrapped(mode: str, data, *extra: str) -> _Trainable:
    cfg = tiny_config(f"objective.attention_loss={mode}", *extra)
    torch.manual_seed(0)
    vqa = create_model(cfg.model, vocab=data.vocab.tokens, num_answers=len(data.answers))
    objective = attention_objective(cfg, vqa, example=data.train.batch(torch.tensor([0])))
    assert objective is not None
    return _Trainable(vqa, objective)


def test_mse_supervision_pulls_attention_towards_its_target(easy_vqa_data, monkeypatch):
    """With the explanation fixed to 'all on cell 0', the attention term must move the attention there."""
    import mumo.tasks.vqa.attention as va

    def fixed_target(score, features, **kw):
        target = torch.zeros(features.shape[:2])  # (N, R)
        target[:, 0] = 1.0
        return target

    monkeypatch.setattr(va, "cam_of", fixed_target)
    batch = easy_vqa_data.train.batch(torch.arange(8))
    on_cell0 = {}
    for weight in (0, 20):
        model = _wrapped("mse", easy_vqa_data, f"objective.attention_weight={weight}")
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(40):
            model.train()
            loss, _ = model(batch, training_loss=True)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            on_cell0[weight] = float(model(batch, output_attentions=True).attentions["image_flat"][:, 0].mean())
    assert on_cell0[20] > 0.5 and on_cell0[20] > 3 * on_cell0[0]


def _gca(data, *extra: str):
    """A tiny VQA model (eval mode: no dropout noise) and its ``gca`` attention objective."""
    from mumo.models import create_model
    from mumo.tasks.vqa.model import attention_objective

    cfg = tiny_config("objective.attention_loss=gca", *extra)
    torch.manual_seed(0)
    vqa = create_model(cfg.model, vocab=data.vocab.tokens, num_answers=len(data.answers)).eval()
    return vqa, attention_objective(cfg, vqa, example=data.train.batch(torch.tensor([0])))


def _spy_gca(monkeypatch, ucam=None):
    """Record the calls of the gca branch's U-CAM loss and the scores its Grad-CAM is taken of; ``ucam``
    replaces the U-CAM loss (the real one by default). The names are patched in the attention module only,
    so the VQA loss's own U-CAM call (``mumo.tasks.vqa.loss``) is not counted."""
    import mumo.tasks.vqa.attention as va
    from mumo.uncertainty.losses import ucam_aleatoric_ce

    calls, scores, real_cam = [], [], va.cam_of

    def spy_ucam(logits, variance, targets, **kw):
        terms = (ucam or ucam_aleatoric_ce)(logits, variance, targets, **kw)
        calls.append({"logits": logits.detach().clone(), "variance": variance.detach().clone(),
                      "targets": targets, "kw": kw, "total": float(terms.total.detach())})  # fmt: skip
        return terms

    def spy_cam(score, features, **kw):
        scores.append(float(score.detach()))
        return real_cam(score, features, **kw)

    monkeypatch.setattr(va, "ucam_aleatoric_ce", spy_ucam)
    monkeypatch.setattr(va, "cam_of", spy_cam)
    return calls, scores


def test_gca_certainty_map_is_the_grad_cam_of_the_ucam_loss(easy_vqa_data, monkeypatch):
    """With U-CAM's head the map explains −N·L_U of the model's own logits and variance σ² = exp(log σ²), and
    follows what the U-CAM loss returns."""
    from mumo.uncertainty.losses import UCAMLoss, ucam_aleatoric_ce

    vqa, objective = _gca(easy_vqa_data, "model.aleatoric=ucam", "model.aleatoric_samples=4")
    batch = easy_vqa_data.train.batch(torch.arange(4))
    calls, scores = _spy_gca(monkeypatch)
    torch.manual_seed(0)
    loss, logs = objective(vqa, batch)
    assert torch.isfinite(loss) and "attention_term" in logs
    with torch.no_grad():
        out = vqa(batch)
    n = batch.tokens.shape[0]
    assert len(calls) == 1 and len(scores) == 1
    call = calls[0]
    assert torch.allclose(call["logits"], out.logits, atol=1e-6)
    assert call["variance"].shape == (n, 1) and torch.allclose(call["variance"], out.log_variance.exp(), atol=1e-6)
    assert torch.equal(call["targets"], batch.targets) and call["kw"]["num_samples"] == 4
    assert scores[0] == pytest.approx(-n * call["total"], rel=1e-5)  # Grad-CAM of −L_unc, L_unc = N·L_U

    # the map, and so the attention term and the loss, follow the U-CAM loss: flip its sign and they change
    def flipped(*args, **kw):
        t = ucam_aleatoric_ce(*args, **kw)
        return UCAMLoss(-t.total, t.undistorted, t.distorted, t.variance_term, t.depressor)

    _spy_gca(monkeypatch, ucam=flipped)
    torch.manual_seed(0)
    loss_flipped, logs_flipped = objective(vqa, batch)
    assert logs_flipped["attention_term"] != pytest.approx(logs["attention_term"], rel=1e-3)
    assert float(loss_flipped.detach()) != pytest.approx(float(loss.detach()), rel=1e-4)


def test_gca_without_the_ucam_head_explains_cross_entropy_plus_entropy(easy_vqa_data, monkeypatch):
    from mumo.uncertainty.losses import soft_cross_entropy

    vqa, objective = _gca(easy_vqa_data)
    batch = easy_vqa_data.train.batch(torch.arange(4))
    calls, scores = _spy_gca(monkeypatch)
    objective(vqa, batch)
    with torch.no_grad():
        logits = vqa(batch).logits
        log_p = logits.log_softmax(-1)
        expected = (soft_cross_entropy(logits, batch.targets) - (log_p.exp() * log_p).sum(-1)).sum()
    assert calls == [] and scores == [pytest.approx(-float(expected), rel=1e-5)]


def test_adversarial_variants_log_both_players(easy_vqa_data):
    batch = easy_vqa_data.train.batch(torch.arange(4))
    for mode in ("aan", "paan"):
        model = _wrapped(mode, easy_vqa_data)
        loss, logs = model(batch, training_loss=True)
        loss.backward()
        assert {"discriminator_loss", "generator_loss"} <= set(logs)
        assert all(p.grad is not None for p in model.discriminator.parameters())
    # the plain forward is the VQA model's
    out = model(batch, output_attentions=True)
    assert "image_flat" in out.attentions


def test_bad_attention_options_are_config_errors():
    with pytest.raises(ConfigError, match="attention_loss"):
        tiny_config("objective.attention_loss=kl")
    with pytest.raises(ConfigError, match="attention_weight"):
        tiny_config("objective.attention_weight=-1")
    assert attention_objective(tiny_config(), torch.nn.Linear(1, 1), example=None) is None  # none asked for


@pytest.fixture(scope="module")
def clevr_data(tmp_path_factory):
    from mumo.data.vqa.sort_of_clevr import generate
    from mumo.tasks.vqa.data import load_data

    root = tmp_path_factory.mktemp("soc")
    generate(root, n_train=20, n_test=4, seed=0)
    cfg = tiny_config("data.name=sort-of-clevr", f"data.root={root}", "data.image_size=75", "data.val_fraction=0.2",
                      "objective.attention_loss=masks")  # fmt: skip
    return cfg, load_data(cfg)


def _clevr_model(cfg, data, *extra: str) -> _Trainable:
    return _wrapped("masks", data, f"data.root={cfg.data.root}", "data.name=sort-of-clevr", "data.image_size=75",
                    *extra)  # fmt: skip


@pytest.mark.parametrize("glimpses", [1, 3])
def test_mask_term_is_the_kl_from_each_steps_objects(clevr_data, glimpses):
    """Glimpse g against step g's objects (steps that look at nothing add nothing); one glimpse against the
    union of the steps' objects."""
    from mumo.data.vqa.masks import question_step_maps
    from mumo.tasks.vqa.loss import vqa_loss

    cfg, data = clevr_data
    assert data.val.object_masks is not None and data.train.question_objects is not None
    model = _clevr_model(cfg, data, f"model.flat_glimpses={glimpses}", "objective.attention_weight=0.5").eval()
    batch = data.train.batch(torch.arange(3))
    loss, logs = model(batch, training_loss=True)
    with torch.no_grad():
        out = model.vqa(batch, output_attentions=True)
        objects = batch.question_objects  # (N, 2, 6)
        if glimpses == 1:
            objects = (objects.sum(1, keepdim=True) > 0).float()  # (N, 1, 6) the union
        target = question_step_maps(batch.object_masks, batch.image_index, objects, out.grid)  # (N, G, R)
        target = target / target.sum(-1, keepdim=True).clamp_min(1e-12)  # steps with no object: all zero
        att = out.attentions["image_flat"].transpose(1, 2)  # (N, G, R)
        kl = (target * (target.clamp_min(1e-12).log() - att.log())).sum()
        if glimpses == 3:  # step 2 looks at the scene for counts only
            counts = [data.train.question_types[i] == "same_shape_count" for i in batch.question_ids.tolist()]
            assert (target[:, 2].sum(-1) > 0).tolist() == counts
        plain, _ = vqa_loss(model.vqa, batch)
    n = batch.tokens.shape[0]
    assert logs["attention_term"] == pytest.approx(float(kl) / n, rel=1e-4)
    assert float(loss.detach()) == pytest.approx(float(plain + 0.5 * kl), rel=1e-4)


def test_mask_supervision_pulls_each_glimpse_onto_its_reasoning_step(clevr_data):
    from mumo.data.vqa.masks import question_step_maps

    cfg, data = clevr_data
    batch = data.train.batch(torch.arange(4))

    def on_target(model) -> list[float]:  # attention mass on each glimpse's objects
        model.eval()
        with torch.no_grad():
            out = model(batch, output_attentions=True)
        steps = question_step_maps(batch.object_masks, batch.image_index, batch.question_objects, out.grid) > 0
        att = out.attentions["image_flat"]  # (N, R, G)
        return [float((att[..., g] * steps[:, g]).sum(-1).mean()) for g in range(2)]  # steps (N, G, R)

    mass = {}
    for weight in (0, 5):
        model = _clevr_model(cfg, data, "model.flat_glimpses=2", f"objective.attention_weight={weight}")
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        terms = []
        for _ in range(40):
            model.train()
            loss, logs = model(batch, training_loss=True)
            terms.append(logs["attention_term"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        mass[weight] = on_target(model)
    assert terms[-1] < 0.7 * terms[0]  # the KL from the masks falls
    for g in range(2):  # a tiny model in 40 steps: about twice the mass of unsupervised training
        assert mass[5][g] > 1.5 * mass[0][g], mass


def test_mask_supervision_trains_and_loads_and_needs_masks(clevr_data, tmp_path, easy_vqa_data):
    cfg, _ = clevr_data
    cfg.train.epochs = 1
    summary = train_vqa(cfg, tmp_path / "run", progress=False)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    assert isinstance(load_model(tmp_path / "run"), MCANVQA)
    with pytest.raises(ConfigError, match="object masks"):
        train_vqa(tiny_config("objective.attention_loss=masks"), tmp_path / "easy", progress=False)
    model = _wrapped("masks", easy_vqa_data)  # a batch without masks (easy-VQA) is refused, not ignored
    with pytest.raises(ConfigError, match="object masks"):
        model(easy_vqa_data.train.batch(torch.arange(2)), training_loss=True)
