"""Audio front-end for the audio-visual (lip-sync) side: robust loading and the Wav2Lip mel spectrogram.

Waveforms are float32 tensors in [-1, 1]: (T,) for one clip, (B, T) for a batch, at 16 kHz by default.
Mel spectrograms are (80, T_mel) or (B, 80, T_mel) with 80 steps per second (hop 200 at 16 kHz),
normalised to [-4, 4] exactly as Rudrabha/Wav2Lip's ``audio.melspectrogram`` (reference §6.1).

Video at 25 fps gives 3.2 mel steps per frame; a 5-frame window is paired with a 16-step mel window that
starts at ``mel_start(frame) = floor(80 * frame / fps)``.

Every bad input (missing, empty, not audio, corrupted, no audio stream, no samples, silent, a sample rate
below ``MIN_SAMPLE_RATE``) raises ``MumoError`` naming the file. ``load_audio(..., offset=, duration=)`` reads
only that span (a seek for soundfile's formats, a decode that stops at its end for the others), so memory
follows the span, not the file. soundfile, PyAV, soxr and librosa come with the ``audio`` extra and are
imported only when needed.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mumo.errors import ConfigError, MumoError, check_input_file

MEL_STEPS_PER_SECOND = 80  # 16 kHz / hop 200
SILENCE_DBFS = -90.0  # a track whose peak is below this is treated as silent (16-bit LSB ≈ -90.3 dBFS)
# The lowest sample rate accepted from a file: 4 kHz keeps 0-2 kHz, the lowest band that still carries speech
# (telephone speech is 8 kHz). A lower rate is a broken or mislabelled file (a "1 Hz" WAV would be stretched
# 16000 times by the resampler), never speech, so it is refused rather than resampled.
MIN_SAMPLE_RATE = 4000
_NOT_AUDIO_FORMATS = ("image2", "tty")  # FFmpeg demuxers that "open" still images and text files

# ---------------------------------------------------------------------------------------------------------------
# Loading and saving
# ---------------------------------------------------------------------------------------------------------------


def _import(name: str):
    try:
        return __import__(name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MumoError(f"audio input/output needs '{name}': pip install 'mumo[audio]'") from exc


def load_audio(
    path: str | Path,
    *,
    sample_rate: int = 16000,
    allow_silent: bool = False,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Load any common audio file (or the audio track of a video) as mono float32 at ``sample_rate``.

    wav/flac/ogg/aiff (and mp3 with libsndfile >= 1.1) are read with soundfile; anything else (mp3, m4a, aac,
    or the audio inside an .mp4/.mkv/.mov) is decoded with PyAV. 8/16/24/32-bit integer and float samples are
    all mapped to [-1, 1]; channels are averaged; the rate is converted with soxr (quality "HQ", the resampler
    behind ``librosa.load``'s default ``res_type="soxr_hq"``). A float file that goes past full scale (or a
    resampling overshoot) is scaled down by its peak, never clipped.

    Only ``duration`` seconds from ``offset`` are read: soundfile seeks to them, PyAV decodes from the start,
    drops what comes before ``offset`` and stops at the span's end. Memory follows the span, not the file (a
    2-hour track read for a 1-second video costs what a 1-second file does).

    A silent track (all zeros, or a peak below ``SILENCE_DBFS`` = -90 dBFS) is refused by default: its mel
    spectrogram is the constant floor (-4 everywhere), so it carries no lip-sync signal and a sync expert or
    generator trained on it learns nothing (Wav2Lip's NaN-mel trouble with TTS voices has the same root).
    Pass ``allow_silent=True`` when a silent track is expected (e.g. padding, or a deliberate negative). The
    silence and the peak are those of the span read.

    Args:
        path: the audio or video file.
        sample_rate: output rate in Hz (Wav2Lip and Lip2Wav use 16 kHz).
        allow_silent: accept a silent track instead of raising.
        offset: where to start reading, in seconds from the start of the file.
        duration: how many seconds to read (fewer when the file ends first); None reads to the end.

    Returns:
        (T,) float32 waveform in [-1, 1].

    Raises:
        MumoError: the file is missing, empty, not audio, corrupted, has no audio stream or no samples, has a
            sample rate below ``MIN_SAMPLE_RATE``, or is silent (unless ``allow_silent``).
    """
    if sample_rate <= 0:
        raise MumoError(f"sample_rate must be positive, not {sample_rate}")
    if not (math.isfinite(offset) and offset >= 0.0):
        raise MumoError(f"offset must be a finite number of seconds >= 0, not {offset}")
    if duration is not None and not (math.isfinite(duration) and duration > 0.0):
        raise MumoError(f"duration must be a finite number of seconds > 0 (or None for all), not {duration}")
    path = Path(path)
    check_input_file(path, "audio")

    decoded = _read_soundfile(path, offset=offset, duration=duration)
    if decoded is None:
        decoded = _read_av(path, offset=offset, duration=duration)
    samples, rate = decoded  # (C, T) float32, Hz
    return condition_audio(samples, rate, path, sample_rate=sample_rate, allow_silent=allow_silent)


def audio_duration(path: str | Path) -> float | None:
    """How many seconds of audio a file holds, from its header (nothing is decoded); None when the container
    does not say. Checks what :func:`load_audio` checks before decoding (the file, an audio stream, the rate).

    Raises:
        MumoError: the file is missing, empty, not audio, has no audio stream or a rate below
            ``MIN_SAMPLE_RATE``.
    """
    path = Path(path)
    check_input_file(path, "audio")
    info = _soundfile_info(path)
    if info is not None:
        frames, rate = info
        return frames / rate if frames > 0 else None
    av = _import("av")
    with _open_av(path) as container:
        stream = container.streams.audio[0]
        _check_rate(stream.rate, path)
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        if container.duration:
            return container.duration / av.time_base
    return None


def _check_rate(rate: int | None, path: Path) -> None:
    if rate is not None and rate < MIN_SAMPLE_RATE:
        raise MumoError(
            f"audio sample rate of {rate} Hz is too low to hold speech (at least {MIN_SAMPLE_RATE} Hz): {path}"
        )


def condition_audio(
    samples: np.ndarray, rate: int, path: str | Path, *, sample_rate: int = 16000, allow_silent: bool = False
) -> torch.Tensor:
    """Decoded (C, T) or (T,) float samples at ``rate`` -> what :func:`load_audio` returns (mono, resampled,
    peak-limited, silence refused); ``path`` only names the source in errors. Lets a caller that already
    decoded a video's audio track (``read_video``) skip decoding it again."""
    _check_rate(rate, Path(path))
    samples = np.atleast_2d(np.asarray(samples, dtype=np.float32))  # (C, T)
    if samples.shape[-1] == 0:
        raise MumoError(f"audio file holds no samples: {path}")
    if not np.isfinite(samples).all():
        raise MumoError(f"audio file holds NaN or infinite samples: {path}")
    mono = samples.mean(axis=0, dtype=np.float64).astype(np.float32)  # (T,)
    if rate != sample_rate:
        soxr = _import("soxr")
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32)  # (T',)
        if mono.size == 0:
            raise MumoError(f"audio file is too short to resample to {sample_rate} Hz: {path}")

    peak = float(np.abs(mono).max())
    if peak > 1.0:
        mono = mono / peak
    if not allow_silent and peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = "all zeros" if peak == 0.0 else f"peak {20.0 * math.log10(peak):.1f} dBFS"
        raise MumoError(
            f"audio is silent ({level}, below {SILENCE_DBFS:.0f} dBFS): {path}; its mel spectrogram would be the "
            "constant floor with no lip-sync signal (pass allow_silent=True to accept it)"
        )
    return torch.from_numpy(np.ascontiguousarray(mono))  # (T,)


def _soundfile_info(path: Path) -> tuple[int, int] | None:
    """(frames, rate) from the header, or None when libsndfile cannot read the file.

    Raises:
        MumoError: the rate is below ``MIN_SAMPLE_RATE``.
    """
    sf = _import("soundfile")
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    _check_rate(int(info.samplerate), path)  # outside the try: MumoError is a ValueError
    return int(info.frames), int(info.samplerate)


def _read_soundfile(path: Path, *, offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int] | None:
    """(C, T) float32 samples of the span and the rate, or None when libsndfile cannot read the file. The span
    is reached by a seek: nothing before it is decoded, nothing after it is read."""
    sf = _import("soundfile")
    info = _soundfile_info(path)
    if info is None:
        return None
    frames, rate = info
    start = min(round(offset * rate), max(frames, 0))
    count = -1 if duration is None else max(1, round(duration * rate))
    try:
        data, rate = sf.read(str(path), frames=count, start=start, dtype="float32", always_2d=True)  # (T, C)
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
        return None
    return np.ascontiguousarray(data.T), int(rate)  # (C, T)


def _open_av(path: Path):
    """An open PyAV container of ``path`` that holds an audio stream (the caller closes it)."""
    av = _import("av")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MumoError(f"not an audio file, or corrupted: {path} ({exc})") from None
    fmt = container.format.name
    if fmt in _NOT_AUDIO_FORMATS or fmt.endswith("_pipe"):
        container.close()
        raise MumoError(f"not an audio file: {path} (FFmpeg reads it as an image or text: {fmt})")
    if not container.streams.audio:
        container.close()
        raise MumoError(f"no audio stream in {path}")
    return container


def _read_av(path: Path, *, offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    """(C, T) float32 samples of the span and the rate of the first audio stream, decoded with FFmpeg (PyAV)."""
    with _open_av(path) as container:
        _check_rate(container.streams.audio[0].rate, path)
        decoded = decode_audio_stream(container, path, offset=offset, duration=duration)
    if decoded is None:
        raise MumoError(f"audio stream of {path} decodes to no samples")
    return decoded


def decode_audio_stream(
    container, path: str | Path, *, offset: float = 0.0, duration: float | None = None
) -> tuple[np.ndarray, int] | None:
    """(C, T) float32 samples and the rate of an open PyAV container's first audio stream, decoded from the
    start (resampler flushed, the encoder's padding of the last frame dropped); None when it holds no samples.

    Only ``duration`` seconds (None: all) from ``offset`` are kept: the samples before ``offset`` are dropped
    as they are decoded and the decoding stops at the span's end, so memory follows the span, not the stream.

    Raises:
        MumoError: the stream is corrupted or truncated (within the span).
    """
    av = _import("av")
    stream = container.streams.audio[0]
    resampler = av.AudioResampler(format="fltp")  # planar float, same layout and rate
    chunks: list[np.ndarray] = []
    rate = stream.rate
    first, end = 0, None  # the span, in samples, set at the first frame's rate
    decoded = 0  # samples decoded so far

    def keep(arrays) -> None:
        nonlocal decoded
        for a in arrays:  # (C, n) each
            lo, hi = max(first - decoded, 0), a.shape[1] if end is None else min(end - decoded, a.shape[1])
            if hi > lo:
                chunks.append(a[:, lo:hi] if (lo, hi) != (0, a.shape[1]) else a)
            decoded += a.shape[1]

    try:
        for i, frame in enumerate(container.decode(stream)):
            rate = frame.sample_rate
            if i == 0 and rate:
                first = round(offset * rate)
                end = None if duration is None else first + max(1, round(duration * rate))
            keep(out.to_ndarray() for out in resampler.resample(frame))
            if end is not None and decoded >= end:
                break
        keep(out.to_ndarray() for out in resampler.resample(None))
    except av.FFmpegError as exc:
        raise MumoError(f"corrupted or truncated audio in {path} ({exc})") from None
    if not chunks or not rate:
        return None
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)  # (C, T)
    if stream.duration and stream.time_base:  # drop the encoder's padding of the last frame
        samples = samples[:, : max(0, round(float(stream.duration * stream.time_base) * rate) - first)]
    return samples, int(rate)


def save_wav(path: str | Path, wav: torch.Tensor | np.ndarray, sample_rate: int = 16000) -> Path:
    """Write a (T,) mono waveform in [-1, 1] as 16-bit PCM WAV (values outside are clipped).

    Returns:
        The path written. Missing parent folders are created.
    """
    sf = _import("soundfile")
    path = Path(path)
    data = wav.detach().cpu().double().numpy() if isinstance(wav, torch.Tensor) else np.asarray(wav, np.float64)
    if data.ndim != 1:
        raise MumoError(f"save_wav writes a mono (T,) waveform, not shape {tuple(data.shape)}: {path}")
    if not np.isfinite(data).all():
        raise MumoError(f"waveform holds NaN or infinite values, not written: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return path


# ---------------------------------------------------------------------------------------------------------------
# The Wav2Lip mel spectrogram (pure pieces + a module that holds the filterbank)
# ---------------------------------------------------------------------------------------------------------------


def preemphasis(wav: torch.Tensor, k: float = 0.97) -> torch.Tensor:
    """y[n] = x[n] - k x[n-1] along the last axis, with y[0] = x[0] (scipy ``lfilter([1, -k], [1], x)``)."""
    return torch.cat([wav[..., :1], wav[..., 1:] - k * wav[..., :-1]], dim=-1)  # (..., T)


def amp_to_db(x: torch.Tensor, min_level_db: float = -100.0, ref_level_db: float = 20.0) -> torch.Tensor:
    """20 log10(max(10^(min_level_db / 20), x)) - ref_level_db: amplitude to dB relative to ``ref_level_db``."""
    floor = 10.0 ** (min_level_db / 20.0)  # 1e-5
    return 20.0 * torch.log10(x.clamp(min=floor)) - ref_level_db


def normalize_db(s: torch.Tensor, min_level_db: float = -100.0, max_abs_value: float = 4.0) -> torch.Tensor:
    """Symmetric normalisation with clipping: [min_level_db, 0] dB -> [-max_abs_value, max_abs_value]."""
    scaled = 2.0 * max_abs_value * (s - min_level_db) / (-min_level_db) - max_abs_value
    return scaled.clamp(-max_abs_value, max_abs_value)


class MelFrontEnd(nn.Module):
    """Wav2Lip's mel spectrogram in torch: pre-emphasis, |STFT|, Slaney mel bank, dB, clip to [-4, 4].

    Matches ``audio.melspectrogram`` of Rudrabha/Wav2Lip (librosa 0.7): n_fft 800, hop 200, Hann window 800,
    power 1, 80 Slaney mel bands 55-7600 Hz, ``20 log10(max(1e-5, mel)) - 20``, then ``clip(8 (S + 100) / 100
    - 4, -4, 4)``. The STFT is centred with **reflect** padding of n_fft // 2 on each side: that is what
    Wav2Lip's ``librosa.stft(y=y, n_fft=..., hop_length=..., win_length=...)`` did under the pinned librosa
    0.7 (librosa >= 0.9 switched the default ``pad_mode`` to zeros, which changes the first and last frames).

    The filterbank comes from ``librosa.filters.mel`` (plain numpy, no numba compilation) once per object and
    is held as a non-persistent buffer, so ``.to(device)`` moves it and checkpoints do not store it.

    Example:
        >>> front = MelFrontEnd()
        >>> mel = front(wav)  # (T,) -> (80, 1 + T // 200); (B, T) -> (B, 80, 1 + T // 200)
    """

    mel_basis: torch.Tensor
    window: torch.Tensor

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        n_fft: int = 800,
        hop_length: int = 200,
        win_length: int = 800,
        n_mels: int = 80,
        fmin: float = 55.0,
        fmax: float = 7600.0,
        preemphasis: float = 0.97,
        ref_level_db: float = 20.0,
        min_level_db: float = -100.0,
        max_abs_value: float = 4.0,
    ) -> None:
        super().__init__()
        if sample_rate <= 0 or n_fft <= 0 or hop_length <= 0 or n_mels <= 0:
            raise ConfigError("sample_rate, n_fft, hop_length and n_mels must be positive")
        if not 0 < win_length <= n_fft:
            raise ConfigError(f"win_length must be in (0, n_fft={n_fft}], not {win_length}")
        if not 0.0 <= fmin < fmax <= sample_rate / 2:
            raise ConfigError(f"need 0 <= fmin < fmax <= sample_rate / 2 = {sample_rate / 2}, got {fmin}, {fmax}")
        if not 0.0 <= preemphasis < 1.0:
            raise ConfigError(f"preemphasis must be in [0, 1), not {preemphasis}")
        if min_level_db >= 0 or max_abs_value <= 0:
            raise ConfigError("min_level_db must be negative and max_abs_value positive")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.preemphasis = preemphasis
        self.ref_level_db = ref_level_db
        self.min_level_db = min_level_db
        self.max_abs_value = max_abs_value

        import librosa.filters  # numpy only; importing it loads numba but compiles nothing

        bank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)  # (M, F)
        self.register_buffer("mel_basis", torch.from_numpy(bank).float(), persistent=False)  # (M, n_fft//2 + 1)
        self.register_buffer("window", torch.hann_window(win_length, periodic=True), persistent=False)

    def num_steps(self, num_samples: int) -> int:
        """Mel steps for ``num_samples`` samples: 1 + num_samples // hop_length (centred frames)."""
        return 1 + num_samples // self.hop_length

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """(T,) or (B, T) float waveform in [-1, 1] -> (n_mels, T_mel) or (B, n_mels, T_mel) in [-4, 4].

        T_mel = 1 + T // hop_length. T must exceed n_fft // 2 (401 samples, 25 ms at 16 kHz) for reflect padding.
        """
        if wav.ndim not in (1, 2):
            raise MumoError(f"waveform must be (T,) or (B, T), not shape {tuple(wav.shape)}")
        if not wav.is_floating_point():
            raise MumoError(f"waveform must be a float tensor in [-1, 1], not {wav.dtype}")
        if wav.shape[-1] <= self.n_fft // 2:
            raise MumoError(
                f"waveform has {wav.shape[-1]} samples; the mel front-end needs more than {self.n_fft // 2} "
                f"({1000 * (self.n_fft // 2 + 1) / self.sample_rate:.0f} ms at {self.sample_rate} Hz)"
            )
        x = preemphasis(wav, self.preemphasis)  # (..., T)
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window.to(x),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )  # (..., n_fft // 2 + 1, T_mel) complex
        mel = self.mel_basis.to(x) @ spec.abs()  # (M, F) @ (..., F, T_mel) -> (..., M, T_mel)
        db = amp_to_db(mel, self.min_level_db, self.ref_level_db)  # (..., M, T_mel)
        return normalize_db(db, self.min_level_db, self.max_abs_value)  # (..., M, T_mel)


# ---------------------------------------------------------------------------------------------------------------
# Audio-video alignment
# ---------------------------------------------------------------------------------------------------------------


def mel_start(frame: int, fps: float = 25.0) -> int:
    """First mel step of video frame ``frame``: floor(80 * frame / fps), as Wav2Lip's ``crop_audio_window``."""
    if fps <= 0:
        raise MumoError(f"fps must be positive, not {fps}")
    if frame < 0:
        raise MumoError(f"frame index must be >= 0, not {frame}")
    return math.floor(MEL_STEPS_PER_SECOND * frame / fps)


def mel_window(mel: torch.Tensor, frame: int, fps: float = 25.0, steps: int = 16) -> torch.Tensor:
    """The ``steps``-step mel window paired with the 5-frame window that starts at ``frame``.

    Args:
        mel: (n_mels, T_mel) or (..., n_mels, T_mel) normalised mel spectrogram.
        frame: first video frame of the window.
        fps: video frame rate (Wav2Lip models are trained at 25 fps).
        steps: mel steps per window (16 = 0.2 s = 5 frames at 25 fps).

    Returns:
        (..., n_mels, steps), a view of ``mel``.

    Raises:
        MumoError: the window runs past the end of the mel spectrogram.
    """
    start = mel_start(frame, fps)
    n_mel = mel.shape[-1]
    if start + steps > n_mel:
        raise MumoError(
            f"mel window of frame {frame} at {fps:g} fps (steps {start}..{start + steps - 1}) runs past the end of "
            f"the mel spectrogram ({n_mel} steps, {n_mel / MEL_STEPS_PER_SECOND:.2f} s): audio shorter than video?"
        )
    return mel[..., start : start + steps]  # (..., n_mels, steps)


def num_windows(n_frames: int, n_mel: int, fps: float = 25.0, *, frames_per_window: int = 5, steps: int = 16) -> int:
    """How many ``frames_per_window``-frame windows (starting at frames 0, 1, ...) fit in ``n_frames`` frames
    and also have a full ``steps``-step mel window inside ``n_mel`` mel steps."""
    n_starts = max(0, n_frames - frames_per_window + 1)
    # mel_start is non-decreasing in the frame, so the valid starts are a prefix of range(n_starts).
    return bisect.bisect_right(range(n_starts), n_mel - steps, key=lambda f: mel_start(f, fps))
