"""``mumo lip2speech``: a silent video of the trained speaker's face becomes their speech (a WAV), optionally
muxed back into the video.

1. **Checks before any work**: the outputs' paths (a file, in a writable folder; the WAV ends in ``.wav``, the
   muxed video in ``.mp4``) and the run (a lip-to-speech run: a VQA or sync run is refused by its kind).
2. **Faces**: the video is decoded and resampled to 25 fps (a variable-frame-rate video by its timestamps), faces
   are detected, tracked and cropped as ``mumo sync`` does (:func:`mumo.data.av.clips.read_face_video`); a video
   without a face, or shorter than one window of the model, is refused.
3. **Speech**: overlapping windows through the model, stitched and vocoded once
   (:mod:`mumo.tasks.lip2speech.synthesize`), with a progress bar over the windows; the WAV lasts as long as the
   video (16 kHz, 16-bit).
4. **Writing**: each output is written beside itself under a temporary name and renamed into place only when
   complete, so an error or Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch

from mumo.data._output import check_output_file
from mumo.data.av.audio import save_wav
from mumo.data.av.clips import FPS, read_face_video
from mumo.data.av.vocoder import window_starts
from mumo.devices import resolve_device
from mumo.errors import MumoError
from mumo.tasks.lip2speech.data import resize_faces
from mumo.tasks.lip2speech.synthesize import speak, window_overlap


def _partial(out: Path) -> Path:
    return out.with_name(f".{out.stem}.{os.getpid()}.partial{out.suffix}")


def lip2speech(run_dir: str | Path, video: str | Path, out: str | Path, *, mux: str | Path | None = None,
               samples: int = 0, seed: int = 0, batch_size: int = 8, device: str = "auto",
               progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Speak ``video``'s face with the model of ``run_dir`` into the WAV ``out`` (and the MP4 ``mux``).

    ``samples`` T >= 2: also T MC-dropout decodes, whose per-step spread is summarised in the result (the mean,
    and the seconds where it is largest). Returns what was written and how long it took.
    """
    from tqdm import tqdm

    from mumo.tasks.lip2speech.train import load_lip2speech_model

    t0 = time.perf_counter()
    out = check_output_file(out, ".wav file")
    if out.suffix.lower() != ".wav":
        raise MumoError(f"--out {out}: the speech is written as a WAV; name a .wav file")
    if mux is not None:
        mux = check_output_file(mux, ".mp4 file", flag="--mux")
        if mux.suffix.lower() != ".mp4":
            raise MumoError(f"--mux {mux}: name an .mp4 file")
        if mux.resolve() == Path(video).resolve():
            raise MumoError(f"--mux {mux} is the input video; name another file")
    if samples == 1 or samples < 0:
        raise MumoError(f"--mc-samples must be 0 (off) or at least 2 (a spread needs two), not {samples}")
    model = load_lip2speech_model(run_dir, device=resolve_device(device))
    cfg = model.cfg
    frames, crops, skipped = read_face_video(video)
    if frames.shape[0] < cfg.frames:
        raise MumoError(
            f"{video} lasts {frames.shape[0]} frames ({frames.shape[0] / FPS:.2f} s at 25 fps); the model needs at "
            f"least one window of {cfg.frames} frames ({cfg.frames / FPS:.1f} s)"
        )
    t_faces = time.perf_counter()
    faces = resize_faces(crops, cfg.face_size)  # (T, 3, S, S) uint8
    n_windows = len(window_starts(faces.shape[0], cfg.frames, window_overlap(cfg.frames)))
    with tqdm(total=n_windows, desc="speaking", unit="window", disable=not progress) as bar:
        speech = speak(model, faces, samples=samples, seed=seed, batch_size=batch_size, progress=bar.update)
    t_model = time.perf_counter()
    wav = speech.waveform(frames.shape[0])  # (T * 640,) at 16 kHz
    t_vocoder = time.perf_counter()
    written = []
    try:
        tmp = _partial(out)
        save_wav(tmp, wav)
        written.append(tmp)
        if mux is not None:
            from mumo.data.av.video import write_video

            tmp_mux = _partial(mux)
            written.append(tmp_mux)
            write_video(tmp_mux, frames, FPS, audio=torch.from_numpy(wav), audio_rate=16000)
            os.replace(tmp_mux, mux)
        os.replace(tmp, out)
    finally:
        for path in written:
            path.unlink(missing_ok=True)
    seconds = frames.shape[0] / FPS
    result: dict[str, Any] = {
        "output": str(out), "muxed": str(mux) if mux is not None else None, "frames": int(frames.shape[0]),
        "seconds": seconds, "frames_without_face": len(skipped), "windows": len(speech.starts),
        "decoder": cfg.decoder, "timing": {
            "faces_seconds": t_faces - t0, "model_seconds": t_model - t_faces, "vocoder_seconds": t_vocoder - t_model,
            "total_seconds": time.perf_counter() - t0, "real_time_factor": (time.perf_counter() - t0) / seconds},
    }  # fmt: skip
    if speech.spread is not None:
        per_second = [float(chunk.mean()) for chunk in torch.split(speech.spread, 80)]  # 80 mel steps a second
        result["uncertainty"] = {"mc_samples": samples, "mean_spread": float(speech.spread.mean()),
                                 "spread_per_second": per_second}  # fmt: skip
    return result
