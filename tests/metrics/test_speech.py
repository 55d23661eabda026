import ctypes.util
import math

import numpy as np
import pytest

from mumo.errors import MumoError
from mumo.metrics.speech import (
    attention_diagonality,
    estoi,
    mel_l1,
    pesq_nb,
    speech_scores,
    spread_error_agreement,
    stoi,
)

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng)",
)


@pytest.fixture(scope="module")
def clean():
    from mumo.data.av.espeak import synthesize

    return synthesize("Papa made a big map of the farm.").samples.astype(np.float64)  # (T,) 16 kHz, ~1.75 s


@pytest.fixture(scope="module")
def noise(clean):
    return np.random.default_rng(0).standard_normal(len(clean)) * clean.std()  # white noise at the speech's level


# ---------------------------------------------------------------------------------------------------------------
# STOI, ESTOI, PESQ
# ---------------------------------------------------------------------------------------------------------------


@needs_espeak
def test_clean_speech_scores_the_ceiling_against_itself(clean):
    scores = speech_scores(clean, clean)
    assert set(scores) == {"stoi", "estoi", "pesq_nb"}
    assert scores["stoi"] == pytest.approx(1.0, abs=1e-6) and scores["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert scores["pesq_nb"] >= 4.0  # measured 4.55, the top of the narrow-band MOS-LQO scale
    assert stoi(clean, clean) == scores["stoi"] and estoi(clean, clean) == scores["estoi"]


@needs_espeak
def test_noise_scores_much_lower_and_noisier_speech_lower_still(clean, noise):
    noisy = speech_scores(clean, clean + noise)  # 0 dB SNR; measured STOI 0.78, PESQ 1.10
    only_noise = speech_scores(clean, noise)  # measured STOI 0.36, ESTOI 0.05, PESQ 1.03
    assert only_noise["stoi"] < 0.5 and only_noise["estoi"] < 0.2 and only_noise["pesq_nb"] < 1.5
    assert only_noise["stoi"] < noisy["stoi"] < 0.9
    assert noisy["pesq_nb"] < 2.0


@needs_espeak
def test_both_signals_are_cut_to_the_shorter(clean, noise):
    longer = np.concatenate([clean, noise[:4000]])  # 0.25 s of noise past the end
    # equal up to float rounding (the libraries' sums may run in another order with other thread counts)
    assert stoi(clean, longer) == pytest.approx(stoi(clean, clean), abs=1e-9)
    assert stoi(longer, clean) == pytest.approx(stoi(clean, clean), abs=1e-9)
    assert pesq_nb(clean, longer) == pytest.approx(pesq_nb(clean, clean), abs=1e-6)
    cut = clean[:-3000]
    assert estoi(clean, cut) == pytest.approx(estoi(clean[:-3000], cut), abs=1e-9)


@needs_espeak
def test_silence_gives_nan_not_an_error(clean):
    silent = np.zeros_like(clean)
    assert math.isnan(pesq_nb(silent, clean))  # the library finds no utterance in the reference
    assert math.isnan(pesq_nb(clean, silent))  # an all-zero output: the library cannot level-align it
    assert math.isnan(stoi(silent, clean)) and math.isnan(estoi(silent, silent))
    assert pesq_nb(clean, silent + 1e-6) < 1.5  # however quiet, a non-zero output scores (low)
    # long enough, but under 30 frames of speech once silent frames are dropped: NaN, not pystoi's 1e-5
    blip = np.zeros(16000)
    blip[8000:8100] = 0.5
    assert math.isnan(stoi(blip, blip))


@needs_espeak
def test_accepts_float32_lists_and_8khz(clean):
    as32 = clean.astype(np.float32)
    assert stoi(as32, as32) == pytest.approx(1.0, abs=1e-6)
    assert stoi(list(clean[:8000]), list(clean[:8000])) == pytest.approx(1.0, abs=1e-6)
    assert pesq_nb(clean[::2], clean[::2], sample_rate=8000) >= 4.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reference": np.zeros((2, 8000))}, "1-D"),
        ({"degraded": np.zeros((8000, 1))}, "1-D"),
        ({"reference": np.array([])}, "empty"),
        ({"degraded": np.full(8000, np.nan)}, "NaN or infinite"),
        ({"reference": np.zeros(6000)}, r"at least 0\.42 s"),
        ({"degraded": np.zeros(100)}, r"at least 0\.42 s"),
        ({"sample_rate": 0}, "positive integer"),
        ({"sample_rate": 16000.5}, "positive integer"),
    ],
)
def test_bad_input_to_stoi_is_refused(kwargs, match):
    args = {"reference": np.ones(8000), "degraded": np.ones(8000), "sample_rate": 16000, **kwargs}
    with pytest.raises(MumoError, match=match):
        stoi(**args)


def test_bad_input_to_pesq_is_refused():
    with pytest.raises(MumoError, match="8000 or 16000 Hz"):
        pesq_nb(np.ones(48000), np.ones(48000), sample_rate=44100)
    with pytest.raises(MumoError, match=r"at least 0\.25 s"):
        pesq_nb(np.ones(3000), np.ones(16000))
    with pytest.raises(MumoError, match="NaN or infinite"):
        pesq_nb(np.ones(16000), np.full(16000, np.inf))
    with pytest.raises(MumoError, match="1-D"):
        pesq_nb(np.ones((2, 16000)), np.ones(16000))


# ---------------------------------------------------------------------------------------------------------------
# mel L1
# ---------------------------------------------------------------------------------------------------------------


def test_mel_l1_over_the_common_steps():
    a = np.zeros((80, 10))
    b = np.concatenate([np.full((80, 10), 0.5), np.full((80, 5), 100.0)], axis=1)  # extra steps are ignored
    assert mel_l1(a, b) == pytest.approx(0.5) and mel_l1(b, a) == pytest.approx(0.5)
    assert mel_l1(b, b) == 0.0
    with pytest.raises(MumoError, match="same n_mels"):
        mel_l1(np.zeros((80, 10)), np.zeros((40, 10)))
    with pytest.raises(MumoError, match="same n_mels"):
        mel_l1(np.zeros(80), np.zeros(80))
    with pytest.raises(MumoError, match="no steps"):
        mel_l1(np.zeros((80, 0)), np.zeros((80, 3)))
    with pytest.raises(MumoError, match="NaN"):
        mel_l1(np.full((80, 3), np.nan), np.zeros((80, 3)))


# ---------------------------------------------------------------------------------------------------------------
# attention diagonality
# ---------------------------------------------------------------------------------------------------------------


def test_a_diagonal_alignment_scores_one():
    assert attention_diagonality(np.eye(30)) == 1.0
    m, n = 200, 40  # more decoder than encoder steps, as a mel decoder over video frames
    centre = np.rint(np.arange(m) * (n - 1) / (m - 1)).astype(int)
    hard = np.zeros((m, n))
    hard[np.arange(m), centre] = 1.0
    assert attention_diagonality(hard) == 1.0
    # a soft diagonal (Gaussian, sd 1 step) keeps nearly all its mass in a band of +-4 steps
    soft = np.exp(-0.5 * (np.arange(n)[None, :] - (np.arange(m) * (n - 1) / (m - 1))[:, None]) ** 2)
    soft /= soft.sum(axis=1, keepdims=True)
    assert attention_diagonality(soft, band=0.1) > 0.99


@pytest.mark.parametrize("band", [0.05, 0.1, 0.25])
def test_uniform_attention_scores_about_twice_the_band(band):
    score = attention_diagonality(np.full((100, 200), 1 / 200), band=band)
    assert 2 * band * 0.8 < score <= 2 * band + 1 / 200  # the band is cut at the two edges


def test_off_diagonal_attention_scores_low_and_rows_need_not_sum_to_one():
    assert attention_diagonality(np.fliplr(np.eye(50))) < 0.25  # anti-diagonal: only the middle rows meet it
    stuck = np.zeros((50, 50))
    stuck[:, 0] = 3.0  # attends to the first step throughout, weights not normalised
    assert attention_diagonality(stuck) == pytest.approx(6 / 50)
    assert attention_diagonality(np.ones((1, 5))) == pytest.approx(2 / 5)  # one decoder step: centre 0, +-1 step


def test_bad_alignment_is_refused():
    for bad, match in [
        (np.ones(5), "decoder_steps, encoder_steps"),
        (np.ones((0, 5)), "decoder_steps, encoder_steps"),
        (-np.eye(3), "non-negative"),
        (np.full((3, 3), np.nan), "finite"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "row 1 has no attention mass"),
    ]:
        with pytest.raises(MumoError, match=match):
            attention_diagonality(bad)
    with pytest.raises(MumoError, match="band"):
        attention_diagonality(np.eye(3), band=0.0)


# ---------------------------------------------------------------------------------------------------------------
# spread against error
# ---------------------------------------------------------------------------------------------------------------


def test_spread_equal_to_error_agrees_perfectly():
    error = np.random.default_rng(0).gamma(2.0, size=500)
    out = spread_error_agreement(2.0 * error + 1.0, error)  # any increasing function of the error
    assert out["spearman"] == pytest.approx(1.0) and out["auroc_worst"] == 1.0
    assert out["reason"] is None and out["frames"] == 500 and out["worst_fraction"] == 0.1
    assert spread_error_agreement(-error, error)["auroc_worst"] == 0.0  # ranks them exactly backwards


def test_independent_spread_is_chance():
    rng = np.random.default_rng(1)
    out = spread_error_agreement(rng.random(20_000), rng.random(20_000), worst_fraction=0.2)
    assert abs(out["spearman"]) < 0.03 and abs(out["auroc_worst"] - 0.5) < 0.03


def test_spread_that_finds_only_the_worst_frames():
    error = np.arange(100.0)
    spread = np.where(error >= 90, 1.0, 0.0)  # flags the worst 10 %, no ranking among the rest
    out = spread_error_agreement(spread, error)
    assert out["auroc_worst"] == 1.0 and 0.0 < out["spearman"] < 1.0


def test_undefined_agreement_is_nan_with_a_reason():
    out = spread_error_agreement(np.ones(10), np.arange(10.0))
    assert math.isnan(out["spearman"]) and math.isnan(out["auroc_worst"]) and "spread is constant" in out["reason"]
    out = spread_error_agreement(np.arange(10.0), np.zeros(10))
    assert math.isnan(out["auroc_worst"]) and "error is constant" in out["reason"]


def test_bad_spread_or_error_is_refused():
    with pytest.raises(MumoError, match="same shape"):
        spread_error_agreement(np.ones(3), np.ones(4))
    with pytest.raises(MumoError, match="at least 2 frames"):
        spread_error_agreement(np.ones(1), np.ones(1))
    with pytest.raises(MumoError, match="finite"):
        spread_error_agreement(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(MumoError, match="worst_fraction"):
        spread_error_agreement(np.arange(3.0), np.arange(3.0), worst_fraction=1.0)
