"""Training the lip-sync generator on the shared loop, and loading a trained run.

Four variants (``objective.variant``, reference §6.5), each an L1 reconstruction of the 5 target frames plus:

- ``l1``: nothing else (the generator alone);
- ``lipgan``: LipGAN's sync discriminator, trained jointly (its own optimiser step): contrastive loss with label
  0 for a real face and its mel window, 1 for a generated face with its mel window and for a real face with
  another window's mel (the batch's mels rolled by one window); the generator adds
  ``lipgan_weight * contrastive(D(G(x), mel), 0)``;
- ``expert``: the frozen lip-sync expert scores the 5 generated lower halves against the window's mel;
  ``w * sync + (1 - w) * L1``;
- ``expert+gan``: also the visual-quality discriminator on the generated lower halves (its own step: BCE, real
  1, generated 0); ``w * sync + disc_weight * BCE(D(G(x)), 1) + (1 - w - disc_weight) * L1``.

The sync weight w follows a schedule (:class:`SyncSchedule`, an epoch-end hook): 0 until the first epoch whose
validation sync loss is below ``objective.sync_threshold``, then ``sync_weight`` (``gan_sync_weight`` with the
GAN) for the rest of the run. Each epoch's record holds the weight it trained with (``sync_weight``) and the
epoch whose validation switched it on (``sync_switch_epoch``, 1-based; 0 while off, or with
``sync_from_start``); on a resume the loop replays the hook over the saved history, so the schedule is where
it was. The expert stays in eval mode with its parameters frozen: the sync loss's gradient flows through it
into the generator, and it is never updated (nor are its BatchNorm statistics).

Validation, every epoch, on fixed windows with dropout off: the L1 (``l1``), the expert's sync loss on the
generated windows (``sync_loss``, whenever ``objective.expert`` names an expert, for every variant), and
``val_loss``: the L1 for ``l1`` and ``lipgan``; for the expert variants ``w_on * sync_loss + (1 - w_on - d) *
l1`` with ``w_on`` the switched-on sync weight and ``d`` the adversarial weight (0 without the GAN). It uses the
switched-on weight whatever the schedule's state, so that epochs before and after the switch are compared on one
scale (with the schedule's weight, every epoch before the switch would look better), and leaves the adversarial
term out (its discriminator moves). The best checkpoint has the highest ``neg_val_loss`` = -``val_loss``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mumo.data.av.clips import LipSyncClip
from mumo.errors import ConfigError
from mumo.models import create_model
from mumo.models.sync_expert import SyncExpert, SyncExpertConfig, sync_loss
from mumo.models.wav2lip import (
    LipGANDiscriminator,
    VisualDiscriminator,
    Wav2Lip,
    contrastive_loss,
    generator_input,
    lower_half,
)
from mumo.runs import Run
from mumo.tasks.lipsync.config import LipSyncObjective, LipSyncRunConfig
from mumo.tasks.lipsync.data import (
    LipSyncBatch,
    LipSyncData,
    Window,
    epoch_batches,
    load_lipsync_data,
    make_batch,
    validation_windows,
)
from mumo.train.checkpoint import MODEL_NAME
from mumo.train.loop import Step, Task, fit

DISCRIMINATOR = "discriminator"  # the GAN variants' second model: discriminator.safetensors in each checkpoint
SELECT_METRIC = "neg_val_loss"


@dataclass
class SyncSchedule:
    """The sync loss's weight during training: 0 until the first epoch whose validation sync loss is below
    ``threshold``, then ``on`` for good (the reference's rule). One per task; an epoch-end hook."""

    on: float  # the weight once switched on (0: the variant has no sync loss)
    threshold: float
    weight: float = 0.0  # the weight the next epoch trains with
    switched_after: int = 0  # 1-based epoch whose validation switched it on; 0 while off (or on from the start)

    @classmethod
    def from_objective(cls, objective: LipSyncObjective) -> SyncSchedule:
        on = objective.sync_weight_on
        return cls(on=on, threshold=objective.sync_threshold, weight=on if objective.sync_from_start else 0.0)

    def __call__(self, epoch: int, record: dict[str, Any]) -> None:
        record["sync_weight"] = self.weight  # what this epoch trained with
        if self.weight == 0.0 and self.on > 0.0 and record["sync_loss"] < self.threshold:
            self.weight, self.switched_after = self.on, epoch + 1
        record["sync_switch_epoch"] = self.switched_after


def expert_input(frames: torch.Tensor) -> torch.Tensor:
    """(B, 5, 3, 96, 96) faces -> (B, 15, 48, 96): their lower halves stacked frame-major, the expert's input."""
    return rearrange(lower_half(frames), "b t c h w -> b (t c) h w")


def generate(generator: nn.Module, batch: LipSyncBatch) -> torch.Tensor:
    """(B, 5, 3, 96, 96) faces generated from the batch's masked targets, references and per-frame mels."""
    return generator(generator_input(batch.target, batch.reference), batch.mels)


def _bce(prob: torch.Tensor, label: float) -> torch.Tensor:
    """Mean BCE of probabilities against one label, in float32 outside autocast (which refuses BCE on CUDA)."""
    with torch.autocast(prob.device.type, enabled=False):
        p = prob.float().clamp(1e-7, 1.0 - 1e-7)
        return F.binary_cross_entropy(p, torch.full_like(p, label))


def expert_sync_loss(expert: SyncExpert, frames: torch.Tensor, sync_mel: torch.Tensor) -> torch.Tensor:
    """The expert's sync loss of (B, 5, 3, 96, 96) faces against their (B, 1, 80, 16) mel windows (label 1)."""
    score = expert(expert_input(frames), sync_mel).score  # (B,)
    with torch.autocast(score.device.type, enabled=False):
        return sync_loss(score.float(), torch.ones_like(score, dtype=torch.float32))


def load_expert(run_dir: str | Path, device: str | torch.device = "cpu") -> SyncExpert:
    """The best lip-sync expert of a ``mumo train sync`` run, frozen, in eval mode (CheckpointError when the run
    is not one; ConfigError when its windows are not the generator's).

    Read here from the run's files (its config's ``model`` section and ``model.safetensors``), as the sync task
    reads them, not through the sync task: the tasks stay independent of each other (docs/architecture.md).
    """
    run = Run(run_dir)
    run.require_kind(
        "sync", "a lip-sync expert (objective.expert names the `mumo train sync` run that scores the generated lips)"
    )
    expert = run.load_model(run.config_section("model", SyncExpertConfig), "best", device)
    check_expert(expert, run.path)
    return expert.requires_grad_(False)


def check_expert(expert: SyncExpert, run: str | Path = "") -> None:
    """Refuse an expert whose window is not the generator's: 5 frames of 48x96 lower halves, an 80x16 mel (``run``:
    where it was read, for the message)."""
    c = expert.cfg
    if (c.frames, c.face_height, c.face_width, c.mel_bins, c.mel_steps) != (5, 48, 96, 80, 16):
        raise ConfigError(
            f"objective.expert{f' {run}' if run else ''}: its expert scores {c.frames} frames of "
            f"{c.face_height}x{c.face_width} lower halves against {c.mel_bins}x{c.mel_steps} mel, the generator's "
            "windows are 5 frames of 48x96 and 80x16 mel"
        )


@torch.no_grad()
def validation_metrics(
    generator: nn.Module, clips: list[LipSyncClip], windows: list[Window], batch_size: int, objective: LipSyncObjective,
    expert: SyncExpert | None = None,
) -> dict[str, float]:  # fmt: skip
    """L1, the expert's sync loss (with an expert), ``val_loss`` and ``neg_val_loss`` on fixed windows, dropout off."""
    generator.eval()
    device = next(generator.parameters()).device
    if expert is not None:
        expert.to(device)
    abs_sum, pixels, scores = 0.0, 0, []
    for start in range(0, len(windows), batch_size):
        batch = make_batch(clips, windows[start : start + batch_size]).to(device)
        fake = generate(generator, batch)  # (B, 5, 3, 96, 96)
        abs_sum += float((fake.float() - batch.target).abs().sum())
        pixels += fake.numel()
        if expert is not None:
            scores.append(expert(expert_input(fake), batch.sync_mel).score.float().cpu())  # (B,)
    out = {"l1": abs_sum / pixels}
    if expert is not None:
        score = torch.cat(scores)
        out["sync_loss"] = float(sync_loss(score, torch.ones_like(score)))
    val_loss = out["l1"]
    if objective.uses_expert:
        w = objective.sync_weight_on
        d = objective.disc_weight if objective.uses_gan else 0.0
        val_loss = w * out["sync_loss"] + (1.0 - w - d) * out["l1"]
    out["val_loss"], out[SELECT_METRIC] = val_loss, -val_loss
    return out


def _steps(objective: LipSyncObjective, schedule: SyncSchedule, expert: SyncExpert | None) -> tuple[Step, ...]:
    """The optimiser steps of a variant: the generator's, then the discriminator's for the GAN variants."""
    variant, d_weight = objective.variant, objective.disc_weight

    def reconstruct(models, batch: LipSyncBatch, shared) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        fake = generate(models[MODEL_NAME], batch)  # (B, 5, 3, 96, 96)
        shared["fake"] = fake.detach()
        l1 = F.l1_loss(fake, batch.target)
        return fake, l1, {"l1": float(l1.detach())}

    def synced(fake: torch.Tensor, batch: LipSyncBatch, logs: dict[str, float]) -> torch.Tensor:
        """w * the expert's sync loss (0, and no expert pass, while the schedule holds it off)."""
        if schedule.weight == 0.0:
            return fake.new_zeros(())
        assert expert is not None
        sync = expert_sync_loss(expert.to(fake.device), fake, batch.sync_mel)
        logs["sync_loss"] = float(sync.detach())
        return schedule.weight * sync

    def l1_step(models, batch, shared):
        _, l1, logs = reconstruct(models, batch, shared)
        return l1, logs

    def expert_step(models, batch, shared):
        fake, l1, logs = reconstruct(models, batch, shared)
        return synced(fake, batch, logs) + (1.0 - schedule.weight) * l1, logs

    def expert_gan_step(models, batch, shared):
        fake, l1, logs = reconstruct(models, batch, shared)
        adv = _bce(models[DISCRIMINATOR](lower_half(fake).flatten(0, 1)), 1.0)  # (B*5, 3, 48, 96) -> scalar
        logs["adversarial"] = float(adv.detach())
        return synced(fake, batch, logs) + d_weight * adv + (1.0 - schedule.weight - d_weight) * l1, logs

    def visual_disc_step(models, batch, shared):
        disc = models[DISCRIMINATOR]
        real = disc(lower_half(batch.target).flatten(0, 1))  # (B*5,) P(real)
        fake = disc(lower_half(shared["fake"]).flatten(0, 1))  # (B*5,)
        return _bce(real, 1.0) + _bce(fake, 0.0), {}

    def lipgan_step(models, batch, shared):
        fake, l1, logs = reconstruct(models, batch, shared)
        dist = models[DISCRIMINATOR](fake.flatten(0, 1), batch.mels.flatten(0, 1))  # (B*5,)
        adv = contrastive_loss(dist, torch.zeros_like(dist))
        logs["contrastive"] = float(adv.detach())
        return l1 + objective.lipgan_weight * adv, logs

    def lipgan_disc_step(models, batch, shared):
        faces, mels = batch.target.flatten(0, 1), batch.mels.flatten(0, 1)  # (N, 3, 96, 96), (N, 1, 80, 16)
        off = batch.mels.roll(1, dims=0).flatten(0, 1)  # each window's frames with the previous window's mels
        n = faces.shape[0]
        dist = models[DISCRIMINATOR](
            torch.cat([faces, shared["fake"].flatten(0, 1), faces]), torch.cat([mels, mels, off])
        )  # (3N,): real in sync, generated, real off sync
        labels = torch.cat([faces.new_zeros(n), faces.new_ones(2 * n)])
        return contrastive_loss(dist, labels), {}

    generator_models = (MODEL_NAME,)
    if variant == "l1":
        return (Step(generator_models, l1_step),)
    if variant == "expert":
        return (Step(generator_models, expert_step),)
    if variant == "expert+gan":
        return Step(generator_models, expert_gan_step), Step((DISCRIMINATOR,), visual_disc_step)
    return Step(generator_models, lipgan_step), Step((DISCRIMINATOR,), lipgan_disc_step)


def build_lipsync_task(cfg: LipSyncRunConfig, data: LipSyncData, *, expert: SyncExpert | None = None) -> Task:
    """The loop's task for ``cfg``'s variant: the generator (the shipped model), the discriminator of a GAN
    variant (``others["discriminator"]``), the sync schedule hook and validation.

    ``expert``: an expert already loaded (frozen here, in place); default: loaded from ``objective.expert`` when
    that is set (required by the expert variants).
    """
    o, t = cfg.objective, cfg.train
    if expert is None and o.expert:
        expert = load_expert(o.expert)
    if o.uses_expert and expert is None:
        raise ConfigError(_needs_expert(o.variant))
    if expert is not None:
        check_expert(expert)
        expert.requires_grad_(False)
        expert.eval()
    torch.manual_seed(t.init_seed)
    generator = create_model(cfg.model)
    others: dict[str, nn.Module] = {}
    if o.variant == "expert+gan":
        others[DISCRIMINATOR] = VisualDiscriminator(cfg=cfg.discriminator)
    elif o.variant == "lipgan":
        others[DISCRIMINATOR] = LipGANDiscriminator(cfg=cfg.model)
    schedule = SyncSchedule.from_objective(o)
    val_windows = validation_windows(data.val, cfg.data.eval_windows, t.seed)
    num_batches = max(1, cfg.data.windows_per_epoch // t.batch_size)

    def batches(epoch: int, rank: int, world: int):
        return epoch_batches(data.train, epoch, seed=t.init_seed, num_batches=num_batches, batch_size=t.batch_size,
                             rank=rank, world=world)  # fmt: skip

    def evaluate(model: nn.Module, accelerator) -> dict[str, float]:
        return validation_metrics(model, data.val, val_windows, t.eval_batch_size, o, expert)

    return Task(
        model=generator, others=others, batches=batches, evaluate=evaluate, steps=_steps(o, schedule, expert),
        epoch_end=(schedule,) if o.uses_expert else (), batch_size=len, num_batches=num_batches,
        select_metric=SELECT_METRIC,
    )  # fmt: skip


def _needs_expert(variant: str) -> str:
    return (
        f"objective.variant={variant} needs objective.expert=RUN, a lip-sync expert run (mumo train sync); or train "
        "objective.variant=l1 or lipgan, which need none"
    )


def train_lipsync(cfg: LipSyncRunConfig, out: Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train the generator on ``cfg.data.root`` into ``out``; the summary holds the best validation figures."""
    if not cfg.data.root:
        raise ConfigError("mumo train lipsync needs data.root (or --data DIR): a talking-face data set")
    if cfg.objective.uses_expert and not cfg.objective.expert:
        raise ConfigError(_needs_expert(cfg.objective.variant))
    run = Run(out)
    with run.lock():  # one training per run directory
        cfg, resume = run.prepare(cfg, resume=resume, schema=LipSyncRunConfig)
        t0 = time.perf_counter()
        expert = load_expert(cfg.objective.expert) if cfg.objective.expert else None  # before the data: fails fast
        data = load_lipsync_data(cfg.data.root, max_clips=cfg.data.max_clips, progress=progress)
        task = build_lipsync_task(cfg, data, expert=expert)
        if not resume:
            artifacts = {"kind": "lipsync", "model": cfg.model.name, "variant": cfg.objective.variant}
            if cfg.objective.expert:
                artifacts["expert"] = str(Path(cfg.objective.expert).resolve())
            run.create(cfg, artifacts)
        result = fit(task, cfg.train, run.path, resume=resume, progress=progress)
    best = next((h for h in result.history if h["epoch"] == result.best_epoch), {})
    last = result.history[-1] if result.history else {}
    summary: dict[str, Any] = {
        "run_dir": str(out), "variant": cfg.objective.variant, "best_epoch": result.best_epoch + 1,
        "best_val_l1": best.get("l1"), "best_val_loss": best.get("val_loss"),
        "train_seconds": result.train_seconds, "train_windows_per_second": result.samples_per_second,
        "wall_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    if "sync_loss" in best:
        summary["best_val_sync_loss"] = best["sync_loss"]
    if "sync_weight" in last:  # the schedule's state after the last epoch
        summary["sync_switch_epoch"] = last["sync_switch_epoch"]
        summary["sync_weight"] = (
            cfg.objective.sync_weight_on if (cfg.objective.sync_from_start or last["sync_switch_epoch"]) else 0.0
        )
    return summary


def load_lipsync_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> Wav2Lip:
    """The trained generator of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run = Run(run_dir)
    run.require_kind("lipsync", "a lip-sync generator")
    return run.load_model(run.config(LipSyncRunConfig).model, which, device)
