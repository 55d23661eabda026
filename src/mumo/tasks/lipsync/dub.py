"""Dubbing: a face video (or a still image) made to speak new audio, or text spoken by espeak-ng (``mumo lipsync``).

The steps, in order (reference §6.1, §6.2; Wav2Lip's inference, with the differences named):

1. **Checks before any work**: the output path (not a folder, its folder exists and is writable), the scorer
   (a lip-sync expert run that is not the generator's training expert, :func:`~mumo.tasks.lipsync.evaluate.
   check_scorer`), the speech: a file (any format ``load_audio`` reads, as 16 kHz mono) or ``text`` spoken by
   espeak-ng in ``voice``; silent or nearly silent speech (RMS below ``SILENT_RMS_DBFS``) and speech shorter than
   one 0.2-s window are refused.
2. **Faces**: a still image (PNG, JPEG, ...) is one frame; a video is decoded streaming, resampled to 25 fps on
   the fly from its timestamps (:func:`mumo.data.av.video.iter_video_frames`: the frames of ``read_video`` +
   ``resample_fps``; a 25-fps video's frames one to one), and only as far as the output needs (step 3). Faces are
   detected in every frame as it is decoded (OpenCV Haar, the largest face, boxes smoothed over 5 frames, gaps of
   up to 5 frames filled: the boxes of :func:`mumo.data.av.faces.track_faces`, final ``LOOKAHEAD`` = 8 frames
   later) and cropped to 96x96 with 10 px of chin padding, as the training crops were. A video at least as long
   as the speech (cut or used as is, the common case) is decoded **once** and generated from as it is decoded,
   with no frame buffer. Only one that proves shorter (its end comes first: it is looped, step 3) is decoded a
   second time, into an uncompressed uint8 frame buffer of its own frames on disk (a temporary folder beside the
   output, removed whatever happens, errors and Ctrl-C included) that looping and the rest of the generation read
   from (the output made before its end is the loop's start, kept). No face in any frame is an error (for a
   streamed video, found at its end: no output is left).
3. **Length**: the output lasts as long as the speech: ``round(25 * seconds)`` frames. A still image is
   repeated; a video shorter than the speech is looped **ping-pong** (forward, backward, forward..., the turning
   frames not repeated: 0 1 2 3 2 1 0 1 ...), so the face never jumps; a longer video is **cut** at the speech's
   end, where its decoding stops (one frame past it, to tell a cut from a video of exactly the speech's length).
4. **Generation**, dropout off: output frame f reads the generator's per-frame mel window, 16 steps from
   floor(80 f / 25), the last windows right-aligned to the end of the speech (Wav2Lip's last chunk). Frames are
   generated in 5-frame windows of consecutive frames with a face, the last window of each chunk right-aligned
   to its last such frame. The **reference is the target frame itself, unmasked** (Wav2Lip's inference
   convention: there is no held-out truth here to protect, unlike ``mumo evaluate``). Frames without a face pass
   through unchanged.
5. **Paste-back**: the 96x96 output is resized into its crop box and blended over the lower face only with a
   feathered mask (:func:`mumo.data.av.paste.paste_face`); every pixel outside the mask keeps its input value.
   Wav2Lip pastes the whole box without blending, which leaves a visible box edge.
6. **Streaming**: frames are generated, pasted and encoded ``chunk_frames`` at a time (H.264 yuv420p, crf 18,
   AAC audio, 25 fps, PyAV) into a temporary file beside the output, renamed into place only when complete: an
   error or Ctrl-C leaves no partial output. What is held at once, in RAM: the speech and its mel (about 5 MB a
   minute), the (T_src, 4) face boxes, up to ``chunk_frames + LOOKAHEAD`` decoded frames (a streamed video's
   frames waiting for their boxes to be final) plus three inside the decoder, then one chunk of output frames (its
   source frames, crops and generated faces) and the model; the source video is not. On disk: nothing but the
   output for a video at least as long as the speech; a shorter one's frames live in the disk buffer (T_src x H x
   W x 3 bytes, e.g. 6.2 MB a 1080p frame, bounded by the speech's length; an out-of-space disk is a clear error),
   read through a copy-on-write ``numpy.memmap`` whose pages the kernel may drop at will. With a scorer the
   result's 48x96 mouths are also kept in memory for scoring at the end (14 KB a frame: 210 MB for 10 minutes,
   left so since it is bounded by the output's length, not the input's size).
7. **Scoring** (``scorer``): LSE-D, LSE-C and the AV offset of the result by an independent lip-sync expert
   (:func:`~mumo.tasks.lipsync.evaluate.sync_figures`, as ``mumo evaluate`` scores a clip), and per second of
   output the scorer's mean in-sync score of the 5-frame windows starting in it, so a user sees where the result
   is weak. Frames that passed through are scored with the nearest generated mouth.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mumo.data.av.audio import MelFrontEnd, mel_start
from mumo.data.av.clips import FPS, FRAMES_PER_WINDOW, MEL_STEPS, LipSyncClip
from mumo.data.av.paste import crop_box, paste_face, ping_pong_indices
from mumo.errors import ConfigError, MumoError
from mumo.runs import Run
from mumo.tasks.lipsync.config import LipSyncRunConfig
from mumo.tasks.lipsync.data import LipSyncBatch
from mumo.tasks.lipsync.train import generate

SAMPLE_RATE = 16_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CHUNK_FRAMES = 100  # output frames generated, pasted and written at a time (4 s at 25 fps)
PAD_BOTTOM = 10  # chin padding of the crops, as in training (reference §6.2)
SILENT_RMS_DBFS = -60.0  # speech quieter than this (RMS) is refused as silent or nearly
MIN_SAMPLES = SAMPLE_RATE * FRAMES_PER_WINDOW // int(FPS)  # one 0.2-s window: 3,200 samples
SMOOTH, MAX_GAP = 5, 5  # face boxes smoothed over 5 frames, gaps of up to 5 filled (track_faces' defaults)
LOOKAHEAD = MAX_GAP + SMOOTH // 2 + 1  # frames decoded past a frame before its tracked box is final


# -- checks --------------------------------------------------------------------------------------------------------


def check_output(out: str | Path) -> Path:
    """``out`` as a Path, or a MumoError when it is a folder or its folder is missing or not writable."""
    from mumo.data._output import check_output_file

    return check_output_file(out, ".mp4 file")


def load_speech(audio: str | Path | None = None, text: str | None = None, voice: str = "en") -> torch.Tensor:
    """(T,) float32 speech at 16 kHz from an audio file or from ``text`` spoken by espeak-ng in ``voice``.

    Raises:
        ConfigError: both or neither of ``audio`` and ``text``.
        MumoError: an unreadable file, espeak-ng missing or an unknown voice (the message lists the voices),
            speech shorter than one 0.2-s window, or silent (RMS below ``SILENT_RMS_DBFS``).
    """
    if (audio is None) == (text is None):
        raise ConfigError('give the speech as exactly one of --audio FILE or --text "..."')
    if audio is not None:
        from mumo.data.av.audio import load_audio

        wav, what = load_audio(audio, sample_rate=SAMPLE_RATE, allow_silent=True), f"audio {audio}"
    else:
        from mumo.data.av.espeak import synthesize

        wav, what = torch.from_numpy(synthesize(text, voice=voice).samples.copy()), f"the speech of {text[:40]!r}"
    if wav.shape[0] < MIN_SAMPLES:
        raise MumoError(
            f"{what} lasts {wav.shape[0] / SAMPLE_RATE:.3f} s, shorter than one 0.2-s window: nothing to move the "
            "lips to"
        )
    rms = float(wav.double().pow(2).mean().sqrt())
    if rms == 0.0 or 20 * math.log10(rms) < SILENT_RMS_DBFS:
        level = "all zeros" if rms == 0.0 else f"RMS {20 * math.log10(rms):.0f} dBFS"
        raise MumoError(f"{what} is silent or nearly ({level}): nothing to move the lips to")
    return wav.float()


def read_face_frames(face: str | Path, n_frames: int, folder: str | Path) -> tuple[torch.Tensor, bool, bool]:
    """The face input as (T, H, W, 3) uint8 RGB frames at 25 fps, at most ``n_frames`` of them; whether it is an
    image (by its suffix: PNG, JPEG, BMP, WebP); and whether a video was longer (cut at ``n_frames``).

    A still image is one frame in memory. A video is decoded once, streaming and resampled to 25 fps on the fly
    (:func:`mumo.data.av.video.iter_video_frames`), only as far as frame ``n_frames`` (and one more, to tell a cut
    from a video of exactly that length), into the file ``frames.u8`` in ``folder``; the frames returned are that
    file mapped copy-on-write (``numpy.memmap``), so indexing them reads from disk and nothing of the video is
    held in RAM beyond the page cache. The caller owns ``folder`` and removes it (after dropping the frames).
    """
    from mumo.data.av.video import iter_video_frames
    from mumo.errors import check_input_file

    face = Path(face)
    if face.suffix.lower() in IMAGE_SUFFIXES:
        from PIL import Image, UnidentifiedImageError

        check_input_file(face, "image")
        try:
            with Image.open(face) as img:
                return torch.from_numpy(np.asarray(img.convert("RGB")).copy())[None], True, False
        except (UnidentifiedImageError, OSError) as exc:
            raise MumoError(f"not a readable image: {face} ({exc})") from None
    buffer = Path(folder) / "frames.u8"
    count, shape, cut = 0, None, False
    with closing(iter_video_frames(face, dst_fps=FPS)) as decoded, open(buffer, "wb") as f:
        for frame in decoded:  # (H, W, 3)
            if count == n_frames:  # one more than is shown: the video is longer, cut here (decoding stops)
                cut = True
                break
            if shape is not None and frame.shape != shape:
                raise MumoError(f"the frame size of {face} changes from {shape} to {frame.shape} at frame {count}")
            shape = frame.shape
            try:
                f.write(np.ascontiguousarray(frame).data)
            except OSError as exc:
                raise MumoError(f"cannot buffer the frames of {face} in {folder} (each {frame.nbytes:,} bytes, "
                                f"{count} written): {exc}") from None  # fmt: skip
            count += 1
    return _map_frames(buffer, count, shape), False, cut


def _map_frames(path: Path, count: int, shape: tuple[int, ...]) -> torch.Tensor:
    """(count, *shape) uint8 frames of the file ``path``, mapped copy-on-write (reads go to disk, not to RAM)."""
    return torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="c", shape=(count, *shape)))


def detect_faces(frames: torch.Tensor, name: str = "the face input") -> torch.Tensor:
    """(T, 4) face boxes of (T, H, W, 3) frames (Haar, smoothed over 5 frames, gaps of up to 5 filled), NaN where
    there is none; MumoError when no frame has one."""
    from mumo.data.av.faces import HaarFaceDetector, track_faces

    track = track_faces(frames, HaarFaceDetector())
    if not bool(track.usable().any()):
        raise MumoError(f"no face found in any frame of {name}")
    return track.boxes


def track_boxes(raw: torch.Tensor) -> torch.Tensor:
    """(T, 4) face boxes of (T, 4) raw detections (NaN where none): those ``track_faces`` gives for the frames.

    The box of frame f is final once ``LOOKAHEAD`` frames past it are detected: the boxes of a prefix of the
    detections are those of the whole for its frames up to ``LOOKAHEAD`` before its end.
    """
    from mumo.data.av.faces import fill_gaps, smooth_boxes

    return smooth_boxes(fill_gaps(raw, MAX_GAP)[0], SMOOTH)


# -- generation ----------------------------------------------------------------------------------------------------


@dataclass
class DubbedChunk:
    """Output frames ``start .. start + len(frames) - 1``."""

    start: int
    frames: torch.Tensor  # (C, H, W, 3) uint8: the dubbed frames
    mouths: torch.Tensor  # (C, 48, 96, 3) uint8: the generated lower halves (zeros where no face)
    has_face: torch.Tensor  # (C,) bool: generated (True) or passed through (False)


def frame_mels(mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """(N, 1, 80, 16) per-frame mel windows of output ``frames`` (N,): 16 steps from floor(80 f / 25), clamped to
    end at the speech's end (the last windows right-aligned)."""
    last = mel.shape[1] - MEL_STEPS
    starts = [min(mel_start(int(f), FPS), last) for f in frames.tolist()]
    return torch.stack([mel[None, :, s : s + MEL_STEPS] for s in starts])  # (N, 1, 80, 16)


def _windows(n: int) -> list[list[int]]:
    """n frames as 5-frame windows 0-4, 5-9, ..., the last right-aligned to frame n-1 (fewer than 5: the last
    frame repeated; the generator draws each frame on its own, so a repeat only costs time)."""
    if n < FRAMES_PER_WINDOW:
        return [list(range(n)) + [n - 1] * (FRAMES_PER_WINDOW - n)]
    starts = list(range(0, n - FRAMES_PER_WINDOW + 1, FRAMES_PER_WINDOW))
    if starts[-1] + FRAMES_PER_WINDOW < n:
        starts.append(n - FRAMES_PER_WINDOW)
    return [list(range(s, s + FRAMES_PER_WINDOW)) for s in starts]


@torch.no_grad()
def generate_faces(
    generator: nn.Module, crops: torch.Tensor, mels: torch.Tensor, *, batch_size: int = 16
) -> torch.Tensor:
    """(N, 96, 96, 3) uint8 generated faces of N consecutive face crops (uint8) and their (N, 1, 80, 16) mels, in
    5-frame windows (:func:`_windows`), each frame its own reference (unmasked), dropout off."""
    device = next(generator.parameters()).device
    generator.eval()
    faces = crops.permute(0, 3, 1, 2).float().div(255.0)  # (N, 3, S, S)
    out = torch.zeros_like(crops)
    windows = _windows(crops.shape[0])
    for i in range(0, len(windows), batch_size):
        idx = torch.tensor(windows[i : i + batch_size])  # (B, 5)
        target, window_mels = faces[idx].to(device), mels[idx].to(device)  # (B, 5, 3, S, S), (B, 5, 1, 80, 16)
        fake = generate(generator, LipSyncBatch(target, target, window_mels, window_mels[:, 0]))  # (B, 5, 3, S, S)
        fake = fake.float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 1, 3, 4, 2).cpu()
        out[idx.flatten()] = fake.flatten(0, 1)  # a frame two windows hold keeps the later one's face
    return out


def dub_frames(
    generator: nn.Module,
    frames: torch.Tensor,
    boxes: torch.Tensor,
    index: torch.Tensor,
    mel: torch.Tensor,
    *,
    chunk_frames: int = CHUNK_FRAMES,
    batch_size: int = 16,
    first: int = 0,
) -> Iterator[DubbedChunk]:
    """The dubbed output frames, ``chunk_frames`` at a time, made only when the next chunk is asked for.

    Args:
        generator: the lip-sync generator, on its device.
        frames: (T_src, H, W, 3) uint8 source frames.
        boxes: (T_src, 4) face boxes, NaN where there is none (those frames pass through).
        index: (T_out,) the source frame of each output frame (repeated, ping-pong or cut).
        mel: (80, T_mel) the speech's mel spectrogram, at least 16 steps.
        first: the first output frame to make (a multiple of ``chunk_frames``: the chunks before it are skipped).
    """
    if chunk_frames < 1:
        raise MumoError(f"chunk_frames must be >= 1, not {chunk_frames}")
    for c0 in range(first, index.shape[0], chunk_frames):
        src = index[c0 : c0 + chunk_frames]  # (C,)
        yield _dub_chunk(generator, c0, frames[src], boxes[src], mel, batch_size=batch_size)


def _dub_chunk(generator: nn.Module, start: int, frames: torch.Tensor, boxes: torch.Tensor, mel: torch.Tensor,
               *, batch_size: int) -> DubbedChunk:  # fmt: skip
    """Output frames ``start ..`` from their (C, H, W, 3) source frames and (C, 4) boxes (NaN: passed through)."""
    from mumo.data.av.faces import crop_faces

    h, w = frames.shape[1:3]
    out = frames.clone()  # (C, H, W, 3)
    has_face = ~torch.isnan(boxes).any(dim=1)  # (C,)
    mouths = torch.zeros(frames.shape[0], 48, 96, 3, dtype=torch.uint8)
    pos = has_face.nonzero().flatten()  # (N,) positions in the chunk
    if pos.numel():
        crops = crop_faces(frames[pos], boxes[pos], size=96, pad_bottom=PAD_BOTTOM)  # (N, 96, 96, 3)
        gen = generate_faces(generator, crops, frame_mels(mel, start + pos), batch_size=batch_size)
        mouths[pos] = gen[:, 48:]
        for j, p in enumerate(pos.tolist()):
            box = crop_box(boxes[p], h, w, PAD_BOTTOM)
            out[p] = paste_face(out[p], gen[j], box)
    return DubbedChunk(start, out, mouths, has_face)


def dub_video(generator: nn.Module, face: str | Path, decoded: Iterator[np.ndarray], n_out: int, mel: torch.Tensor,
              beside: Path, info: dict[str, Any], *, chunk_frames: int = CHUNK_FRAMES,
              batch_size: int = 16) -> Iterator[DubbedChunk]:  # fmt: skip
    """The dubbed output frames of the video ``face``, ``chunk_frames`` at a time, from its frames ``decoded``
    streaming at 25 fps (:func:`mumo.data.av.video.iter_video_frames`), without a frame buffer while the video
    proves at least as long as the output (module docstring, step 2).

    Faces are detected frame by frame as they are decoded; a chunk is made once ``LOOKAHEAD`` frames past it are
    decoded, when its boxes (:func:`track_boxes` of the detections so far) can no longer change. The video is
    decoded only as far as frame ``n_out`` (and one more, to tell a cut). If it ends before, the chunks made so
    far are the first of its ping-pong loop, and the video is decoded again into a frame buffer in a temporary
    folder beside the output ``beside`` (removed when done) for the rest (:func:`read_face_frames`).
    ``info`` gets ``length`` and ``source_frames``.
    """
    from mumo.data.av.faces import HaarFaceDetector

    if chunk_frames < 1:
        raise MumoError(f"chunk_frames must be >= 1, not {chunk_frames}")
    detector = HaarFaceDetector()
    raw: list[tuple[float, ...]] = []  # (T, 4) detections of the frames decoded, NaN where none
    pending: list[np.ndarray] = []  # the decoded frames from output frame `done` on
    done, shape, cut = 0, None, False
    for frame in decoded:  # (H, W, 3)
        if len(raw) == n_out:  # one more than is shown: the video is longer, cut here (decoding stops)
            cut = True
            break
        if shape is not None and frame.shape != shape:
            raise MumoError(f"the frame size of {face} changes from {shape} to {frame.shape} at frame {len(raw)}")
        shape = frame.shape
        found = detector.detect(frame)
        raw.append(tuple(found[0][:4]) if found else (math.nan,) * 4)
        pending.append(frame)
        if len(raw) >= done + chunk_frames + LOOKAHEAD:  # the next chunk's boxes are final
            boxes = track_boxes(torch.tensor(raw, dtype=torch.float32))[done : done + chunk_frames]
            chunk = torch.from_numpy(np.stack(pending[:chunk_frames]))  # (C, H, W, 3)
            del pending[:chunk_frames]
            yield _dub_chunk(generator, done, chunk, boxes, mel, batch_size=batch_size)
            done += chunk_frames
    if len(raw) == n_out:  # cut, or as long as the speech: the rest from the frames held
        info.update(length="cut" if cut else "as is", source_frames=n_out)
        boxes = track_boxes(torch.tensor(raw, dtype=torch.float32))  # (T_out, 4)
        if bool(torch.isnan(boxes).any(dim=1).all()):
            raise MumoError(f"no face found in any frame of {face}")
        for c0 in range(done, n_out, chunk_frames):
            chunk = torch.from_numpy(np.stack(pending[c0 - done : c0 - done + chunk_frames]))  # (C, H, W, 3)
            yield _dub_chunk(generator, c0, chunk, boxes[c0 : c0 + chunk_frames], mel, batch_size=batch_size)
        return
    pending.clear()  # shorter than the speech: looped ping-pong, from a frame buffer on disk
    info.update(length="ping-pong", source_frames=len(raw))
    with tempfile.TemporaryDirectory(prefix=f".{beside.name}.", suffix=".frames", dir=beside.parent) as folder:
        # the frame buffer's folder goes whatever happens: success, an error or Ctrl-C
        frames, _, _ = read_face_frames(face, n_out, folder)  # (T_src, H, W, 3)
        try:
            boxes = detect_faces(frames, str(face))
            index = ping_pong_indices(frames.shape[0], n_out)  # (T_out,)
            yield from dub_frames(generator, frames, boxes, index, mel, chunk_frames=chunk_frames,
                                  batch_size=batch_size, first=done)  # fmt: skip
        finally:
            del frames  # unmap the buffer before its folder goes


# -- writing -------------------------------------------------------------------------------------------------------


class Mp4Stream:
    """An H.264 (yuv420p) MP4 written a chunk of frames at a time, with one mono AAC track added at the end.

    Use as a context manager; frames are (C, H, W, 3) uint8 RGB (an odd side is padded by repeating its last
    row or column, as ``write_video`` does).
    """

    def __init__(self, path: str | Path, audio: torch.Tensor | None = None, *, fps: float = FPS,
                 audio_rate: int = SAMPLE_RATE, crf: int = 18) -> None:  # fmt: skip
        import av

        self.path, self.fps, self.crf = Path(path), fps, crf
        self.audio, self.audio_rate = audio, audio_rate
        self.container = av.open(str(self.path), "w", format="mp4", options={"movflags": "+faststart"})
        self.video = None
        self.frames = 0

    def __enter__(self) -> Mp4Stream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.container.close()

    def write(self, frames: torch.Tensor) -> None:
        import av

        arr = frames.numpy()
        arr = np.pad(arr, ((0, 0), (0, arr.shape[1] % 2), (0, arr.shape[2] % 2), (0, 0)), mode="edge")  # even sides
        if self.video is None:
            self.video = self.container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1001))
            self.video.width, self.video.height = arr.shape[2], arr.shape[1]
            self.video.pix_fmt = "yuv420p"
            self.video.options = {"crf": str(self.crf)}
            if self.audio is not None:
                self.sound = self.container.add_stream("aac", rate=self.audio_rate)
                self.sound.layout = "mono"
        for image in arr:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            self.container.mux(self.video.encode(frame))
            self.frames += 1

    def finish(self) -> None:
        import av

        if self.video is None:
            self.container.close()
            raise MumoError(f"no frame was written to {self.path}")
        self.container.mux(self.video.encode(None))
        if self.audio is not None:
            samples = self.audio.clamp(-1, 1).numpy().astype(np.float32)[None]  # (1, T)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = self.audio_rate, 0
            self.container.mux(self.sound.encode(frame))
            self.container.mux(self.sound.encode(None))
        self.container.close()


# -- scoring -------------------------------------------------------------------------------------------------------


@torch.no_grad()
def score_result(scorer: nn.Module, mouths: torch.Tensor, has_face: torch.Tensor, mel: torch.Tensor,
                 *, batch_size: int = 256) -> dict[str, Any]:  # fmt: skip
    """LSE-D, LSE-C and offset of the result's (T, 48, 96, 3) mouths against its mel, and the scorer's mean
    in-sync score of the windows starting in each second (``per_second``); frames without a face take the
    nearest generated mouth."""
    from mumo.tasks.lipsync.evaluate import sync_figures

    idx = torch.arange(mouths.shape[0])
    good = idx[has_face]
    mouths = mouths[good[(idx[:, None] - good[None]).abs().argmin(1)]]  # (T, 48, 96, 3)
    clip = LipSyncClip("dubbed", mouths, mel)
    figures = sync_figures(scorer, clip, max_offset=15, batch_size=batch_size)
    device = next(scorer.parameters()).device
    scores = []
    for f0 in range(0, clip.num_windows, batch_size):
        ws = [clip.window(f) for f in range(f0, min(f0 + batch_size, clip.num_windows))]
        faces, mels = torch.stack([w[0] for w in ws]).to(device), torch.stack([w[1] for w in ws]).to(device)
        scores.append(scorer(faces, mels).score.float().cpu())  # (b,)
    score = torch.cat(scores)  # (W,) window f starts at frame f
    second = torch.arange(score.shape[0]) // int(FPS)
    per_second = [float(score[second == s].mean()) for s in range(int(second.max()) + 1)]
    return {**figures, "per_second": per_second, "mean_score": float(score.mean())}


# -- the command ---------------------------------------------------------------------------------------------------


def _write_dubbed(tmp: Path, out: Path, wav: torch.Tensor, chunks: Iterator[DubbedChunk], has_face: list,
                  mouths: list | None, n_out: int, progress: bool) -> None:  # fmt: skip
    """Encode the chunks with the speech into ``tmp`` and rename it to ``out`` when complete (an error or Ctrl-C
    removes it); each chunk's ``has_face`` (and ``mouths``, when a list is given) appended as it passes."""
    try:
        with Mp4Stream(tmp, wav) as stream, tqdm(total=n_out, desc="dubbing", unit="frame", disable=not progress,
                                                 leave=False) as bar:  # fmt: skip
            for chunk in chunks:
                stream.write(chunk.frames)
                has_face.append(chunk.has_face)
                if mouths is not None:
                    mouths.append(chunk.mouths)
                bar.update(chunk.frames.shape[0])
        os.replace(tmp, out)
    except BaseException:  # an error or Ctrl-C: no partial output
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if hasattr(chunks, "close"):
            chunks.close()  # the generator lets go of the frames


def dub(run_dir: str | Path, face: str | Path, out: str | Path, *, audio: str | Path | None = None,
        text: str | None = None, voice: str = "en", scorer: str | Path | None = None,
        chunk_frames: int = CHUNK_FRAMES, batch_size: int = 16, device: str = "auto",
        progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Dub ``face`` (video or still image) with ``audio`` or ``text`` into the MP4 ``out`` (module docstring).

    Returns:
        ``output``, ``frames``, ``seconds``, ``fps``, ``source`` (``video`` / ``image``), ``source_frames``,
        ``length`` (``still``, ``ping-pong``, ``cut`` or ``as is``), ``face_frames``, ``passed_through``,
        ``elapsed_seconds``; with a scorer ``scorer``: its ``run``, ``lse_d``, ``lse_c``, ``offset_frames``,
        ``windows``, ``mean_score`` and ``per_second``.
    """
    from mumo.data.av.video import iter_video_frames
    from mumo.devices import resolve_device
    from mumo.tasks.lipsync.evaluate import check_scorer, load_scorer
    from mumo.tasks.lipsync.train import load_lipsync_model

    t0 = time.perf_counter()
    out = check_output(out)
    run = Run(run_dir)
    run.require_kind("lipsync", "a lip-sync generator (mumo train lipsync)")
    scorer_info = check_scorer(run, run.config(LipSyncRunConfig), Path(scorer)) if scorer is not None else None
    wav = load_speech(audio, text, voice)  # (T,)
    n_out = max(FRAMES_PER_WINDOW, round(wav.shape[0] * FPS / SAMPLE_RATE))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.partial")
    mouths: list[torch.Tensor] = []
    has_face: list[torch.Tensor] = []
    info: dict[str, Any] = {}
    is_image = Path(face).suffix.lower() in IMAGE_SUFFIXES
    with closing(iter_video_frames(face, dst_fps=FPS)) if not is_image else nullcontext() as decoded:
        if is_image:  # one frame in memory, repeated
            frames = read_face_frames(face, n_out, out.parent)[0]  # (1, H, W, 3)
            boxes = detect_faces(frames, str(face))
            info.update(length="still", source_frames=1)
        else:  # decoded streaming (its first frame now: an unreadable video fails before the model loads)
            first = next(decoded, None)
            decoded = itertools.chain([] if first is None else [first], decoded)
        device = resolve_device(device)
        generator = load_lipsync_model(run.path, device=device)
        scorer_model = load_scorer(Path(scorer), device) if scorer is not None else None
        mel = MelFrontEnd()(wav)  # (80, T_mel)
        if is_image:
            chunks = dub_frames(generator, frames, boxes, ping_pong_indices(1, n_out), mel,
                                chunk_frames=chunk_frames, batch_size=batch_size)  # fmt: skip
        else:
            chunks = dub_video(generator, face, decoded, n_out, mel, out, info, chunk_frames=chunk_frames,
                               batch_size=batch_size)  # fmt: skip
        _write_dubbed(tmp, out, wav, chunks, has_face, mouths if scorer_model is not None else None, n_out,
                      progress)  # fmt: skip
    length, source_frames = info["length"], info["source_frames"]
    faced = torch.cat(has_face)
    res: dict[str, Any] = {
        "output": str(out), "frames": n_out, "seconds": n_out / FPS, "fps": FPS,
        "audio_seconds": wav.shape[0] / SAMPLE_RATE, "source": "image" if is_image else "video",
        "source_frames": source_frames, "length": length, "face_frames": int(faced.sum()),
        "passed_through": int((~faced).sum()),
    }  # fmt: skip
    if scorer_model is not None:
        scored = score_result(scorer_model, torch.cat(mouths), faced, mel)
        res["scorer"] = {"run": scorer_info["run"], **scored}
    res["elapsed_seconds"] = time.perf_counter() - t0
    return res
