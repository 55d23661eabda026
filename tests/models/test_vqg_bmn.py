"""MC-BMN: the experts' fusions, the moderator, dropout that samples at inference with normalisation in eval, and
the cue subsets of the ablation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.errors import ConfigError
from mumo.models import create_model
from mumo.models.vqg_bmn import Cues, GaussianDropout, VQGConfig, _fuse

V, P, N_TAGS = 30, 4, 6


def tiny(*cues: str, **kw) -> nn.Module:
    cfg = VQGConfig(cues=list(cues or ("image", "place", "caption", "tag")), hidden=16, word_dim=8,
                    cnn_channels=[4, 8], cnn_pool=2, **kw)  # fmt: skip
    torch.manual_seed(0)
    return create_model(cfg, vocab_size=V, num_places=P, num_tags=N_TAGS)


def inputs(b: int = 3, *, caption: bool = True) -> tuple[torch.Tensor, Cues, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    images = torch.rand(b, 3, 16, 16, generator=g)
    place = torch.nn.functional.one_hot(torch.arange(b) % P, P).float()
    cap = torch.randint(4, V, (b, 5), generator=g)
    if not caption:
        cap[:] = 0
    tags = torch.randint(4, V, (b, 3), generator=g)
    tokens = torch.randint(4, V, (b, 7), generator=g)
    return images, Cues(place=place, caption=cap, tags=tags), tokens


def test_each_expert_fuses_the_image_with_its_cue_as_the_paper_does():
    image, cue = torch.rand(2, 4), torch.rand(2, 4)
    assert torch.equal(_fuse("caption", image, cue), image * cue)
    assert torch.equal(_fuse("tag", image, cue), image + cue)
    assert torch.equal(_fuse("place", image, cue), torch.cat([image, cue], 1))
    model = tiny()
    assert model.experts["place"].net[0].num_features == 2 * 16  # concatenation doubles the width
    assert model.experts["caption"].net[0].num_features == 16
    names = [type(m).__name__ for m in model.experts["tag"].net]
    assert names == ["BatchNorm1d", "Tanh", "Dropout", "Linear"]


def test_the_moderator_weights_sum_to_one_and_renormalise_without_a_caption():
    model = tiny().eval()
    images, cues, _ = inputs()
    feats = model.image_features(images)
    gates = model.encode(feats, cues).gates  # (B, 3): place, caption, tag
    assert torch.allclose(gates.sum(1), torch.ones(3))
    assert (gates > 0).all()
    no_caption = cues._replace(caption=torch.zeros_like(cues.caption))
    dropped = model.encode(feats, no_caption).gates
    caption = model.cfg.experts.index("caption")
    assert torch.all(dropped[:, caption] == 0)
    assert torch.allclose(dropped.sum(1), torch.ones(3))
    others = [i for i in range(3) if i != caption]  # the others keep their ratio
    ratio = gates[:, others[0]] / gates[:, others[1]]
    assert torch.allclose(dropped[:, others[0]] / dropped[:, others[1]], ratio, rtol=1e-5)


def test_one_row_without_a_caption_does_not_change_the_others():
    model = tiny().eval()
    images, cues, _ = inputs()
    feats = model.image_features(images)
    full = model.encode(feats, cues).mixture
    cap = cues.caption.clone()
    cap[1] = 0
    part = model.encode(feats, cues._replace(caption=cap)).mixture
    assert torch.allclose(full[[0, 2]], part[[0, 2]], atol=1e-6)
    assert not torch.allclose(full[1], part[1])


def test_a_row_with_no_cue_at_all_is_refused():
    model = tiny("image", "caption").eval()
    images, cues, _ = inputs(caption=False)
    with pytest.raises(ConfigError, match="at least one of those cues"):
        model.encode(model.image_features(images), Cues(caption=cues.caption))


def test_dropout_samples_at_inference_while_batchnorm_stays_in_eval():
    model = tiny()
    images, cues, tokens = inputs()
    model.train()
    model(images, cues, tokens).sum().backward()  # updates nothing, but BatchNorm's running stats moved
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    stats = [m.running_mean.clone() for m in bn]
    model.eval()
    with model.sampling():
        assert all(m.training for m in model.dropout_modules())
        assert not any(m.training for m in bn)
        a, b = model(images, cues, tokens), model(images, cues, tokens)
    assert not torch.allclose(a, b)  # two passes, two dropout masks
    assert all(torch.equal(s, m.running_mean) for s, m in zip(stats, bn, strict=True))  # eval: not updated
    assert not any(m.training for m in model.modules())  # every mode restored
    with model.sampling(False):  # MC-SMN: deterministic
        assert torch.equal(model(images, cues, tokens), model(images, cues, tokens))
    assert len(model.dropout_modules()) >= 8


def test_gaussian_dropout_keeps_the_mean_and_has_bernoulli_variance():
    x = torch.ones(200_000)
    drop = GaussianDropout(0.5).train()
    torch.manual_seed(0)
    y = drop(x)
    assert abs(float(y.mean()) - 1.0) < 0.01
    assert abs(float(y.var()) - 1.0) < 0.02  # p / (1 - p) = 1, as inverted Bernoulli dropout at p = 0.5
    assert torch.equal(drop.eval()(x), x)
    model = tiny(dropout_kind="gaussian")
    assert any(isinstance(m, GaussianDropout) for m in model.dropout_modules())
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())


@pytest.mark.parametrize(
    "cues",
    [("image",), ("place",), ("caption",), ("tag",), ("image", "place"), ("image", "caption", "tag"), ("place", "tag")],
)
def test_every_cue_subset_of_the_ablation_trains_a_step(cues):
    model = tiny(*cues).train()
    images, all_cues, tokens = inputs()
    logits = model(images if "image" in cues else None, all_cues, tokens)
    assert logits.shape == (3, 7, V)
    logits.logsumexp(-1).mean().backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("experts."))
    assert model.cfg.experts == (tuple(c for c in ("place", "caption", "tag") if c in cues) or ("image",))


def test_the_attending_decoder_looks_at_the_grid_cells():
    model = tiny(attention=True).eval()
    images, cues, tokens = inputs()
    feats = model.image_features(images)
    assert feats.regions.shape == (3, 16, 8)  # 16 px, two pooled blocks: a 4x4 grid of 8 channels
    context = model.encode(feats, cues)
    assert context.regions.shape == (3, 16, 16)
    logits = model(images, cues, tokens)
    assert logits.shape == (3, 7, V) and model.out.in_features == 32  # [output; attended cells]
    other = images.clone()
    other[0] = torch.rand(3, 16, 16)  # another image changes the attended cells of its row only
    changed = model(other, cues, tokens)
    assert not torch.allclose(changed[0], logits[0]) and torch.allclose(changed[1:], logits[1:], atol=1e-6)
    assert not hasattr(tiny("place", "tag", attention=True), "region_proj")  # no image, nothing to attend


def test_bad_configs_are_refused():
    for bad in (dict(cues=["image", "sound"]), dict(cues=[]), dict(cues=["tag", "tag"]), dict(dropout=1.0),
                dict(dropout_kind="uniform"), dict(hidden=0), dict(cnn_pool=5)):  # fmt: skip
        with pytest.raises(ConfigError):
            VQGConfig(**bad)
