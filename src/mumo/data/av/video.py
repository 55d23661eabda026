"""Video in and out with PyAV: RGB frames + mono audio, frame-rate resampling, H.264/AAC MP4 writing.

Frames are uint8 tensors of shape (T, H, W, 3) in RGB order; audio is a float32 (samples,) mono tensor in [-1, 1].
Every bad input (missing, empty, truncated, not a video, no frames) raises ``MumoError`` naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from mumo.errors import MumoError, check_input_file

VFR_TOLERANCE = 0.1  # a frame interval further than 10 % (+ 1 time-base tick) from the median one marks VFR
_IMAGE_FORMATS = ("image2", "tty")  # FFmpeg demuxers that open still images / text as one-frame "videos"


@dataclass
class Video:
    """A decoded video.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB.
        fps: frames per second: the container's average rate, else the mean rate of the timestamps.
        timestamps: (T,) float64 presentation times in seconds, as the container gives them (usually from 0).
        audio: (samples,) float32 mono (channels averaged) at ``audio_rate``, or None without an audio track.
        audio_rate: audio sample rate in Hz, or None without an audio track.
        variable_frame_rate: True when the frame intervals are not evenly spaced (see ``VFR_TOLERANCE``).
    """

    frames: torch.Tensor
    fps: float
    timestamps: torch.Tensor
    audio: torch.Tensor | None = None
    audio_rate: int | None = None
    variable_frame_rate: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def _import_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MumoError("reading and writing video needs PyAV: pip install 'av>=12'") from exc
    return av


def _check_readable(path: Path) -> None:
    check_input_file(path, "video")


def is_variable_frame_rate(timestamps: torch.Tensor, tick: float = 0.0, tolerance: float = VFR_TOLERANCE) -> bool:
    """True when the intervals of (T,) timestamps (seconds) depart from their median by more than the tolerance.

    ``tick`` is the container's time-base step in seconds: rounding to it is not variability.
    """
    if timestamps.numel() < 3:
        return False
    steps = torch.diff(timestamps.double())  # (T - 1,)
    median = float(steps.median())
    if median <= 0:
        return True
    return bool((steps - median).abs().max() > tolerance * median + 1.5 * tick)


def _open_video(path: Path):
    """The opened container of a video file with at least one video stream; the caller closes it.

    Raises:
        MumoError: the file is missing, empty or unreadable, a still image or text, or has no video stream.
    """
    av = _import_av()
    _check_readable(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise MumoError(f"not a readable video file: {path} ({exc})") from None
    name = container.format.name
    problem = None
    if name in _IMAGE_FORMATS or name.endswith("_pipe"):
        problem = f"not a video file: {path} is a still image or text ({name})"
    elif not container.streams.video:
        problem = f"no video stream in {path}"
    if problem is not None:
        container.close()
        raise MumoError(problem)
    return container


def read_video(path: str | Path, *, audio_past_end: float | None = None) -> Video:
    """Decode every frame (and the first audio track, if any) of a video file.

    ``audio_past_end``: decode the audio track only up to this many seconds past the end of the last frame
    (the audio counted from its own start, as the lip-sync reader aligns it), so a short video with a long
    track costs what its frames do; None decodes the whole track.

    Raises:
        MumoError: the file is missing, empty, corrupted or truncated, not a video, or holds no frames.
    """
    path = Path(path)
    container = _open_video(path)
    with container:
        vstream = container.streams.video[0]
        frames, times = _decode_video(container, vstream, path)
        tick = float(vstream.time_base) if vstream.time_base else 0.0  # read while the container is open
        fps = float(vstream.average_rate) if vstream.average_rate else 0.0
    audio_seconds = None
    if audio_past_end is not None:  # the frames' span from time 0, the last frame's interval included
        last = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        audio_seconds = times[-1] - min(times[0], 0.0) + max(last, 0.0) + max(audio_past_end, 0.0)
    audio, audio_rate = _decode_audio(path, audio_seconds)

    timestamps = torch.tensor(times, dtype=torch.float64)  # (T,)
    vfr = is_variable_frame_rate(timestamps, tick=tick)
    if fps <= 0 and len(times) > 1:
        fps = (len(times) - 1) / (times[-1] - times[0])
    if fps <= 0:
        raise MumoError(f"cannot tell the frame rate of {path}")
    return Video(
        frames=torch.from_numpy(np.stack(frames)),  # (T, H, W, 3)
        fps=fps,
        timestamps=timestamps,
        audio=audio,
        audio_rate=audio_rate,
        variable_frame_rate=vfr,
    )


def _decode_video(container, stream, path: Path) -> tuple[list[np.ndarray], list[float]]:
    av = _import_av()
    frames: list[np.ndarray] = []
    times: list[float] = []
    rate = float(stream.average_rate or stream.guessed_rate or 0)  # fallback for frames without a timestamp
    try:
        for frame in container.decode(stream):
            if frame.time is None and rate <= 0:
                raise MumoError(f"video frames carry no timestamps and no frame rate: {path}")
            frames.append(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
            times.append(float(frame.time) if frame.time is not None else len(times) / rate)
    except av.FFmpegError as exc:
        raise MumoError(f"corrupted or truncated video: {path} ({exc})") from None
    if not frames:
        raise MumoError(f"video has no decodable frames: {path}")
    if stream.frames and len(frames) < stream.frames:
        raise MumoError(f"truncated video: {path} declares {stream.frames} frames but only {len(frames)} decode")
    return frames, times


def _decode_audio(path: Path, seconds: float | None = None) -> tuple[torch.Tensor | None, int | None]:
    """The first audio track (its first ``seconds`` only, when given), mono, from a fresh container: seeking the
    video's container back to 0 made the AAC decoder drop its first frame (~20 ms of silence at the start,
    unlike ``load_audio``)."""
    from mumo.data.av.audio import decode_audio_stream

    av = _import_av()
    with av.open(str(path)) as container:
        decoded = decode_audio_stream(container, path, duration=seconds) if container.streams.audio else None
    if decoded is None:
        return None, None
    samples, rate = decoded  # (C, T)
    return torch.from_numpy(samples.mean(axis=0)), rate  # (T,) mono


def resample_indices(timestamps: torch.Tensor, dst_fps: float = 25.0) -> torch.Tensor:
    """Indices of the source frames nearest to a ``dst_fps`` grid spanning the (T,) timestamps (seconds).

    The clip lasts from the first timestamp to the last plus one median frame interval; output time k is
    ``t0 + k / dst_fps`` for every k that falls inside it. Ties go to the earlier frame.
    """
    if dst_fps <= 0:
        raise MumoError(f"dst_fps must be positive, not {dst_fps}")
    ts = timestamps.double()
    if ts.ndim != 1 or ts.numel() == 0:
        raise MumoError(f"timestamps must be a non-empty (T,) tensor, not {tuple(ts.shape)}")
    if (torch.diff(ts) < 0).any():
        raise MumoError("timestamps must be non-decreasing")
    n_out = _grid_length(ts, dst_fps)
    grid = ts[0] + torch.arange(n_out, dtype=torch.float64) / dst_fps  # (n_out,)
    right = torch.searchsorted(ts, grid).clamp(max=ts.numel() - 1)  # first frame at or after each grid time
    left = (right - 1).clamp(min=0)
    take_left = (grid - ts[left]) <= (ts[right] - grid)
    return torch.where(take_left, left, right)  # (n_out,)


def _grid_length(ts: torch.Tensor, dst_fps: float) -> int:
    """How many ``dst_fps`` instants fall inside the clip of (T,) float64 timestamps: from the first to the last
    plus one median frame interval."""
    last = float(torch.diff(ts).median()) if ts.numel() > 1 else 1.0 / dst_fps
    duration = float(ts[-1] - ts[0]) + last
    return max(1, math.ceil(duration * dst_fps - 1e-6))


def iter_video_frames(path: str | Path, dst_fps: float = 25.0) -> Iterator[np.ndarray]:
    """A video's frames resampled to ``dst_fps`` from their timestamps while it is decoded, one (H, W, 3) uint8
    RGB array at a time: the frames of ``resample_fps(v.frames, v.fps, v.timestamps, dst_fps)`` for
    ``v = read_video(path)``, without holding the video.

    Lazy: each output frame is decoded when it is asked for (with one source frame of look-ahead, to know where
    the video ends), so stopping early (``break``, or ``close()`` on the generator) stops decoding there; at most
    three decoded frames are held at once. A source frame repeated by the resampling is yielded as the same
    array: copy it before changing it. The audio track is not read.

    Raises:
        MumoError: as ``read_video`` does (missing, empty, not a video, corrupted, no frames), or timestamps that
            go backwards; a truncated video only when it is read to its end.
    """
    if dst_fps <= 0:
        raise MumoError(f"dst_fps must be positive, not {dst_fps}")
    av = _import_av()
    path = Path(path)
    container = _open_video(path)
    with container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or stream.guessed_rate or 0)  # for frames without a timestamp

        def nearest(k: int) -> np.ndarray:  # resample_indices' choice for instant k between left and right
            g = times[0] + k / dst_fps
            if left is None:
                return right[1]
            return left[1] if (g - left[0]) <= (right[0] - g) else right[1]

        times: list[float] = []
        left: tuple[float, np.ndarray] | None = None  # the source frames around the next output instant
        right: tuple[float, np.ndarray] | None = None
        k = 0  # the next output instant
        try:
            for frame in container.decode(stream):
                if frame.time is None and rate <= 0:
                    raise MumoError(f"video frames carry no timestamps and no frame rate: {path}")
                t = float(frame.time) if frame.time is not None else len(times) / rate
                if times and t < times[-1]:
                    raise MumoError(f"video timestamps go backwards in {path}: {times[-1]} then {t}")
                times.append(t)
                if right is not None:  # not the last frame: every instant up to it is the nearer of left, right
                    while times[0] + k / dst_fps <= right[0]:
                        yield nearest(k)
                        k += 1
                    left = right
                right = (t, frame.to_ndarray(format="rgb24"))  # (H, W, 3)
        except av.FFmpegError as exc:
            raise MumoError(f"corrupted or truncated video: {path} ({exc})") from None
        if right is None:
            raise MumoError(f"video has no decodable frames: {path}")
        if stream.frames and len(times) < stream.frames:
            raise MumoError(f"truncated video: {path} declares {stream.frames} frames but only {len(times)} decode")
    for j in range(k, _grid_length(torch.tensor(times, dtype=torch.float64), dst_fps)):  # from the last frame on
        yield nearest(j)


def resample_fps(
    frames: torch.Tensor, src_fps: float, timestamps: torch.Tensor | None = None, dst_fps: float = 25.0
) -> torch.Tensor:
    """Resample (T, ...) frames to ``dst_fps`` by taking the frame nearest in time to each output instant.

    Args:
        frames: (T, ...) frames, e.g. (T, H, W, 3).
        src_fps: source rate, used when ``timestamps`` is None (constant frame rate).
        timestamps: (T,) presentation times in seconds; pass them for variable-frame-rate video.
        dst_fps: output rate.

    Returns:
        (T', ...) frames, T' ≈ duration * dst_fps.
    """
    if frames.shape[0] == 0:
        raise MumoError("cannot resample an empty frame sequence")
    if timestamps is None:
        if src_fps <= 0:
            raise MumoError(f"src_fps must be positive, not {src_fps}")
        timestamps = torch.arange(frames.shape[0], dtype=torch.float64) / src_fps  # (T,)
    if timestamps.shape != (frames.shape[0],):
        raise MumoError(f"timestamps {tuple(timestamps.shape)} do not match {frames.shape[0]} frames")
    return frames[resample_indices(timestamps, dst_fps)]


def write_video(
    path: str | Path,
    frames: torch.Tensor | np.ndarray,
    fps: float = 25.0,
    audio: torch.Tensor | np.ndarray | None = None,
    audio_rate: int = 16000,
    *,
    crf: int = 18,
) -> Path:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 (libx264, yuv420p) with optional mono AAC audio in an MP4.

    yuv420p needs even sizes: an odd height or width is padded by repeating the last row or column.
    The file is written with ``+faststart`` (index first) so it can stream.

    Args:
        path: output file; its folder must exist.
        frames: (T, H, W, 3) uint8 RGB, T >= 1.
        fps: frame rate.
        audio: (samples,) float in [-1, 1] (clipped), or None for a silent video without an audio track.
        audio_rate: audio sample rate in Hz.
        crf: libx264 constant rate factor (0 lossless .. 51 worst; 18 is visually near lossless).
    """
    av = _import_av()
    path = Path(path)
    frames_np = _check_frames(frames, path)
    if fps <= 0:
        raise MumoError(f"fps must be positive, not {fps} (writing {path})")
    if not path.parent.is_dir():
        raise MumoError(f"folder for the video does not exist: {path.parent}")
    audio_np = _check_audio(audio, audio_rate, path)
    t, h, w, _ = frames_np.shape
    frames_np = np.pad(frames_np, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")  # (T, H', W', 3) even

    try:
        with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            vstream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            vstream.width, vstream.height = frames_np.shape[2], frames_np.shape[1]
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"crf": str(crf)}
            astream = None
            if audio_np is not None:
                astream = container.add_stream("aac", rate=audio_rate)
                astream.layout = "mono"
            for i in range(t):
                frame = av.VideoFrame.from_ndarray(frames_np[i], format="rgb24")
                frame.pts = i
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
            if astream is not None:
                frame = av.AudioFrame.from_ndarray(audio_np[None], format="fltp", layout="mono")  # (1, samples)
                frame.sample_rate, frame.pts = audio_rate, 0
                container.mux(astream.encode(frame))
                container.mux(astream.encode(None))
    except av.FFmpegError as exc:
        raise MumoError(f"cannot write video {path}: {exc}") from None
    return path


def _check_frames(frames: torch.Tensor | np.ndarray, path: Path) -> np.ndarray:
    arr = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise MumoError(f"frames must be (T, H, W, 3) with T >= 1, not {tuple(arr.shape)} (writing {path})")
    if arr.dtype != np.uint8:
        raise MumoError(f"frames must be uint8, not {arr.dtype} (writing {path})")
    return np.ascontiguousarray(arr)


def _check_audio(audio: torch.Tensor | np.ndarray | None, rate: int, path: Path) -> np.ndarray | None:
    if audio is None:
        return None
    arr = audio.detach().cpu().numpy() if isinstance(audio, torch.Tensor) else np.asarray(audio)
    if arr.ndim != 1 or arr.size == 0:
        raise MumoError(f"audio must be a non-empty (samples,) mono array, not {tuple(arr.shape)} (writing {path})")
    if rate <= 0:
        raise MumoError(f"audio_rate must be positive, not {rate} (writing {path})")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise MumoError(f"audio holds NaN or infinite values (writing {path})")
    return np.ascontiguousarray(np.clip(arr, -1.0, 1.0))
