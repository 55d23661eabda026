"""The generator's training windows, drawn from talking-face clips read with their whole face crops.

A window starting at frame f holds (reference §6.1, §6.2):

- ``target``: frames f..f+4, whose mouths the generator redraws (their lower half never reaches it);
- ``reference``: another 5-frame window r..r+4 of the same clip, the identity and pose prior, out of sync;
- ``mels``: the mel window of each frame f+k, starting at mel step floor(80 (f+k) / 25). This is the inference
  convention (chunk i starts at floor(80 i / 25)); Wav2Lip's training script starts frame f+k's window one
  frame earlier, at f+k-1. mumo trains with the convention it generates with, so no offset is learnt;
- ``sync_mel``: the mel window of the whole 5-frame window, starting at frame f's step (what the sync expert
  scores the 5 generated lower halves against).

Only windows whose every per-frame mel window lies inside the audio are drawn (:func:`num_generator_windows`).
Batches are drawn from (seed, epoch, batch index) alone, so an epoch's data is the same on a resume and on any
number of processes; validation uses fixed windows drawn once from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from mumo.data.av.audio import mel_window, num_windows
from mumo.data.av.clips import FPS, FRAMES_PER_WINDOW, MEL_STEPS, LipSyncClip, load_clips
from mumo.errors import MumoError

REFERENCE_GAP = 5  # the reference window starts at least this many frames from the target's, when the clip allows


@dataclass
class LipSyncBatch:
    """B windows of 5 frames: what the generator reads and what it is scored against."""

    target: torch.Tensor  # (B, 5, 3, 96, 96) float in [0, 1]: the frames to reproduce
    reference: torch.Tensor  # (B, 5, 3, 96, 96) float in [0, 1]: another window of the same clip
    mels: torch.Tensor  # (B, 5, 1, 80, 16): each frame's mel window
    sync_mel: torch.Tensor  # (B, 1, 80, 16): the window's mel, from its first frame (the expert's input)

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def to(self, device: torch.device | str) -> LipSyncBatch:
        return LipSyncBatch(self.target.to(device), self.reference.to(device), self.mels.to(device),
                            self.sync_mel.to(device))  # fmt: skip


@dataclass(frozen=True)
class Window:
    """One training window: clip index, first target frame, first reference frame."""

    clip: int
    frame: int
    reference: int


@dataclass
class LipSyncData:
    """The clips of the training and validation splits, each with its face crops."""

    train: list[LipSyncClip]
    val: list[LipSyncClip]


def num_generator_windows(clip: LipSyncClip) -> int:
    """How many 5-frame windows (starting at frames 0, 1, ...) have all 5 frames and each frame's 16-step mel
    window inside the audio: frame f+4's window ends last, so the starts are a prefix."""
    frames = clip.mouths.shape[0]
    with_mel = num_windows(frames, clip.mel.shape[1], FPS, frames_per_window=1, steps=MEL_STEPS)  # frames 0..n-1
    return max(0, with_mel - FRAMES_PER_WINDOW + 1)


def _reference_start(frames: int, f: int, generator: torch.Generator) -> int:
    """A random start r of another 5-frame window of a ``frames``-frame clip, |r - f| >= 5 where the clip has one.

    In a clip too short for that (fewer than 10 frames, or f near its middle) the reference is drawn among the
    windows farthest from the target's, which overlap it; a clip of exactly 5 frames gives the target window
    itself (its mouths then reach the generator through the reference). Real clips (LRS2: 1 s and longer) are
    rarely so short.
    """
    last = frames - FRAMES_PER_WINDOW  # the last start with 5 frames
    gap = min(REFERENCE_GAP, max(f, last - f))
    choices = [r for r in range(last + 1) if abs(r - f) >= gap]
    return choices[int(torch.randint(len(choices), (1,), generator=generator))]


def draw_windows(clips: list[LipSyncClip], n: int, generator: torch.Generator) -> list[Window]:
    """``n`` windows: a clip drawn uniformly, a start drawn uniformly among its generator windows, and a
    reference window (:func:`_reference_start`)."""
    counts = [num_generator_windows(c) for c in clips]
    if not clips or min(counts) < 1:
        raise MumoError("every clip needs at least one 5-frame window with each frame's mel window inside its audio")
    out = []
    for _ in range(n):
        i = int(torch.randint(len(clips), (1,), generator=generator))
        f = int(torch.randint(counts[i], (1,), generator=generator))
        out.append(Window(i, f, _reference_start(clips[i].mouths.shape[0], f, generator)))
    return out


def _frames(clip: LipSyncClip, start: int) -> torch.Tensor:
    """(5, 3, 96, 96) float in [0, 1]: frames start..start+4 of the clip's face crops."""
    if clip.faces is None:
        raise MumoError(f"clip {clip.name!r} holds no face crops: load the clips with keep_faces=True")
    return clip.faces[start : start + FRAMES_PER_WINDOW].permute(0, 3, 1, 2).float().div(255.0)


def make_batch(clips: list[LipSyncClip], windows: list[Window]) -> LipSyncBatch:
    """The tensors of ``windows`` (of ``clips``)."""
    target, reference, mels, sync_mel = [], [], [], []
    for w in windows:
        clip = clips[w.clip]
        target.append(_frames(clip, w.frame))
        reference.append(_frames(clip, w.reference))
        per_frame = [mel_window(clip.mel, w.frame + k, FPS, MEL_STEPS) for k in range(FRAMES_PER_WINDOW)]
        mels.append(torch.stack(per_frame)[:, None])  # (5, 1, 80, 16)
        sync_mel.append(per_frame[0][None])  # (1, 80, 16): frame f's window, the 5-frame window's
    return LipSyncBatch(torch.stack(target), torch.stack(reference), torch.stack(mels), torch.stack(sync_mel))


def sample_windows(clips: list[LipSyncClip], n: int, generator: torch.Generator) -> LipSyncBatch:
    """``n`` windows drawn with ``generator`` (:func:`draw_windows`), as a batch."""
    return make_batch(clips, draw_windows(clips, n, generator))


def epoch_batches(clips: list[LipSyncClip], epoch: int, *, seed: int, num_batches: int, batch_size: int,
                  rank: int = 0, world: int = 1):  # fmt: skip
    """The training batches of ``epoch`` that process ``rank`` of ``world`` trains on (every world-th one),
    streamed: batch i is drawn from (seed, epoch, i) alone."""
    for i in range(rank, num_batches, world):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7919 + i * 104_729 + 29)
        yield sample_windows(clips, batch_size, gen)


def validation_windows(clips: list[LipSyncClip], n: int, seed: int) -> list[Window]:
    """The fixed validation windows of a run (drawn once from ``seed``)."""
    return draw_windows(clips, n, torch.Generator().manual_seed(seed + 1))


def load_lipsync_data(root: str | Path, *, max_clips: int = 0, splits: tuple[str, ...] = ("train", "val"),
                      progress: bool = True) -> LipSyncData:  # fmt: skip
    """The clips of ``splits`` under ``root`` with their face crops, keeping those with a generator window.

    Raises:
        MumoError: ``root`` is not a talking-face set, or a split has no clip long enough.
    """
    loaded = {}
    for split in splits:
        clips = load_clips(root, split, max_clips=max_clips, progress=progress, keep_faces=True)
        clips = [c for c in clips if num_generator_windows(c) > 0]
        if not clips:
            raise MumoError(
                f"the {split} split of {root} has no clip with a 5-frame window whose frames all have 0.2 s of audio"
            )
        loaded[split] = clips
    return LipSyncData(train=loaded.get("train", []), val=loaded.get("val", []))
