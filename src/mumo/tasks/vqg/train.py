"""Training MC-BMN on the shared loop, and loading a trained run.

The loss per batch: the word cross-entropy of the teacher-forced question (mean over real words), plus
``objective.place_weight`` x the place head's cross-entropy and ``objective.tag_weight`` x the tagger's binary
cross-entropy when the image is a cue. Validation reports the word log-likelihood per word (``log_likelihood``,
which picks the best checkpoint), the teacher-forced word accuracy, and the heads' place accuracy and tag F1.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mumo.data.text import PAD_ID, Vocab
from mumo.errors import CheckpointError
from mumo.models import create_model
from mumo.models.vqg_bmn import VQGBMN, Cues, ImageFeatures
from mumo.runs import Run
from mumo.tasks.vqg.config import VQGRunConfig
from mumo.tasks.vqg.data import BOS_ID, EOS_ID, VQGData, VQGSplit, load_vqg_data
from mumo.train.loop import Task, fit

VOCAB_FILE = "vocab.json"  # the words, places and tag words a run was trained with


@dataclass
class VQGBatch:
    """B images, each with one question; what the model reads and what it is scored against."""

    images: torch.Tensor  # (B, 3, S, S) float in [0, 1]; (B, 0) when ``features`` stand in for them
    cues: Cues
    tokens: torch.Tensor  # (B, L) BOS then the question's words (teacher forcing)
    targets: torch.Tensor  # (B, L) the words then EOS; PAD is ignored
    places: torch.Tensor  # (B,) the place index, -1 for none
    tag_targets: torch.Tensor  # (B, n_tags)
    features: ImageFeatures | None = None  # a frozen encoder's output, computed once (see frozen_features)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device) -> VQGBatch:
        cues = Cues(*(c.to(device) if c is not None else None for c in self.cues))
        features = None if self.features is None else ImageFeatures(*(f.to(device) for f in self.features))
        return VQGBatch(self.images.to(device), cues, self.tokens.to(device), self.targets.to(device),
                        self.places.to(device), self.tag_targets.to(device), features)  # fmt: skip


def one_hot_places(places: torch.Tensor, num_places: int) -> torch.Tensor:
    """(B,) place indices (-1: none) -> (B, P) one-hot rows (all zero for none)."""
    out = torch.zeros(places.shape[0], max(num_places, 1))
    known = places >= 0
    out[known, places[known]] = 1.0
    return out


def make_batch(split: VQGSplit, idx: torch.Tensor, question: torch.Tensor, caption: torch.Tensor,
               num_places: int, features: ImageFeatures | None = None) -> VQGBatch:  # fmt: skip
    """A batch of images ``idx`` (B,) with question ``question`` (B,) and caption ``caption`` (B,) of each; with
    ``features`` (the split's, from :func:`frozen_features`) the batch carries their rows instead of the pixels."""
    targets = split.questions[idx, question]  # (B, Lq + 1): words, EOS, PAD
    tokens = torch.cat([torch.full((idx.shape[0], 1), BOS_ID), targets[:, :-1]], dim=1)  # (B, Lq + 1)
    tokens = tokens.masked_fill(tokens == EOS_ID, PAD_ID)  # EOS is never an input
    cues = Cues(
        place=one_hot_places(split.places[idx], num_places),
        caption=split.captions[idx, caption],  # (B, Lc)
        tags=split.question_tags[idx, question],  # (B, S)
    )
    if features is None:
        images, rows = split.images[idx].float() / 255.0, None
    else:
        images, rows = torch.zeros(idx.shape[0], 0), ImageFeatures(features.pooled[idx], features.regions[idx])
    return VQGBatch(images, cues, tokens, targets, split.places[idx], split.tag_targets[idx], rows)


def epoch_choices(split: VQGSplit, gen: torch.Generator, repeats: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``repeats`` questions (repeats, N) and captions (repeats, N) per image: the first question drawn uniformly
    from what each image has, the next ones its successors (distinct while the image has that many), the captions
    uniformly."""
    n = len(split)
    first = (torch.rand(n, generator=gen) * split.num_questions.float()).long()  # (N,)
    step = torch.arange(repeats).unsqueeze(1)  # (repeats, 1)
    question = (first.unsqueeze(0) + step) % split.num_questions.clamp_min(1).unsqueeze(0)  # (repeats, N)
    caption = torch.randint(0, split.captions.shape[1], (repeats, n), generator=gen)  # (repeats, N)
    return question, caption


@torch.no_grad()
def frozen_features(model: VQGBMN, split: VQGSplit, batch_size: int) -> ImageFeatures:
    """The frozen image encoder's features of every image of ``split``, computed once on the CPU: a training over a
    frozen encoder (``model.freeze_image``) reads these instead of running the encoder every epoch."""
    was_training = model.training
    model.eval()
    pooled, regions = [], []
    for start in range(0, len(split), batch_size):
        f = model.image_features(split.images[start : start + batch_size].float() / 255.0)
        pooled.append(f.pooled)
        regions.append(f.regions)
    model.train(was_training)
    return ImageFeatures(torch.cat(pooled), torch.cat(regions))  # (N, 2C), (N, R, C)


def vqg_loss(model: nn.Module, batch: VQGBatch, cfg: VQGRunConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Word cross-entropy + the heads' losses (``objective``)."""
    m: VQGBMN = model.module if hasattr(model, "module") else model  # accelerate may wrap it
    features = batch.features
    if features is None and "image" in m.uses:
        features = m.image_features(batch.images)
    context = m.encode(features, batch.cues)
    logits, _ = m.step(batch.tokens, context, m.start(context))  # (B, L, V)
    words = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=PAD_ID)
    loss, logs = words, {"word_loss": float(words.detach())}
    if features is not None:
        place_logits, tag_logits = m.heads(features)
        if cfg.objective.place_weight and bool((batch.places >= 0).any()):
            place = F.cross_entropy(place_logits, batch.places, ignore_index=-1)
            loss = loss + cfg.objective.place_weight * place
            logs["place_loss"] = float(place.detach())
        if cfg.objective.tag_weight and batch.tag_targets.sum() > 0:
            tag = F.binary_cross_entropy_with_logits(tag_logits, batch.tag_targets)
            loss = loss + cfg.objective.tag_weight * tag
            logs["tag_loss"] = float(tag.detach())
    return loss, logs


@torch.no_grad()
def validation_metrics(model: VQGBMN, split: VQGSplit, num_places: int, batch_size: int,
                       features: ImageFeatures | None = None) -> dict[str, float]:  # fmt: skip
    """Teacher-forced on every image's first question and caption, dropout off (``features``: the split's, from a
    frozen encoder)."""
    model.eval()
    device = next(model.parameters()).device
    nll, correct, words, place_hits, place_n, tp, fp, fn = 0.0, 0, 0, 0, 0, 0.0, 0.0, 0.0
    zeros = torch.zeros(len(split), dtype=torch.long)
    for start in range(0, len(split), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(split)))
        b = make_batch(split, idx, zeros[idx], zeros[idx], num_places, features).to(device)
        feats = b.features
        if feats is None and "image" in model.uses:
            feats = model.image_features(b.images)
        context = model.encode(feats, b.cues)
        logits, _ = model.step(b.tokens, context, model.start(context))  # (B, L, V)
        real = b.targets != PAD_ID  # (B, L)
        nll += float(F.cross_entropy(logits[real], b.targets[real], reduction="sum"))
        correct += int((logits.argmax(-1) == b.targets)[real].sum())
        words += int(real.sum())
        if feats is not None:
            place_logits, tag_logits = model.heads(feats)
            known = b.places >= 0
            place_hits += int((place_logits.argmax(1) == b.places)[known].sum())
            place_n += int(known.sum())
            pred = tag_logits > 0
            tp += float((pred & (b.tag_targets > 0)).sum())
            fp += float((pred & (b.tag_targets == 0)).sum())
            fn += float((~pred & (b.tag_targets > 0)).sum())
    out = {"log_likelihood": -nll / max(words, 1), "word_accuracy": correct / max(words, 1)}
    if place_n:
        out["place_accuracy"] = place_hits / place_n
    if tp + fp + fn > 0:
        out["tag_f1"] = 2 * tp / (2 * tp + fp + fn)
    return out


def init_image_encoder(model: VQGBMN, cfg: VQGRunConfig) -> None:
    """Start the image encoder from the grid CNN of the VQA run ``model.image_init`` (ConfigError when it is not a
    VQA run over a grid CNN of this shape and image size)."""
    from safetensors.torch import load_file

    from mumo.errors import ConfigError
    from mumo.train.checkpoint import MODEL_NAME

    run = Run(cfg.model.image_init)
    run.require_kind("vqa", "a VQA model (model.image_init names the VQA run whose grid CNN starts the generator)")
    theirs, mine = run.config_section("model"), cfg.model
    image_size = run.config_section("data").get("image_size")
    wanted = {"image_encoder": "cnn", "cnn_channels": list(mine.cnn_channels), "cnn_pool": mine.cnn_pool,
              "cnn_skip": mine.cnn_skip}  # fmt: skip
    differ = [f"{k}={theirs.get(k)!r} (here {v!r})" for k, v in wanted.items() if theirs.get(k) != v]
    if image_size != cfg.data.image_size:
        differ.append(f"data.image_size={image_size!r} (here {cfg.data.image_size})")
    if differ:
        raise ConfigError(f"model.image_init: {run.path}'s image encoder does not fit this one: {'; '.join(differ)}")
    weights = load_file(run.checkpoint("best") / f"{MODEL_NAME}.safetensors")
    body = {k.removeprefix("image_encoder."): v for k, v in weights.items() if k.startswith("image_encoder.body.")}
    missing, _ = model.image_encoder.load_state_dict(body, strict=False)
    if [k for k in missing if not k.startswith("proj.")]:
        raise ConfigError(f"model.image_init: {run.path} lacks image-encoder weights: {', '.join(missing[:3])}")


def build_vqg_task(cfg: VQGRunConfig, data: VQGData) -> Task:
    t = cfg.train
    torch.manual_seed(t.init_seed)
    model = create_model(cfg.model, vocab_size=len(data.vocab), num_places=len(data.places),
                         num_tags=len(data.tag_words))  # fmt: skip
    if cfg.model.image_init:
        init_image_encoder(model, cfg)
    train, repeats = data.train, cfg.data.questions_per_image
    num_batches = -(-len(train) * repeats // t.batch_size)
    frozen = cfg.model.freeze_image and "image" in model.uses
    train_features = frozen_features(model, train, t.eval_batch_size) if frozen else None
    val_features = frozen_features(model, data.val, t.eval_batch_size) if frozen else None

    def batches(epoch: int, rank: int, world: int) -> list[VQGBatch]:
        gen = torch.Generator().manual_seed(t.init_seed * 1_000_003 + epoch * 7919 + 23)
        order = torch.randperm(len(train) * repeats, generator=gen)  # (N * repeats,) over (repeat, image) pairs
        question, caption = (c.flatten() for c in epoch_choices(train, gen, repeats))  # (repeats * N,)
        out = [make_batch(train, pick % len(train), question[pick], caption[pick], len(data.places), train_features)
               for pick in order.split(t.batch_size)]  # fmt: skip
        return out[rank::world]

    return Task(
        model=model, batches=batches, loss_fn=lambda m, b: vqg_loss(m, b, cfg),
        evaluate=lambda m, acc: validation_metrics(acc.unwrap_model(m), data.val, len(data.places),
                                                   t.eval_batch_size, val_features),
        batch_size=len, num_batches=num_batches, select_metric="log_likelihood",
    )  # fmt: skip


def save_vocab(run: Run, data: VQGData) -> None:
    """The words, places and tag words of the run (``vocab.json``), written atomically."""
    from mumo.train.checkpoint import atomic_write_text

    text = json.dumps({"words": data.vocab.tokens, "places": data.places, "tag_words": data.tag_words})
    atomic_write_text(run.path / VOCAB_FILE, text)


def read_vocab(run_dir: str | Path) -> tuple[Vocab, list[str], list[str]]:
    """The words, places and tag words a run was trained with."""
    path = Path(run_dir) / VOCAB_FILE
    if not path.is_file():
        raise CheckpointError(f"incomplete question-generation run: {path} is missing")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Vocab(data["words"]), list(data["places"]), list(data["tag_words"])


def train_vqg(cfg: VQGRunConfig, out: Path, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train MC-BMN into ``out``; the summary holds the best validation figures."""
    run = Run(out)
    with run.lock():  # one training per run directory
        cfg, resume = run.prepare(cfg, resume=resume, schema=VQGRunConfig)
        t0 = time.perf_counter()
        data = load_vqg_data(cfg, splits=("train", "val"))
        task = build_vqg_task(cfg, data)
        if not resume:
            run.create(cfg, {"kind": "vqg", "model": cfg.model.name})
            save_vocab(run, data)
        result = fit(task, cfg.train, run.path, resume=resume, progress=progress)
    best = max(result.history, key=lambda h: h["log_likelihood"]) if result.history else {}
    summary: dict[str, Any] = {
        "run_dir": str(out), "best_epoch": result.best_epoch + 1, "train_seconds": result.train_seconds,
        "train_images_per_second": result.samples_per_second, "wall_seconds": time.perf_counter() - t0,
        **{f"best_val_{k}": v for k, v in best.items() if k in ("log_likelihood", "word_accuracy", "place_accuracy",
                                                                 "tag_f1")},
    }  # fmt: skip
    return summary


def load_vqg_model(run_dir: str | Path, which: str = "best", device: str | torch.device = "cpu") -> VQGBMN:
    """The trained generator of a run, in eval mode, on ``device`` (``auto``: a GPU if there is one)."""
    run = Run(run_dir)
    run.require_kind("vqg", "a question generator")
    cfg = run.config(VQGRunConfig)
    vocab, places, tag_words = read_vocab(run.path)
    return run.load_model(cfg.model, which, device, vocab_size=len(vocab), num_places=len(places),
                          num_tags=len(tag_words))  # fmt: skip
