"""Wav2Lip-style generator and its discriminators: shapes and ranges, masking (the target's mouth never reaches
the generator), frame independence, the reference layout and parameter counts, MC dropout, errors, the LipGAN
contrastive loss and the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mumo.errors import ConfigError, MumoError
from mumo.models import create_model, list_models
from mumo.models.sync_expert import ConvBlock
from mumo.models.wav2lip import (
    ConvTransposeBlock,
    LipGANDiscriminator,
    VisualDiscriminator,
    VisualDiscriminatorConfig,
    Wav2Lip,
    Wav2LipConfig,
    contrastive_loss,
    generator_input,
    lower_half,
    mask_lower_half,
)
from mumo.uncertainty.mc_dropout import dropout_modules, mc_forward

# Narrow widths (the reference's divided by 8 to 32, fewer residual blocks): the file runs in seconds on one thread.
NARROW = {
    "face_channels": [4, 4, 8, 8, 16, 16, 16], "face_residual": [0, 1, 1, 0, 0, 1],
    "audio_channels": [4, 8, 8, 16, 16], "audio_residual": [1, 0, 0, 1],
    "decoder_channels": [16, 16, 16, 12, 8, 8, 4], "decoder_residual": [1, 0, 1, 0, 0, 1], "output_channels": 4,
}  # fmt: skip
NARROW_DISC = [4, 8, 8, 16, 16, 16, 16]


def _frames(b: int = 2, t: int = 5, seed: int = 0, size: int = 96):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, t, 3, size, size, generator=g)  # (B, T, 3, S, S) in [0, 1]
    reference = torch.rand(b, t, 3, size, size, generator=g)
    mels = 8 * torch.rand(b, t, 1, 80, 16, generator=g) - 4  # (B, T, 1, 80, 16) in [-4, 4]
    return target, reference, mels


def _narrow(**overrides) -> Wav2Lip:
    torch.manual_seed(0)
    return Wav2Lip(cfg=Wav2LipConfig(**{**NARROW, **overrides}))


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_output_shape_range_and_every_parameter_learns():
    model = _narrow()
    target, reference, mels = _frames()
    out = model(generator_input(target, reference), mels)  # train mode: batch statistics over B * T frames
    assert out.shape == (2, 5, 3, 96, 96)
    (out - target).abs().mean().backward()  # the reconstruction L1
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.no_grad():
        evaluated = model.eval()(generator_input(target, reference), mels[:, :, 0])  # (B, T, 80, 16) accepted too
    assert evaluated.shape == (2, 5, 3, 96, 96)
    assert ((evaluated >= 0) & (evaluated <= 1)).all()


def test_mask_lower_half_and_generator_input():
    frames = torch.rand(4, 3, 6, 6) + 0.5  # no zero pixels
    before = frames.clone()
    masked = mask_lower_half(frames)
    assert torch.equal(frames, before)  # the input is untouched
    assert (masked[..., 3:, :] == 0).all() and torch.equal(masked[..., :3, :], frames[..., :3, :])
    assert torch.equal(
        mask_lower_half(torch.ones(1, 3, 5, 5))[0, 0, :, 0], torch.tensor([1.0, 1, 0, 0, 0])
    )  # rows S // 2 on
    assert torch.equal(lower_half(frames), frames[..., 3:, :]) and lower_half(frames).shape == (4, 3, 3, 6)
    target, reference, _ = _frames(1, 2, size=8)
    x = generator_input(target, reference)  # (1, 2, 6, 8, 8)
    assert x.shape == (1, 2, 6, 8, 8)
    assert torch.equal(x[:, :, :3], mask_lower_half(target)) and torch.equal(x[:, :, 3:], reference)
    with pytest.raises(MumoError, match="S, S"):
        mask_lower_half(torch.rand(3, 4, 6))
    with pytest.raises(MumoError, match="S, S"):
        lower_half(torch.rand(2, 4, 6, 6))
    with pytest.raises(MumoError, match="target and reference"):
        generator_input(target, reference[:, :1])


def test_the_lower_half_of_the_target_never_reaches_the_generator():
    model = _narrow()
    target, reference, mels = _frames()
    target.requires_grad_(True)
    for mode in (model.train, model.eval):
        mode()
        target.grad = None
        model(generator_input(target, reference), mels).square().sum().backward()
        assert torch.equal(target.grad[..., 48:, :], torch.zeros_like(target.grad[..., 48:, :]))  # exactly zero
        assert (target.grad[..., :48, :] != 0).float().mean() > 0.5  # the upper half is used
    unmasked = torch.cat([target.detach(), reference], dim=2)  # (B, T, 6, S, S), mouth visible
    with pytest.raises(MumoError, match="lower half zeroed: use generator_input"):
        model(unmasked, mels)


def test_frames_are_generated_independently():
    model = _narrow().eval()
    target, reference, mels = _frames()
    other_target, other_reference, other_mels = _frames(seed=1)
    target2, reference2, mels2 = target.clone(), reference.clone(), mels.clone()
    target2[:, 3], reference2[:, 3], mels2[:, 3] = other_target[:, 3], other_reference[:, 3], other_mels[:, 3]
    with torch.no_grad():
        a = model(generator_input(target, reference), mels)
        b = model(generator_input(target2, reference2), mels2)
    torch.testing.assert_close(b[:, 1], a[:, 1])
    assert not torch.allclose(b[:, 3], a[:, 3])
    with torch.no_grad():  # one frame at a time gives the same faces
        single = model(generator_input(target[:, 1:2], reference[:, 1:2]), mels[:, 1:2])
    torch.testing.assert_close(single[:, 0], a[:, 1])


# Wav2Lip's generator (models/wav2lip.py, blocks from models/conv.py, github.com/Rudrabha/Wav2Lip), stage by
# stage: (cin, cout, kernel, stride, padding, residual 3x3 blocks after it). Every block has a bias, BatchNorm2d
# and a ReLU.
REFERENCE_FACE = [
    [(6, 16, 7, 1, 3, 0)],
    [(16, 32, 3, 2, 1, 2)],
    [(32, 64, 3, 2, 1, 3)],
    [(64, 128, 3, 2, 1, 2)],
    [(128, 256, 3, 2, 1, 2)],
    [(256, 512, 3, 2, 1, 1)],
    [(512, 512, 3, 1, 0, 0), (512, 512, 1, 1, 0, 0)],
]
REFERENCE_AUDIO = [
    (1, 32, 3, 1, 1, 2),
    (32, 64, 3, (3, 1), 1, 2),
    (64, 128, 3, 3, 1, 2),
    (128, 256, 3, (3, 2), 1, 1),
    (256, 512, 3, 1, 0, 0),
    (512, 512, 1, 1, 0, 0),
]
# Decoder: a 1x1 block, then transposed blocks (cin, cout, kernel, stride, padding, output padding, residual).
REFERENCE_DECODER = [
    (1024, 512, 3, 1, 0, 0, 1),
    (1024, 512, 3, 2, 1, 1, 2),
    (768, 384, 3, 2, 1, 1, 2),
    (512, 256, 3, 2, 1, 1, 2),
    (320, 128, 3, 2, 1, 1, 2),
    (160, 64, 3, 2, 1, 1, 2),
]
# Visual discriminator: Conv2d (with bias) + LeakyReLU(0.01) per row: (cin, cout, kernel, stride, padding).
REFERENCE_DISC = [
    (3, 32, 7, 1, 3),
    (32, 64, 5, (1, 2), 2), (64, 64, 5, 1, 2),
    (64, 128, 5, 2, 2), (128, 128, 5, 1, 2),
    (128, 256, 5, 2, 2), (256, 256, 5, 1, 2),
    (256, 512, 3, 2, 1), (512, 512, 3, 1, 1),
    (512, 512, 3, 2, 1), (512, 512, 3, 1, 1),
    (512, 512, 3, 1, 0), (512, 512, 1, 1, 0),
]  # fmt: skip
WAV2LIP_PARAMETERS = 36_298_035  # counted on the model, equal to the count of the tables above
VISUAL_DISC_PARAMETERS = 14_113_793  # likewise, plus the 512 -> 1 logit conv


def _pair(v) -> tuple[int, int]:
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _block_params(cin: int, cout: int, k: int, n_res: int) -> int:
    """A conv (or transposed conv) block with bias and BatchNorm, then n_res residual 3x3 blocks."""
    return cin * cout * k * k + 3 * cout + n_res * (9 * cout * cout + 3 * cout)


def _read_stage(stage: nn.Sequential) -> list[tuple]:
    """(cin, cout, kernel, stride, padding, residual blocks) of a stage's blocks, read off the built modules."""
    rows: list[tuple] = []
    for b in stage:
        assert isinstance(b, ConvBlock) and b.conv.bias is not None and b.norm.num_features == b.conv.out_channels
        c = b.conv
        if b.residual:
            assert (c.in_channels, c.out_channels) == (rows[-1][1],) * 2
            assert (c.kernel_size, c.stride, c.padding) == ((3, 3), (1, 1), (1, 1))
            rows[-1] = (*rows[-1][:5], rows[-1][5] + 1)
        else:
            rows.append((c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, 0))
    return rows


def _table(rows: list[tuple]) -> list[tuple]:
    return [(cin, cout, _pair(k), _pair(s), _pair(p), n) for cin, cout, k, s, p, n in rows]


def test_reference_layout_schedule_and_parameter_count():
    model = Wav2Lip(cfg=Wav2LipConfig())
    assert [_read_stage(stage) for stage in model.face_encoder] == [_table(rows) for rows in REFERENCE_FACE]
    assert _read_stage(model.audio_encoder) == _table(REFERENCE_AUDIO)
    assert _read_stage(model.decoder[0]) == [(512, 512, (1, 1), (1, 1), (0, 0), 0)]
    for stage, (cin, cout, k, s, p, op, n_res) in zip(model.decoder[1:], REFERENCE_DECODER, strict=True):
        up, rest = stage[0], stage[1:]
        assert isinstance(up, ConvTransposeBlock) and isinstance(up.conv, nn.ConvTranspose2d)
        c = up.conv
        assert (c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.output_padding) == (
            cin, cout, (k, k), (s, s), (p, p), (op, op)
        )  # fmt: skip
        assert len(rest) == n_res and all(isinstance(b, ConvBlock) and b.residual for b in rest)
    head, out_conv, sigmoid = model.output_block
    assert _read_stage(nn.Sequential(head)) == [(80, 32, (3, 3), (1, 1), (1, 1), 0)]
    assert (out_conv.in_channels, out_conv.out_channels, out_conv.kernel_size) == (32, 3, (1, 1))
    assert type(out_conv) is nn.Conv2d and isinstance(sigmoid, nn.Sigmoid)

    # The spatial schedule and the concatenated widths, measured on one frame through the built modules.
    seen: dict[str, list] = {"face": [], "decoder_in": []}
    hooks = [
        s.register_forward_hook(lambda m, i, o: seen["face"].append(tuple(o.shape[1:]))) for s in model.face_encoder
    ]
    hooks += [
        m.register_forward_hook(lambda m, i, o: seen["decoder_in"].append(tuple(i[0].shape[1:])))
        for m in [*model.decoder[1:], model.output_block]
    ]
    target, reference, mels = _frames(1, 1)
    with torch.no_grad():
        assert model.eval()(generator_input(target, reference), mels).shape == (1, 1, 3, 96, 96)
    for h in hooks:
        h.remove()
    assert [shape[1] for shape in seen["face"]] == [96, 48, 24, 12, 6, 3, 1]
    assert [shape[0] for shape in seen["face"]] == [16, 32, 64, 128, 256, 512, 512]
    assert [shape[0] for shape in seen["decoder_in"]] == [1024, 1024, 768, 512, 320, 160, 80]
    assert [shape[1] for shape in seen["decoder_in"]] == [1, 3, 6, 12, 24, 48, 96]
    assert model.cfg.face_schedule == [96, 48, 24, 12, 6, 3, 1]

    # Parameters: the tables' count, the model's, and the config's own conv-weight count all agree.
    face = sum(_block_params(cin, cout, k, n) for rows in REFERENCE_FACE for cin, cout, k, _, _, n in rows)
    audio = sum(_block_params(cin, cout, k, n) for cin, cout, k, _, _, n in REFERENCE_AUDIO)
    decoder = _block_params(512, 512, 1, 0) + sum(_block_params(ci, co, k, n) for ci, co, k, *_, n in REFERENCE_DECODER)
    output = _block_params(80, 32, 3, 0) + 32 * 3 + 3
    n = _count(model)
    print(f"Wav2Lip generator, reference widths: {n:,} parameters")
    assert n == face + audio + decoder + output == WAV2LIP_PARAMETERS
    weights = sum(p.numel() for p in model.parameters() if p.ndim == 4)
    assert model.cfg.num_weights == weights


def test_mc_dropout_samples_faces_and_eval_is_deterministic():
    model = _narrow()
    assert set(dropout_modules(model)) == {model.face_dropout, model.audio_dropout}
    target, reference, mels = _frames(2, 3)
    faces = generator_input(target, reference)
    # Running BatchNorm statistics of these frames, as after training: with the initial ones (mean 0, variance 1)
    # the decoder shrinks the bottleneck's signal so much that the sampled faces differ by ~1e-7.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0
        model.train()(faces, mels)
    model.eval()
    with torch.no_grad():
        first, second = model(faces, mels), model(faces, mels)
        samples = mc_forward(model, faces, mels, num_samples=6, seed=1)  # (T, B, frames, 3, S, S)
        again = mc_forward(model, faces, mels, num_samples=6, seed=1)
    assert torch.equal(first, second)
    assert samples.shape == (6, 2, 3, 3, 96, 96)
    assert not torch.equal(samples[0], samples[1])
    std = samples.std(dim=0)  # (B, frames, 3, S, S): the uncertainty about the mouth, per pixel
    assert std.mean() > 1e-3 and (std > 0).float().mean() > 0.9
    assert ((samples >= 0) & (samples <= 1)).all()
    torch.testing.assert_close(samples, again)  # seeded
    assert not model.training and not model.face_dropout.training  # flags restored
    with torch.no_grad():
        torch.testing.assert_close(model(faces, mels), first)
    with pytest.raises(MumoError, match=r"no nn\.Dropout"):
        mc_forward(_narrow(dropout=0.0), faces, mels, num_samples=2)


def test_bad_shapes_raise_with_the_expected_shape():
    model = _narrow()
    target, reference, mels = _frames(2, 3)
    faces = generator_input(target, reference)  # (2, 3, 6, 96, 96)
    cases = [
        (faces[:, 0], mels, r"faces must be \(B, T, 6, 96, 96\)"),
        (faces[:, :, :3], mels, r"faces must be \(B, T, 6, 96, 96\)"),
        (faces[..., :64, :64], mels, r"faces must be \(B, T, 6, 96, 96\)"),
        ((faces * 255).to(torch.uint8), mels, "float"),
        (faces, mels[..., :12], r"mels must be \(B, T, 1, 80, 16\)"),
        (faces, mels[:, :, :, :40], r"mels must be \(B, T, 1, 80, 16\)"),
        (faces, mels[:, :2], r"\(B, T\) windows"),
        (faces[:, :0], mels[:, :0], "no frame"),
    ]
    for f, m, message in cases:
        with pytest.raises(MumoError, match=message):
            model(f, m)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"face_channels": [16, 32]}, "face_channels needs 7 entries"),
        ({"face_residual": [0, 2, 3, 2, 2, 1, 0]}, "face_residual needs 6 entries"),
        ({"audio_channels": [32, 64, 128, 256]}, "audio_channels needs 5 entries"),
        ({"decoder_residual": [1, 2]}, "decoder_residual needs 6 entries"),
        ({"decoder_channels": [512, 512, 0, 384, 256, 128, 64]}, "decoder_channels must be widths >= 1"),
        ({"audio_residual": [2, -1, 2, 1]}, "audio_residual must be residual block counts >= 0"),
        ({"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must lie in \[0, 1\)"),
        ({"face_size": 128}, "face_size must be 96, not 128"),
        ({"face_size": 64}, "face_size must be 96, not 64"),
        ({"frames": 0}, "frames must be >= 1"),
        ({"output_channels": 0}, "output_channels must be >= 1"),
        ({"mel_bins": 0}, "mel_bins must be >= 1"),
        ({"face_channels": [2**16] * 7}, "2\\*\\*31"),
    ],
)
def test_bad_config_values_raise(overrides, message):
    with pytest.raises(ConfigError, match=message):
        Wav2LipConfig(**overrides)


def test_visual_discriminator_on_lower_halves():
    torch.manual_seed(0)
    disc = VisualDiscriminator(cfg=VisualDiscriminatorConfig(channels=NARROW_DISC))
    target, _, _ = _frames(2, 3)
    halves = lower_half(target.flatten(0, 1))  # (6, 3, 48, 96)
    assert halves.shape == (6, 3, 48, 96)
    p = disc(halves)
    assert p.shape == (6,) and ((p > 0) & (p < 1)).all()
    torch.testing.assert_close(p, torch.sigmoid(disc.logits(halves)))
    nn.functional.binary_cross_entropy(p, torch.ones(6)).backward()  # the generator's adversarial term
    assert all(q.grad is not None for q in disc.parameters())
    with pytest.raises(MumoError, match=r"halves must be \(N, 3, 48, 96\)"):
        disc(target.flatten(0, 1))  # whole faces, not lower halves
    with pytest.raises(ConfigError, match="channels needs 7 entries"):
        VisualDiscriminatorConfig(channels=[32, 64])
    for size in (0, 95):
        with pytest.raises(ConfigError, match="must be even"):
            VisualDiscriminatorConfig(face_size=size)


def test_visual_discriminator_reference_layout():
    disc = VisualDiscriminator()
    convs = [m for m in disc.encoder.modules() if isinstance(m, nn.Conv2d)]
    got = [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs]
    assert got == [(ci, co, _pair(k), _pair(s), _pair(p)) for ci, co, k, s, p in REFERENCE_DISC]
    leaky = [m for m in disc.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(leaky) == len(convs) and all(m.negative_slope == 0.01 for m in leaky)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules())  # no normalisation
    assert (disc.classifier.in_channels, disc.classifier.out_channels) == (512, 1)
    n = _count(disc)
    print(f"visual discriminator, reference widths: {n:,} parameters")
    assert n == sum(ci * co * k * k + co for ci, co, k, _, _ in REFERENCE_DISC) + 513 == VISUAL_DISC_PARAMETERS


def test_lipgan_discriminator_distance_and_contrastive_loss():
    torch.manual_seed(0)
    cfg = Wav2LipConfig(**NARROW)
    disc = LipGANDiscriminator(cfg=cfg)
    target, _, mels = _frames(2, 3)
    faces, windows = target.flatten(0, 1), mels.flatten(0, 1)  # (6, 3, 96, 96), (6, 1, 80, 16)
    d = disc(faces, windows)
    assert d.shape == (6,) and (d >= 0).all() and (d <= 2 + 1e-6).all()
    torch.testing.assert_close(disc.embed_faces(faces).norm(dim=1), torch.ones(6))
    torch.testing.assert_close(disc(faces, windows[:, 0]), d)  # (N, 80, 16) accepted too
    contrastive_loss(d, torch.tensor([0, 1, 0, 1, 0, 1])).backward()
    assert all(torch.isfinite(q.grad).all() for q in disc.parameters() if q.grad is not None)
    assert disc.face_encoder[0][0].conv.in_channels == 3  # the whole RGB face, no masking channels
    print(f"LipGAN discriminator, reference widths: {_count(LipGANDiscriminator()):,} parameters")
    with pytest.raises(MumoError, match=r"faces must be \(N, 3, 96, 96\)"):
        disc(lower_half(faces), windows)
    with pytest.raises(MumoError, match="mel windows"):
        disc(faces, windows[:2])

    half, beyond = torch.tensor([0.5]), torch.tensor([1.5])
    assert contrastive_loss(half, torch.tensor([0])).item() == pytest.approx(0.25)  # in sync: d²
    assert contrastive_loss(half, torch.tensor([1])).item() == pytest.approx(0.25)  # (1 - 0.5)²
    assert contrastive_loss(beyond, torch.tensor([1.0])).item() == 0.0  # past the margin
    both = contrastive_loss(torch.tensor([0.5, 0.2]), torch.tensor([0, 1]))  # mean of 0.25 and 0.64
    assert both.item() == pytest.approx(0.445)
    assert contrastive_loss(half, torch.tensor([1]), margin=2.0).item() == pytest.approx(2.25)
    with pytest.raises(MumoError, match="same shape"):
        contrastive_loss(torch.ones(3), torch.ones(2))
    with pytest.raises(MumoError, match="margin"):
        contrastive_loss(half, torch.tensor([1]), margin=0.0)


def test_registry_builds_the_generator():
    assert "wav2lip" in list_models()
    model = create_model(Wav2LipConfig(**NARROW))
    assert isinstance(model, Wav2Lip) and model.cfg.face_channels == NARROW["face_channels"]
    assert Wav2LipConfig().name == "wav2lip"
