"""``mumo sync`` with audio that does not fit its video: a long track is read only as far as the video goes
(memory follows the video, not the audio), a length far from the video's is said on stderr with both lengths,
and a sample rate no speech has (a "1 Hz" WAV) is one line and exit status 2."""

from __future__ import annotations

import json
import re
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mumo.data.av.audio import MIN_SAMPLE_RATE, audio_duration, load_audio
from mumo.data.av.clips import AUDIO_MARGIN_SECONDS, LengthMismatchWarning, length_mismatch, read_video_clip
from mumo.data.av.video import write_video
from mumo.errors import MumoError
from tests.cli.test_sync_cli import TINY
from tests.reliability._cli import assert_one_line_error, mumo
from tests.tasks.sync.test_sync import SR, _speech_like, make_layout

LONG_MINUTES = 30  # 28.8 M samples: 57.6 MB as 16-bit PCM, 115 MB as the float32 a whole read would make
LONG_FLOAT_BYTES = LONG_MINUTES * 60 * SR * 4
LESS = ["data.pairs_per_epoch=64", "data.eval_pairs=16"]  # after TINY's: these win
PEAK_BOUND = 4_000_000  # bytes: what reading a few seconds may allocate (about 30x less than the whole file)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory) -> Path:
    """30 minutes of 16 kHz low-level noise, written a minute at a time."""
    path = tmp_path_factory.mktemp("long") / "long.wav"
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(LONG_MINUTES):
            f.write((0.05 * rng.standard_normal(60 * SR)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    from skimage import data as skdata

    return skdata.astronaut()[::2, ::2]  # (256, 256, 3): a real face


def _video(folder: Path, face: np.ndarray, seconds: float, name: str = "talk.mp4", **audio) -> Path:
    n = round(25 * seconds)
    return write_video(folder / name, np.stack([face] * n), fps=25, **audio)


def _peak_bytes(fn) -> tuple[object, int]:
    """fn()'s result and the peak of what Python and numpy allocated while it ran (tracemalloc)."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("offset", "duration"), [(0.0, 1.5), (600.0, 2.0), (1798.0, 5.0)])
def test_a_span_of_a_long_file_is_read_alone(long_wav, offset, duration):
    wav, peak = _peak_bytes(lambda: load_audio(long_wav, offset=offset, duration=duration))
    expected = round(min(duration, LONG_MINUTES * 60 - offset) * SR)  # the last span runs past the end
    assert wav.shape == (expected,)
    assert peak < PEAK_BOUND < LONG_FLOAT_BYTES / 25, peak
    whole = sf.read(long_wav, frames=expected, start=round(offset * SR), dtype="float32")[0]
    assert np.array_equal(wav.numpy(), whole)  # the very samples, at the file's own rate


def test_the_span_of_an_aac_track_stops_decoding_at_its_end(tmp_path, long_wav):
    """PyAV's formats cannot seek exactly: the decode runs from the start and stops once the span is read."""
    wav = sf.read(long_wav, frames=180 * SR, dtype="float32")[0]  # 3 minutes (11.5 MB as float32) tell
    path = _video(tmp_path, np.zeros((64, 64, 3), np.uint8), 0.2, "track.mp4", audio=wav, audio_rate=SR)
    full = load_audio(path)
    part, peak = _peak_bytes(lambda: load_audio(path, duration=1.0))
    assert part.shape == (SR,) and np.array_equal(part.numpy(), full[:SR].numpy())
    assert peak < PEAK_BOUND < full.numel() * 4, peak
    later = load_audio(path, offset=2.0, duration=0.5)
    assert np.array_equal(later.numpy(), full[2 * SR : 2 * SR + SR // 2].numpy())


def test_a_one_second_video_reads_a_second_and_a_half_of_a_30_minute_file(tmp_path, face, long_wav):
    """The clip of a 1-second video costs the same with 30 minutes of audio as with the 1.5 seconds it reads."""
    video = _video(tmp_path, face, 1.0)
    short = tmp_path / "short.wav"
    sf.write(short, sf.read(long_wav, frames=round((1.0 + AUDIO_MARGIN_SECONDS) * SR), dtype="int16")[0], SR)
    ref = read_video_clip(video, audio=short)  # the imports, outside the measures
    ref, ref_peak = _peak_bytes(lambda: read_video_clip(video, audio=short))
    with pytest.warns(LengthMismatchWarning, match=r"lasts 1800\.00 s but the video .* only 1\.00 s"):
        clip, peak = _peak_bytes(lambda: read_video_clip(video, audio=long_wav))
    assert clip.mel.shape == ref.mel.shape == (80, 1 + round((1.0 + AUDIO_MARGIN_SECONDS) * SR) // 200)
    assert clip.mel.equal(ref.mel) and clip.num_windows == 25 - 4  # the frames set the windows
    assert peak < ref_peak + PEAK_BOUND < LONG_FLOAT_BYTES / 10, (peak, ref_peak)


@pytest.mark.parametrize(
    ("video_seconds", "audio_seconds", "warned"),
    [(1.0, 2.1, True), (1.0, 1.9, False), (20.0, 22.1, True), (20.0, 21.9, False), (30.0, 26.9, True),
     (30.0, 27.1, False), (0.2, 7200.0, True)],
)  # fmt: skip
def test_a_warning_takes_more_than_a_second_and_more_than_a_tenth(video_seconds, audio_seconds, warned):
    message = length_mismatch("a.wav", audio_seconds, "v.mp4", video_seconds, windows=1)
    assert (message is not None) == warned
    if warned:
        assert f"{audio_seconds:.2f} s" in message and f"{video_seconds:.2f} s" in message


@pytest.mark.parametrize(
    ("video_seconds", "audio_seconds", "says"),
    [
        (1.0, 4.0, r"lasts 4\.00 s but the video .* only 1\.00 s: only the audio's first 1\.00 s"),
        (4.0, 1.0, r"lasts only 1\.00 s but the video .* 4\.00 s: only the video's first 1\.00 s .*\(21 windows\)"),
        (2.0, 2.8, None),  # 0.8 s apart: within a second
    ],
)
def test_a_length_far_from_the_videos_is_a_warning_with_both(tmp_path, face, video_seconds, audio_seconds, says):
    video = _video(tmp_path, face, video_seconds)
    audio = tmp_path / "voice.wav"
    sf.write(audio, _speech_like(round(25 * audio_seconds), np.random.default_rng(0))[0], SR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LengthMismatchWarning)
        clip = read_video_clip(video, audio=audio)
    said = [str(w.message) for w in caught if issubclass(w.category, LengthMismatchWarning)]
    assert clip.num_windows == round(25 * min(video_seconds, audio_seconds)) - 4  # shorter audio: fewer windows
    if says is None:
        assert not said
        return
    assert len(said) == 1 and str(audio) in said[0] and str(video) in said[0]
    assert re.search(says, said[0]), said[0]


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory) -> Path:
    """The tiny lip-sync expert of ``tests/cli/test_sync_cli.py``, on even less (two batches, a few seconds):
    what it scores does not matter here, only that ``mumo sync`` runs."""
    root = make_layout(tmp_path_factory.mktemp("faces"), clips=1, frames=20)
    out = tmp_path_factory.mktemp("runs") / "sync"
    result = mumo("train", "sync", "--data", root, "--out", out, "--json", *TINY, *LESS)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def test_the_cli_warns_in_one_line_and_still_scores(sync_run, tmp_path, face, long_wav):
    video = _video(tmp_path, face, 1.0)
    result = mumo("sync", sync_run, "--video", video, "--audio", long_wav, "--json", "--mc-samples", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["windows"] == 25 - 4
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: the audio "), result.stderr
    assert "1800.00 s" in lines[0] and "1.00 s" in lines[0] and str(long_wav) in lines[0]


@pytest.mark.parametrize("rate", [1, 100, MIN_SAMPLE_RATE - 1])
def test_an_absurd_sample_rate_is_one_line_naming_the_file_and_the_rate(sync_run, tmp_path, face, rate):
    audio = tmp_path / f"at-{rate}-hz.wav"
    sf.write(audio, 0.1 * np.random.default_rng(0).standard_normal(max(rate, 100)), rate)
    line = assert_one_line_error(
        mumo("sync", sync_run, "--video", _video(tmp_path, face, 1.0), "--audio", audio), str(audio), f"{rate} Hz"
    )
    assert str(MIN_SAMPLE_RATE) in line
    with pytest.raises(MumoError, match=f"{rate} Hz"):
        load_audio(audio)
    with pytest.raises(MumoError, match=f"{rate} Hz"):
        audio_duration(audio)


def test_the_lowest_accepted_rate_still_loads(tmp_path):
    audio = tmp_path / "low.wav"
    sf.write(audio, 0.1 * np.random.default_rng(0).standard_normal(MIN_SAMPLE_RATE), MIN_SAMPLE_RATE)
    assert load_audio(audio).shape == (SR,) and audio_duration(audio) == 1.0
