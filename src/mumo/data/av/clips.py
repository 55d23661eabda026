"""Talking-face clips for the lip-sync expert: the LRS2-style layout, mouth crops + mel, sampled pairs.

Layout (``root``), as LRS2 and Wav2Lip's preprocessing use it:

    filelists/{train,val,test}.txt      one ``speaker/clip`` per line
    <speaker>/<clip>/00000.png ...      25-fps frames (PNG or JPEG): face crops, or whole frames with
    <speaker>/<clip>/boxes.json         ... a face box per frame ([[x0, y0, x1, y1], ...]) to crop them
    <speaker>/<clip>/audio.wav          the clip's audio (any rate/channels: read as 16 kHz mono)
    <speaker>/<clip>.mp4                or a raw video instead of the folder: faces are detected
                                        (OpenCV Haar, boxes smoothed over 5 frames, short gaps
                                        interpolated, frames in longer gaps skipped and counted)

A clip is held as its mouth crops (the lower halves of 96x96 face crops, uint8) and its mel spectrogram
(80 steps/s, :class:`mumo.data.av.audio.MelFrontEnd`); the window of frame f is frames f..f+4 and mel
steps floor(80 f / 25) .. +16. Read with ``keep_faces=True``, a clip also keeps the whole 96x96 crops (the
lip-sync generator's input); its mouths are then a view of them, not a second copy.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from mumo.data._output import check_seed, staged_output
from mumo.errors import ConfigError, MumoError

FPS = 25.0
FRAMES_PER_WINDOW = 5
MEL_STEPS = 16
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DETECT_STRIDE = 2  # raw videos: the face detector runs on every 2nd frame, boxes interpolated between
# Audio read past a video's last frame. The last window's mel needs 12.5 ms (half an STFT window) past it;
# the rest keeps the resampler's and the codec's edges away from the samples the windows use.
AUDIO_MARGIN_SECONDS = 0.5
# A separate audio file whose length differs from its video's by more than both of these gets a warning.
MISMATCH_SECONDS = 1.0
MISMATCH_FRACTION = 0.1


class LengthMismatchWarning(UserWarning):
    """A separate audio file much longer or shorter than its video (``mumo sync --audio``)."""


class SharedSpeakersWarning(UserWarning):
    """A data set whose val or test clips are by speakers its training clips also have (a set split by clip, such
    as a single-speaker one): figures on them are for unseen clips of seen people, not for unseen people."""


@dataclass
class SyncBatch:
    """Windows of mouth frames and mel, and whether each pair is in sync. B pairs."""

    faces: torch.Tensor  # (B, 15, 48, 96) float in [0, 1]: 5 RGB lower halves, frame-major channels
    mels: torch.Tensor  # (B, 1, 80, 16)
    labels: torch.Tensor  # (B,) 1 = in sync, 0 = shifted

    def to(self, device: torch.device | str) -> SyncBatch:
        return SyncBatch(self.faces.to(device), self.mels.to(device), self.labels.to(device))

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class LipSyncClip:
    """One clip: mouth crops and mel, T frames at 25 fps (and the whole face crops when read with
    ``keep_faces=True``)."""

    name: str
    mouths: torch.Tensor  # (T, 48, 96, 3) uint8 lower halves of 96x96 face crops
    mel: torch.Tensor  # (80, T_mel) float
    skipped_frames: list[int] = field(default_factory=list)  # frames without a usable face (raw videos)
    faces: torch.Tensor | None = None  # (T, 96, 96, 3) uint8 face crops (keep_faces=True); mouths is a view of them

    @property
    def num_windows(self) -> int:
        """Windows with all 5 frames and a full 16-step mel window."""
        from mumo.data.av.audio import num_windows

        return num_windows(self.mouths.shape[0], self.mel.shape[1], FPS, frames_per_window=FRAMES_PER_WINDOW)

    def window(self, frame: int, mel_frame: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(15, 48, 96) float faces of frames f..f+4 and (1, 80, 16) mel of ``mel_frame`` (default f)."""
        from mumo.data.av.audio import mel_window

        faces = self.mouths[frame : frame + FRAMES_PER_WINDOW].float().div(255.0)  # (5, 48, 96, 3)
        faces = faces.permute(0, 3, 1, 2).reshape(-1, *faces.shape[1:3])  # (15, 48, 96) frame-major
        mel = mel_window(self.mel, frame if mel_frame is None else mel_frame, FPS, MEL_STEPS)  # (80, 16)
        return faces, mel[None]

    def windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window of the clip, as a lip-sync expert scores them (:attr:`num_windows` of them, starting at
        frames 0, 1, ...): faces (W, 15, 48, 96) and mels (W, 1, 80, 16). ConfigError when there is none."""
        n = self.num_windows
        if n < 1:
            raise ConfigError(f"clip {self.name!r} is shorter than one 5-frame window with its 0.2 s of audio")
        ws = [self.window(f) for f in range(n)]
        return torch.stack([w[0] for w in ws]), torch.stack([w[1] for w in ws])


def read_filelist(root: str | Path, split: str) -> list[str]:
    """The ``speaker/clip`` entries of one split; every entry must exist (as a folder or an .mp4)."""
    if split not in SPLITS:
        raise MumoError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    root = Path(root)
    path = root / "filelists" / f"{split}.txt"
    if not path.is_file():
        raise MumoError(f"{root} is not a talking-face data set: {path} is missing")
    entries = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [e for e in entries if not (root / e).is_dir() and not (root / f"{e}.mp4").is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise MumoError(f"{path} names clips that do not exist under {root}: {shown}")
    return entries


def shared_speakers(root: str | Path) -> dict[str, list[str]]:
    """The speakers that each held-out split (val, test) shares with train, for the splits that share any: ``{}``
    for a set split by speaker (``mumo data preprocess``, a multi-speaker ``mumo data talking-faces`` set), every
    speaker in both for a single-speaker set (split by clip). Reads the filelists' names only; a missing filelist
    counts as empty (:func:`read_filelist` reports it when the clips are read)."""

    def speakers(split: str) -> set[str]:
        path = Path(root) / "filelists" / f"{split}.txt"
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        return {line.strip().split("/")[0] for line in lines if line.strip()}

    train = speakers("train")
    shared = {split: sorted(speakers(split) & train) for split in SPLITS[1:]}
    return {split: names for split, names in shared.items() if names}


def _frame_files(clip_dir: Path) -> list[Path]:
    files = sorted(p for p in clip_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise MumoError(f"{clip_dir} holds no frames (.png/.jpg)")
    return files


def _crop(frames: torch.Tensor, boxes: torch.Tensor | None) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 96, 96, 3) face crops."""
    from mumo.data.av.faces import crop_faces

    if boxes is None:  # the frames are face crops already
        h, w = frames.shape[1:3]
        boxes = torch.tensor([[0.0, 0.0, float(w), float(h)]]).expand(frames.shape[0], 4)
        return crop_faces(frames, boxes, size=96, pad_bottom=0)
    return crop_faces(frames, boxes, size=96)


def _clip(name: str, crops: torch.Tensor, mel: torch.Tensor, skipped: list[int], keep_faces: bool) -> LipSyncClip:
    """A clip from its (T, 96, 96, 3) face crops: the mouths a view of their lower halves."""
    from mumo.data.av.faces import lower_half

    return LipSyncClip(name, lower_half(crops), mel, skipped, faces=crops if keep_faces else None)


def read_clip(root: str | Path, entry: str, front=None, *, keep_faces: bool = False) -> LipSyncClip:
    """Load one clip (frame folder or raw .mp4) as mouth crops + mel.

    ``front``: a :class:`mumo.data.av.audio.MelFrontEnd` to reuse (one is built otherwise); ``keep_faces``: keep
    the whole 96x96 face crops too (``LipSyncClip.faces``).
    """
    from mumo.data.av.audio import MelFrontEnd, load_audio

    root = Path(root)
    front = front or MelFrontEnd()
    clip_dir = root / entry
    if clip_dir.is_dir():
        files = _frame_files(clip_dir)
        frames = torch.from_numpy(np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))
        boxes = None
        if (clip_dir / "boxes.json").is_file():
            raw = json.loads((clip_dir / "boxes.json").read_text())
            raw = raw["boxes"] if isinstance(raw, dict) else raw
            boxes = torch.tensor([b[:4] for b in raw], dtype=torch.float32)
            if boxes.shape[0] != frames.shape[0]:
                raise MumoError(f"{clip_dir / 'boxes.json'} has {boxes.shape[0]} boxes for {frames.shape[0]} frames")
        audio_path = clip_dir / "audio.wav"
        if not audio_path.is_file():
            raise MumoError(f"{clip_dir} has no audio.wav")
        mel = front(load_audio(audio_path))
        return _clip(entry, _crop(frames, boxes), mel, [], keep_faces)
    return read_video_clip(root / f"{entry}.mp4", name=entry, front=front, keep_faces=keep_faces)


def read_video_clip(
    path: str | Path, *, audio: str | Path | None = None, name: str = "", front=None, keep_faces: bool = False
) -> LipSyncClip:
    """A raw video (and optionally a separate audio file) as a clip: 25 fps, faces detected and cropped
    (``keep_faces``: the whole 96x96 crops kept in ``LipSyncClip.faces``, not only their mouths).

    Frames in long face-detection gaps are replaced by the nearest usable crop *and* listed in
    ``skipped_frames``, so callers can tell how much of the clip had no face.

    Only the audio the video spans is read (its first ``T / 25`` seconds plus ``AUDIO_MARGIN_SECONDS``, the
    audio taken to start with the video), from a separate file or from the video's own track: the windows
    never use more, and memory stays that of the clip however long the audio runs. A separate audio file whose
    length differs widely from the video's (see :func:`length_mismatch`) gets a ``LengthMismatchWarning``
    with both lengths: a longer one is cut at the video's end, a shorter one leaves the video's end unscored
    (only the windows with audio are made, as before).
    """
    from mumo.data.av.audio import MelFrontEnd, audio_duration, load_audio

    path = Path(path)
    audio_seconds = audio_duration(audio) if audio is not None else None  # checks the file before the faces
    clip, crops, wav, _ = _face_crops(path, need_audio=audio is None, audio_past_end=AUDIO_MARGIN_SECONDS)
    video_seconds = crops.shape[0] / FPS
    if audio is not None:
        wav = load_audio(audio, duration=video_seconds + AUDIO_MARGIN_SECONDS)  # (T,) at 16 kHz
        if wav.shape[0] < (video_seconds + AUDIO_MARGIN_SECONDS - 0.01) * 16000:  # the file ended first: all read
            audio_seconds = wav.shape[0] / 16000
    mel = (front or MelFrontEnd())(wav)
    out = _clip(name or path.stem, crops, mel, clip.skipped_frames, keep_faces)
    if audio is not None and audio_seconds is not None:
        message = length_mismatch(audio, audio_seconds, path, video_seconds, out.num_windows)
        if message:
            warnings.warn(message, LengthMismatchWarning, stacklevel=2)
    return out


def length_mismatch(
    audio: str | Path, audio_seconds: float, video: str | Path, video_seconds: float, windows: int
) -> str | None:
    """What to tell the user when a separate audio file's length differs from its video's by more than
    ``MISMATCH_SECONDS`` and more than ``MISMATCH_FRACTION`` of the video's length; None otherwise."""
    gap = audio_seconds - video_seconds
    if abs(gap) <= max(MISMATCH_SECONDS, MISMATCH_FRACTION * video_seconds):
        return None
    if gap > 0:
        return (
            f"the audio {audio} lasts {audio_seconds:.2f} s but the video {video} only {video_seconds:.2f} s: "
            f"only the audio's first {video_seconds:.2f} s are read and scored (taken to start with the video)"
        )
    return (
        f"the audio {audio} lasts only {audio_seconds:.2f} s but the video {video} {video_seconds:.2f} s: only "
        f"the video's first {audio_seconds:.2f} s are scored ({windows} windows), its last "
        f"{-gap:.2f} s have no audio"
    )


def load_clips(
    root: str | Path, split: str, *, max_clips: int = 0, progress: bool = True, keep_faces: bool = False
) -> list[LipSyncClip]:
    """Every clip of a split (the first ``max_clips`` when > 0), skipping clips shorter than one window
    (``keep_faces``: each with its whole face crops, as :func:`read_clip`)."""
    from mumo.data.av.audio import MelFrontEnd

    entries = read_filelist(root, split)
    if max_clips > 0:
        entries = entries[:max_clips]
    front = MelFrontEnd()
    clips = []
    for e in tqdm(entries, desc=f"loading {split}", disable=not progress, leave=False):
        clip = read_clip(root, e, front, keep_faces=keep_faces)
        if clip.num_windows > 0:
            clips.append(clip)
    if not clips:
        raise MumoError(f"the {split} split of {root} has no clip with at least one 5-frame window")
    return clips


def sample_pairs(
    clips: list[LipSyncClip], num_pairs: int, generator: torch.Generator, *, min_shift: int = 2
) -> SyncBatch:
    """Half in-sync pairs, half pairs whose mel window comes from another frame of the same clip at least
    ``min_shift`` frames away (Wav2Lip's negatives: another window of the same video)."""
    faces, mels, labels = [], [], []
    for i in range(num_pairs):
        clip = clips[int(torch.randint(len(clips), (1,), generator=generator))]
        n = clip.num_windows
        f = int(torch.randint(n, (1,), generator=generator))
        positive = i % 2 == 0 or n <= min_shift
        g = f
        if not positive:
            choices = torch.tensor([k for k in range(n) if abs(k - f) >= min_shift])
            g = int(choices[int(torch.randint(len(choices), (1,), generator=generator))])
        face, mel = clip.window(f, g)
        faces.append(face)
        mels.append(mel)
        labels.append(1.0 if positive else 0.0)
    return SyncBatch(torch.stack(faces), torch.stack(mels), torch.tensor(labels))


def split_by_speaker(entries: list[str], *, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """``speaker/clip`` entries into train/val/test with disjoint speakers (seeded shuffle of speakers)."""
    speakers = sorted({e.split("/")[0] for e in entries})
    order = torch.randperm(len(speakers), generator=torch.Generator().manual_seed(seed)).tolist()
    shuffled = [speakers[i] for i in order]
    n_test = max(1, round(test_fraction * len(shuffled))) if len(shuffled) >= 3 else 0
    n_val = max(1, round(val_fraction * len(shuffled))) if len(shuffled) >= 3 else 0
    groups = {"test": set(shuffled[:n_test]), "val": set(shuffled[n_test : n_test + n_val])}
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for e in sorted(entries):
        spk = e.split("/")[0]
        split = "test" if spk in groups["test"] else "val" if spk in groups["val"] else "train"
        out[split].append(e)
    return out


def check_split_fractions(val_fraction: float, test_fraction: float) -> None:
    """Raise MumoError unless both fractions lie in [0, 1) and their sum below 1 (training keeps the rest)."""
    for name, f in (("val", val_fraction), ("test", test_fraction)):
        if isinstance(f, bool) or not isinstance(f, int | float) or not 0 <= f < 1:
            raise MumoError(f"--{name}-fraction must lie in [0, 1), not {f!r}")
    if val_fraction + test_fraction >= 1:
        raise MumoError(
            "--val-fraction + --test-fraction must be below 1 (training gets the rest of the speakers), not "
            f"{val_fraction} + {test_fraction} = {val_fraction + test_fraction:g}"
        )


def _check_train_speakers(entries: list[str], splits: dict, what: str) -> None:
    """Raise MumoError when the speaker split of ``entries`` leaves training without a speaker."""
    if entries and not splits["train"]:
        n = len({e.split("/")[0] for e in entries})
        val, test = ({e.split("/")[0] for e in splits[s]} for s in ("val", "test"))
        raise MumoError(
            f"the split of the {n} speakers of {what} would leave training none "
            f"(val {len(val)}, test {len(test)}); lower --val-fraction / --test-fraction or add speakers"
        )


def _entry(src: Path, path: Path) -> str:
    """The ``speaker/clip`` name of a raw video under ``src``."""
    rel = path.relative_to(src).with_suffix("")
    return "/".join(rel.parts[-2:]) if len(rel.parts) >= 2 else f"{rel.parts[0]}/{rel.parts[0]}"


def preprocess_videos(
    src: str | Path,
    out: str | Path,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Raw ``src/<speaker>/<clip>.mp4`` videos -> the layout above (96x96 face crops at 25 fps + 16 kHz
    audio.wav per clip, filelists split by speaker). Videos that cannot be used (no audio, no face,
    unreadable, shorter than one window) are skipped and reported with the reason, never fatal.

    The arguments, and whether training would get a speaker, are checked before anything is written; the
    set is built in a folder beside ``out`` and renamed to it when complete, so an error or Ctrl-C leaves
    ``out`` as it was (:func:`mumo.data._output.staged_output`).

    Raises:
        MumoError: a fraction outside [0, 1) or a sum of 1 or more, a seed outside [0, 2**32), ``out`` a file
            or a non-empty directory, no video under ``src``, none usable, or no speaker left for training.
    """
    from mumo.data.av.audio import save_wav

    check_split_fractions(val_fraction, test_fraction)
    check_seed(seed)
    src, out = Path(src), Path(out)
    if out.exists() and not out.is_dir():
        raise MumoError(f"{out} exists and is not a directory; choose a new output directory")
    if out.exists() and any(out.iterdir()):
        raise MumoError(f"{out} is not empty; choose a new output directory")
    videos = sorted(p for p in src.rglob("*.mp4") if p.is_file())
    if not videos:
        raise MumoError(f"no .mp4 videos under {src} (expected <speaker>/<clip>.mp4)")
    entries = [_entry(src, p) for p in videos]
    split = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
    _check_train_speakers(entries, split_by_speaker(entries, **split), f"the videos under {src}")
    written, skipped = [], {}
    with staged_output(out) as stage:
        for path, entry in zip(tqdm(videos, desc="preprocess", disable=not progress), entries, strict=True):
            try:
                clip, crops, wav, _ = _face_crops(path)
            except MumoError as exc:
                skipped[str(path)] = str(exc)
                continue
            clip_dir = stage / entry
            clip_dir.mkdir(parents=True, exist_ok=True)
            for i, frame in enumerate(crops.numpy()):
                Image.fromarray(frame).save(clip_dir / f"{i:05d}.png", compress_level=6)
            save_wav(clip_dir / "audio.wav", wav)
            (clip_dir / "meta.json").write_text(
                json.dumps({"source": str(path), "fps": FPS, "skipped_frames": clip.skipped_frames})
            )
            written.append(entry)
        if not written:
            raise MumoError(f"none of the {len(videos)} videos under {src} could be used: {skipped}")
        splits = split_by_speaker(written, **split)
        _check_train_speakers(written, splits, f"the {len(written)} usable videos ({len(skipped)} skipped)")
        (stage / "filelists").mkdir(parents=True, exist_ok=True)
        for name, names in splits.items():
            (stage / "filelists" / f"{name}.txt").write_text("".join(f"{e}\n" for e in names))
    return {"written": len(written), "skipped": skipped, "splits": {k: len(v) for k, v in splits.items()}}


def read_face_video(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """A video's frames resampled to 25 fps (T, H, W, 3) uint8, its faces detected, tracked and cropped (T, 96, 96,
    3) uint8 (a frame in a long detection gap gets the nearest usable crop), and the frames without a usable face.
    Its audio, if any, is not read (``mumo lip2speech`` reads silent videos).

    Raises:
        MumoError: not a readable video, shorter than 5 frames, or no face in any frame.
    """
    clip, crops, _, frames = _face_crops(Path(path), need_audio=False)
    return frames, crops, clip.skipped_frames


def _face_crops(
    path: Path, *, need_audio: bool = True, audio_past_end: float | None = None
) -> tuple[LipSyncClip, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(clip with skipped frames, (T, 96, 96, 3) face crops at 25 fps, 16 kHz audio, (T, H, W, 3) frames at 25 fps)
    of one raw video; ``audio_past_end``: decode the video's own track only this many seconds past its last
    frame."""
    from mumo.data.av.audio import condition_audio
    from mumo.data.av.faces import HaarFaceDetector, crop_faces, track_faces
    from mumo.data.av.video import read_video, resample_fps

    video = read_video(path, audio_past_end=audio_past_end)
    if video.audio is None and need_audio:
        raise MumoError(f"{path} has no audio track; pass a separate audio file (--audio)")
    frames = video.frames
    if video.variable_frame_rate or abs(video.fps - FPS) > 1e-3:
        frames = resample_fps(frames, video.fps, video.timestamps, dst_fps=FPS)
    if frames.shape[0] < FRAMES_PER_WINDOW:
        raise MumoError(f"{path} is shorter than one {FRAMES_PER_WINDOW}-frame window")
    track = track_faces(frames, HaarFaceDetector(), stride=DETECT_STRIDE)
    usable = track.usable()
    if not bool(usable.any()):
        raise MumoError(f"no face found in any frame of {path}")
    idx = torch.arange(frames.shape[0])
    good = idx[usable]
    nearest = good[(idx[:, None] - good[None]).abs().argmin(1)]  # (T,) nearest usable frame
    crops = crop_faces(frames[nearest], track.boxes[nearest])
    clip = LipSyncClip(path.stem, torch.zeros(0, 48, 96, 3, dtype=torch.uint8), torch.zeros(80, 0),
                       skipped_frames=idx[~usable].tolist())  # fmt: skip
    wav = condition_audio(video.audio.numpy(), video.audio_rate, path) if need_audio else None  # decoded once
    return clip, crops, wav, frames
