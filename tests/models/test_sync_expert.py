"""SyncNet-style expert: the reference layout, shapes, score range, MC dropout, the loss, and learning a synthetic
sync signal."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mumo.config import config_from_yaml, config_to_yaml
from mumo.errors import ConfigError, MumoError
from mumo.models.sync_expert import ConvBlock, SyncExpert, SyncExpertConfig, stack_frames, sync_loss
from mumo.tasks.sync.config import SyncRunConfig, load_sync_config
from mumo.uncertainty.mc_dropout import dropout_modules, mc_forward, mc_forward_naive

TINY = {
    "face_channels": [8, 8, 16, 16, 16, 16], "face_residual": [0, 1, 0, 0, 0, 0],
    "audio_channels": [8, 8, 16, 16], "audio_residual": [1, 0, 0, 0], "embedding": 32,
}  # fmt: skip


def _inputs(b: int = 3, cfg: SyncExpertConfig | None = None, seed: int = 0):
    cfg = cfg or SyncExpertConfig()
    g = torch.Generator().manual_seed(seed)
    faces = torch.rand(b, cfg.face_in_channels, cfg.face_height, cfg.face_width, generator=g)  # (B, 15, 48, 96)
    mels = 8 * torch.rand(b, 1, cfg.mel_bins, cfg.mel_steps, generator=g) - 4  # (B, 1, 80, 16) in [-4, 4]
    return faces, mels


@pytest.mark.parametrize("preset", SyncExpertConfig.preset_names())
def test_presets_forward_backward(preset):
    cfg = SyncExpertConfig.from_name(preset)
    assert cfg.face_in_channels == 15 and cfg.face_grid == (3, 3) and cfg.mel_grid == (3, 3)
    model = SyncExpert(cfg=cfg)
    faces, mels = _inputs(2)
    out = model(faces, mels)
    e = cfg.embedding
    assert out.face_embedding.shape == (2, e) and out.audio_embedding.shape == (2, e) and out.score.shape == (2,)
    sync_loss(out.score, torch.tensor([1.0, 0.0])).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_preset_sizes():
    full, cpu = SyncExpertConfig.from_name("sync-wav2lip"), SyncExpertConfig.from_name("sync-cpu")
    assert full.embedding == 512 and full.face_channels == [32, 64, 128, 256, 512, 512]
    assert full.audio_channels == [32, 64, 128, 256]
    assert cpu.embedding == 128
    n_full = sum(p.numel() for p in SyncExpert(cfg=full).parameters())
    n_cpu = sum(p.numel() for p in SyncExpert(cfg=cpu).parameters())
    assert n_cpu * 8 < n_full
    assert SyncExpertConfig.from_name("sync-cpu", dropout=0.3).dropout == 0.3


# Wav2Lip's SyncNet_color (models/syncnet.py, blocks from models/conv.py, github.com/Rudrabha/Wav2Lip), stage by
# stage: (cin, cout, kernel, stride, padding, residual blocks after it). Every block is Conv2d (with bias) +
# BatchNorm2d + ReLU; a residual block is a 3x3, stride 1, padding 1 conv adding its input before the ReLU.
WAV2LIP_FACE = [
    (15, 32, (7, 7), (1, 1), (3, 3), 0),
    (32, 64, (5, 5), (1, 2), (1, 1), 2),
    (64, 128, (3, 3), (2, 2), (1, 1), 3),
    (128, 256, (3, 3), (2, 2), (1, 1), 2),
    (256, 512, (3, 3), (2, 2), (1, 1), 2),
    (512, 512, (3, 3), (2, 2), (1, 1), 0),
    (512, 512, (3, 3), (1, 1), (0, 0), 0),  # valid conv over the 3x3 grid -> 1x1
    (512, 512, (1, 1), (1, 1), (0, 0), 0),
]
WAV2LIP_AUDIO = [
    (1, 32, (3, 3), (1, 1), (1, 1), 2),
    (32, 64, (3, 3), (3, 1), (1, 1), 2),
    (64, 128, (3, 3), (3, 3), (1, 1), 2),
    (128, 256, (3, 3), (3, 2), (1, 1), 2),
    (256, 512, (3, 3), (1, 1), (0, 0), 0),  # valid conv over the 3x3 grid -> 1x1
    (512, 512, (1, 1), (1, 1), (0, 0), 0),
]
WAV2LIP_PARAMETERS = 16_435_072  # 13,031,808 face + 3,403,264 audio, counted on the layout above
OLD_WAV2LIP_PARAMETERS = 13_926_400  # sync-wav2lip before, face_residual [0, 2, 2, 2, 1, 0]


def _stream_blocks(model: SyncExpert, stream: str) -> list[ConvBlock]:
    """Every block of one stream in order: its encoder, then the final 1x1 block (after the dropout)."""
    encoder, out = getattr(model, f"{stream}_encoder"), getattr(model, f"{stream}_out")
    blocks = [*encoder, out]
    assert all(isinstance(b, ConvBlock) for b in blocks)
    return blocks


def _stages(blocks: list[ConvBlock]) -> list[tuple]:
    """(cin, cout, kernel, stride, padding, residual blocks) per stage, read off the built modules."""
    stages: list[tuple] = []
    for b in blocks:
        conv = b.conv
        assert conv.bias is not None and isinstance(b.norm, nn.BatchNorm2d) and b.norm.num_features == conv.out_channels
        if b.residual:  # a residual block: 3x3, stride 1, padding 1, same width, added to the previous stage
            assert stages and (conv.in_channels, conv.out_channels) == (stages[-1][1],) * 2
            assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (1, 1), (1, 1))
            stages[-1] = (*stages[-1][:5], stages[-1][5] + 1)
        else:
            stages.append((conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, 0))
    return stages


def _reference_stream(layout: list[tuple]) -> nn.Sequential:
    """The reference's stream in plain torch.nn, from the layout table: Conv2d + BatchNorm2d + ReLU per block."""
    blocks = []
    for cin, cout, kernel, stride, padding, n_res in layout:
        blocks.append(nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.BatchNorm2d(cout), nn.ReLU()))
        blocks += [nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout)) for _ in range(n_res)]
    return nn.Sequential(*blocks)


def _run_reference(stream: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for block in stream:
        x = block(x) if len(block) == 3 else torch.relu(block(x) + x)  # residual: add before the ReLU
    return x


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_sync_wav2lip_is_the_reference_layout_and_parameter_count():
    model = SyncExpert(cfg=SyncExpertConfig.from_name("sync-wav2lip"))
    assert _stages(_stream_blocks(model, "face")) == WAV2LIP_FACE
    assert _stages(_stream_blocks(model, "audio")) == WAV2LIP_AUDIO
    # Nothing else holds parameters; the only extras are the two parameter-free MC dropouts before the 1x1 blocks.
    known = (SyncExpert, nn.Sequential, ConvBlock, nn.Conv2d, nn.BatchNorm2d)
    extras = [m for m in model.modules() if not isinstance(m, known)]
    assert extras == [model.face_dropout, model.audio_dropout] and all(isinstance(m, nn.Dropout) for m in extras)
    face, audio = _reference_stream(WAV2LIP_FACE), _reference_stream(WAV2LIP_AUDIO)
    assert _count(face) + _count(audio) == WAV2LIP_PARAMETERS
    assert _count(model) == WAV2LIP_PARAMETERS
    assert _count(model.face_encoder) + _count(model.face_out) == _count(face) == 13_031_808
    assert _count(model.audio_encoder) + _count(model.audio_out) == _count(audio) == 3_403_264
    assert SyncExpertConfig() == SyncExpertConfig.from_name("sync-wav2lip")  # the defaults are the reference


def test_sync_wav2lip_computes_what_the_reference_computes_with_its_weights():
    # The reference's weights, block for block (conv_block.0 -> conv, conv_block.1 -> norm), give the same
    # embeddings; in eval mode the dropouts, the only difference, are the identity.
    torch.manual_seed(0)
    model = SyncExpert(cfg=SyncExpertConfig.from_name("sync-wav2lip"))
    faces, mels = _inputs(2)
    for stream, layout, x in (("face", WAV2LIP_FACE, faces), ("audio", WAV2LIP_AUDIO, mels)):
        ref = _reference_stream(layout)
        for block in ref:
            block[1].running_mean.uniform_(-0.1, 0.1)
            block[1].running_var.uniform_(0.5, 2.0)
        ref.eval()
        for ours, theirs in zip(_stream_blocks(model, stream), ref, strict=True):
            ours.conv.load_state_dict(theirs[0].state_dict())
            ours.norm.load_state_dict(theirs[1].state_dict())
        with torch.no_grad():
            want = nn.functional.normalize(_run_reference(ref, x).flatten(1), dim=1)
            got = getattr(model.eval(), f"embed_{'faces' if stream == 'face' else 'audio'}")(x)
        torch.testing.assert_close(got, want)


def test_runs_saved_with_the_old_sync_wav2lip_layout_still_load(tmp_path):
    # A run's config.yaml holds its whole model section, so a run trained with the earlier sync-wav2lip defaults
    # (one residual block fewer at 128 and at 512 channels) rebuilds its own layout, not the new defaults.
    old = load_sync_config("sync-wav2lip", ["model.face_residual=[0,2,2,2,1,0]"])
    (tmp_path / "config.yaml").write_text(config_to_yaml(old))
    assert "face_residual" in (tmp_path / "config.yaml").read_text()
    saved = config_from_yaml(tmp_path / "config.yaml", schema=SyncRunConfig)
    assert saved.model.face_residual == [0, 2, 2, 2, 1, 0]
    assert _count(SyncExpert(cfg=saved.model)) == OLD_WAV2LIP_PARAMETERS


def test_embeddings_unit_norm_non_negative_and_score_in_unit_interval():
    model = SyncExpert(cfg=SyncExpertConfig(**TINY)).eval()
    faces, mels = _inputs(8)
    out = model(faces, mels)
    for emb in (out.face_embedding, out.audio_embedding):
        torch.testing.assert_close(emb.norm(dim=1), torch.ones(8))
        assert (emb >= 0).all()
    assert ((out.score >= 0) & (out.score <= 1)).all()
    torch.testing.assert_close(out.score, torch.cosine_similarity(out.face_embedding, out.audio_embedding))
    torch.testing.assert_close(model.embed_faces(faces), out.face_embedding)
    torch.testing.assert_close(model.embed_audio(mels[:, 0]), out.audio_embedding)  # (B, 80, 16) also accepted


def test_bad_shapes_raise():
    model = SyncExpert(cfg=SyncExpertConfig(**TINY))
    faces, mels = _inputs(2)
    with pytest.raises(MumoError):
        model(faces[:, :12], mels)
    with pytest.raises(MumoError):
        model(faces, mels[..., :12])
    with pytest.raises(MumoError):
        model(faces, mels[:1])


def test_config_validation():
    with pytest.raises(ConfigError):
        SyncExpertConfig.from_name("syncnet-huge")
    with pytest.raises(ConfigError):
        SyncExpertConfig(face_channels=[8, 16])
    with pytest.raises(ConfigError):
        SyncExpertConfig(dropout=1.0)
    with pytest.raises(ConfigError):
        SyncExpertConfig(face_height=2)  # the 5x5 valid-ish stage leaves no rows
    with pytest.raises(ConfigError):
        SyncExpertConfig(mel_steps=0)


def test_stack_frames_is_frame_major():
    window = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 1, 1, 3).expand(2, 5, 4, 6, 3)
    x = stack_frames(window)  # (2, 15, 4, 6)
    assert x.shape == (2, 15, 4, 6)
    assert x[1, 3 * 2 + 1, 0, 0] == window[1, 2, 0, 0, 1]  # frame 2, green
    u8 = stack_frames(torch.full((1, 5, 4, 6, 3), 255, dtype=torch.uint8))
    assert u8.dtype == torch.float32 and u8.max() == 1.0


def test_mc_dropout_samples_differ_and_fast_path_matches_naive():
    model = SyncExpert(cfg=SyncExpertConfig(**TINY))
    assert set(dropout_modules(model)) == {model.face_dropout, model.audio_dropout}
    faces, mels = _inputs(4)
    with torch.no_grad():
        naive = mc_forward_naive(model, faces, mels, num_samples=5, seed=3, output_fn=lambda o: o.score)  # (T, B)
        fast = mc_forward(model, faces, mels, num_samples=5, seed=3, output_fn=lambda o: o.score)
        plain = model.eval()(faces, mels).score
    assert naive.shape == (5, 4)
    assert (naive.std(dim=0) > 0).all()
    assert ((naive >= 0) & (naive <= 1)).all()
    torch.testing.assert_close(fast, naive)
    torch.testing.assert_close(model(faces, mels).score, plain)  # eval: deterministic
    assert model.training is False


def test_without_dropout_mc_has_nothing_to_sample_and_forward_is_deterministic():
    model = SyncExpert(cfg=SyncExpertConfig(**TINY, dropout=0.0)).eval()
    faces, mels = _inputs(2)
    with pytest.raises(MumoError):
        mc_forward_naive(model, faces, mels, num_samples=2, output_fn=lambda o: o.score)
    torch.testing.assert_close(model(faces, mels).score, model(faces, mels).score)


def test_sync_loss_values():
    half = torch.full((4,), 0.5)
    assert sync_loss(half, torch.tensor([1, 0, 1, 0])).item() == pytest.approx(math.log(2))
    assert sync_loss(torch.tensor([0.9]), torch.tensor([1.0])).item() == pytest.approx(-math.log(0.9))
    extreme = torch.tensor([0.0, 1.0], requires_grad=True)
    loss = sync_loss(extreme, torch.tensor([1.0, 0.0]))  # clamped: large but finite
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 10
    assert SyncExpert.sync_loss is sync_loss
    with pytest.raises(MumoError):
        sync_loss(half, torch.ones(3))


def _synthetic_batch(gen: torch.Generator, b: int, h: int, w: int, max_shift: int = 3):
    """Mouth brightness over 5 frames follows a mel energy pattern; negatives see the pattern shifted by 1..3."""
    energy = torch.rand(b, 5 + 2 * max_shift, generator=gen)  # (B, 5 + 2s) per-frame mouth opening
    label = (torch.arange(b) % 2 == 0).float()  # (B,) half positives
    shift = torch.randint(1, max_shift + 1, (b,), generator=gen) * (2 * torch.randint(0, 2, (b,), generator=gen) - 1)
    shift = torch.where(label > 0, torch.zeros_like(shift), shift)  # (B,)
    frames = torch.arange(5)
    video_energy = energy[:, max_shift + frames]  # (B, 5)
    audio_energy = torch.gather(energy, 1, max_shift + shift[:, None] + frames)  # (B, 5)
    faces = 0.1 * torch.rand(b, 5, 3, h, w, generator=gen)  # (B, 5, 3, H, W)
    faces[:, :, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] += 0.8 * video_energy[:, :, None, None, None]
    frame_of_step = (torch.arange(16) / 3.2).long()  # (16,) 3.2 mel steps per frame
    profile = torch.linspace(1.0, 0.2, 80)  # (80,) energy falls off with frequency
    mels = audio_energy[:, None, frame_of_step] * profile[None, :, None]  # (B, 80, 16)
    mels = 8 * mels - 4 + 0.3 * torch.randn(b, 80, 16, generator=gen)
    return faces.reshape(b, 15, h, w), mels[:, None], label


def test_learns_synthetic_sync_signal():
    torch.manual_seed(0)
    h, w = 24, 48  # half-size faces keep the run to a few seconds
    cfg = SyncExpertConfig.from_name(
        "sync-cpu", face_height=h, face_width=w, face_channels=[8, 8, 16, 16, 16, 16], face_residual=[0] * 6,
        audio_channels=[8, 8, 16, 16], audio_residual=[0] * 4, embedding=32,
    )  # fmt: skip
    model = SyncExpert(cfg=cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(100):
        faces, mels, label = _synthetic_batch(gen, 32, h, w)
        loss = sync_loss(model(faces, mels).score, label)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-20:]) / 20 < 0.55
    faces, mels, label = _synthetic_batch(torch.Generator().manual_seed(1), 256, h, w)
    with torch.no_grad():
        out = model.eval()(faces, mels)
    assert sync_loss(out.score, label).item() < 0.5  # chance is ln 2 ≈ 0.693
    assert out.score[label == 1].mean() > out.score[label == 0].mean() + 0.2
