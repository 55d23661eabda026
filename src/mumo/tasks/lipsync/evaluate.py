"""``mumo evaluate`` for lip-sync generator runs: how well the generated lips follow the speech as an independent
expert sees them, how close the generated faces are to the real ones, and whether the generator's uncertainty
points at its errors.

Protocol (reference §6.2, §6.6). Every clip of the split (held-out speakers; the first N with ``--clips``) is
generated frame by frame with dropout off:

- frames: every frame whose mel window (the generator's per-frame window, 16 steps from floor(80 f / 25), as in
  training) lies inside the audio, generated in 5-frame windows starting at frames 0, 5, 10, ..., the last window
  right-aligned to the last such frame (Wav2Lip's inference; a frame two windows hold keeps the later one's face);
- reference: each window's reference is the 5-frame window half the clip away (start ``(f + L // 2) mod L`` among
  the clip's L window starts), so every frame's reference is another frame of the same clip, **never the target
  frame itself**. Wav2Lip's inference passes the target frame as its own reference: scored against the real
  frames, that hands the generator the real mouth and inflates the in-sync reconstruction figures (PSNR, SSIM and
  the L1 the uncertainty is checked against). A clip needs 6 frames or more for this;
- the generated frames are rounded to 8 bits, as a written video would be, and every figure is measured on them.

Two settings:

- **in sync**, the clip's own audio: LSE-D, LSE-C and the AV offset of the generated clip (every 5-frame window's
  lower halves against the mel windows around it, :func:`mumo.metrics.sync.offset_distances` and
  :func:`~mumo.metrics.sync.sync_scores`, as ``mumo sync`` scores a clip), the same figures for the real clip over
  the same frames beside them, and PSNR and SSIM (``torchmetrics.functional``, per frame, data range 1, averaged)
  of the generated frames against the real ones, on the whole 96x96 faces and on their lower halves;
- **dubbing**, another speaker's audio: that of the next evaluated clip (in filelist order, cyclically) whose
  speaker is another, repeated or cut to the clip's own audio length; LSE-D, LSE-C and offset only (there are no
  real frames to compare with). A split with one speaker among the evaluated clips has no dubbing figures.

Per setting: the means over clips of LSE-D, LSE-C and |offset|, and the share of clips whose offset is within
±1 frame. Offsets are mumo's convention (positive: the audio lags the video).

The scorer is a lip-sync expert run (``--scorer``) that is **not** the expert the generator trained against
(``objective.expert``): that directory, or a run whose weights file is byte for byte one of that expert's
checkpoints, is refused, since the generator was optimised to please exactly that expert. As with ``mumo sync``,
the figures come from mumo's expert (unit embeddings, Euclidean distance), not the original SyncNet: they compare
mumo runs scored by the same scorer, not published LSE numbers.

Uncertainty (``mc_samples`` T > 0, default 5): the generator's dropout sampled T times on the in-sync inputs, its
normalisation in eval mode (:func:`mumo.uncertainty.mc_dropout.mc_forward`; only the lower halves are kept). A
frame's uncertainty is the mean over its lower half of the per-pixel standard deviation of the T faces; it is
checked against the frame's error, the mean L1 of the (deterministic) generated lower half against the real one,
by the Spearman rank correlation over every frame evaluated (positive: less sure where it is more wrong).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mumo.data.av.clips import FRAMES_PER_WINDOW, LipSyncClip, load_clips
from mumo.errors import ConfigError, MumoError
from mumo.models.sync_expert import SyncExpert
from mumo.models.wav2lip import generator_input, lower_half, mask_lower_half
from mumo.runs import Run
from mumo.tasks.lipsync.config import LipSyncRunConfig
from mumo.tasks.lipsync.data import Window, make_batch, num_generator_windows
from mumo.tasks.lipsync.train import generate, load_expert, load_lipsync_model
from mumo.train.checkpoint import MODEL_NAME

SPLITS = ("val", "test")  # the held-out speakers
DEFAULT_MC_SAMPLES = 5
NEEDS_SCORER = (
    "mumo evaluate on a lip-sync generator run needs --scorer SYNC_RUN: a lip-sync expert run (mumo train sync) "
    "other than the one the generator trained against, to measure LSE-D / LSE-C independently"
)
# what `mumo evaluate` offers VQA runs and a lip-sync generator run does not take (their "off" values)
_VQA_ONLY = {
    "mc_scope": "all", "ood": None, "pixel_noise": None, "feature_noise": None, "corruption": None, "severity": None,
    "abstain": None, "temperature": "auto", "ensemble": (), "results_json": None,
}  # fmt: skip
SHEET_DPI = 120  # the contact sheet: one inch (120 px) per face, one inch of row labels, half an inch of titles


@dataclass(frozen=True)
class LipSyncEvaluationOptions:
    """How a lip-sync generator run is evaluated; checked when built, before any model is loaded."""

    scorer: Path | None = None  # required: the lip-sync expert run that scores LSE (not the training expert)
    split: str = "test"  # val or test (held-out speakers)
    clips: int | None = None  # the split's first N clips only; None = all
    mc_samples: int = DEFAULT_MC_SAMPLES  # T dropout samples for the uncertainty; 0 = off
    data_root: Path | None = None  # the talking-face data set; None = the run's data.root
    sheet: Path | None = None  # write a contact sheet (PNG) here
    sheet_clips: int = 2  # clips on the contact sheet
    sheet_frames: int = 4  # frames of each, evenly spaced
    max_offset: int = 15  # offsets searched for LSE, in frames (the reference: 15)
    batch_size: int = 16  # 5-frame windows per generator call
    seed: int = 0  # of the dropout masks
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.scorer is None or not str(self.scorer):
            raise ConfigError(NEEDS_SCORER)
        object.__setattr__(self, "scorer", Path(self.scorer))
        if self.data_root is not None:
            object.__setattr__(self, "data_root", Path(self.data_root))
        if self.sheet is not None:
            object.__setattr__(self, "sheet", Path(self.sheet))
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be 'val' or 'test' for a lip-sync generator run, not {self.split!r}")
        if self.clips is not None and self.clips < 1:
            raise ConfigError(f"--clips must be >= 1, not {self.clips}")
        if self.mc_samples != 0:
            from mumo.uncertainty.mc_dropout import check_num_samples

            t = self.mc_samples
            if isinstance(t, bool) or not isinstance(t, int) or t < 2:
                raise ConfigError(f"--mc-samples must be 0 (off) or at least 2 (a spread needs two), not {t!r}")
            check_num_samples(t)  # the upper limit
        for key in ("sheet_clips", "sheet_frames", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, not {getattr(self, key)}")
        if self.max_offset < 0:
            raise ConfigError(f"max_offset must be >= 0, not {self.max_offset}")


def evaluation_options(**options: Any) -> LipSyncEvaluationOptions:
    """The options of ``mumo evaluate`` for a lip-sync generator run; a VQA-only option that is set is refused."""
    for key, off in _VQA_ONLY.items():
        value = options.pop(key, off)
        if value not in (off, None) and not (isinstance(value, tuple | list) and not value):
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} is a VQA option; a lip-sync generator run does not take it")
    if options.pop("images", None) is not None:
        raise ConfigError("--images counts a split's images; a lip-sync generator run takes --clips N")
    for key in ("density_images", "question_bank"):
        options.pop(key, None)
    if options.get("mc_samples", 0) is None:
        options.pop("mc_samples")
    return LipSyncEvaluationOptions(**options)


# -- the scorer ----------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_directory(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them is gone: compare the names
        return a.resolve() == b.resolve()


def training_expert(run: Run, cfg: LipSyncRunConfig) -> Path | None:
    """The expert run a generator trained against (``artifacts.json``'s resolved path, else ``objective.expert``);
    None when it trained against none."""
    named = run.artifacts.get("expert") or cfg.objective.expert
    return Path(named) if named else None


def check_scorer(run: Run, cfg: LipSyncRunConfig, scorer: Path) -> dict[str, Any]:
    """Refuse a scorer that is not a lip-sync expert run, or is the generator's training expert: the same directory,
    or a best checkpoint whose ``model.safetensors`` is byte for byte one of that expert's checkpoints.

    Returns:
        What the report says about the scorer: ``run``, ``sha256`` (of its weights file), ``training_expert`` and
        ``weights_compared`` (False when the training expert's directory is gone).
    """
    scorer_run = Run(scorer)
    scorer_run.require_kind(
        "sync", "a lip-sync expert (--scorer names the `mumo train sync` run that scores the generated lips)"
    )
    digest = _sha256(scorer_run.checkpoint("best") / f"{MODEL_NAME}.safetensors")
    expert = training_expert(run, cfg)
    out: dict[str, Any] = {"run": str(scorer), "sha256": digest, "training_expert": str(expert) if expert else None,
                           "weights_compared": False}  # fmt: skip
    if expert is None:
        return out
    if _same_directory(scorer, expert):
        raise ConfigError(
            f"--scorer {scorer} is the expert this generator trained against (objective.expert): it would grade the "
            "generator by the examiner it was trained to please; score with another sync run (e.g. another train.seed)"
        )
    if (expert / "checkpoints").is_dir():
        for weights in sorted((expert / "checkpoints").glob(f"*/{MODEL_NAME}.safetensors")):
            if _sha256(weights) == digest:
                raise ConfigError(
                    f"--scorer {scorer} holds the same weights as the expert this generator trained against "
                    f"({weights}): score with another sync run (e.g. another train.seed)"
                )
        out["weights_compared"] = True
    return out


def load_scorer(scorer: Path, device: str | torch.device = "cpu") -> SyncExpert:
    """The scorer's best expert, frozen, in eval mode (ConfigError when its windows are not the generator's)."""
    try:
        return load_expert(scorer, device)
    except ConfigError:
        raise ConfigError(
            f"--scorer {scorer}: its expert does not score the generator's windows (5 frames of 48x96 lower halves "
            "against 80x16 mel)"
        ) from None


@torch.no_grad()
def sync_figures(scorer: SyncExpert, clip: LipSyncClip, *, max_offset: int = 15, batch_size: int = 256) -> dict:
    """LSE-D, LSE-C and the AV offset of a clip by ``scorer``, as ``mumo sync`` scores one: every 5-frame window's
    lower halves against the mel windows ``offset`` frames later (:func:`mumo.metrics.sync.offset_distances`,
    :func:`mumo.metrics.sync.sync_scores`). Returns ``offset_frames``, ``lse_d``, ``lse_c`` and ``windows``."""
    from mumo.metrics.sync import offset_distances, sync_scores

    faces, mels = clip.windows()  # (W, 15, 48, 96), (W, 1, 80, 16)
    device = next(scorer.parameters()).device
    scorer.eval()
    video, audio = [], []
    for i in range(0, faces.shape[0], batch_size):
        out = scorer(faces[i : i + batch_size].to(device), mels[i : i + batch_size].to(device))
        video.append(out.face_embedding.float().cpu())  # (b, E)
        audio.append(out.audio_embedding.float().cpu())  # (b, E)
    res = sync_scores(offset_distances(torch.cat(video), torch.cat(audio), max_offset=max_offset))
    return {"offset_frames": int(res["offset_frames"]), "lse_d": float(res["lse_d"]), "lse_c": float(res["lse_c"]),
            "windows": int(faces.shape[0])}  # fmt: skip


# -- generating a clip ---------------------------------------------------------------------------------------------


def generated_frames(clip: LipSyncClip) -> int:
    """How many frames of a clip are generated: those whose mel window lies inside the audio (frames 0..G-1)."""
    n = num_generator_windows(clip)
    return n + FRAMES_PER_WINDOW - 1 if n > 0 else 0


def evaluation_windows(clip: LipSyncClip) -> list[Window]:
    """The 5-frame windows that generate every frame of a clip, each with its reference window half the clip away
    (module docstring): frame f + k takes frame r + k as its reference, and r != f, so never itself.

    Raises:
        MumoError: the clip has fewer than 6 frames (no other time of it to take a reference from) or no frame
            with a mel window.
    """
    g, n = generated_frames(clip), int(clip.mouths.shape[0])
    starts_with_faces = n - FRAMES_PER_WINDOW + 1  # L: every window start with 5 faces (a reference needs no audio)
    if g < FRAMES_PER_WINDOW or starts_with_faces < 2:
        raise MumoError(
            f"clip {clip.name!r} has {n} frames ({g} with a mel window): generating it with a reference from another "
            "time of the clip needs 6 frames or more, 5 of them with audio"
        )
    starts = list(range(0, g - FRAMES_PER_WINDOW + 1, FRAMES_PER_WINDOW))
    if starts[-1] + FRAMES_PER_WINDOW < g:
        starts.append(g - FRAMES_PER_WINDOW)  # the last window right-aligned to the last frame with audio
    shift = starts_with_faces // 2  # in [1, L - 1]: the reference window is never the target window
    return [Window(0, f, (f + shift) % starts_with_faces) for f in starts]


@dataclass
class GeneratedClip:
    """A clip generated frame by frame (dropout off), beside its real frames."""

    name: str
    generated: torch.Tensor  # (G, 3, 96, 96) float in [0, 1], rounded to 8 bits
    real: torch.Tensor  # (G, 3, 96, 96) float in [0, 1]: the clip's frames 0..G-1
    reference: torch.Tensor  # (G,) long: the frame whose face was each generated frame's reference
    mel: torch.Tensor  # (80, T_mel): the audio the frames were generated from
    uncertainty: torch.Tensor | None = None  # (G, 48, 96): lower-half per-pixel std over T dropout samples

    @staticmethod
    def _clip(name: str, frames: torch.Tensor, mel: torch.Tensor) -> LipSyncClip:
        faces = frames.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # (G, 96, 96, 3)
        return LipSyncClip(name, faces[:, faces.shape[1] // 2 :], mel, faces=faces)

    def as_clip(self) -> LipSyncClip:
        """The generated frames as a clip with the audio they were generated from (what the scorer reads)."""
        return self._clip(self.name, self.generated, self.mel)

    def real_clip(self) -> LipSyncClip:
        """The real frames 0..G-1 with the same audio."""
        return self._clip(self.name, self.real, self.mel)

    def frame_uncertainty(self) -> torch.Tensor | None:
        """(G,) each frame's mean lower-half std (None without dropout samples)."""
        return None if self.uncertainty is None else self.uncertainty.mean(dim=(1, 2))

    def frame_error(self) -> torch.Tensor:
        """(G,) each frame's mean L1 of the generated lower half against the real one."""
        return (lower_half(self.generated) - lower_half(self.real)).abs().mean(dim=(1, 2, 3))


def generate_clip(
    generator: nn.Module, clip: LipSyncClip, *, mel: torch.Tensor | None = None, mc_samples: int = 0, seed: int = 0,
    batch_size: int = 16,
) -> GeneratedClip:  # fmt: skip
    """Generate every frame of a clip from its audio (or ``mel``, another (80, T_mel) track), dropout off; with
    ``mc_samples`` T also each frame's lower-half per-pixel std over T dropout samples (normalisation in eval).

    The windows and references are :func:`evaluation_windows`; each frame's mel window is the one the generator
    was trained with (:func:`mumo.tasks.lipsync.data.make_batch`).
    """
    from mumo.uncertainty.mc_dropout import mc_forward

    source = clip if mel is None else LipSyncClip(clip.name, clip.mouths, mel, faces=clip.faces)
    windows = evaluation_windows(source)
    g = windows[-1].frame + FRAMES_PER_WINDOW
    s = int(clip.mouths.shape[2])  # 96
    generated, reference = torch.zeros(g, 3, s, s), torch.zeros(g, dtype=torch.long)
    spread = torch.zeros(g, s // 2, s) if mc_samples else None
    offsets = torch.arange(FRAMES_PER_WINDOW)
    device = next(generator.parameters()).device
    generator.eval()
    for start in range(0, len(windows), batch_size):
        chunk = windows[start : start + batch_size]
        batch = make_batch([source], chunk).to(device)
        with torch.no_grad():
            fake = generate(generator, batch).float().cpu()  # (B, 5, 3, S, S)
            std = None
            if mc_samples:
                samples = mc_forward(generator, generator_input(batch.target, batch.reference), batch.mels,
                                     num_samples=mc_samples, seed=seed * 1_000_003 + start,
                                     output_fn=lower_half)  # fmt: skip  # (T, B, 5, 3, S/2, S)
                std = samples.float().std(dim=0).mean(dim=2).cpu()  # (B, 5, S/2, S), mean over colour
        for j, w in enumerate(chunk):
            frames = w.frame + offsets  # (5,)
            generated[frames], reference[frames] = fake[j], w.reference + offsets
            if spread is not None:
                spread[frames] = std[j]
    generated = generated.mul(255).round().div(255)  # 8 bits, as a written video
    real = clip.faces[:g].permute(0, 3, 1, 2).float().div(255)  # (G, 3, S, S)
    return GeneratedClip(clip.name, generated, real, reference, source.mel, spread)


def image_quality(generated: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """PSNR (dB) and SSIM of (N, 3, S, S) generated faces in [0, 1] against the real ones, per frame and averaged
    (``torchmetrics.functional``, data range 1), on the whole faces and on their lower halves."""
    try:
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
    except ImportError:
        raise MumoError("the lip-sync evaluation's PSNR and SSIM need torchmetrics: pip install torchmetrics") from None

    out = {}
    for suffix, (a, b) in {"": (generated, real), "_lower": (lower_half(generated), lower_half(real))}.items():
        a, b = a.contiguous(), b.contiguous()
        out[f"psnr{suffix}"] = float(peak_signal_noise_ratio(a, b, data_range=1.0, dim=(1, 2, 3)))
        out[f"ssim{suffix}"] = float(structural_similarity_index_measure(a, b, data_range=1.0))
    return out


def dubbing_source(names: list[str], i: int) -> int | None:
    """The clip whose audio dubs clip ``i``: the next one (cyclically) whose speaker (``speaker/clip``) is another."""
    speaker = names[i].split("/")[0]
    for k in range(1, len(names)):
        j = (i + k) % len(names)
        if names[j].split("/")[0] != speaker:
            return j
    return None


def fit_length(mel: torch.Tensor, steps: int) -> torch.Tensor:
    """(80, T) mel repeated end to end, or cut, to (80, steps)."""
    reps = math.ceil(steps / mel.shape[1])
    return mel.repeat(1, reps)[:, :steps].clone()


# -- the contact sheet ---------------------------------------------------------------------------------------------


def contact_sheet_size(columns: int, rows: int) -> tuple[int, int]:
    """(width, height) in pixels of a contact sheet of ``columns`` frames and ``rows`` rows."""
    return SHEET_DPI * (columns + 1), SHEET_DPI * rows + SHEET_DPI // 2


def save_contact_sheet(path: Path, columns: list[dict[str, Any]]) -> Path:
    """A PNG with one column per frame and rows real / masked input / generated (/ uncertainty when every column has
    a map), written atomically (:func:`mumo.metrics.figures.save_figure`).

    Each column: ``title``, ``real``, ``generated`` ((3, S, S) in [0, 1]) and ``uncertainty`` ((S/2, S) or None).
    """
    from matplotlib import colormaps

    from mumo.metrics.figures import new_figure, save_figure

    with_map = all(c["uncertainty"] is not None for c in columns)
    top = max((float(c["uncertainty"].max()) for c in columns), default=0.0) if with_map else 0.0
    names = ["real", "masked input", "generated"] + ([f"uncertainty\n(MC std,\n0 to {top:.2g})"] if with_map else [])
    width, height = contact_sheet_size(len(columns), len(names))
    w_in, h_in = width / SHEET_DPI, height / SHEET_DPI  # inches: one per face, one for the labels, 0.5 for titles
    fig = new_figure((w_in, h_in))
    cmap = colormaps["magma"]
    for r, name in enumerate(names):
        y = (len(names) - 1 - r) / h_in  # the row's bottom edge (figure fraction), rows from the top
        fig.text(0.5 / w_in, y + 0.5 / h_in, name, ha="center", va="center", fontsize=7)
        for c, col in enumerate(columns):
            if r == 0:
                image = col["real"]  # (3, S, S)
            elif r == 1:
                image = mask_lower_half(col["real"])
            elif r == 2:
                image = col["generated"]
            else:  # the generated face dimmed to grey, its lower half the map
                image = col["generated"].mean(0, keepdim=True).expand(3, -1, -1) * 0.4  # (3, S, S)
                heat = cmap((col["uncertainty"] / max(top, 1e-12)).numpy())[..., :3]  # (S/2, S, 3)
                image[:, image.shape[1] // 2 :] = torch.from_numpy(heat).float().permute(2, 0, 1)
            ax = fig.add_axes(((c + 1.04) / w_in, y + 0.02 / h_in, 0.92 / w_in, 0.92 / h_in))
            ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(col["title"], fontsize=5)
    return save_figure(fig, path)


def _sheet_columns(gen: GeneratedClip, frames: int) -> list[dict[str, Any]]:
    picks = torch.linspace(0, gen.generated.shape[0] - 1, frames).round().long().unique().tolist()
    return [
        {"title": f"{gen.name} f{g} (ref {int(gen.reference[g])})", "real": gen.real[g], "generated": gen.generated[g],
         "uncertainty": None if gen.uncertainty is None else gen.uncertainty[g]}
        for g in picks
    ]  # fmt: skip


# -- the evaluation ------------------------------------------------------------------------------------------------


def _setting(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over clips of LSE-D, LSE-C and |offset|, and the share of clips within ±1 frame."""
    offsets = [abs(r["offset_frames"]) for r in rows]
    return {
        "clips": len(rows), "lse_d": sum(r["lse_d"] for r in rows) / len(rows),
        "lse_c": sum(r["lse_c"] for r in rows) / len(rows), "abs_offset": sum(offsets) / len(rows),
        "within_one_frame": sum(o <= 1 for o in offsets) / len(rows),
    }  # fmt: skip


def _spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation (scipy); NaN when either is constant."""
    from scipy.stats import spearmanr

    if x.numel() < 2 or bool((x == x[0]).all()) or bool((y == y[0]).all()):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(x.double().numpy(), y.double().numpy()).statistic)


@dataclass
class LipSyncReport:
    """Every figure of a lip-sync generator run on a split (``figures``: the keys of ``mumo evaluate --json``)."""

    figures: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return self.figures

    def lines(self) -> list[str]:
        f = self.figures

        def lse(s: dict[str, Any]) -> str:
            return (f"LSE-D {s['lse_d']:.4f}  LSE-C {s['lse_c']:.4f}  |offset| {s['abs_offset']:.2f}  "
                    f"within ±1 frame {s['within_one_frame']:.0%}")  # fmt: skip

        def num(x: float | None, fmt: str) -> str:
            return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)

        s = f["scorer"]
        out = [
            f"{f['clips']} {f['split']} clips ({f['frames']} frames) generated by {f['run']} ({f['variant']}), scored "
            f"by {s['run']}" + (f" (it trained against {s['training_expert']})" if s["training_expert"] else ""),
            f"  in sync, generated: {lse(f['in_sync']['generated'])}",
            f"  in sync, real:      {lse(f['in_sync']['real'])}",
        ]
        if s["training_expert"] and not s["weights_compared"]:
            out.append(f"  (the training expert {s['training_expert']} is not there: its weights were not compared)")
        q = f["in_sync"]["image_quality"]
        out.append(f"  generated vs real: PSNR {num(q['psnr'], '.2f')} dB, SSIM {num(q['ssim'], '.4f')}; lower half "
                   f"PSNR {num(q['psnr_lower'], '.2f')} dB, SSIM {num(q['ssim_lower'], '.4f')}")  # fmt: skip
        d = f["dubbing"]
        out.append(f"  dubbed, generated:  {lse(d['generated'])}" if "generated" in d else f"  dubbing: {d['skipped']}")
        u = f["uncertainty"]
        if "skipped" in u:
            out.append(f"  uncertainty: {u['skipped']}")
        else:
            out.append(f"  uncertainty ({u['mc_samples']} dropout samples): mean lower-half std "
                       f"{u['mean']:.3g}, Spearman with the L1 error {num(u['spearman_error'], '.3f')} over "
                       f"{u['frames']} frames")  # fmt: skip
        if f.get("sheet"):
            out.append(f"  contact sheet: {f['sheet']}")
        out.append(f"  {f['seconds']:.1f}s")
        return out


def evaluate_lipsync(run_dir: str | Path, options: LipSyncEvaluationOptions) -> LipSyncReport:
    """Generate every clip of the split in sync and dubbed, and score it (module docstring)."""
    from mumo.devices import resolve_device

    t0 = time.perf_counter()
    run = Run(run_dir)
    run.require_kind("lipsync", "a lip-sync generator")
    cfg = run.config(LipSyncRunConfig)
    scorer_info = check_scorer(run, cfg, options.scorer)
    root = options.data_root or (Path(cfg.data.root) if cfg.data.root else None)
    if root is None:
        raise ConfigError("the run's config names no data.root: pass the talking-face data set with --data DIR")
    device = resolve_device(options.device)
    generator = load_lipsync_model(run.path, device=device)
    scorer = load_scorer(options.scorer, device)
    mc = options.mc_samples if cfg.model.dropout > 0 else 0
    loaded = load_clips(root, options.split, max_clips=options.clips or 0, progress=options.progress, keep_faces=True)
    usable = [generated_frames(c) >= FRAMES_PER_WINDOW and c.mouths.shape[0] > FRAMES_PER_WINDOW for c in loaded]
    clips = [c for c, ok in zip(loaded, usable, strict=True) if ok]
    if not clips:
        raise MumoError(
            f"no clip of the {options.split} split of {root} has 6 frames or more, 5 of them with audio: nothing to "
            "generate with a reference from another time of the clip"
        )
    names = [c.name for c in clips]
    rows, uncertainty, error, sheet = [], [], [], []
    for i, clip in enumerate(tqdm(clips, desc=f"evaluating {options.split}", disable=not options.progress,
                                  leave=False)):  # fmt: skip
        gen = generate_clip(generator, clip, mc_samples=mc, seed=options.seed + i, batch_size=options.batch_size)
        err = gen.frame_error()  # (G,)
        row: dict[str, Any] = {
            "clip": clip.name, "frames": int(gen.generated.shape[0]),
            "in_sync": sync_figures(scorer, gen.as_clip(), max_offset=options.max_offset),
            "real": sync_figures(scorer, gen.real_clip(), max_offset=options.max_offset),
            "image_quality": image_quality(gen.generated, gen.real), "l1_lower": float(err.mean()),
        }  # fmt: skip
        if mc:
            u = gen.frame_uncertainty()  # (G,)
            uncertainty.append(u)
            error.append(err)
            row["uncertainty"] = float(u.mean())
        j = dubbing_source(names, i)
        if j is not None:
            dub = generate_clip(generator, clip, mel=fit_length(clips[j].mel, clip.mel.shape[1]),
                                batch_size=options.batch_size)  # fmt: skip
            row["dubbing"] = {"audio": names[j], **sync_figures(scorer, dub.as_clip(), max_offset=options.max_offset)}
        if options.sheet is not None and i < options.sheet_clips:
            sheet += _sheet_columns(gen, options.sheet_frames)
        rows.append(row)

    quality = {k: sum(r["image_quality"][k] for r in rows) / len(rows) for k in rows[0]["image_quality"]}
    dubbed = [r["dubbing"] for r in rows if "dubbing" in r]
    figures: dict[str, Any] = {
        "run": str(run.path), "variant": cfg.objective.variant, "split": options.split, "data_root": str(root),
        "clips": len(rows), "frames": sum(r["frames"] for r in rows),
        "skipped_clips": [c.name for c, ok in zip(loaded, usable, strict=True) if not ok],
        "scorer": scorer_info, "max_offset": options.max_offset,
        "reference": "the 5-frame window half the clip away: never the target frame itself",
        "in_sync": {"generated": _setting([r["in_sync"] for r in rows]), "real": _setting([r["real"] for r in rows]),
                    "image_quality": quality, "l1_lower": sum(r["l1_lower"] for r in rows) / len(rows)},
        "dubbing": {"generated": _setting(dubbed), "audio": "another speaker's clip of the split, repeated or cut"}
                   if dubbed else {"skipped": "every evaluated clip has the same speaker: no other speaker's audio"},
    }  # fmt: skip
    if mc:
        u, e = torch.cat(uncertainty), torch.cat(error)
        figures["uncertainty"] = {"mc_samples": mc, "mean": float(u.mean()), "spearman_error": _spearman(u, e),
                                  "frames": int(u.numel()), "measure": "mean lower-half per-pixel std over the samples",
                                  "error": "mean L1 of the generated lower half against the real one"}  # fmt: skip
    elif options.mc_samples:
        figures["uncertainty"] = {"mc_samples": 0, "skipped": "the generator has no dropout (model.dropout=0)"}
    else:
        figures["uncertainty"] = {"mc_samples": 0, "skipped": "off (--mc-samples 0)"}
    figures["per_clip"] = rows
    figures["sheet"] = str(save_contact_sheet(options.sheet, sheet)) if options.sheet is not None else None
    figures["seconds"] = time.perf_counter() - t0
    return LipSyncReport(figures)
