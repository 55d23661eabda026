"""The Lip2Wav-style model: encoder and decoder shapes, the attention's mask, the output's length following the
input's, teacher forcing and its schedule, the loss, the two presets' layouts, and MC dropout's spread."""

from __future__ import annotations

import math

import pytest
import torch

from mumo.errors import ConfigError, MumoError
from mumo.models import create_model
from mumo.models.lip2wav import (
    AlwaysDropout,
    Lip2Wav,
    Lip2WavConfig,
    lip2wav_loss,
    mel_steps_of,
    teacher_forcing_ratio,
)
from mumo.tasks.lip2speech.config import load_lip2speech_config
from mumo.uncertainty.mc_dropout import mc_forward

TINY = dict(frames=10, face_size=24, encoder_channels=[4, 8, 8], encoder_lstm=8, prenet=[8, 8], attention_dim=8,
            attention_filters=4, attention_kernel=5, decoder_lstm=[16, 16], postnet_channels=8, postnet_layers=3,
            conv_decoder_channels=8, conv_decoder_layers=2)  # fmt: skip


def _model(**kw) -> Lip2Wav:
    torch.manual_seed(0)
    return create_model(Lip2WavConfig(**{**TINY, **kw})).eval()


def _faces(b: int = 2, f: int = 10, s: int = 24) -> torch.Tensor:
    return torch.rand(b, f, 3, s, s, generator=torch.Generator().manual_seed(1))


def test_encoder_keeps_every_frame_and_decoder_spans_the_window():
    model = _model()
    memory = model.encode(_faces())
    assert memory.shape == (2, 10, 16)  # (B, F, 2 * encoder_lstm): temporal stride 1
    out = model(_faces())
    assert out.mel.shape == out.mel_before.shape == (2, 80, 32)  # 10 frames = 0.4 s = 32 mel steps
    assert out.alignments.shape == (2, 16, 10)  # 2 frames per decoder step
    assert torch.allclose(out.alignments.sum(-1), torch.ones(2, 16), atol=1e-5)


def test_the_output_length_follows_the_input_length():
    model = _model()
    for f in (5, 7, 10):
        out = model(_faces(1, f))
        steps = math.ceil(mel_steps_of(f) / 2) * 2
        assert out.mel.shape[-1] == steps and out.alignments.shape[1:] == (steps // 2, f)


def test_the_attention_never_looks_past_a_windows_last_valid_frame():
    model = _model()
    out = model(_faces(2, 10), lengths=torch.tensor([10, 6]))
    assert (out.alignments[1, :, 6:] == 0).all() and (out.alignments[1, :, :6].sum(-1) > 0.999).all()
    assert (out.alignments[0, :, 6:] > 0).any()


def test_teacher_forcing_feeds_the_truth_and_only_the_past():
    model = _model(prenet_dropout=0.0)
    faces, target = _faces(1), torch.randn(1, 80, 32)
    changed = target.clone()
    changed[:, :, 20:] += 5.0  # frames of decoder steps 10.. (r = 2)
    a = model(faces, targets=target, teacher_forcing=1.0).mel_before
    b = model(faces, targets=changed, teacher_forcing=1.0).mel_before
    assert torch.equal(a[..., :22], b[..., :22])  # step 10 reads frame 19 (unchanged): steps 0..10 identical
    assert not torch.allclose(a[..., 22:], b[..., 22:])
    free = model(faces).mel_before  # no teacher forcing: targets never read
    assert torch.equal(model(faces, targets=changed, teacher_forcing=0.0).mel_before, free)


def test_teacher_forcing_schedule_is_the_reference_cosine_decay():
    r = [teacher_forcing_ratio(s, start=100, decay_steps=200, final=0.2) for s in (0, 99, 100, 200, 300, 1000)]
    assert r[:3] == [1.0, 1.0, 1.0] and r[3] == pytest.approx(0.2 + 0.8 * 0.5) and r[4] == r[5] == 0.2
    assert teacher_forcing_ratio(10, start=0, decay_steps=0) == 0.0


def test_the_loss_is_the_references_and_masks_padding():
    model = _model(prenet_dropout=0.0)
    target = torch.randn(2, 80, 32)
    out = model(_faces(), targets=target)
    expected = ((out.mel_before - target) ** 2).mean() + ((out.mel - target) ** 2).mean()
    expected = expected + (out.mel_before - target).abs().mean()
    assert torch.allclose(lip2wav_loss(out, target, l2=0.0), expected, rtol=1e-5)
    mask = torch.zeros(2, 32, dtype=torch.bool)
    mask[:, :10] = True
    garbage = target.clone()
    garbage[..., 10:] = 100.0
    assert torch.allclose(lip2wav_loss(out, target, mask=mask), lip2wav_loss(out, garbage, mask=mask))
    assert lip2wav_loss(out, target, model, l2=1.0) > lip2wav_loss(out, target, model, l2=0.0)


def test_the_conv_baseline_has_the_same_interface():
    out = _model(decoder="conv")(_faces())
    assert out.mel.shape == (2, 80, 32) and out.alignments is None


def test_mc_dropout_samples_give_a_per_frame_spread_and_the_prenet_stays_on():
    model = _model()
    assert any(isinstance(m, AlwaysDropout) for m in model.modules())
    torch.manual_seed(3)
    a = model(_faces(1)).mel
    torch.manual_seed(3)
    assert torch.equal(model(_faces(1)).mel, a)  # seeded: reproducible
    assert not torch.equal(model(_faces(1)).mel, a)  # the prenet's dropout is on at inference (Tacotron 2)
    samples = mc_forward(model, _faces(1), num_samples=4, output_fn=lambda o: o.mel)  # (T, B, 80, steps)
    assert samples.shape == (4, 1, 80, 32) and samples.std(0).mean() > 0


def test_the_presets_have_the_references_layout():
    ref = load_lip2speech_config("lip2wav", []).model
    assert (ref.frames, ref.face_size, ref.encoder_channels, ref.encoder_lstm, ref.decoder_lstm, ref.prenet) == (
        75, 96, [32, 64, 128, 256, 512], 384, [1024, 1024], [256, 256])  # fmt: skip
    assert (ref.attention_dim, ref.attention_filters, ref.attention_kernel, ref.outputs_per_step) == (128, 32, 31, 2)
    assert (ref.postnet_layers, ref.postnet_channels, ref.postnet_kernel, ref.mel_steps) == (5, 512, 5, 240)
    model = create_model(ref)
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 5 * 3 + 1  # per block a strided conv and 2 residual ones; a last (1, 3, 3)-stride conv
    assert [c.kernel_size[0] for c in convs[::3][:5]] == [5, 3, 3, 3, 3] and convs[-1].stride == (1, 3, 3)
    assert all(c.stride[0] == 1 for c in convs)  # temporal stride 1
    cpu = load_lip2speech_config("lip2wav-cpu", []).model
    assert (cpu.frames, cpu.face_size, cpu.mel_steps) == (25, 48, 80)


def test_bad_configs_and_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="multiple of 5"):
        Lip2WavConfig(**{**TINY, "frames": 12})
    with pytest.raises(ConfigError, match="face_size must be 3"):
        Lip2WavConfig(**{**TINY, "face_size": 32})
    with pytest.raises(ConfigError, match="decoder"):
        Lip2WavConfig(**{**TINY, "decoder": "wavenet"})
    with pytest.raises(MumoError, match="faces must be"):
        _model()(torch.rand(2, 10, 3, 32, 32))
