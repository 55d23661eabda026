"""Speech metrics for lip-to-speech (Lip2Wav-style): STOI, ESTOI, PESQ, mel L1, attention diagonality, and how
well a per-frame uncertainty (spread) ranks the per-frame errors.

Waveforms are 1-D float arrays (T,) in [-1, 1] at ``sample_rate`` (16 kHz by default), the reference (clean,
original) first and the degraded (generated, vocoded) second. As Lip2Wav's ``score.py``, both are cut to the
shorter length before scoring, so a vocoder that returns a few samples fewer is not penalised for it.
STOI / ESTOI come from ``pystoi`` (Taal et al. 2011; Jensen and Taal 2016), PESQ from ``pesq`` (ITU-T P.862,
narrow-band, which Lip2Wav reports, computed at 16 kHz). Both come with the ``audio`` extra and are imported
only when a score is computed.

Undefined scores are NaN, never an error, so that one clip does not stop the evaluation of a test set:
- PESQ of a reference in which the library finds no speech ("no utterances detected", e.g. silence), and of
  an all-zero degraded signal (the library divides by its level; any non-zero signal, however quiet, scores);
- STOI / ESTOI of an all-zero reference, and of a reference with fewer than 30 frames (~0.4 s) of speech once
  its silent frames are dropped (pystoi would warn and return 1e-5).
Bad input (not 1-D, NaN or infinite samples, shorter than the metric can score, an unsupported rate) raises
``MumoError``.

Arrays may be numpy arrays or anything ``np.asarray`` takes (lists, CPU tensors without gradient).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.typing import ArrayLike

from mumo.errors import MumoError

MIN_STOI_SECONDS = 0.42  # pystoi needs > 4096 samples at its 10 kHz (31 frames of 25.6 ms, 12.8 ms apart)
MIN_PESQ_SECONDS = 0.25  # the pesq library refuses shorter buffers
PESQ_RATES = (8000, 16000)  # the rates ITU-T P.862 is defined for


def _waveform(x: ArrayLike, name: str) -> np.ndarray:
    """(T,) float64 copy of a waveform; MumoError unless it is 1-D, non-empty and finite."""
    wav = np.asarray(x, dtype=np.float64)
    if wav.ndim != 1:
        raise MumoError(f"{name} must be a 1-D (T,) waveform, not shape {wav.shape}")
    if wav.size == 0:
        raise MumoError(f"{name} is empty")
    if not np.isfinite(wav).all():
        raise MumoError(f"{name} holds NaN or infinite samples")
    return wav


def _pair(
    reference: ArrayLike, degraded: ArrayLike, sample_rate: int, min_seconds: float, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both waveforms cut to the shorter length, checked: (T,), (T,) float64."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise MumoError(f"sample_rate must be a positive integer (Hz), not {sample_rate!r}")
    ref, deg = _waveform(reference, "reference"), _waveform(degraded, "degraded")
    n = min(ref.size, deg.size)
    if n < math.ceil(min_seconds * sample_rate):
        raise MumoError(
            f"{metric} needs at least {min_seconds:g} s of audio ({math.ceil(min_seconds * sample_rate)} samples at "
            f"{sample_rate} Hz); the shorter waveform has {n} samples"
        )
    return ref[:n], deg[:n]  # (T,), (T,)


def stoi(reference: ArrayLike, degraded: ArrayLike, sample_rate: int = 16000, *, extended: bool = False) -> float:
    """Short-time objective intelligibility of ``degraded`` against ``reference``, in [0, 1] (ESTOI can go a
    little below 0); higher is more intelligible.

    Args:
        reference: (T,) clean speech.
        degraded: (T',) speech to score; both are cut to min(T, T').
        sample_rate: Hz of both (pystoi resamples to 10 kHz).
        extended: ESTOI (Jensen and Taal 2016), which also accounts for modulated noise.

    Returns:
        The score; NaN for an all-zero reference or too little speech in it (see the module docstring).

    Raises:
        MumoError: not 1-D, NaN / infinite samples, shorter than 0.42 s, or a rate that is not a positive integer.

    Example:
        >>> stoi(clean, clean)  # 1.0
        1.0
    """
    ref, deg = _pair(reference, degraded, sample_rate, MIN_STOI_SECONDS, "STOI")
    if not ref.any():
        return float("nan")
    import pystoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = float(pystoi.stoi(ref, deg, sample_rate, extended=extended))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")  # fewer than 30 frames of speech once silent frames are dropped
    return score


def estoi(reference: ArrayLike, degraded: ArrayLike, sample_rate: int = 16000) -> float:
    """Extended STOI: :func:`stoi` with ``extended=True``.

    Example:
        >>> estoi(clean, clean)
        1.0
    """
    return stoi(reference, degraded, sample_rate, extended=True)


def pesq_nb(reference: ArrayLike, degraded: ArrayLike, sample_rate: int = 16000) -> float:
    """Narrow-band PESQ (ITU-T P.862 MOS-LQO, about 1.0 to 4.55) of ``degraded`` against ``reference``.

    Computed by ``pesq.pesq(sample_rate, ref, deg, "nb")`` on both cut to the shorter length, as Lip2Wav reports
    it for 16 kHz speech (the narrow-band model on 16 kHz input).

    Args:
        reference: (T,) clean speech.
        degraded: (T',) speech to score.
        sample_rate: 16000 or 8000 Hz.

    Returns:
        The score; NaN when the library detects no utterance in the reference (``pesq.NoUtterancesError``, e.g.
        silence) or ``degraded`` is all zeros.

    Raises:
        MumoError: not 1-D, NaN / infinite samples, shorter than 0.25 s, or a rate other than 8 or 16 kHz.

    Example:
        >>> pesq_nb(clean, clean)  # the ceiling
        4.548...
    """
    if sample_rate not in PESQ_RATES:
        raise MumoError(f"PESQ is defined at {PESQ_RATES[0]} or {PESQ_RATES[1]} Hz, not {sample_rate!r}: resample")
    ref, deg = _pair(reference, degraded, sample_rate, MIN_PESQ_SECONDS, "PESQ")
    if not deg.any():
        return float("nan")
    import pesq

    try:
        return float(pesq.pesq(int(sample_rate), ref, deg, "nb"))
    except pesq.NoUtterancesError:
        return float("nan")
    except pesq.BufferTooShortError as exc:  # pragma: no cover - the length is checked above
        raise MumoError(f"PESQ: audio too short ({exc})") from None


def speech_scores(reference: ArrayLike, degraded: ArrayLike, sample_rate: int = 16000) -> dict[str, float]:
    """STOI, ESTOI and narrow-band PESQ of one utterance: ``{"stoi", "estoi", "pesq_nb"}``.

    Example:
        >>> speech_scores(clean, vocoded)
        {'stoi': 0.96, 'estoi': 0.92, 'pesq_nb': 3.27}
    """
    return {
        "stoi": stoi(reference, degraded, sample_rate),
        "estoi": estoi(reference, degraded, sample_rate),
        "pesq_nb": pesq_nb(reference, degraded, sample_rate),
    }


def mel_l1(predicted: ArrayLike, target: ArrayLike) -> float:
    """Mean absolute difference of two mel spectrograms over their common steps.

    Args:
        predicted: (n_mels, T) mel (any scale, the same as ``target``'s, e.g. the normalised [-4, 4]).
        target: (n_mels, T') mel; both are cut to min(T, T') steps.

    Raises:
        MumoError: not 2-D, different numbers of bands, no steps, or NaN / infinite values.

    Example:
        >>> mel_l1(np.zeros((80, 10)), np.ones((80, 12)))
        1.0
    """
    pred, tgt = np.asarray(predicted, dtype=np.float64), np.asarray(target, dtype=np.float64)
    if pred.ndim != 2 or tgt.ndim != 2 or pred.shape[0] != tgt.shape[0]:
        raise MumoError(f"mels must both be (n_mels, T) with the same n_mels, not {pred.shape} and {tgt.shape}")
    n = min(pred.shape[1], tgt.shape[1])
    if n == 0:
        raise MumoError("a mel spectrogram has no steps")
    if not (np.isfinite(pred).all() and np.isfinite(tgt).all()):
        raise MumoError("mel holds NaN or infinite values")
    return float(np.abs(pred[:, :n] - tgt[:, :n]).mean())  # (M, n) -> scalar


def attention_diagonality(alignment: ArrayLike, band: float = 0.1) -> float:
    """How diagonal an attention alignment is: the mean, over decoder steps, of the share of each step's
    attention that lies within ``band`` of the diagonal.

    Decoder step i of M is expected to attend to encoder position c_i = i (N - 1) / (M - 1) (the diagonal of a
    monotonic alignment that starts at the first encoder step and ends at the last; c_0 = 0 when M = 1). The
    band is ``|j - c_i| <= max(1, band * N)`` encoder steps. Each row's mass is taken relative to the row's
    total, so rows need not sum exactly to 1. A perfect diagonal scores 1.0; uniform attention about
    2 * band (a little less, as the band is cut at the edges); attention that ignores the diagonal near 0.
    A Tacotron-style decoder (Lip2Wav's) that has learnt to align scores near 1, one that has not, low.

    Args:
        alignment: (M, N) non-negative attention weights, row i = decoder step i over N encoder steps.
        band: half-width of the band as a fraction of N, in (0, 1].

    Returns:
        The score in [0, 1].

    Raises:
        MumoError: not 2-D, empty, negative or non-finite weights, a row with no mass, or ``band`` outside (0, 1].

    Example:
        >>> attention_diagonality(np.eye(20))
        1.0
    """
    a = np.asarray(alignment, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise MumoError(f"alignment must be (decoder_steps, encoder_steps) with both > 0, not shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise MumoError("alignment weights must be finite and non-negative")
    if not 0.0 < band <= 1.0:
        raise MumoError(f"band must be in (0, 1], not {band}")
    totals = a.sum(axis=1)  # (M,)
    if (totals <= 0).any():
        raise MumoError(f"alignment row {int(np.argmin(totals > 0))} has no attention mass")
    m, n = a.shape
    centre = np.linspace(0.0, n - 1, m) if m > 1 else np.zeros(1)  # (M,) expected encoder position per step
    half = max(1.0, band * n)
    inside = np.abs(np.arange(n)[None, :] - centre[:, None]) <= half  # (M, N)
    return float(((a * inside).sum(axis=1) / totals).mean())


def spread_error_agreement(
    spread: ArrayLike, error: ArrayLike, worst_fraction: float = 0.1
) -> dict[str, float | str | None]:
    """How well a per-frame uncertainty (e.g. the spread of MC-dropout mel samples) tracks the per-frame error.

    - ``spearman``: rank correlation of spread and error over frames (``scipy.stats.spearmanr``); 1 when the
      spread orders the frames as the error does.
    - ``auroc_worst``: the frames whose error is above the ``1 - worst_fraction`` quantile are the positives;
      the AUROC (``sklearn.metrics.roc_auc_score``) of the spread as a score for them: the chance that a
      random worst frame has a larger spread than a random other frame (0.5: the spread does not find them).

    A score that is undefined is NaN and ``reason`` says why: a constant spread or error (no ranking), or no
    frame above the error quantile (ties). ``reason`` is None when both are defined.

    Args:
        spread: (F,) per-frame uncertainty (any shape; flattened), larger = less certain.
        error: per-frame error of the same shape, e.g. the mel L1 of each frame.
        worst_fraction: the share of frames counted as the worst, in (0, 1).

    Returns:
        ``{"spearman", "auroc_worst", "worst_fraction", "frames", "reason"}``.

    Raises:
        MumoError: shapes differ, fewer than 2 frames, NaN / infinite values, or ``worst_fraction`` outside (0, 1).

    Example:
        >>> spread_error_agreement(err, err)["auroc_worst"]
        1.0
    """
    s, e = np.asarray(spread, dtype=np.float64), np.asarray(error, dtype=np.float64)
    if s.shape != e.shape:
        raise MumoError(f"spread and error must have the same shape, not {s.shape} and {e.shape}")
    s, e = s.ravel(), e.ravel()  # (F,), (F,)
    if s.size < 2:
        raise MumoError(f"need at least 2 frames, not {s.size}")
    if not (np.isfinite(s).all() and np.isfinite(e).all()):
        raise MumoError("spread and error must be finite")
    if not 0.0 < worst_fraction < 1.0:
        raise MumoError(f"worst_fraction must be in (0, 1), not {worst_fraction}")
    out: dict[str, float | str | None] = {
        "spearman": float("nan"),
        "auroc_worst": float("nan"),
        "worst_fraction": float(worst_fraction),
        "frames": int(s.size),
        "reason": None,
    }
    if np.ptp(s) == 0 or np.ptp(e) == 0:
        out["reason"] = f"{'spread' if np.ptp(s) == 0 else 'error'} is constant: no ranking to compare"
        return out

    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    out["spearman"] = float(spearmanr(s, e)[0])
    worst = e > np.quantile(e, 1.0 - worst_fraction)  # (F,) bool: the positives
    if not worst.any():
        out["reason"] = f"no frame has an error above its {1.0 - worst_fraction:g} quantile (ties)"
        return out
    out["auroc_worst"] = float(roc_auc_score(worst, s))
    return out
