"""Audio loading and the Wav2Lip mel front-end: parity with librosa's pipeline, alignment, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("librosa")
sf = pytest.importorskip("soundfile")
av = pytest.importorskip("av")

from mumo.data.av.audio import (  # noqa: E402
    MEL_STEPS_PER_SECOND,
    MelFrontEnd,
    condition_audio,
    load_audio,
    mel_start,
    mel_window,
    num_windows,
    save_wav,
)
from mumo.errors import MumoError  # noqa: E402

SR = 16000


@pytest.fixture(scope="module")
def front() -> MelFrontEnd:
    return MelFrontEnd()


def _speechlike(seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding 120-220 Hz pitch with a 4 Hz syllable envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 100 * t / max(seconds, 1e-9)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return (0.3 * envelope * voice / 3 + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _wav2lip_reference(wav: np.ndarray) -> np.ndarray:
    """Rudrabha/Wav2Lip ``audio.melspectrogram`` in numpy: librosa 0.7's centred stft (reflect), librosa's bank.

    The STFT is written out with numpy (reflect pad n_fft // 2, periodic Hann, rfft) because ``librosa.stft``
    JIT-compiles with numba on its first call in a fresh environment (~15 s); see the slow test below.
    """
    import librosa.filters
    from scipy import signal

    n_fft, hop = 800, 200
    y = signal.lfilter([1, -0.97], [1], wav)  # float64, as Wav2Lip's preemphasis
    y = np.pad(y, n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]  # (T_mel, n_fft)
    window = signal.get_window("hann", n_fft, fftbins=True)
    mag = np.abs(np.fft.rfft(frames * window, axis=-1)).T  # (401, T_mel)
    bank = librosa.filters.mel(sr=SR, n_fft=n_fft, n_mels=80, fmin=55, fmax=7600)
    s = 20 * np.log10(np.maximum(1e-5, bank @ mag)) - 20
    return np.clip(8 * (s + 100) / 100 - 4, -4, 4)


def _dominant_hz(wav: torch.Tensor, sr: int = SR) -> float:
    spectrum = np.abs(np.fft.rfft(wav.numpy()))
    return float(np.argmax(spectrum) * sr / wav.numel())


# ---------------------------------------------------------------------------------------------------------------
# Mel front-end
# ---------------------------------------------------------------------------------------------------------------


def test_mel_shape_is_80_per_second(front):
    mel = front(torch.from_numpy(_speechlike(1.5)))
    assert mel.shape == (80, 1 + 24000 // 200) and mel.dtype == torch.float32
    assert mel.min() >= -4 and mel.max() <= 4
    assert front.num_steps(24000) == mel.shape[-1]


@pytest.mark.parametrize("seconds", [0.7, 1.0])
def test_mel_matches_wav2lip_numpy_pipeline(front, seconds):
    wav = _speechlike(seconds, seed=int(seconds * 10))
    ours = front(torch.from_numpy(wav)).numpy()
    ref = _wav2lip_reference(wav)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-3  # zero (not reflect) padding would be off by ~0.5 in the edge frames
    assert ref.std() > 0.5  # a real spectrogram, not the floor


@pytest.mark.slow  # librosa.stft compiles with numba on its first call in a fresh environment (~15 s)
def test_mel_matches_librosa_stft(front):
    import librosa
    from scipy import signal

    wav = _speechlike(1.0, seed=3)
    ref = _wav2lip_reference(wav)
    y = signal.lfilter([1, -0.97], [1], wav)
    mag = np.abs(librosa.stft(y=y, n_fft=800, hop_length=200, win_length=800, pad_mode="reflect"))
    bank = librosa.filters.mel(sr=SR, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    lib = np.clip(8 * (20 * np.log10(np.maximum(1e-5, bank @ mag)) - 20 + 100) / 100 - 4, -4, 4)
    assert np.abs(lib - ref).max() <= 1e-4  # our numpy reference is librosa.stft
    assert np.abs(front(torch.from_numpy(wav)).numpy() - lib).max() <= 1e-3


def test_batch_equals_single(front):
    wavs = torch.from_numpy(np.stack([_speechlike(0.5, seed=s) for s in range(3)]))  # (3, T)
    batch = front(wavs)
    assert batch.shape == (3, 80, 41)
    for i in range(3):
        torch.testing.assert_close(batch[i], front(wavs[i]), atol=1e-5, rtol=0)


def test_silence_is_the_floor_and_input_is_untouched(front):
    wav = torch.zeros(SR)
    assert (front(wav) == -4).all()
    loud = torch.from_numpy(_speechlike(0.5))
    before = loud.clone()
    front(loud)
    assert torch.equal(loud, before)


def test_bad_waveforms_and_hyperparameters(front):
    with pytest.raises(MumoError, match="more than 400"):
        front(torch.zeros(400))
    with pytest.raises(MumoError, match="float"):
        front(torch.zeros(1000, dtype=torch.int16))
    with pytest.raises(MumoError, match=r"\(T,\) or \(B, T\)"):
        front(torch.zeros(1, 2, 1000))
    with pytest.raises(MumoError, match="fmax"):
        MelFrontEnd(fmax=9000)


# ---------------------------------------------------------------------------------------------------------------
# Alignment: 5 video frames at 25 fps <-> 16 mel steps
# ---------------------------------------------------------------------------------------------------------------


def test_mel_start_is_floor_80f_over_fps():
    assert MEL_STEPS_PER_SECOND == 80
    assert [mel_start(f) for f in (0, 1, 2, 3, 4, 5, 10, 25)] == [0, 3, 6, 9, 12, 16, 32, 80]
    assert mel_start(7, fps=30) == 18  # floor(560 / 30)
    with pytest.raises(MumoError):
        mel_start(-1)


def test_one_second_has_25_frames_and_80_mel_steps(front):
    mel = front(torch.from_numpy(_speechlike(1.0)))  # (80, 81): 80 steps per second + the centred last frame
    assert mel.shape[-1] == 1 + MEL_STEPS_PER_SECOND
    assert mel_start(25) == MEL_STEPS_PER_SECOND  # frame 25 starts the next second
    n = num_windows(25, mel.shape[-1])
    assert n == 21  # frames 0..20; floor(80 * 20 / 25) + 16 = 80 <= 81
    for f in range(n):
        assert mel_window(mel, f).shape == (80, 16)
    with pytest.raises(MumoError, match="runs past the end"):
        mel_window(mel, 21)


@pytest.mark.parametrize("fps", [25, 30, 29.97])
def test_num_windows_matches_brute_force(fps):
    for n_frames in (0, 4, 5, 6, 40, 77):
        for n_mel in (0, 15, 16, 17, 90, 200, 300):
            brute = sum(mel_start(f, fps) + 16 <= n_mel for f in range(max(0, n_frames - 4)))
            assert num_windows(n_frames, n_mel, fps) == brute


def test_click_at_frame_10_lands_at_the_start_of_its_window(front):
    wav = 1e-3 * torch.from_numpy(np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32))
    wav[round(10 / 25 * SR)] = 0.9  # the instant of video frame 10 (0.4 s)
    mel = front(wav)  # (80, 161)
    energy = mel.mean(dim=0)  # (T_mel,)
    assert int(energy.argmax()) == mel_start(10) == 32
    window = mel_window(mel, 10).mean(dim=0)  # (16,)
    assert int(window.argmax()) in range(4)
    assert window[:4].max() > window[4:].max() + 1.0
    batched = mel_window(mel[None], 10)  # leading axes are kept
    assert batched.shape == (1, 80, 16)


# ---------------------------------------------------------------------------------------------------------------
# Loading and saving
# ---------------------------------------------------------------------------------------------------------------


def _sine(hz: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def test_loads_44k_stereo_24bit_as_16k_mono(tmp_path):
    s = _sine(440, 1.0, 44100, amp=1.0)
    path = tmp_path / "stereo24.wav"
    sf.write(path, np.stack([0.8 * s, 0.4 * s], axis=1), 44100, subtype="PCM_24")
    wav = load_audio(path)
    assert wav.shape == (SR,) and wav.dtype == torch.float32
    assert abs(float(wav.abs().max()) - 0.6) < 0.01  # channels averaged
    assert abs(_dominant_hz(wav) - 440) <= 1


def test_loads_8bit_wav(tmp_path):
    path = tmp_path / "u8.wav"
    sf.write(path, _sine(300, 0.5, 8000), 8000, subtype="PCM_U8")
    wav = load_audio(path)
    assert wav.shape == (8000,)
    assert abs(float(wav.abs().max()) - 0.5) < 0.02 and abs(_dominant_hz(wav) - 300) <= 2


def test_float_flac_and_overrange_float(tmp_path):
    flac = tmp_path / "x.flac"
    sf.write(flac, _sine(500, 0.25, 16000), 16000)
    assert load_audio(flac).shape == (4000,)
    hot = tmp_path / "hot.wav"
    sf.write(hot, _sine(500, 0.25, 16000, amp=2.0), 16000, subtype="FLOAT")
    wav = load_audio(hot)
    assert float(wav.abs().max()) == pytest.approx(1.0)  # scaled by its peak, not clipped
    assert abs(float(wav[4]) - float(np.sin(2 * np.pi * 500 * 4 / 16000))) < 1e-5


def _write_mp4(path, *, audio: bool, video: bool, seconds: float = 1.0, rate: int = 48000) -> None:
    with av.open(str(path), "w") as container:
        if video:
            vs = container.add_stream("mpeg4", rate=25)
            vs.width, vs.height, vs.pix_fmt = 32, 32, "yuv420p"
        if audio:
            astream = container.add_stream("aac", rate=rate, layout="stereo")
        if video:
            for i in range(int(25 * seconds)):
                img = np.full((32, 32, 3), 8 * i % 256, np.uint8)
                container.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
            container.mux(vs.encode(None))
        if audio:
            s = _sine(1000, seconds, rate)
            for start in range(0, s.size, 1024):
                chunk = np.ascontiguousarray(np.stack([s[start : start + 1024]] * 2))  # (2, n) planar
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = rate, start
                container.mux(astream.encode(frame))
            container.mux(astream.encode(None))


def test_loads_aac_track_of_an_mp4(tmp_path):
    path = tmp_path / "clip.mp4"
    _write_mp4(path, audio=True, video=True)
    wav = load_audio(path)
    assert abs(wav.numel() - SR) <= 0.02 * SR
    assert abs(_dominant_hz(wav) - 1000) <= 2
    assert 0.4 < float(wav.abs().max()) <= 1.0


def test_audio_decoded_with_the_video_equals_load_audio(tmp_path):
    from mumo.data.av.video import read_video

    path = tmp_path / "clip.mp4"
    _write_mp4(path, audio=True, video=True)
    video = read_video(path)
    wav = condition_audio(video.audio.numpy(), video.audio_rate, path)  # what the lip-sync reader does
    ref = load_audio(path)
    assert wav.shape == ref.shape
    torch.testing.assert_close(wav, ref, atol=1e-5, rtol=0)
    with pytest.raises(MumoError, match=r"silent.*clip\.mp4"):
        condition_audio(np.zeros((2, 1600), np.float32), 16000, path)


def test_save_wav_round_trip(tmp_path):
    wav = torch.from_numpy(_sine(440, 0.25, SR, amp=1.2))  # over full scale: clipped on write
    path = save_wav(tmp_path / "sub" / "out.wav", wav)
    info = sf.info(path)
    assert info.subtype == "PCM_16" and info.samplerate == SR and info.channels == 1
    back = load_audio(path)
    torch.testing.assert_close(back, wav.clamp(-1, 1), atol=1 / 32767, rtol=0)
    with pytest.raises(MumoError, match="mono"):
        save_wav(tmp_path / "bad.wav", torch.zeros(2, 10))


def _bad_file(tmp_path, kind: str):
    path = tmp_path / f"{kind}.wav"
    if kind == "missing":
        return path, "not found"
    if kind == "zero_byte":
        path.touch()
        return path, "empty"
    if kind == "text":
        path.write_text("this is not audio, just a text file renamed to .wav\n" * 20)
        return path, "not an audio file"
    if kind == "truncated_header":
        sf.write(path, _sine(440, 0.1, SR), SR)
        path.write_bytes(path.read_bytes()[:30])
        return path, "audio"
    if kind == "no_samples":
        sf.write(path, np.zeros(0, np.float32), SR)
        return path, "no samples"
    if kind == "silent":
        sf.write(path, np.zeros(SR, np.float32), SR)
        return path, "silent"
    if kind == "near_silent":
        sf.write(path, np.full(SR, 2e-5, np.float32), SR, subtype="FLOAT")
        return path, "silent"
    if kind == "no_audio_stream":
        path = tmp_path / "video_only.mp4"
        _write_mp4(path, audio=False, video=True, seconds=0.2)
        return path, "no audio stream"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing", "zero_byte", "text", "truncated_header", "no_samples", "silent", "near_silent", "no_audio_stream"],
)
def test_bad_inputs_raise_mumo_error_naming_the_file(tmp_path, kind):
    path, fragment = _bad_file(tmp_path, kind)
    with pytest.raises(MumoError, match=fragment) as info:
        load_audio(path)
    assert str(path) in str(info.value)


def test_allow_silent(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(SR // 2, np.float32), SR)
    wav = load_audio(path, allow_silent=True)
    assert wav.shape == (SR // 2,) and not wav.any()
