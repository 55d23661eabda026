"""Training the lip-to-speech model on the shared loop, and loading a trained run.

One optimiser step per batch minimises the reference's loss (:func:`mumo.models.lip2wav.lip2wav_loss`) with
teacher forcing: batch i of epoch e is optimiser step ``e * batches_per_epoch + i``, whose teacher-forcing ratio
is :func:`mumo.models.lip2wav.teacher_forcing_ratio` of that step; the batch carries its own uniform draws, one per
decoder step, so a resumed run feeds the decoder exactly what the uninterrupted one did.

Validation, every epoch, on fixed windows with dropout off but the prenet's (on at inference, as in Tacotron 2;
seeded, so every epoch's validation draws the same masks): ``mel_l1`` of the free-running prediction (no teacher
forcing: what synthesis produces), ``loss_forced`` (the training loss with full teacher forcing) and, for the
attention decoder, ``diagonality`` of the alignments (the attention mass near the diagonal, 1 = diagonal). The
best checkpoint has the lowest free-running ``mel_l1`` (``neg_mel_l1`` highest).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.errors import ConfigError
from mumo.metrics.speech import attention_diagonality
from mumo.models import create_model
from mumo.models.lip2wav import Lip2Wav, lip2wav_loss, teacher_forcing_ratio
from mumo.runs import Run
from mumo.tasks.lip2speech.config import Lip2SpeechObjective, Lip2SpeechRunConfig
from mumo.tasks.lip2speech.data import (
    Lip2SpeechData,
    SpeechBatch,
    SpeechClip,
    epoch_batches,
    load_lip2speech_data,
    make_batch,
    validation_windows,
)
from mumo.train.loop import Task, fit

SELECT_METRIC = "neg_mel_l1"
VALIDATION_SEED = 1234  # the prenet's dropout masks during validation


@torch.no_grad()
def validation_metrics(model: Lip2Wav, clips: list[SpeechClip], windows: list[tuple[int, int]], batch_size: int,
                       objective: Lip2SpeechObjective) -> dict[str, float]:  # fmt: skip
    """Free-running mel L1, the teacher-forced loss and the alignments' diagonality on fixed windows."""
    model.eval()
    device = next(model.parameters()).device
    frames = model.cfg.frames
    l1_sum, forced_sum, diag_sum, n = 0.0, 0.0, 0.0, 0
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(VALIDATION_SEED)
        for start in range(0, len(windows), batch_size):
            batch = make_batch(clips, windows[start : start + batch_size], frames).to(device)
            k = len(batch)
            out = model(batch.faces)  # free running
            l1_sum += float((out.mel - batch.mel).abs().mean()) * k
            if out.alignments is not None:
                diag_sum += sum(attention_diagonality(a) for a in out.alignments.float().cpu())
            forced = model(batch.faces, targets=batch.mel, teacher_forcing=1.0)
            forced_sum += float(lip2wav_loss(forced, batch.mel)) * k
            n += k
    metrics = {"mel_l1": l1_sum / n, "loss_forced": forced_sum / n}
    if model.cfg.decoder == "tacotron":
        metrics["diagonality"] = diag_sum / n
    metrics[SELECT_METRIC] = -metrics["mel_l1"]
    return metrics


def build_lip2speech_task(cfg: Lip2SpeechRunConfig, data: Lip2SpeechData) -> Task:
    """The loop's task: the model, its loss with scheduled teacher forcing, and validation."""
    t, o, m = cfg.train, cfg.objective, cfg.model
    torch.manual_seed(t.init_seed)
    model = create_model(m)
    val = validation_windows(data.val, cfg.data.eval_windows, m.frames, t.seed)
    num_batches = max(1, cfg.data.windows_per_epoch // t.batch_size)
    decoder_steps = m.mel_steps // m.outputs_per_step

    def batches(epoch: int, rank: int, world: int):
        return epoch_batches(data.train, epoch, frames=m.frames, decoder_steps=decoder_steps, seed=t.init_seed,
                             num_batches=num_batches, batch_size=t.batch_size, rank=rank, world=world)  # fmt: skip

    def loss_fn(model: nn.Module, batch: SpeechBatch) -> tuple[torch.Tensor, dict[str, float]]:
        ratio = teacher_forcing_ratio(batch.step, start=o.teacher_forcing_start, decay_steps=o.teacher_forcing_decay,
                                      final=o.teacher_forcing_final)  # fmt: skip
        out = model(batch.faces, targets=batch.mel, teacher_forcing=ratio, draws=batch.draws)
        loss = lip2wav_loss(out, batch.mel, model, l2=o.l2)
        return loss, {"teacher_forcing": ratio, "mel_l1": float((out.mel.detach() - batch.mel).abs().mean())}

    def evaluate(model: nn.Module, accelerator) -> dict[str, float]:
        return validation_metrics(model, data.val, val, t.eval_batch_size, o)

    return Task(model=model, batches=batches, evaluate=evaluate, loss_fn=loss_fn, batch_size=len,
                num_batches=num_batches, select_metric=SELECT_METRIC)  # fmt: skip


def train_lip2speech(cfg: Lip2SpeechRunConfig, out: Path, *, resume: bool = False,
                     progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train on ``cfg.data.root`` into ``out``; the summary holds the best validation figures."""
    if not cfg.data.root:
        raise ConfigError(
            "mumo train lip2speech needs data.root (or --data DIR): a talking-face set of one speaker, e.g. from "
            "`mumo data talking-faces --speakers 1`"
        )
    run = Run(out)
    with run.lock():  # one training per run directory
        cfg, resume = run.prepare(cfg, resume=resume, schema=Lip2SpeechRunConfig)
        t0 = time.perf_counter()
        data = load_lip2speech_data(cfg.data.root, frames=cfg.model.frames, face_size=cfg.model.face_size,
                                    max_clips=cfg.data.max_clips, progress=progress)  # fmt: skip
        task = build_lip2speech_task(cfg, data)
        if not resume:
            run.create(cfg, {"kind": "lip2speech", "model": cfg.model.name, "decoder": cfg.model.decoder})
        result = fit(task, cfg.train, run.path, resume=resume, progress=progress)
    best = next((h for h in result.history if h["epoch"] == result.best_epoch), {})
    summary: dict[str, Any] = {
        "run_dir": str(out), "decoder": cfg.model.decoder, "best_epoch": result.best_epoch + 1,
        "best_val_mel_l1": best.get("mel_l1"), "best_val_diagonality": best.get("diagonality"),
        "train_seconds": result.train_seconds, "train_windows_per_second": result.samples_per_second,
        "wall_seconds": time.perf_counter() - t0,
    }  # fmt: skip
    return summary


def load_lip2speech_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> Lip2Wav:
    """The trained model of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run = Run(run_dir)
    run.require_kind("lip2speech", "a lip-to-speech model (mumo train lip2speech)")
    return run.load_model(run.config(Lip2SpeechRunConfig).model, which, device)
