"""SyncNet-style expert: shapes, score range, MC dropout, the loss, and learning a synthetic sync signal."""

from __future__ import annotations

import math

import pytest
import torch

from mumo.errors import ConfigError, MumoError
from mumo.models.sync_expert import SyncExpert, SyncExpertConfig, stack_frames, sync_loss
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
