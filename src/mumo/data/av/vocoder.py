"""Mel spectrogram back to a waveform (Griffin-Lim), and stitching overlapping mel windows into one mel.

The inverse of :class:`mumo.data.av.audio.MelFrontEnd` (Wav2Lip's mel), as Lip2Wav and Tacotron-2 invert theirs:
denormalise [-4, 4] back to dB, add ``ref_level_db``, dB to amplitude, mel to linear frequency by the
pseudo-inverse of the same Slaney filterbank (floored at 1e-10), raise the magnitude to ``power`` (1.5, Lip2Wav's
``hparams.power``), run Griffin-Lim (``librosa.griffinlim``, 60 iterations, the front-end's STFT), then undo the
pre-emphasis. A model that predicts mel windows (Lip2Wav predicts a few seconds at a time) gets one waveform for
a long clip by :func:`window_starts` (where the windows go), :func:`stitch_windows` (one mel, cross-faded in the
overlaps) and one :func:`mel_to_wav` over the whole: the phase is estimated once over the whole clip, so there is
no seam in the waveform to click.

Example:
    >>> from mumo.data.av.audio import MelFrontEnd
    >>> front = MelFrontEnd()
    >>> mel = front(wav)  # (T,) -> (80, 1 + T // 200)
    >>> starts = window_starts(mel.shape[-1], window=240, overlap=40)
    >>> windows = [predict(start) for start in starts]  # each (80, 240), e.g. a model's output
    >>> audio = mel_to_wav(stitch_windows(windows, starts, mel.shape[-1]))  # (200 * (T_mel - 1),) float32
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mumo.data.av.audio import MelFrontEnd
from mumo.errors import MumoError

GRIFFIN_LIM_ITERS = 60  # Lip2Wav's hparams.griffin_lim_iters
GRIFFIN_LIM_POWER = 1.5  # Lip2Wav's hparams.power: the magnitude is sharpened before Griffin-Lim


def mel_to_wav(
    mel: torch.Tensor | np.ndarray,
    *,
    n_iter: int = GRIFFIN_LIM_ITERS,
    power: float = GRIFFIN_LIM_POWER,
    front: MelFrontEnd | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Invert a normalised mel spectrogram of :class:`MelFrontEnd` to a waveform with Griffin-Lim.

    Steps (Lip2Wav's ``audio.inv_mel_spectrogram``): clip to [-max_abs, max_abs] and denormalise to dB
    (``(S + 4) * 100 / 8 - 100``), add ``ref_level_db`` (20), dB to amplitude (``10 ** (dB / 20)``), mel to
    linear by the pseudo-inverse of the front-end's own filterbank (``np.linalg.pinv``, floored at 1e-10),
    ``** power``, ``librosa.griffinlim`` (n_fft 800, hop 200, Hann window 800, centred, librosa's default
    momentum 0.99 "fast Griffin-Lim", random initial phase from ``seed``, so the same mel always gives the
    same waveform), then the inverse pre-emphasis ``lfilter([1], [1, -0.97])``.

    Level: the mel holds the absolute level, and the waveform keeps it. ``** power`` changes the level (and
    expands the dynamic range: that sharpening is the point of it), so after Griffin-Lim one gain brings the
    level back to the mel's: the least-squares fit of the output's mel amplitudes to the input's (~1 for
    ``power=1``). Only when the peak then exceeds full scale is the whole waveform scaled down by its peak,
    never clipped sample by sample (as :func:`mumo.data.av.audio.condition_audio` treats a float file past
    full scale). No other normalisation: a quiet mel gives quiet speech.

    Quality, measured on an espeak-ng sentence (``MelFrontEnd`` of it, then this): STOI 0.96, ESTOI 0.92, PESQ
    (narrow-band) 3.27 with ``power=1.5``; 2.99 with ``power=1``, whose re-analysed mel is closer to the input
    (mean |difference| 0.10 against 0.98 on the [-4, 4] scale, as 1.5 expands the dB range by 1.5).

    Args:
        mel: (n_mels, T_mel) normalised mel in [-4, 4] (values outside are clipped, as Lip2Wav does), a torch
            tensor (any device; detached) or a numpy array.
        n_iter: Griffin-Lim iterations.
        power: exponent applied to the linear magnitude before Griffin-Lim.
        front: the front-end whose mel this is (its filterbank, STFT and levels); None: ``MelFrontEnd()``.
        seed: seed of the initial random phase.

    Returns:
        (hop * (T_mel - 1),) float32 waveform in [-1, 1] at ``front.sample_rate``: the length whose mel has
        T_mel steps (``front.num_steps(len(wav)) == T_mel``).

    Raises:
        MumoError: ``mel`` is not 2-D, has another number of bands than the front-end, fewer than 2 steps, or
            NaN / infinite values; ``n_iter`` < 1 or ``power`` <= 0.

    Example:
        >>> wav = mel_to_wav(MelFrontEnd()(torch.randn(16000) * 0.1))  # (16000,) float32
    """
    front = MelFrontEnd() if front is None else front
    spec = mel.detach().cpu().double().numpy() if isinstance(mel, torch.Tensor) else np.asarray(mel, np.float64)
    if spec.ndim != 2:
        raise MumoError(f"mel must be (n_mels, T_mel), not shape {tuple(spec.shape)}")
    if spec.shape[0] != front.n_mels:
        raise MumoError(
            f"mel has {spec.shape[0]} bands, the front-end {front.n_mels}: expected (n_mels, T_mel), not transposed?"
        )
    if spec.shape[1] < 2:
        raise MumoError(f"mel has {spec.shape[1]} steps; Griffin-Lim needs at least 2 (one hop of audio)")
    if not np.isfinite(spec).all():
        raise MumoError("mel holds NaN or infinite values")
    if n_iter < 1 or not power > 0:
        raise MumoError(f"n_iter must be >= 1 and power > 0, not {n_iter} and {power}")

    import librosa
    from scipy.signal import lfilter

    m, lo = front.max_abs_value, front.min_level_db
    db = (np.clip(spec, -m, m) + m) * (-lo) / (2.0 * m) + lo  # (M, T_mel) dB, [-100, 0]
    amp = 10.0 ** ((db + front.ref_level_db) / 20.0)  # (M, T_mel) mel amplitude
    bank = front.mel_basis.detach().cpu().double().numpy()  # (M, F), F = n_fft // 2 + 1
    inv_bank = np.linalg.pinv(bank)  # (F, M)
    linear = np.maximum(1e-10, inv_bank @ amp)  # (F, T_mel)
    num_samples = front.hop_length * (spec.shape[1] - 1)
    wav = librosa.griffinlim(
        linear**power,
        n_iter=n_iter,
        hop_length=front.hop_length,
        win_length=front.win_length,
        n_fft=front.n_fft,
        window="hann",
        center=True,
        length=num_samples,
        init="random",
        random_state=np.random.RandomState(seed),
    )  # (num_samples,) pre-emphasised
    # Griffin-Lim met |STFT| = linear ** power; one gain brings the level back to the mel's (least squares over
    # the mel amplitudes: g = <A_y, A> / <A_y, A_y>). With power 1 it is ~1.
    stft = librosa.stft(
        wav, n_fft=front.n_fft, hop_length=front.hop_length, win_length=front.win_length, pad_mode="reflect"
    )  # (F, T_mel) complex
    amp_out = bank @ np.abs(stft)  # (M, F) @ (F, T_mel) -> (M, T_mel)
    energy = float((amp_out * amp_out).sum())
    wav = wav * (float((amp_out * amp).sum()) / energy if energy > 0 else 1.0)  # (num_samples,)
    wav = lfilter([1.0], [1.0, -front.preemphasis], wav)  # (num_samples,)
    peak = float(np.abs(wav).max())
    if peak > 1.0:
        wav = wav / peak
    return np.clip(wav, -1.0, 1.0).astype(np.float32)  # (num_samples,)


def window_starts(total_steps: int, window: int, overlap: int) -> list[int]:
    """Where to put ``window``-step windows so that they cover ``total_steps`` steps, overlapping by ``overlap``.

    The windows start every ``window - overlap`` steps from 0; when that does not end exactly at
    ``total_steps``, one more window is added, right-aligned to the end (it overlaps its neighbour by more
    than ``overlap``). Every step is covered and no window runs past the end, so a clip longer than one
    window is covered by windows that all have the full length. A clip shorter than one window gets one
    window at 0 that runs past the end: the caller pads the input to ``window`` steps and crops the output.

    Args:
        total_steps: steps to cover (>= 1).
        window: steps per window (>= 1).
        overlap: steps shared by consecutive windows, 0 <= overlap < window.

    Returns:
        The start of each window, increasing.

    Example:
        >>> window_starts(500, window=200, overlap=50)
        [0, 150, 300]
        >>> window_starts(520, window=200, overlap=50)
        [0, 150, 300, 320]
    """
    if total_steps < 1 or window < 1:
        raise MumoError(f"total_steps and window must be >= 1, not {total_steps} and {window}")
    if not 0 <= overlap < window:
        raise MumoError(f"overlap must be in [0, window={window}), not {overlap}")
    if total_steps <= window:
        return [0]
    starts = list(range(0, total_steps - window + 1, window - overlap))
    if starts[-1] + window < total_steps:
        starts.append(total_steps - window)
    return starts


def _ramp(n: int, rising: bool) -> torch.Tensor:
    """(n,) linear ramp (k + 1) / (n + 1), or its reverse: a rising and a falling ramp of one overlap sum to 1."""
    up = torch.arange(1, n + 1, dtype=torch.float64) / (n + 1)  # (n,)
    return up if rising else up.flip(0)


def stitch_windows(windows: Sequence[torch.Tensor], starts: Sequence[int], total_steps: int) -> torch.Tensor:
    """One (n_mels, total_steps) mel from overlapping mel windows, cross-faded linearly in the overlaps.

    Windows are taken in order of their start. Each window's weight rises linearly over its overlap with the
    previous window and falls over its overlap with the next one (1 elsewhere; a rising and a falling ramp
    over one overlap sum to 1, so two windows cross-fade). Every step is the weighted mean of the windows
    that cover it, divided by the summed weights, so a constant input stays constant and windows cut from one
    mel stitch back to it. Vocode the result once (:func:`mel_to_wav`) rather than each window: Griffin-Lim
    then finds one phase for the whole clip, and nothing clicks at the seams.

    Args:
        windows: one (n_mels, L_i) tensor per window (lengths may differ), all with the same n_mels.
        starts: the mel step at which each window starts (e.g. :func:`window_starts`).
        total_steps: steps of the stitched mel.

    Returns:
        (n_mels, total_steps), in the first window's dtype (float32 for an integer one) and device.

    Raises:
        MumoError: no windows, a count of starts that differs from the count of windows, a window that is not
            2-D, is empty or has another number of bands, a start < 0, a window that runs past
            ``total_steps``, or steps that no window covers.

    Example:
        >>> mel = torch.randn(80, 500)
        >>> starts = window_starts(500, window=200, overlap=50)
        >>> stitched = stitch_windows([mel[:, s : s + 200] for s in starts], starts, 500)  # == mel
    """
    if len(windows) == 0:
        raise MumoError("no windows to stitch")
    if len(starts) != len(windows):
        raise MumoError(f"{len(windows)} windows but {len(starts)} starts")
    first = windows[0]
    if first.ndim != 2:
        raise MumoError(f"each window must be (n_mels, L), not shape {tuple(first.shape)}")
    n_mels = first.shape[0]
    for i, (w, s) in enumerate(zip(windows, starts, strict=True)):
        if w.ndim != 2 or w.shape[0] != n_mels or w.shape[1] == 0:
            raise MumoError(f"window {i} has shape {tuple(w.shape)}; every window must be ({n_mels}, L) with L >= 1")
        if int(s) != s or s < 0 or s + w.shape[1] > total_steps:
            raise MumoError(
                f"window {i} (start {s}, {w.shape[1]} steps) must start at an integer >= 0 and end by step "
                f"total_steps = {total_steps}"
            )

    order = sorted(range(len(windows)), key=lambda i: int(starts[i]))  # stable: equal starts keep their order
    spans = [(int(starts[i]), int(starts[i]) + windows[i].shape[1]) for i in order]  # [(start, end)] sorted
    total = torch.zeros(n_mels, total_steps, dtype=torch.float64, device=first.device)  # (M, total_steps)
    weight = torch.zeros(total_steps, dtype=torch.float64, device=first.device)  # (total_steps,)
    for k, i in enumerate(order):
        start, end = spans[k]
        w = torch.ones(end - start, dtype=torch.float64)  # (L,)
        if k > 0:  # rise over the overlap with the previous window
            n = min(max(spans[k - 1][1] - start, 0), end - start)
            w[:n] = torch.minimum(w[:n], _ramp(n, rising=True))
        if k + 1 < len(spans):  # fall over the overlap with the next window
            n = min(max(end - spans[k + 1][0], 0), end - start)
            w[end - start - n :] = torch.minimum(w[end - start - n :], _ramp(n, rising=False))
        w = w.to(first.device)
        total[:, start:end] += windows[i].to(device=first.device, dtype=torch.float64) * w  # (M, L) * (L,)
        weight[start:end] += w

    missing = (weight == 0).nonzero().flatten()
    if missing.numel():
        raise MumoError(
            f"{missing.numel()} of {total_steps} steps are covered by no window (first: step {int(missing[0])})"
        )
    dtype = first.dtype if first.is_floating_point() else torch.float32
    return (total / weight).to(dtype)  # (M, total_steps)
