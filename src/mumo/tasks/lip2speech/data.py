"""Lip-to-speech training windows: ``frames`` consecutive face crops of a clip and the mel of the same span.

A window starting at frame f holds the faces f..f+F-1 (resized from the clips' 96-pixel crops to
``model.face_size``) and the mel steps from floor(80 f / 25) on, ``F * 16 / 5`` of them (80 mel steps per
second at 25 fps, the alignment of ``mumo.data.av.audio.mel_window``). Only windows whose mel lies inside the
audio are drawn. Batches are drawn from (seed, epoch, batch index) alone, so an epoch's data is the same on a
resume; the teacher-forcing draws of each decoder step are part of the batch, drawn the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mumo.data.av.audio import mel_start
from mumo.data.av.clips import FPS, load_clips
from mumo.errors import MumoError
from mumo.models.lip2wav import mel_steps_of


@dataclass
class SpeechClip:
    """One clip's faces at the model's size and its mel."""

    name: str
    faces: torch.Tensor  # (T, 3, S, S) uint8
    mel: torch.Tensor  # (80, T_mel) float in [-4, 4]
    mouths: torch.Tensor | None = None  # (T, 48, 96, 3) uint8 lower halves of the 96-px crops (keep_mouths=True)

    def num_windows(self, frames: int) -> int:
        """Starts f = 0, 1, ... of ``frames``-frame windows with all their frames and mel steps inside the clip."""
        n = self.faces.shape[0] - frames + 1
        while n > 0 and mel_start(n - 1, FPS) + mel_steps_of(frames) > self.mel.shape[1]:
            n -= 1
        return max(0, n)


@dataclass
class SpeechBatch:
    """B windows: faces, the true mel, and the teacher-forcing draws of each decoder step."""

    faces: torch.Tensor  # (B, F, 3, S, S) float in [0, 1]
    mel: torch.Tensor  # (B, 80, F * 16 / 5)
    step: int = 0  # the optimiser step this batch trains (for the teacher-forcing schedule)
    draws: torch.Tensor | None = None  # (F * 16 / 5 / r,) uniform [0, 1): feed the truth where below the ratio

    def __len__(self) -> int:
        return int(self.faces.shape[0])

    def to(self, device: torch.device | str) -> SpeechBatch:
        return SpeechBatch(self.faces.to(device), self.mel.to(device), self.step, self.draws)


@dataclass
class Lip2SpeechData:
    train: list[SpeechClip]
    val: list[SpeechClip]


def resize_faces(faces: torch.Tensor, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 crops -> (T, 3, size, size) uint8 (area interpolation when shrinking)."""
    x = faces.permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="area" if size < x.shape[-1] else "bilinear")
    return x.round().clamp(0, 255).to(torch.uint8)


def window(clip: SpeechClip, start: int, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(F, 3, S, S) float faces in [0, 1] and (80, F * 16 / 5) mel of the window starting at ``start``."""
    m0 = mel_start(start, FPS)
    return clip.faces[start : start + frames].float().div(255.0), clip.mel[:, m0 : m0 + mel_steps_of(frames)]


def draw_windows(clips: list[SpeechClip], n: int, frames: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """``n`` (clip, start) pairs: a clip drawn uniformly among those with a window, a start uniformly."""
    counts = [c.num_windows(frames) for c in clips]
    usable = [i for i, c in enumerate(counts) if c > 0]
    if not usable:
        raise MumoError(f"no clip holds a window of {frames} frames ({frames / FPS:.1f} s) with its audio")
    out = []
    for _ in range(n):
        i = usable[int(torch.randint(len(usable), (1,), generator=generator))]
        out.append((i, int(torch.randint(counts[i], (1,), generator=generator))))
    return out


def make_batch(clips: list[SpeechClip], windows: list[tuple[int, int]], frames: int) -> SpeechBatch:
    pairs = [window(clips[i], f, frames) for i, f in windows]
    return SpeechBatch(torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))


def epoch_batches(clips: list[SpeechClip], epoch: int, *, frames: int, decoder_steps: int, seed: int,
                  num_batches: int, batch_size: int, rank: int = 0, world: int = 1):  # fmt: skip
    """The training batches of ``epoch`` for process ``rank`` of ``world``, streamed: batch i (optimiser step
    epoch * num_batches + i) is drawn from (seed, epoch, i) alone, its teacher-forcing draws included."""
    for i in range(rank, num_batches, world):
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch * 7919 + i * 104_729 + 31)
        batch = make_batch(clips, draw_windows(clips, batch_size, frames, gen), frames)
        batch.step, batch.draws = epoch * num_batches + i, torch.rand(decoder_steps, generator=gen)
        yield batch


def validation_windows(clips: list[SpeechClip], n: int, frames: int, seed: int) -> list[tuple[int, int]]:
    """The fixed validation windows of a run (drawn once from ``seed``)."""
    return draw_windows(clips, n, frames, torch.Generator().manual_seed(seed + 1))


def load_speech_clips(root: str | Path, split: str, *, face_size: int, max_clips: int = 0, progress: bool = True,
                      keep_mouths: bool = False) -> list[SpeechClip]:  # fmt: skip
    """The clips of ``split`` under ``root`` with their faces at ``face_size`` and their mel (``keep_mouths``: also
    the lower halves of the 96-pixel crops, what a lip-sync expert reads)."""
    clips = load_clips(root, split, max_clips=max_clips, progress=progress, keep_faces=True)
    return [SpeechClip(c.name, resize_faces(c.faces, face_size), c.mel, c.mouths.clone() if keep_mouths else None)
            for c in clips]  # fmt: skip


def load_lip2speech_data(root: str | Path, *, frames: int, face_size: int, max_clips: int = 0,
                         progress: bool = True) -> Lip2SpeechData:  # fmt: skip
    """The train and val clips under ``root``; MumoError when a split has no clip as long as one window."""
    loaded = {}
    for split in ("train", "val"):
        clips = load_speech_clips(root, split, face_size=face_size, max_clips=max_clips, progress=progress)
        clips = [c for c in clips if c.num_windows(frames) > 0]
        if not clips:
            raise MumoError(
                f"the {split} split of {root} has no clip of at least {frames} frames ({frames / FPS:.1f} s, "
                "model.frames) with its audio: use longer clips or a shorter model.frames"
            )
        loaded[split] = clips
    if len(loaded["train"]) < 2:
        raise MumoError(f"the train split of {root} has one usable clip: lip-to-speech needs many clips of a speaker")
    return Lip2SpeechData(loaded["train"], loaded["val"])
