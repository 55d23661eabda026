"""The lip-sync expert task: training on the shared loop, loading a run, scoring a clip's sync.

Training pairs are sampled per epoch from (seed, epoch): half in sync, half with the mel window of
another frame of the same clip (reference §6.4). Validation uses a fixed seeded set of pairs and
reports the BCE (``eval_loss``; the reference expert reaches ~0.25 on LRS2, chance is ln 2 = 0.69)
and the pair accuracy at 0.5.

Scoring a clip (``mumo sync``): every 5-frame window's face embedding against the audio embeddings
of the windows ``offset`` frames later, for offsets −15..15 (:mod:`mumo.metrics.sync`). Offsets are
mumo's convention: positive = the audio lags the video. LSE-D / LSE-C are computed like the
reference evaluation, but with this expert's embeddings (unit vectors, Euclidean distance), so their
values are not comparable with numbers from the original SyncNet.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.data.av.clips import LipSyncClip, SharedSpeakersWarning, SyncBatch, load_clips, sample_pairs, shared_speakers
from mumo.devices import is_main_process
from mumo.errors import ConfigError
from mumo.models import create_model
from mumo.models.sync_expert import SyncExpert, sync_loss
from mumo.runs import Run
from mumo.tasks.sync.config import SyncRunConfig
from mumo.train.loop import Task, fit


def _eval_metrics(model: nn.Module, batch: SyncBatch, batch_size: int = 256) -> dict[str, float]:
    model.eval()
    device = next(model.parameters()).device
    scores = []
    with torch.no_grad():
        for i in range(0, len(batch), batch_size):
            scores.append(model(batch.faces[i : i + batch_size].to(device), batch.mels[i : i + batch_size].to(device))
                          .score.float().cpu())  # fmt: skip
    score = torch.cat(scores)
    loss = float(sync_loss(score, batch.labels))
    acc = float(((score > 0.5).float() == batch.labels).float().mean())
    return {"eval_loss": loss, "accuracy": acc}


def build_sync_task(cfg: SyncRunConfig, train: list[LipSyncClip], val: list[LipSyncClip]) -> Task:
    t = cfg.train
    torch.manual_seed(t.init_seed)
    model = create_model(cfg.model)
    val_pairs = sample_pairs(val, cfg.data.eval_pairs, torch.Generator().manual_seed(t.seed + 1),
                             min_shift=cfg.data.min_shift)  # fmt: skip
    per_batch = t.batch_size
    num_batches = max(1, cfg.data.pairs_per_epoch // per_batch)

    def batches(epoch: int, rank: int, world: int) -> list[SyncBatch]:
        gen = torch.Generator().manual_seed(t.init_seed * 1_000_003 + epoch * 7919 + 17)
        out = [sample_pairs(train, per_batch, gen, min_shift=cfg.data.min_shift) for _ in range(num_batches)]
        return out[rank::world]

    def loss_fn(m: nn.Module, b: SyncBatch) -> tuple[torch.Tensor, dict[str, float]]:
        return sync_loss(m(b.faces, b.mels).score, b.labels), {}

    return Task(
        model=model, batches=batches, loss_fn=loss_fn,
        evaluate=lambda m, acc: _eval_metrics(m, val_pairs), batch_size=len, num_batches=num_batches,
        select_metric="accuracy",
    )  # fmt: skip


def train_sync(cfg: SyncRunConfig, out: Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train the expert on ``cfg.data.root`` into ``out``; evaluates the best checkpoint on the test clips."""
    if not cfg.data.root:
        raise ConfigError("mumo train sync needs data.root (or --data DIR): a talking-face data set")
    run = Run(out)
    with run.lock():  # one training per run directory; refused at once when another holds it
        return _train_sync(run, cfg, resume=resume, progress=progress)


def _train_sync(run: Run, cfg: SyncRunConfig, *, resume: bool, progress: bool) -> dict[str, Any]:
    out = run.path
    cfg, resume = run.prepare(cfg, resume=resume, schema=SyncRunConfig)
    t0 = time.perf_counter()
    root = Path(cfg.data.root)
    train = load_clips(root, "train", max_clips=cfg.data.max_clips, progress=progress)
    val = load_clips(root, "val", max_clips=cfg.data.max_clips, progress=progress)
    _warn_if_speakers_shared(root)  # once the clips have been read: a set that cannot be read gets its error alone
    task = build_sync_task(cfg, train, val)
    if not resume:
        run.create(cfg, {"kind": "sync", "model": cfg.model.name})
    out.mkdir(parents=True, exist_ok=True)
    result = fit(task, cfg.train, out, resume=resume, progress=progress)
    best = max(result.history, key=lambda h: h["accuracy"]) if result.history else {}
    summary: dict[str, Any] = {
        "run_dir": str(out), "best_epoch": result.best_epoch + 1, "best_val_eval_loss": best.get("eval_loss"),
        "best_val_accuracy": best.get("accuracy"), "train_seconds": result.train_seconds,
        "train_pairs_per_second": result.samples_per_second,
    }  # fmt: skip
    if result.best_epoch >= 0 and is_main_process():
        test = load_clips(root, "test", max_clips=cfg.data.max_clips, progress=progress)
        pairs = sample_pairs(test, cfg.data.eval_pairs, torch.Generator().manual_seed(cfg.train.seed + 2),
                             min_shift=cfg.data.min_shift)  # fmt: skip
        res = _eval_metrics(load_sync_expert(out), pairs)
        summary["test_eval_loss"], summary["test_accuracy"] = res["eval_loss"], res["accuracy"]
    summary["wall_seconds"] = time.perf_counter() - t0
    return summary


def _warn_if_speakers_shared(root: Path) -> None:
    """A SharedSpeakersWarning when val or test holds speakers that train has (a set split by clip): the expert
    trains, but its val/test figures then say nothing about people it has not seen, and an expert that is to
    score other people's lips (a lip-sync generator's) needs a set split by speaker."""
    shared = shared_speakers(root)
    if shared:
        said = "; ".join(f"{split} {len(names)} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                         for split, names in shared.items())  # fmt: skip
        warnings.warn(
            f"{root} is not split by speaker: speakers of its training clips are also in {said}, as in a "
            "single-speaker set (mumo data talking-faces --speakers 1, split by clip). The expert's val and test "
            "figures are then for unseen clips of seen speakers; to score other people's lips, train it on a set "
            "split by speaker (mumo data talking-faces with --speakers 3 or more, or mumo data preprocess)",
            SharedSpeakersWarning,
            stacklevel=3,
        )


def load_sync_expert(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> SyncExpert:
    """The trained expert of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run = Run(run_dir)
    run.require_kind("sync", "a lip-sync expert")
    return run.load_model(run.config(SyncRunConfig).model, which, device)


def score_clip(
    model: SyncExpert, clip: LipSyncClip, *, max_offset: int = 15, mc_samples: int | None = None, seed: int = 0
) -> dict[str, Any]:
    """Offset, LSE-D, LSE-C and the sync probability (with its MC-dropout spread) of one clip.

    The encoders run once: the deterministic embeddings (dropout off) and the T dropout samples of the
    score share the model's trunk.
    """
    from mumo.metrics.sync import offset_distances, sync_scores

    faces, mels = clip.windows()
    device = next(model.parameters()).device
    faces, mels = faces.to(device), mels.to(device)  # (W, 15, 48, 96), (W, 1, 80, 16)
    model.eval()
    with torch.no_grad():
        state = model.trunk(faces, mels)
        det = model.head(state)
        res = sync_scores(offset_distances(det.face_embedding.cpu(), det.audio_embedding.cpu(), max_offset=max_offset))
        out = {
            "offset_frames": int(res["offset_frames"]), "lse_d": float(res["lse_d"]), "lse_c": float(res["lse_c"]),
            "sync_probability": float(det.score.mean()), "windows": int(det.score.shape[0]),
            "skipped_frames": len(clip.skipped_frames),
            "mean_distance_per_offset": [float(x) for x in res["mean_distance_per_offset"]],
        }  # fmt: skip
        if mc_samples:
            from mumo.uncertainty.mc_dropout import mc_forward

            samples = mc_forward(model, faces, mels, num_samples=mc_samples, seed=seed, state=state,
                                 output_fn=lambda o: o.score)  # fmt: skip  # (T, W)
            per_sample = samples.mean(1)  # (T,) the clip's sync probability under each dropout sample
            out["sync_probability_mc"] = float(per_sample.mean())
            out["sync_probability_std"] = float(per_sample.std())
            out["mc_samples"] = mc_samples
    return out


def shift_clip(clip: LipSyncClip, offset: int) -> LipSyncClip:
    """The clip with its audio delayed by ``offset`` frames (advanced when negative), same length: the
    mel is rolled by round(3.2 * offset) steps with the vacated steps at the silence floor (−4)."""
    steps = round(offset * 80 / 25)
    mel = torch.full_like(clip.mel, -4.0)
    if steps >= 0:
        mel[:, steps:] = clip.mel[:, : clip.mel.shape[1] - steps]
    else:
        mel[:, :steps] = clip.mel[:, -steps:]
    return LipSyncClip(f"{clip.name}@{offset:+d}", clip.mouths, mel, list(clip.skipped_frames))


def sync_video(
    run_dir: str | Path,
    video: str | Path,
    audio: str | Path | None = None,
    *,
    mc_samples: int | None = 20,
    seed: int = 0,
    device: str = "auto",
) -> dict[str, Any]:
    """``mumo sync``: score a real video (faces detected) against its own or a separate audio track, with
    the expert on ``device`` (``auto``: a GPU if there is one)."""
    from mumo.data.av.clips import read_video_clip

    model = load_sync_expert(run_dir, device=device)
    t0 = time.perf_counter()
    clip = read_video_clip(video, audio=audio)
    res = score_clip(model, clip, mc_samples=mc_samples if model.cfg.dropout > 0 else None, seed=seed)
    res["video"] = str(video)
    res["seconds"] = time.perf_counter() - t0
    return res
