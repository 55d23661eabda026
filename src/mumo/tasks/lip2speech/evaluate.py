"""Evaluating a lip-to-speech run on held-out clips: intelligibility (STOI, ESTOI), quality (PESQ narrow-band),
mel L1, the attention's alignment, and whether MC dropout's spread finds the worst frames.

Every clip of the split is synthesised as ``mumo lip2speech`` would (overlapping windows, stitched, Griffin-Lim:
:mod:`mumo.tasks.lip2speech.synthesize`) and scored against the clip's own recording (``audio.wav``), both cut
to the shorter length (Lip2Wav's ``score.py``). Beside the model, in the same run and on the same clips:

- ``floor``: the training clips' average mel (one spectrum, every step the same) vocoded to each clip's length:
  what a model that ignores the lips scores;
- ``vocoder``: the clip's own mel through the same Griffin-Lim: the ceiling the vocoder leaves.

``align`` (``--align SYNC_RUN``): the lip-sync expert of that run estimates each clip's audio-video offset (its
faces against the recording's mel, offsets up to ``max_offset`` frames, as ``mumo sync``); the recording is then
shifted by it before scoring, so an offset in the data set is not counted against the model (reference §6.7).
The expert is read from the run's files, not through the sync task (the tasks stay independent).

Uncertainty (``mc_samples`` T >= 2): the per-step spread of T MC-dropout decodes against the per-step L1 error
of the prediction (Spearman, and the AUROC of the spread for the worst 10 % of steps), pooled over the clips.

Plots (``plots``, default RUN/plots/lip2speech-SPLIT/): a few clips' attention alignments, their true and
predicted mel spectrograms, and their WAVs (generated and recorded).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mumo.data.av.audio import MelFrontEnd, load_audio, save_wav
from mumo.data.av.clips import FPS, LipSyncClip, read_filelist
from mumo.data.av.vocoder import mel_to_wav
from mumo.errors import ConfigError, MumoError
from mumo.metrics.speech import attention_diagonality, mel_l1, speech_scores, spread_error_agreement
from mumo.runs import Run
from mumo.tasks.lip2speech.config import Lip2SpeechRunConfig
from mumo.tasks.lip2speech.data import SpeechClip, load_speech_clips
from mumo.tasks.lip2speech.synthesize import SAMPLES_PER_FRAME, speak

SPLITS = ("val", "test")
_OTHER_TASKS = {
    "mc_scope": "all", "ood": None, "pixel_noise": None, "feature_noise": None, "corruption": None, "severity": None,
    "abstain": None, "temperature": "auto", "ensemble": (), "results_json": None,
}  # fmt: skip
PLOTTED_CLIPS = 3


@dataclass(frozen=True)
class Lip2SpeechEvaluationOptions:
    """How a lip-to-speech run is evaluated; checked when built, before any model is loaded."""

    split: str = "test"
    clips: int | None = None  # the split's first N clips only; None = all
    align: Path | None = None  # a sync run whose expert aligns each recording to its video before scoring
    mc_samples: int = 5  # T dropout passes for the spread; 0 = off
    data_root: Path | None = None  # the talking-face set; None = the run's data.root
    plots: Path | None = None  # where the alignments, spectrograms and WAVs go; None = RUN/plots/lip2speech-SPLIT
    max_offset: int = 15  # offsets the expert searches, in frames
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be 'val' or 'test' for a lip-to-speech run, not {self.split!r}")
        if self.clips is not None and self.clips < 1:
            raise ConfigError(f"--clips must be >= 1, not {self.clips}")
        t = self.mc_samples
        if isinstance(t, bool) or not isinstance(t, int) or t == 1 or t < 0:
            raise ConfigError(f"--mc-samples must be 0 (off) or at least 2 (a spread needs two), not {t!r}")
        for key in ("align", "data_root", "plots"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, Path(getattr(self, key)))
        if self.max_offset < 0:
            raise ConfigError(f"max_offset must be >= 0, not {self.max_offset}")


def evaluation_options(**options: Any) -> Lip2SpeechEvaluationOptions:
    """The options of ``mumo evaluate`` for a lip-to-speech run; an option of another task that is set is refused."""
    for key, off in _OTHER_TASKS.items():
        value = options.pop(key, off)
        if value not in (off, None) and not (isinstance(value, tuple | list) and not value):
            raise ConfigError(f"--{key.replace('_', '-')} is not an option for a lip-to-speech run")
    if options.pop("images", None) is not None:
        raise ConfigError("--images counts a split's images; a lip-to-speech run takes --clips N")
    for key in ("density_images", "question_bank"):  # VQA settings with defaults of their own
        options.pop(key, None)
    if options.get("mc_samples", 0) is None:
        options.pop("mc_samples")
    return Lip2SpeechEvaluationOptions(**options)


# -- alignment by the lip-sync expert -------------------------------------------------------------------------------


def load_aligner(run_dir: Path, device: torch.device | str = "cpu"):
    """The best lip-sync expert of a ``mumo train sync`` run, frozen, in eval mode."""
    from mumo.models.sync_expert import SyncExpertConfig

    run = Run(run_dir)
    run.require_kind("sync", "a lip-sync expert (--align names the `mumo train sync` run that finds the offsets)")
    return run.load_model(run.config_section("model", SyncExpertConfig), "best", device).requires_grad_(False)


@torch.no_grad()
def estimate_offset(expert, mouths: torch.Tensor, mel: torch.Tensor, max_offset: int = 15) -> int:
    """The audio-video offset in frames (positive: the audio lags the video) of (T, 48, 96, 3) uint8 lower halves
    of 96-pixel face crops and their recording's (80, T_mel) mel, by the expert (``mumo sync``'s LSE offset)."""
    from mumo.metrics.sync import offset_distances, sync_scores

    clip = LipSyncClip("clip", mouths, mel)
    faces, mels = clip.windows()  # (W, 15, 48, 96), (W, 1, 80, 16)
    device = next(expert.parameters()).device
    video, audio = [], []
    for i in range(0, faces.shape[0], 256):
        out = expert(faces[i : i + 256].to(device), mels[i : i + 256].to(device))
        video.append(out.face_embedding.float().cpu())
        audio.append(out.audio_embedding.float().cpu())
    return int(
        sync_scores(offset_distances(torch.cat(video), torch.cat(audio), max_offset=max_offset))["offset_frames"]
    )


def align_recording(recording: np.ndarray, offset_frames: int) -> tuple[np.ndarray, int]:
    """The recording shifted so that its sound of video frame t starts at t (``offset_frames`` > 0: it lagged, its
    first frames are dropped; < 0: it led, silence is put in front) and the samples the prediction must skip."""
    k = abs(offset_frames) * SAMPLES_PER_FRAME
    if offset_frames >= 0:
        return recording[k:], 0
    return recording, k  # the prediction's first k samples have no recording: drop them there


# -- the report -----------------------------------------------------------------------------------------------------


@dataclass
class Lip2SpeechReport:
    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.figures

    def lines(self) -> list[str]:
        f = self.figures

        def row(name: str, s: dict[str, float]) -> str:
            return (f"  {name:<9} STOI {_num(s['stoi'])}  ESTOI {_num(s['estoi'])}  PESQ-NB {_num(s['pesq_nb'], '.3f')}"
                    + (f"  mel L1 {_num(s['mel_l1'])}" if "mel_l1" in s else ""))  # fmt: skip

        aligned = f", recordings aligned by {f['align']['run']}" if f["align"] else ""
        out = [f"{f['clips']} {f['split']} clips ({f['seconds_of_speech']:.1f} s of speech) spoken by {f['run']} "
               f"({f['decoder']} decoder){aligned}"]  # fmt: skip
        out += [row("model", f["model"]), row("floor", f["floor"]), row("vocoder", f["vocoder"])]
        if f.get("diagonality") is not None:
            out.append(f"  attention diagonality {f['diagonality']:.3f} (1 = diagonal)")
        if f["align"]:
            a = f["align"]
            out.append(
                f"  offsets found: mean |offset| {a['mean_abs_offset']:.2f} frames, {a['nonzero']} clips shifted"
            )
        u = f["uncertainty"]
        if "skipped" in u:
            out.append(f"  uncertainty: {u['skipped']}")
        else:
            out.append(f"  uncertainty ({u['mc_samples']} dropout passes, {u['steps']} mel steps): Spearman(spread, "
                       f"error) {_num(u['spearman'])}, AUROC for the worst 10 % {_num(u['auroc_worst'])}")  # fmt: skip
        out.append(f"  plots and WAVs: {f['plots']}")
        out.append(f"  {f['wall_seconds']:.1f}s")
        return out


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


def _mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    out = {}
    for k in rows[0]:
        vals = [r[k] for r in rows if r[k] is not None and math.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    out["pesq_undefined"] = sum(1 for r in rows if not math.isfinite(r["pesq_nb"]))
    return out


def training_mean_mel(root: Path, front: MelFrontEnd, max_clips: int = 0) -> torch.Tensor:
    """(80,) the training clips' mel averaged over every step: the floor's one spectrum."""
    entries = read_filelist(root, "train")[: max_clips or None]
    total, steps = torch.zeros(80), 0
    for e in entries:
        mel = front(load_audio(root / e / "audio.wav"))  # (80, T_mel)
        total += mel.sum(1)
        steps += mel.shape[1]
    return total / max(steps, 1)


def evaluate_lip2speech(run_dir: str | Path, options: Lip2SpeechEvaluationOptions) -> Lip2SpeechReport:
    """Synthesise every clip of the split and score it (module docstring)."""
    from tqdm import tqdm

    from mumo.devices import resolve_device
    from mumo.tasks.lip2speech.train import load_lip2speech_model

    t0 = time.perf_counter()
    run = Run(run_dir)
    device = resolve_device(options.device)
    model = load_lip2speech_model(run_dir, device=device)
    cfg = run.config(Lip2SpeechRunConfig)
    root = options.data_root or Path(cfg.data.root)
    if not str(root) or not (root / "filelists").is_dir():
        raise MumoError(f"{root or '(none)'} is not a talking-face data set; pass --data DIR")
    aligner = load_aligner(options.align, device) if options.align else None
    entries = read_filelist(root, options.split)[: options.clips or None]
    clips = load_speech_clips(root, options.split, face_size=cfg.model.face_size, max_clips=len(entries),
                              progress=options.progress, keep_mouths=aligner is not None)  # fmt: skip
    clips = [c for c in clips if c.faces.shape[0] >= cfg.model.frames]
    if not clips:
        raise MumoError(f"no {options.split} clip of {root} is as long as one window ({cfg.model.frames} frames)")
    front = MelFrontEnd()
    floor_spectrum = training_mean_mel(root, front, cfg.data.max_clips)  # (80,)
    plots = options.plots or run.path / "plots" / f"lip2speech-{options.split}"
    plots.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict[str, float]]] = {"model": [], "floor": [], "vocoder": []}
    diag, spreads, errors, offsets, shown = [], [], [], [], []
    seconds = 0.0
    for clip in tqdm(clips, desc=f"speaking {options.split}", unit="clip", disable=not options.progress):
        speech = speak(model, clip.faces, samples=options.mc_samples, seed=options.seed)
        steps = speech.mel.shape[1]
        true_mel = clip.mel[:, :steps]
        predicted = speech.waveform()
        recording = load_audio(root / clip.name / "audio.wav").numpy()
        skip = 0
        if aligner is not None:
            offset = estimate_offset(aligner, clip.mouths, clip.mel, options.max_offset)
            offsets.append(offset)
            recording, skip = align_recording(recording, offset)
        floor = mel_to_wav(floor_spectrum[:, None].expand(80, steps))
        vocoded = mel_to_wav(true_mel)
        rows["model"].append({**speech_scores(recording, predicted[skip:]), "mel_l1": mel_l1(speech.mel, true_mel)})
        rows["floor"].append({**speech_scores(recording, floor[skip:]),
                              "mel_l1": mel_l1(floor_spectrum[:, None].expand(80, steps), true_mel)})  # fmt: skip
        rows["vocoder"].append(speech_scores(recording, vocoded[skip:]))
        diag += [attention_diagonality(a) for a in speech.alignments]
        if speech.spread is not None:
            spreads.append(speech.spread)
            errors.append((speech.mel - true_mel).abs().mean(0))  # (steps,)
        seconds += clip.faces.shape[0] / FPS
        if len(shown) < PLOTTED_CLIPS:
            shown.append((clip, speech, true_mel))
            save_wav(plots / f"{Path(clip.name).as_posix().replace('/', '_')}-generated.wav", predicted)
            save_wav(plots / f"{Path(clip.name).as_posix().replace('/', '_')}-recorded.wav", recording)
    _plot(plots, shown)
    uncertainty: dict[str, Any]
    if spreads:
        agree = spread_error_agreement(torch.cat(spreads).numpy(), torch.cat(errors).numpy())
        uncertainty = {"mc_samples": options.mc_samples, "steps": int(sum(s.numel() for s in spreads)),
                       "mean_spread": float(torch.cat(spreads).mean()), **agree}  # fmt: skip
    else:
        uncertainty = {"skipped": "no MC-dropout passes (--mc-samples 0)"}
    figures = {
        "run": str(run_dir), "decoder": cfg.model.decoder, "split": options.split, "clips": len(clips),
        "seconds_of_speech": seconds, "model": _mean_scores(rows["model"]), "floor": _mean_scores(rows["floor"]),
        "vocoder": _mean_scores(rows["vocoder"]), "diagonality": float(np.mean(diag)) if diag else None,
        "align": ({"run": str(options.align), "mean_abs_offset": float(np.mean(np.abs(offsets))),
                   "nonzero": int(np.count_nonzero(offsets)), "offsets": offsets} if aligner else None),
        "uncertainty": uncertainty, "per_clip": {k: v for k, v in rows.items()}, "plots": str(plots),
        "wall_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return Lip2SpeechReport(figures)


def _plot(folder: Path, shown: list[tuple[SpeechClip, Any, torch.Tensor]]) -> None:
    """alignments.png (each clip's first window) and spectrograms.png (true above predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not shown:
        return
    with_att = [(c, s) for c, s, _ in shown if s.alignments]
    if with_att:
        fig, axes = plt.subplots(1, len(with_att), figsize=(4 * len(with_att), 3.2), squeeze=False)
        for ax, (clip, speech) in zip(axes[0], with_att, strict=True):
            ax.imshow(speech.alignments[0].T.numpy(), origin="lower", aspect="auto", cmap="viridis")
            ax.set(title=clip.name, xlabel="decoder step", ylabel="face frame")
        fig.tight_layout()
        fig.savefig(folder / "alignments.png", dpi=100)
        plt.close(fig)
    fig, axes = plt.subplots(2, len(shown), figsize=(4 * len(shown), 5), squeeze=False)
    for k, (clip, speech, true_mel) in enumerate(shown):
        for row, (mel, what) in enumerate(((true_mel, "recorded"), (speech.mel, "generated"))):
            axes[row][k].imshow(mel.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-4, vmax=4)
            axes[row][k].set(title=f"{clip.name}: {what}", xlabel="mel step (12.5 ms)", ylabel="mel band")
    fig.tight_layout()
    fig.savefig(folder / "spectrograms.png", dpi=100)
    plt.close(fig)
