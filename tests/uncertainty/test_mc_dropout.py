import pytest
import torch
from torch import nn

from mumo.errors import MumoError
from mumo.models import create_model
from mumo.tasks import load_config
from mumo.types import VQABatch
from mumo.uncertainty.mc_dropout import (
    MAX_SAMPLES,
    dropout_modules,
    mc_dropout,
    mc_forward,
    mc_forward_naive,
    num_sampled_dropout,
    resolve_scope,
)

SHRINK = [
    "model.hidden=16", "model.heads=2", "model.layers=2", "model.ff=32", "model.flat_mlp=8", "model.flat_out=24",
    "model.word_dim=12", "model.cnn_channels=[4,8,8,8]", "model.dropout=0.3",
]  # fmt: skip
VOCAB = ["<pad>", "<unk>", "what", "color", "is", "it"]


def _model(*extra):
    torch.manual_seed(0)
    cfg = load_config("mcan-cpu", [*SHRINK, *extra])
    return create_model(cfg.model, vocab=VOCAB, num_answers=5)


def _batch():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(2, 6, (6, 5), generator=g)
    tokens[:, 4:] = 0
    return VQABatch(torch.rand(2, 3, 32, 32, generator=g), tokens, torch.tensor([0, 0, 0, 1, 1, 1]))


def test_fast_path_equals_naive_loop_sample_for_sample():
    model, batch = _model(), _batch()
    naive = mc_forward_naive(model, batch, num_samples=7, seed=3)
    fast = mc_forward(model, batch, num_samples=7, seed=3)
    chunked = mc_forward(model, batch, num_samples=7, seed=3, max_rows=12)  # 2 samples per call
    assert naive.shape == fast.shape == (7, 6, 5)
    assert torch.allclose(naive, fast, atol=1e-6)
    assert torch.allclose(naive, chunked, atol=1e-6)
    assert not torch.allclose(fast[0], fast[1])  # the samples differ
    assert torch.equal(fast, mc_forward(model, batch, num_samples=7, seed=3))  # seeded
    assert not torch.allclose(fast, mc_forward(model, batch, num_samples=7, seed=4))


def test_only_dropout_samples_and_normalisation_is_untouched():
    model, batch = _model(), _batch()
    model.train()
    bn = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [(m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked)) for m in bn]
    samples = mc_forward(model, batch, num_samples=4)
    after = [(m.running_mean, m.running_var, int(m.num_batches_tracked)) for m in bn]
    for (m0, v0, n0), (m1, v1, n1) in zip(before, after, strict=True):
        assert torch.equal(m0, m1) and torch.equal(v0, v1) and n0 == n1
    assert model.training and all(m.training for m in model.modules())  # flags restored
    model.eval()
    det = model(batch).logits
    assert not torch.allclose(samples.mean(0), det)  # dropout was active


def test_mc_dropout_restores_state_and_hooks_after_an_exception():
    model = _model()
    model.eval()
    with pytest.raises(ValueError), mc_dropout(model):
        raise ValueError("boom")
    assert all(not m._forward_hooks for m in dropout_modules(model))
    assert not any(m.training for m in model.modules())


def test_multiple_outputs_are_stacked():
    model, batch = _model("model.aleatoric=kendall-gal"), _batch()
    logits, log_var = mc_forward(model, batch, num_samples=3, output_fn=lambda o: (o.logits, o.log_variance))
    assert logits.shape == log_var.shape == (3, 6, 5)


def test_any_module_with_several_inputs_uses_the_naive_loop():
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.drop = nn.Linear(3, 4), nn.Linear(2, 4), nn.Dropout(0.5)

        def forward(self, x, y):
            return self.drop(self.a(x) + self.b(y))

    m = TwoInputs()
    out = mc_forward(m, torch.randn(5, 3), torch.randn(5, 2), num_samples=6)
    assert out.shape == (6, 5, 4)
    assert (out == 0).any() and not torch.equal(out[0], out[1])


def test_bad_sample_counts_and_models_without_dropout():
    model, batch = _model(), _batch()
    for bad in (0, -3, MAX_SAMPLES + 1, 2.5):
        with pytest.raises(MumoError, match="MC samples"):
            mc_forward(model, batch, num_samples=bad)
    with pytest.raises(MumoError, match="nothing to sample"):
        mc_forward(_model("model.dropout=0.0"), batch, num_samples=3)


def test_large_t_keeps_memory_bounded_by_chunking():
    model, batch = _model(), _batch()
    calls = []
    original = model.head

    def spy(state, **kw):
        calls.append(state.num_rows)
        return original(state, **kw)

    model.head = spy
    out = mc_forward(model, batch, num_samples=500, max_rows=60)
    assert out.shape == (500, 6, 5)
    assert max(calls) <= 60 and len(calls) == 50


def test_attflat_scope_samples_only_the_attflat_mlps_and_matches_the_naive_loop():
    model, batch = _model(), _batch()
    attflat_modules = set(dropout_modules(model, "attflat"))
    assert attflat_modules and attflat_modules < set(dropout_modules(model))
    fast = mc_forward(model, batch, num_samples=6, seed=2, scope="attflat")
    naive = mc_forward_naive(model, batch, num_samples=6, seed=2, scope="attflat")
    assert torch.allclose(fast, naive, atol=1e-6)
    assert not torch.allclose(fast[0], fast[1])
    # with only AttFlat sampling, the co-attention output is the deterministic one
    model.eval()
    with torch.no_grad():
        det = model.coattend(model.trunk(batch))
        state = model.trunk(batch, scope="attflat")
    assert torch.allclose(det.image, state.image) and torch.allclose(det.question, state.question)
    with pytest.raises(MumoError, match="scope"):
        mc_forward(model, batch, num_samples=2, scope="encoder")


def _hand_counted_dropout(model) -> tuple[list[nn.Dropout], list[nn.Dropout]]:
    """MCAN's dropout modules named one by one from its definition: (every one, AttFlat's)."""
    attflat = [model.flat_question.mlp[2], model.flat_image.mlp[2]]  # Linear, ReLU, Dropout, Linear
    every = list(attflat)
    for sa in model.encoder:  # attention weights, FFN, two residual branches
        every += [sa.att.dropout, sa.ffn.net[2], sa.drop1, sa.drop2]
    for sga in model.decoder:  # two attentions' weights, FFN, three residual branches
        every += [sga.self_att.dropout, sga.guided_att.dropout, sga.ffn.net[2], sga.drop1, sga.drop2, sga.drop3]
    if model.region_dropout.p > 0:
        every.append(model.region_dropout)
    return every, attflat


@pytest.mark.parametrize("extra", [(), ("model.layers=1",), ("model.region_dropout=0.2",)])
def test_the_number_of_sampled_dropout_modules_is_the_hand_count(extra):
    model, batch = _model(*extra), _batch()
    every, attflat = _hand_counted_dropout(model)
    assert all(isinstance(m, nn.Dropout) and m.p > 0 for m in every)
    assert set(every) == {m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0}
    layers = model.cfg.layers
    assert len(every) == 10 * layers + 2 + (model.cfg.region_dropout > 0) and len(attflat) == 2
    assert num_sampled_dropout(model, "all") == len(every)
    assert num_sampled_dropout(model, "attflat") == 2
    # and they are the modules that draw masks in an MC pass (the fast path's head and the naive loop alike)
    for scope, expected in (("all", every), ("attflat", attflat)):
        with torch.no_grad(), mc_dropout(model, seed=0, scope=scope) as sampler:
            sampler.first, sampler.count = 0, 1
            model(batch)
        assert sampler.sampled == {id(m) for m in expected}, scope
    plain = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Dropout(0.0), nn.Linear(4, 4), nn.Dropout(0.1))
    assert num_sampled_dropout(plain) == 2  # p = 0 never samples
    with pytest.raises(MumoError, match="scope 'attflat' is not offered"):
        num_sampled_dropout(plain, "attflat")


def test_head_is_a_deprecated_alias_of_attflat():
    model, batch = _model(), _batch()
    with pytest.warns(FutureWarning, match="'head' is deprecated.*'attflat'"):
        assert resolve_scope(model, "head") == "attflat"
    assert resolve_scope(model, "attflat") == "attflat" and resolve_scope(model, "all") == "all"
    with pytest.warns(FutureWarning):
        assert dropout_modules(model, "head") == dropout_modules(model, "attflat")
    with pytest.warns(FutureWarning):
        assert num_sampled_dropout(model, "head") == 2
    with pytest.warns(FutureWarning):
        old = mc_forward(model, batch, num_samples=4, seed=2, scope="head")
    with pytest.warns(FutureWarning):
        old_naive = mc_forward_naive(model, batch, num_samples=4, seed=2, scope="head")
    new = mc_forward(model, batch, num_samples=4, seed=2, scope="attflat")
    assert torch.equal(old, new) and torch.allclose(old_naive, new, atol=1e-6)
    assert model.trunk_is_deterministic("head")  # the model's own methods take the old name too
    plain = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5))
    assert resolve_scope(plain, "head") == "head"  # no alias where the model offers no attflat scope


def test_masks_keep_the_requested_fraction_and_preserve_the_mean():
    class Drop(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.3)

        def forward(self, x):
            return self.drop(x)

    x = torch.ones(4000, 50)
    out = mc_forward(Drop(), x, num_samples=2, seed=0)  # (2, 4000, 50)
    kept = (out != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.005
    assert abs(out.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation


def test_dropout_in_the_cnn_makes_the_trunk_stochastic_and_uses_the_naive_loop():
    model, batch = _model("model.cnn_dropout=0.2"), _batch()
    assert not model.trunk_is_deterministic("all") and model.trunk_is_deterministic("attflat")
    fast = mc_forward(model, batch, num_samples=4, seed=5)
    naive = mc_forward_naive(model, batch, num_samples=4, seed=5)
    assert torch.allclose(fast, naive, atol=1e-6)
    # the image features themselves now vary across samples
    with mc_dropout(model, seed=0) as sampler:
        sampler.first, sampler.count = 0, 1
        a = model.trunk(batch).image
        sampler.first = 1
        b = model.trunk(batch).image
    assert not torch.allclose(a, b)


def test_independent_rows_get_the_samples_they_would_get_alone():
    """A server batching requests: row b's T samples equal those of a batch of row b alone, on both paths."""
    model = _model()
    g = torch.Generator().manual_seed(2)
    images, tokens = torch.rand(3, 3, 32, 32, generator=g), torch.randint(2, 6, (3, 5), generator=g)
    batch = VQABatch(images, tokens, torch.arange(3))
    for forward in (mc_forward, mc_forward_naive):
        together = forward(model, batch, num_samples=4, seed=5, independent_rows=3)  # (T, 3, C)
        for b in range(3):
            alone = forward(model, VQABatch(images[b : b + 1], tokens[b : b + 1], torch.zeros(1, dtype=torch.long)),
                            num_samples=4, seed=5)  # fmt: skip
            assert torch.allclose(together[:, b], alone[:, 0], atol=1e-5)
    shared = mc_forward(model, batch, num_samples=4, seed=5)  # one generator for the batch: row 1 differs
    alone = mc_forward(
        model, VQABatch(images[1:2], tokens[1:2], torch.zeros(1, dtype=torch.long)), num_samples=4, seed=5
    )
    assert not torch.allclose(shared[:, 1], alone[:, 0], atol=1e-5)
