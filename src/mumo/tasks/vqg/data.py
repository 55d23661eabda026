"""Question-generation data as tensors: the images, cues and questions of each split, and the one vocabulary
(questions, captions and tags share the word embedding).

A split holds images; each image has Q questions (scenes: 10; VQG-COCO: 5) and C captions. A training epoch shows
every image once with one of its questions and one of its captions, drawn from (seed, epoch); the tag cue is that
question's own tags (:func:`mumo.data.vqg.tags.question_tags`, as in the paper) and the place cue the image's
place, one-hot. Evaluation reads the first ``data.references`` questions of each image as its references, the first
one's tags as the tag cue and the first caption as the caption cue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mumo.data.text import PAD, PAD_ID, UNK, Vocab, tokenize
from mumo.data.vqg.records import VQGImage
from mumo.data.vqg.tags import question_tags
from mumo.errors import ConfigError
from mumo.tasks.vqg.config import VQGRunConfig

BOS, EOS = "<bos>", "<eos>"
BOS_ID, EOS_ID = 2, 3


@dataclass
class VQGSplit:
    """One split as tensors (N images), and its records."""

    name: str
    records: list[VQGImage]
    images: torch.Tensor  # (N, 3, S, S) uint8
    places: torch.Tensor  # (N,) long place index, -1 when the data set has none
    tag_targets: torch.Tensor  # (N, n_tags) float: which tag words the image has (the tagger's target)
    captions: torch.Tensor  # (N, C, Lc) long word ids; an image without captions has PAD rows
    questions: torch.Tensor  # (N, Q, Lq + 1) long: the words then EOS, PAD after; a missing question is all PAD
    question_tags: torch.Tensor  # (N, Q, S) long: each question's tag words, PAD in empty slots
    num_questions: torch.Tensor  # (N,) long: real questions per image

    def __len__(self) -> int:
        return self.images.shape[0]


@dataclass
class VQGData:
    """The train / val / test splits, the vocabulary, the places and the tagger's words."""

    train: VQGSplit
    val: VQGSplit
    test: VQGSplit
    vocab: Vocab
    places: list[str]
    tag_words: list[str]


def detokenize(ids: list[int], vocab: Vocab) -> str:
    """Word ids (up to EOS) -> the question as text, "?" at its end."""
    words = []
    for i in ids:
        if i in (EOS_ID, PAD_ID):
            break
        if i != BOS_ID:
            words.append(vocab.tokens[i])
    return " ".join(words) + "?" if words else ""


def build_vocab(records: list[VQGImage], tag_words: list[str]) -> Vocab:
    """PAD, UNK, BOS, EOS, then every word of the training questions, captions and tag words, by first appearance."""
    seen: dict[str, None] = {}
    for r in records:
        for text in (*r.questions, *r.captions):
            for w in tokenize(text):
                seen.setdefault(w, None)
    for t in tag_words:
        for w in tokenize(t):
            seen.setdefault(w, None)
    return Vocab([PAD, UNK, BOS, EOS, *(w for w in seen if w not in (BOS, EOS))])


def encode_words(text: str, vocab: Vocab, max_len: int) -> list[int]:
    """Word ids of ``text``, cut to ``max_len`` (unknown words -> UNK)."""
    return [vocab.index.get(w, vocab.index[UNK]) for w in tokenize(text)][:max_len]


def _pad(rows: list[list[int]], length: int) -> list[list[int]]:
    return [r + [PAD_ID] * (length - len(r)) for r in rows]


def tensorize(
    name: str, records: list[VQGImage], vocab: Vocab, places: list[str], tag_words: list[str], cfg: VQGRunConfig
) -> VQGSplit:
    """One split's records as tensors (images read from disk, resized to ``data.image_size``)."""
    from mumo.data.images import load_image

    d, slots = cfg.data, cfg.model.tag_slots
    if not records:
        raise ConfigError(f"the {name} split has no images")
    n_q = max(len(r.questions) for r in records)
    n_c = max((len(r.captions) for r in records), default=0) or 1
    questions = torch.full((len(records), n_q, d.max_question_len + 1), PAD_ID, dtype=torch.long)
    qtags = torch.full((len(records), n_q, slots), PAD_ID, dtype=torch.long)
    captions = torch.full((len(records), n_c, d.max_caption_len), PAD_ID, dtype=torch.long)
    tag_index = {t: i for i, t in enumerate(tag_words)}
    tag_targets = torch.zeros(len(records), max(len(tag_words), 1))
    place_index = {p: i for i, p in enumerate(places)}
    images = np.zeros((len(records), d.image_size, d.image_size, 3), dtype=np.uint8)
    for i, r in enumerate(records):
        images[i] = load_image(r.image, d.image_size)
        for j, q in enumerate(r.questions):
            ids = [*encode_words(q, vocab, d.max_question_len), EOS_ID]
            questions[i, j, : len(ids)] = torch.tensor(ids)
            tags = [vocab.index.get(w, vocab.index[UNK]) for w in question_tags(q, slots)]
            qtags[i, j, : len(tags)] = torch.tensor(tags)
        for j, c in enumerate(r.captions):
            ids = encode_words(c, vocab, d.max_caption_len)
            captions[i, j, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        for t in r.tags:
            if t in tag_index:
                tag_targets[i, tag_index[t]] = 1.0
    return VQGSplit(
        name=name, records=records,
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),  # (N, 3, S, S)
        places=torch.tensor([place_index.get(r.place, -1) if r.place else -1 for r in records], dtype=torch.long),
        tag_targets=tag_targets, captions=captions, questions=questions, question_tags=qtags,
        num_questions=torch.tensor([len(r.questions) for r in records], dtype=torch.long),
    )  # fmt: skip


def scenes_root(cfg: VQGRunConfig) -> Path:
    """The mumo scenes directory a config reads: ``data.root``, or the cached default set (generated on first use)."""
    from mumo.data.scenes.dataset import default_root

    return Path(cfg.data.root) if cfg.data.root else default_root()


def read_records(cfg: VQGRunConfig, split: str, max_images: int = 0) -> list[VQGImage]:
    """The records of a split of the configured data set."""
    if cfg.data.name == "scenes":
        from mumo.data.vqg.scenes import load_scenes_vqg

        return load_scenes_vqg(scenes_root(cfg), split, max_images=max_images)
    from mumo.data.vqg.coco import load_vqg_coco

    if not cfg.data.root:
        raise ConfigError("data.name=vqg-coco needs data.root (or --data-root DIR): the VQG-COCO release's folder")
    images = [p for p in cfg.data.images.split(",") if p] or None
    captions = [p for p in cfg.data.captions.split(",") if p] or None
    if captions is None:  # COCO's caption files where the release's folder keeps them, when there
        captions = sorted(str(p) for p in (Path(cfg.data.root) / "annotations").glob("captions_*.json")) or None
    return load_vqg_coco(cfg.data.root, split, images=images, captions=captions, max_images=max_images)


def _subset(records: list[VQGImage], n: int, seed: int) -> list[VQGImage]:
    if not n or n >= len(records):
        return records
    keep = sorted(np.random.default_rng(seed).choice(len(records), n, replace=False).tolist())
    return [records[i] for i in keep]


def load_vqg_data(cfg: VQGRunConfig, *, splits: tuple[str, ...] = ("train", "val", "test")) -> VQGData:
    """The configured data set's splits as tensors, with the vocabulary built on the training split."""
    d = cfg.data
    train_records = _subset(read_records(cfg, "train"), d.max_train_images, cfg.train.seed)
    places = sorted({r.place for r in train_records if r.place})
    tag_words = sorted({t for r in train_records for t in r.tags})
    if "place" in cfg.model.cues and not places:
        raise ConfigError("model.cues reads the place, but the data set has no place labels")
    vocab = build_vocab(train_records, tag_words)
    out = {"train": tensorize("train", train_records, vocab, places, tag_words, cfg)}
    for split in splits:
        if split != "train":
            out[split] = tensorize(split, read_records(cfg, split, d.max_eval_images), vocab, places, tag_words, cfg)
    return VQGData(out["train"], out.get("val", out["train"]), out.get("test", out["train"]), vocab, places, tag_words)
