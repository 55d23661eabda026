"""LSE-D / LSE-C and the AV offset: hand-worked values, parity with the reference loop, known shifts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mumo.errors import MumoError
from mumo.metrics.sync import cosine_offset_scores, cosine_sync_scores, offset_distances, sync_scores


def _reference_scores(video: torch.Tensor, audio: torch.Tensor, vshift: int) -> tuple[int, float, float]:
    """The reference's calc_pdist + scoring (syncnet_python / Wav2Lip calc_scores), written as it loops."""
    win_size = vshift * 2 + 1
    audio_padded = F.pad(audio, (0, 0, vshift, vshift))
    dists = [
        F.pairwise_distance(video[[i], :].repeat(win_size, 1), audio_padded[i : i + win_size, :])
        for i in range(len(video))
    ]
    mdist = torch.mean(torch.stack(dists, 1), 1)
    minval, minidx = torch.min(mdist, 0)
    return int(vshift - minidx), float(minval), float(torch.median(mdist) - minval)


def _shifted_pair(k: int, t: int = 40, e: int = 16, noise: float = 0.05, seed: int = 0):
    """Video embeddings and audio embeddings that lag them by k windows: audio[t] = video[t - k] + noise."""
    g = torch.Generator().manual_seed(seed)
    long = torch.randn(t + 2 * abs(k), e, generator=g)  # (T + 2|k|, E)
    video = long[abs(k) : abs(k) + t]  # (T, E)
    audio = long[abs(k) - k : abs(k) - k + t] + noise * torch.randn(t, e, generator=g)  # (T, E)
    return video, audio


def test_hand_worked_example():
    # v = [1, 2], a = [3, 5] padded to [0, 3, 5, 0]; offsets -1, 0, +1:
    # t=0: |1-0|, |1-3|, |1-5| = 1, 2, 4;  t=1: |2-3|, |2-5|, |2-0| = 1, 3, 2;  mdist = 1, 2.5, 3
    d = offset_distances(torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [5.0]]), max_offset=1)
    torch.testing.assert_close(d, torch.tensor([[1.0, 2.0, 4.0], [1.0, 3.0, 2.0]]), atol=1e-5, rtol=0)
    s = sync_scores(d)
    assert s["offset_frames"] == -1 and s["reference_offset"] == 1
    assert s["lse_d"] == pytest.approx(1.0, abs=1e-5)
    assert s["lse_c"] == pytest.approx(1.5, abs=1e-5)
    torch.testing.assert_close(s["mean_distance_per_offset"], torch.tensor([1.0, 2.5, 3.0]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("k", [0, 3, -5])
def test_parity_with_reference_loop(k):
    video, audio = _shifted_pair(k, t=30, e=1024, noise=0.5)
    ref_offset, ref_d, ref_c = _reference_scores(video, audio, vshift=15)
    s = sync_scores(offset_distances(video, audio, max_offset=15))
    assert s["reference_offset"] == ref_offset
    assert s["lse_d"] == pytest.approx(ref_d, rel=1e-6)
    assert s["lse_c"] == pytest.approx(ref_c, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("k", [1, 4, 9])
def test_known_shift_found_with_its_sign(k):
    # audio lags the video by k frames -> +k; audio leads by k -> -k; the reference reports the negation
    for shift in (k, -k):
        video, audio = _shifted_pair(shift)
        s = sync_scores(offset_distances(video, audio))
        assert s["offset_frames"] == shift
        assert s["reference_offset"] == -shift
        assert cosine_sync_scores(cosine_offset_scores(video, audio))["offset_frames"] == shift


def test_aligned_pair_scores_better_than_random_pair():
    video, audio = _shifted_pair(0)
    unrelated = torch.randn(video.shape, generator=torch.Generator().manual_seed(7))
    synced = sync_scores(offset_distances(video, audio))
    random = sync_scores(offset_distances(video, unrelated))
    assert synced["offset_frames"] == 0
    assert synced["lse_d"] < random["lse_d"]
    assert synced["lse_c"] > random["lse_c"]
    cos_synced = cosine_sync_scores(cosine_offset_scores(video, audio))
    cos_random = cosine_sync_scores(cosine_offset_scores(video, unrelated))
    assert cos_synced["best_score"] > cos_random["best_score"]
    assert cos_synced["confidence"] > cos_random["confidence"]


def test_shapes_padding_and_inputs_untouched():
    video, audio = torch.randn(6, 4), torch.randn(6, 4)
    before = audio.clone()
    d = offset_distances(video, audio, max_offset=2)
    assert d.shape == (6, 5)
    torch.testing.assert_close(audio, before)
    # out-of-range audio windows are zeros: video window 0 at offset -1 is compared with the zero vector
    assert d[0, 1] == pytest.approx(video[0].add(1e-6).norm().item(), rel=1e-5)
    c = cosine_offset_scores(video, audio, max_offset=2)
    assert c.shape == (6, 5) and c[0, 0] == 0 and c[5, 4] == 0
    assert sync_scores(offset_distances(video, audio, max_offset=0))["offset_frames"] == 0


def test_bad_inputs_raise():
    with pytest.raises(MumoError):
        offset_distances(torch.randn(5, 4), torch.randn(6, 4))
    with pytest.raises(MumoError):
        offset_distances(torch.randn(5), torch.randn(5))
    with pytest.raises(MumoError):
        offset_distances(torch.randn(5, 4), torch.randn(5, 4), max_offset=-1)
    with pytest.raises(MumoError):
        sync_scores(torch.randn(5, 4))  # even number of offsets
    with pytest.raises(MumoError):
        sync_scores(torch.full((3, 5), float("nan")))
