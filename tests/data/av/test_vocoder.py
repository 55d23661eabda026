import ctypes.util
import itertools
import time

import numpy as np
import pytest
import torch

from mumo.data.av.audio import MelFrontEnd
from mumo.data.av.espeak import synthesize
from mumo.data.av.vocoder import mel_to_wav, stitch_windows, window_starts
from mumo.errors import MumoError
from mumo.metrics.speech import mel_l1, speech_scores

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)
SENTENCES = ("Papa made a big map of the farm.", "She sells sea shells by the sea shore, every single morning.")


@pytest.fixture(scope="module")
def front():
    return MelFrontEnd()


@pytest.fixture(scope="module")
def speech():
    return synthesize(SENTENCES[0]).samples  # (T,) float32, 16 kHz, ~1.75 s


@pytest.fixture(scope="module")
def vocoded(front, speech):
    mel = front(torch.from_numpy(speech))  # (80, T_mel)
    return mel, mel_to_wav(mel, front=front)


def _rms_db(wav: np.ndarray) -> float:
    return 10.0 * np.log10(np.mean(wav.astype(np.float64) ** 2))


# ---------------------------------------------------------------------------------------------------------------
# mel_to_wav
# ---------------------------------------------------------------------------------------------------------------


@needs_espeak
def test_vocoded_speech_has_the_mel_length_and_is_intelligible(front, speech, vocoded):
    mel, wav = vocoded
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert len(wav) == 200 * (mel.shape[1] - 1) and front.num_steps(len(wav)) == mel.shape[1]
    assert np.abs(wav).max() <= 1.0
    scores = speech_scores(speech, wav)  # measured: STOI 0.960, ESTOI 0.916, PESQ nb 3.27
    assert scores["stoi"] >= 0.93 and scores["estoi"] >= 0.88 and scores["pesq_nb"] >= 3.0, scores
    # the level is the mel's (within a dB or so), not normalised
    assert abs(_rms_db(wav) - _rms_db(speech[: len(wav)])) < 1.5


@needs_espeak
def test_reanalysing_the_waveform_gives_back_the_mel(front, speech, vocoded):
    mel, wav = vocoded
    again = front(torch.from_numpy(mel_to_wav(mel, front=front, power=1.0)))
    assert again.shape == mel.shape
    assert mel_l1(again, mel) < 0.15  # measured 0.096 on the [-4, 4] scale
    # power 1.5 sharpens (expands the dB range by 1.5): the shape moves away, the loud bins keep their level
    sharpened = front(torch.from_numpy(wav))
    assert 0.5 < mel_l1(sharpened, mel) < 1.3  # measured 0.98
    loud = mel > 0
    assert abs(float((sharpened - mel)[loud].mean())) < 0.6  # measured -0.36


@needs_espeak
def test_level_follows_the_mel_and_full_scale_is_scaled_not_clipped(front, speech):
    quiet = mel_to_wav(front(torch.from_numpy(0.1 * speech)), front=front)
    full = mel_to_wav(front(torch.from_numpy(speech)), front=front)
    assert abs((_rms_db(full) - _rms_db(quiet)) - 20.0) < 1.0  # 0.1 x the amplitude: 20 dB quieter
    loud = mel_to_wav(front(torch.from_numpy(np.clip(1.5 * speech, -1, 1))), front=front)
    assert np.abs(loud).max() == pytest.approx(1.0)  # past full scale: scaled down to it by the peak ...
    assert (np.abs(loud) > 0.999).sum() <= 2  # ... not clipped (a clipped waveform sits at 1 for many samples)


@needs_espeak
def test_same_seed_same_waveform_and_numpy_equals_torch(front, vocoded):
    mel, wav = vocoded
    assert np.array_equal(mel_to_wav(mel.numpy(), front=front), wav)
    other = mel_to_wav(mel, front=front, seed=1)
    assert not np.array_equal(other, wav) and other.shape == wav.shape
    # values outside [-4, 4] are clipped, as Lip2Wav's denormalisation does
    hot, capped = mel.clone(), mel.clone()
    hot[:, 40:45], capped[:, 40:45] = 9.0, 4.0
    assert np.array_equal(mel_to_wav(hot, front=front), mel_to_wav(capped, front=front))


def test_ten_seconds_vocode_fast(front):
    mel = torch.rand(80, 801) * 4 - 3  # (80, 801): 10 s at 80 steps per second
    mel_to_wav(mel[:, :20], front=front)  # librosa's first call compiles (numba) and imports: not timed
    start = time.perf_counter()
    wav = mel_to_wav(mel, front=front)
    assert len(wav) == 160_000
    assert time.perf_counter() - start < 5.0  # measured ~0.7-1 s on one thread


@pytest.mark.parametrize(
    ("mel", "match"),
    [
        (torch.zeros(80), "must be \\(n_mels, T_mel\\)"),
        (torch.zeros(1, 80, 10), "must be \\(n_mels, T_mel\\)"),
        (torch.zeros(10, 80), "10 bands"),
        (torch.zeros(80, 1), "at least 2"),
        (torch.full((80, 10), float("nan")), "NaN or infinite"),
        (np.full((80, 10), np.inf), "NaN or infinite"),
    ],
)
def test_bad_mel_is_refused(front, mel, match):
    with pytest.raises(MumoError, match=match):
        mel_to_wav(mel, front=front)


def test_bad_griffin_lim_settings_are_refused(front):
    with pytest.raises(MumoError, match="n_iter"):
        mel_to_wav(torch.zeros(80, 10), front=front, n_iter=0)
    with pytest.raises(MumoError, match="power"):
        mel_to_wav(torch.zeros(80, 10), front=front, power=0.0)


# ---------------------------------------------------------------------------------------------------------------
# window_starts and stitch_windows
# ---------------------------------------------------------------------------------------------------------------


def test_window_starts_examples():
    assert window_starts(500, window=200, overlap=50) == [0, 150, 300]  # 300 + 200 = 500 exactly
    assert window_starts(520, window=200, overlap=50) == [0, 150, 300, 320]  # the last right-aligned
    assert window_starts(200, window=200, overlap=50) == [0]
    assert window_starts(30, window=200, overlap=50) == [0]  # shorter than a window: the caller pads
    assert window_starts(10, window=4, overlap=0) == [0, 4, 6]


@pytest.mark.parametrize("total", [201, 377, 1000, 1234])
@pytest.mark.parametrize(("window", "overlap"), [(200, 0), (200, 50), (96, 95), (50, 10)])
def test_window_starts_cover_every_step_with_at_least_the_overlap(total, window, overlap):
    starts = window_starts(total, window, overlap)
    covered = np.zeros(total, int)
    for s in starts:
        covered[s : s + window] += 1
    assert (covered >= 1).all() and starts[0] == 0 and starts[-1] + window == total  # exact cover, none past
    shared = [a + window - b for a, b in itertools.pairwise(starts)]
    assert all(o == overlap for o in shared[:-1]) and all(o >= overlap for o in shared[-1:])
    assert starts == sorted(set(starts))


def test_window_starts_bad_arguments():
    for args in [(0, 10, 2), (10, 0, 0), (10, 5, 5), (10, 5, -1)]:
        with pytest.raises(MumoError):
            window_starts(*args)


def test_identical_constant_windows_stitch_to_the_constant():
    windows = [torch.full((80, 50), 1.25), torch.full((80, 50), 1.25), torch.full((80, 30), 1.25)]
    stitched = stitch_windows(windows, [0, 0, 40], 70)  # two on top of each other, one overlapping them
    assert stitched.shape == (80, 70) and stitched.dtype == torch.float32
    assert torch.equal(stitched, torch.full((80, 70), 1.25))


@pytest.mark.parametrize(("total", "window", "overlap"), [(500, 200, 50), (523, 96, 24), (100, 100, 10)])
def test_windows_cut_from_one_mel_stitch_back_to_it(total, window, overlap):
    mel = torch.randn(80, total, generator=torch.Generator().manual_seed(total))
    starts = window_starts(total, window, overlap)
    stitched = stitch_windows([mel[:, s : s + window] for s in starts], starts, total)
    torch.testing.assert_close(stitched, mel, atol=1e-6, rtol=0)


def test_ragged_windows_in_any_order_stitch_back_to_their_mel():
    total, starts, lengths = 300, [60, 0, 130, 20], [90, 70, 170, 60]
    mel64 = torch.randn(80, total, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ragged = [mel64[:, s : s + n] for s, n in zip(starts, lengths, strict=True)]
    stitched = stitch_windows(ragged, starts, total)
    assert stitched.dtype == torch.float64
    torch.testing.assert_close(stitched, mel64, atol=1e-12, rtol=0)


def test_overlaps_cross_fade_linearly():
    a, b = torch.zeros(2, 10), torch.ones(2, 10)  # overlap of 4 steps: 6..9
    stitched = stitch_windows([a, b], [0, 6], 16)
    assert torch.equal(stitched[:, :6], torch.zeros(2, 6)) and torch.equal(stitched[:, 10:], torch.ones(2, 6))
    torch.testing.assert_close(stitched[0, 6:10], torch.tensor([0.2, 0.4, 0.6, 0.8]))  # (k + 1) / (n + 1)


@needs_espeak
def test_stitched_windows_vocode_without_clicks_where_naive_concatenation_clicks(front):
    """A click is a broadband burst: the waveform's mel holds more energy in the upper bands than the mel it was
    made from. Per frame, that excess (mean over bands 40-79 of max(0, mel(wav) - target)) at the seams must be
    no larger than it is elsewhere. Windows vocoded one by one and concatenated fail this (their phases do not
    meet at the cut); one Griffin-Lim over the stitched mel passes."""
    wav = np.concatenate([synthesize(s).samples for s in SENTENCES])  # (T,) ~4.9 s
    mel = front(torch.from_numpy(wav))  # (80, T_mel)
    total, window = mel.shape[1], 64
    starts = window_starts(total, window, overlap=16)
    # windows as a model predicts them, one at a time: each a little louder or quieter than its neighbours
    gain = torch.randn(len(starts), generator=torch.Generator().manual_seed(0)) * 0.3
    windows = [mel[:, s : s + window] + g for s, g in zip(starts, gain, strict=True)]
    cuts = [0] + [(a + window + b) // 2 for a, b in itertools.pairwise(starts)] + [total - 1]  # mid-overlap
    seams = np.array(cuts[1:-1])

    def excess(audio: np.ndarray, target: torch.Tensor) -> np.ndarray:
        again = front(torch.from_numpy(audio))  # (80, total)
        return (again - target)[40:].clamp(min=0).mean(0).numpy()  # (total,)

    def seam_and_elsewhere(e: np.ndarray) -> tuple[float, float]:
        near = np.zeros(total, bool)
        for c in seams:
            near[c - 2 : c + 3] = True
        return float(e[near].max()), float(e[~near].max())

    stitched = stitch_windows(windows, starts, total)
    at_seams, elsewhere = seam_and_elsewhere(excess(mel_to_wav(stitched, front=front), stitched))
    assert at_seams <= elsewhere, (at_seams, elsewhere)  # measured 0.20 at the seams, 0.31 elsewhere

    parts = [
        mel_to_wav(w, front=front)[200 * (cuts[i] - s) : 200 * (cuts[i + 1] - s)]
        for i, (w, s) in enumerate(zip(windows, starts, strict=True))
    ]
    naive_target = torch.cat(
        [w[:, cuts[i] - s : cuts[i + 1] - s] for i, (w, s) in enumerate(zip(windows, starts, strict=True))], 1
    )
    naive_target = torch.cat([naive_target, windows[-1][:, -1:]], 1)  # (80, total): the mel each part was made from
    at_seams, elsewhere = seam_and_elsewhere(excess(np.concatenate(parts), naive_target))
    assert at_seams > 2 * elsewhere, (at_seams, elsewhere)  # measured 1.24 against 0.36: clicks


def test_stitching_refuses_gaps_and_bad_windows():
    w = torch.zeros(80, 10)
    with pytest.raises(MumoError, match="covered by no window \\(first: step 10\\)"):
        stitch_windows([w, w], [0, 15], 25)
    with pytest.raises(MumoError, match="no windows"):
        stitch_windows([], [], 10)
    with pytest.raises(MumoError, match="2 windows but 1 starts"):
        stitch_windows([w, w], [0], 10)
    with pytest.raises(MumoError, match="end by step"):
        stitch_windows([w], [5], 10)
    with pytest.raises(MumoError, match="start at an integer >= 0"):
        stitch_windows([w], [-1], 10)
    with pytest.raises(MumoError, match="every window must be \\(80, L\\)"):
        stitch_windows([w, torch.zeros(40, 10)], [0, 0], 10)
    with pytest.raises(MumoError, match="every window must be \\(80, L\\)"):
        stitch_windows([w, torch.zeros(80, 0)], [0, 0], 10)
    with pytest.raises(MumoError, match="must be \\(n_mels, L\\)"):
        stitch_windows([torch.zeros(10)], [0], 10)
