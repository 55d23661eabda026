from fractions import Fraction

import numpy as np
import pytest
import torch

av = pytest.importorskip("av")

from mumo.data.av.video import (  # noqa: E402
    iter_video_frames,
    read_video,
    resample_fps,
    resample_indices,
    write_video,
)
from mumo.errors import MumoError  # noqa: E402

FPS, RATE, SECONDS = 25, 16000, 2.0


def _moving_square(t: int, h: int = 64, w: int = 80) -> np.ndarray:
    frames = np.full((t, h, w, 3), 30, dtype=np.uint8)  # (T, H, W, 3)
    for i in range(t):
        x = 2 + i * (w - 20) // max(t - 1, 1)
        frames[i, 20:36, x : x + 16] = (230, 60, 40)
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = _moving_square(int(SECONDS * FPS))
    t = np.arange(int(SECONDS * RATE)) / RATE
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    write_video(path, torch.from_numpy(frames), fps=FPS, audio=torch.from_numpy(tone), audio_rate=RATE)
    return path, frames


def test_round_trip_frames_fps_and_audio(clip):
    path, frames = clip
    video = read_video(path)
    assert video.frames.shape == frames.shape and video.frames.dtype == torch.uint8
    assert video.fps == pytest.approx(25.0) and not video.variable_frame_rate
    assert torch.allclose(video.timestamps, torch.arange(50, dtype=torch.float64) / 25)
    err = np.abs(video.frames.numpy().astype(int) - frames.astype(int)).mean()
    assert err < 3.0  # lossy but close
    xs = [np.nonzero(f[28, :, 0] > 150)[0].mean() for f in video.frames.numpy()[[0, 25, 49]]]
    assert xs[0] < xs[1] < xs[2]  # the square moves right

    assert video.audio_rate == RATE and video.audio.dtype == torch.float32
    assert abs(video.audio.numel() - SECONDS * RATE) <= 1024
    spectrum = np.abs(np.fft.rfft(video.audio.numpy()))
    peak_hz = np.argmax(spectrum) * RATE / video.audio.numel()
    assert peak_hz == pytest.approx(440.0, abs=3.0)


def test_written_codecs_are_h264_yuv420p_and_aac(clip):
    with av.open(str(clip[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert container.streams.audio[0].codec_context.name == "aac"
        assert container.streams.audio[0].codec_context.sample_rate == RATE


def test_odd_size_is_padded_and_no_audio_is_none(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _moving_square(5, h=33, w=41))
    video = read_video(path)
    assert video.frames.shape == (5, 34, 42, 3)
    assert video.audio is None and video.audio_rate is None


def test_resample_30_to_25_fps():
    frames = torch.arange(60).view(60, 1, 1, 1).expand(60, 2, 2, 3)  # frame i holds the value i
    out = resample_fps(frames, src_fps=30.0, dst_fps=25.0)
    assert out.shape == (50, 2, 2, 3)
    idx = out[:, 0, 0, 0]
    assert idx[0] == 0 and idx[-1] in (58, 59) and (torch.diff(idx) >= 1).all()
    assert torch.equal(idx, torch.round(torch.arange(50) * 30 / 25 + 1e-9).long().clamp(max=59))
    assert resample_fps(frames[:31], src_fps=30.0).shape[0] == 26  # 1.033 s -> grid times 0 .. 1.0 s


def test_resample_uses_timestamps_for_vfr():
    ts = torch.tensor([0.0, 0.04, 0.08, 0.2, 0.24])  # a 120 ms hole after frame 2
    idx = resample_indices(ts, dst_fps=25.0)
    assert idx.tolist() == [0, 1, 2, 2, 3, 3, 4]  # the hole repeats the nearest frames
    with pytest.raises(MumoError, match="non-decreasing"):
        resample_indices(torch.tensor([0.0, 0.1, 0.05]))
    with pytest.raises(MumoError, match="do not match"):
        resample_fps(torch.zeros(4, 2), 25.0, timestamps=ts)


def test_variable_frame_rate_file_is_detected(tmp_path):
    path = tmp_path / "vfr.mp4"
    pts_ms = [0, 40, 80, 100, 140, 240, 260, 300, 400, 440]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    video = read_video(path)
    assert video.variable_frame_rate and video.num_frames == 10
    assert video.timestamps.tolist() == pytest.approx([p / 1000 for p in pts_ms])
    assert resample_fps(video.frames, video.fps, video.timestamps).shape[0] == 12  # 0 .. 0.48 s at 25 fps


@pytest.mark.parametrize("kind", ["missing", "zero_byte", "text", "png", "truncated", "audio_only"])
def test_bad_files_raise_naming_the_file(tmp_path, clip, kind):
    path = tmp_path / f"bad_{kind}.mp4"
    if kind == "zero_byte":
        path.touch()
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "png":
        from PIL import Image

        Image.new("RGB", (32, 32), (10, 200, 30)).save(path, format="PNG")
    elif kind == "truncated":
        data = clip[0].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "audio_only":
        path = tmp_path / "bad_audio_only.m4a"
        with av.open(str(path), "w", format="mp4") as container:
            stream = container.add_stream("aac", rate=RATE)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
            frame.sample_rate = RATE
            container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    with pytest.raises(MumoError, match=path.name):
        read_video(path)


def test_write_rejects_bad_arrays(tmp_path):
    with pytest.raises(MumoError, match="uint8"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(MumoError, match=r"\(T, H, W, 3\)"):
        write_video(tmp_path / "a.mp4", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(MumoError, match="mono"):
        write_video(tmp_path / "a.mp4", np.zeros((2, 8, 8, 3), np.uint8), audio=np.zeros((2, 100), np.float32))
    with pytest.raises(MumoError, match="does not exist"):
        write_video(tmp_path / "nope" / "a.mp4", np.zeros((2, 8, 8, 3), np.uint8))


# -- the streaming decoder -----------------------------------------------------------------------------------------


def _write_vfr(path, pts_ms, size=(48, 64)):
    """An H.264 MP4 whose frame i (grey level 20 i) is shown at ``pts_ms[i]`` milliseconds."""
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[1], size[0], "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate(pts_ms):
            frame = av.VideoFrame.from_ndarray(np.full((*size, 3), 20 * i % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def count_decoded(monkeypatch) -> list[int]:
    """Count the frames FFmpeg hands to ``mumo.data.av.video`` from now on: a one-element list, updated."""
    import mumo.data.av.video as video_module

    counter = [0]

    class Container:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.inner.__exit__(*exc)

        def decode(self, *args, **kwargs):
            for frame in self.inner.decode(*args, **kwargs):
                counter[0] += 1
                yield frame

    class Av:
        def __getattr__(self, name):
            return getattr(av, name)

        def open(self, *args, **kwargs):
            return Container(av.open(*args, **kwargs))

    monkeypatch.setattr(video_module, "_import_av", lambda: Av())
    return counter


@pytest.mark.parametrize("kind", ["cfr25", "cfr30", "vfr", "vfr_fast_end"])
def test_streaming_decoder_gives_the_frames_of_read_video_and_resample_fps(tmp_path, clip, kind):
    if kind == "cfr25":
        path = clip[0]
    elif kind == "cfr30":
        path = write_video(tmp_path / "c30.mp4", _moving_square(37), fps=30)
    elif kind == "vfr":
        path = _write_vfr(tmp_path / "vfr.mp4", [0, 40, 80, 100, 140, 240, 260, 300, 400, 440])
    else:  # ties between two frames, a 60-fps burst, and a last interval unlike the median
        path = _write_vfr(tmp_path / "vfr2.mp4", [0, 20, 40, 60, 80, 160, 177, 194, 211, 300, 301])
    video = read_video(path)
    expected = resample_fps(video.frames, video.fps, video.timestamps, dst_fps=25.0)  # (T', H, W, 3)
    got = list(iter_video_frames(path, dst_fps=25.0))
    assert len(got) == expected.shape[0]
    assert torch.equal(torch.from_numpy(np.stack(got)), expected)


def test_streaming_decoder_decodes_only_what_is_taken(clip, monkeypatch):
    decoded = count_decoded(monkeypatch)
    stream = iter_video_frames(clip[0])
    first = [next(stream) for _ in range(5)]
    assert decoded[0] <= 5 + 2  # one frame of look-ahead (the clip holds 50)
    stream.close()
    assert torch.equal(torch.from_numpy(np.stack(first)), read_video(clip[0]).frames[:5])


@pytest.mark.parametrize("kind", ["missing", "text", "png"])
def test_streaming_decoder_rejects_bad_files_naming_them(tmp_path, kind):
    path = tmp_path / f"bad_{kind}.mp4"
    if kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "png":
        from PIL import Image

        Image.new("RGB", (32, 32), (10, 200, 30)).save(path, format="PNG")
    with pytest.raises(MumoError, match=path.name):
        next(iter_video_frames(path))
    with pytest.raises(MumoError, match="positive"):
        next(iter_video_frames(path, dst_fps=0))
