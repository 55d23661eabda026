"""Speech from a face track of any length: overlapping windows through the model, stitched, then Griffin-Lim.

A track of T >= ``model.frames`` frames (25 fps) is covered by windows of ``frames`` frames overlapping by
``frames // 5`` (the reference's 15 of 75; :func:`mumo.data.av.vocoder.window_starts`: the last one right-aligned
to the end, so every window is whole). Each window's mel is placed at its first frame's mel step
(floor(80 f / 25)) and the windows are cross-faded in their overlaps (:func:`mumo.data.av.vocoder.stitch_windows`);
the whole mel is vocoded once (:func:`mumo.data.av.vocoder.mel_to_wav`), so nothing clicks at the seams.

The prenet's dropout is on at inference (Tacotron 2), so a decode draws dropout masks: they come from ``seed``
(the same input and seed give the same speech). With ``samples`` T >= 2, T MC-dropout passes of every window
(every dropout module sampling) give each mel step's spread: the standard deviation over the passes, averaged
over the 80 bands, stitched like the mel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mumo.data.av.audio import mel_start
from mumo.data.av.clips import FPS
from mumo.data.av.vocoder import mel_to_wav, stitch_windows, window_starts
from mumo.errors import MumoError
from mumo.models.lip2wav import Lip2Wav, mel_steps_of

SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps


@dataclass
class Speech:
    """The mel of a face track, its per-step spread (with MC samples), each window's attention and start."""

    mel: torch.Tensor  # (80, steps) in [-4, 4], steps = floor(16 T / 5)
    spread: torch.Tensor | None  # (steps,) MC-dropout std averaged over bands; None without samples
    alignments: list[torch.Tensor]  # per window (decoder steps, frames); empty for the conv decoder
    starts: list[int]  # first frame of each window

    def waveform(self, frames: int | None = None) -> np.ndarray:
        """The speech (16 kHz, float32 in [-1, 1]) by Griffin-Lim, padded with silence to ``frames`` / 25 s."""
        wav = mel_to_wav(self.mel)  # (samples,)
        if frames is not None and wav.shape[0] < frames * SAMPLES_PER_FRAME:
            wav = np.pad(wav, (0, frames * SAMPLES_PER_FRAME - wav.shape[0]))
        return wav


def window_overlap(frames: int) -> int:
    """Frames two neighbouring windows share: a fifth of a window (the reference: 15 of 75)."""
    return frames // 5


@torch.no_grad()
def speak(model: Lip2Wav, faces: torch.Tensor, *, samples: int = 0, seed: int = 0, batch_size: int = 8,
          progress: Callable[[int], None] | None = None) -> Speech:  # fmt: skip
    """The mel of ``faces`` (T, 3, S, S) uint8 or float in [0, 1], T >= model.frames, by overlapping windows.

    ``progress``: called with the number of windows done after each batch.
    """
    from mumo.uncertainty.mc_dropout import mc_forward

    cfg = model.cfg
    n, w = int(faces.shape[0]), cfg.frames
    if faces.ndim != 4 or tuple(faces.shape[1:]) != (3, cfg.face_size, cfg.face_size):
        raise MumoError(f"faces must be (T, 3, {cfg.face_size}, {cfg.face_size}), not {tuple(faces.shape)}")
    if n < w:
        raise MumoError(f"{n} frames ({n / FPS:.2f} s) is shorter than one window of {w} frames ({w / FPS:.1f} s)")
    model.eval()
    device = next(model.parameters()).device
    starts = window_starts(n, w, window_overlap(w))
    total = mel_steps_of(n)
    mels, spreads, alignments = [], [], []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(starts), batch_size):
            chunk = starts[i : i + batch_size]
            x = torch.stack([faces[s : s + w] for s in chunk]).to(device)  # (b, W, 3, S, S)
            x = x.float().div(255.0) if not x.is_floating_point() else x
            out = model(x)
            mels += list(out.mel.float().cpu())  # b x (80, steps_W)
            if out.alignments is not None:
                alignments += list(out.alignments.float().cpu())  # b x (D, W)
            if samples:
                mc = mc_forward(
                    model, x, num_samples=samples, seed=seed + i, output_fn=lambda o: o.mel
                )  # (T, b, 80, s)
                spreads += list(mc.float().std(0).mean(1).cpu()[:, None])  # b x (1, steps_W)
            if progress is not None:
                progress(len(chunk))
    mel_starts = [mel_start(s, FPS) for s in starts]
    mel = stitch_windows(mels, mel_starts, total)  # (80, total)
    spread = stitch_windows(spreads, mel_starts, total)[0] if samples else None  # (total,)
    return Speech(mel, spread, alignments, starts)
