"""MC-BMN: a question generator that reads an image and its cues through a Bayesian mixture of experts (reference §5).

Patro et al., "Deep Bayesian Network for Visual Question Generation" (WACV 2020). Each cue (place, caption, tags)
is fused with the image by its own expert; a moderator, gated on the image, weighs the experts' advice; an LSTM
decoder writes the question from the mixture. Every dropout keeps sampling at inference (MC dropout, normalisation
in eval): T passes give T questions per image, and the spread of their word distributions is the model's
uncertainty.

Encoders (sizes: ``hidden`` H, ``word_dim`` E; the image feature is the grid CNN's mean- and max-pooled cells, 2C):

- image: per expert its own copy of Linear(2C -> H) -> Tanh -> Dropout (the paper's one copy per expert);
- place: a probability vector over the places (one-hot when given, the place head's softmax when predicted)
  -> Linear -> Tanh -> Dropout;
- caption: shared word embedding -> Dropout -> ``caption_layers`` stacked LSTM(H), the last real token's state;
- tags: ``tag_slots`` words, each through the shared embedding, concatenated -> Linear -> Tanh -> Dropout.

Experts (with the image; without it, in the cue-only rows of the ablation, an expert reads its cue alone):
caption: image ⊙ caption, tag: image + tags, place: [image; place]; each -> BatchNorm -> Tanh -> Dropout ->
Linear(-> H). With the image as the only cue there is one expert, the image's own. The moderator is
softmax(Linear(2C -> K)(image)), restricted per row to the experts whose cue is present (a missing cue drops its
expert and the others' weights are renormalised); without the image, K learned logits.

Decoder: an LSTM(H) whose state starts from the mixture and whose input at every step is the previous word beside
the mixture; Dropout -> Linear(H -> vocabulary). With ``attention`` (mumo's addition; the paper's NeuralTalk2-style
decoder has none) each step also attends over the image's grid cells (additive attention on the LSTM's output, as
in Show, Attend and Tell) and the word is read from [output; attended cells]: the questions' referring expressions
("the small red star left of the ring") then look at the objects they name instead of a pooled image vector.

Heads trained with the model (when the image is a cue): a place classifier and a multi-label tagger over the image
feature, which supply the place and tag cues a user does not give.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import torch
from torch import nn

from mumo.data.text import PAD_ID
from mumo.errors import ConfigError
from mumo.models.encoders import GridCNN

CUES = ("image", "place", "caption", "tag")
EXPERTS = ("place", "caption", "tag")  # in this order in the moderator's weights
DROPOUT_KINDS = ("bernoulli", "gaussian")


@dataclass
class VQGConfig:
    """MC-BMN's sizes and cues; a VQG run's ``model`` section (``vqg-cpu`` preset: CPU sizes; ``vqg-paper``: 512)."""

    name: str = "vqg_bmn"  # registry name of the model
    cues: list[str] = field(default_factory=lambda: list(CUES))  # what the generator reads: image, place, caption, tag
    hidden: int = 256  # H: every cue encoding, expert and the decoder LSTM (512 in the paper)
    word_dim: int = 128  # E: the word embedding shared by captions, tags and questions
    caption_layers: int = 2  # stacked LSTMs of the caption encoder
    tag_slots: int = 3  # tag words read (the paper: 3)
    dropout: float = 0.5  # every dropout (the paper: Bernoulli p = 0.5, kept on at inference)
    dropout_kind: str = "bernoulli"  # "bernoulli" or "gaussian" (multiplicative N(1, p / (1 - p)) noise)
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # the image encoder's conv blocks
    cnn_pool: int = 4  # blocks that halve the resolution (64 px -> 4x4 grid at 4, 8x8 at 3)
    cnn_skip: bool = False  # append the first block's features, max-pooled to the grid (a hypercolumn, as MCAN's)
    attention: bool = False  # the decoder attends over the grid cells at every word (needs the image cue)
    # a VQA run on the same images whose grid CNN starts the image encoder (its cnn_channels, cnn_pool and cnn_skip
    # must be these); "" = trained from scratch
    image_init: str = ""
    freeze_image: bool = False  # keep the image encoder as initialised (no gradient, BatchNorm in eval)

    def __post_init__(self) -> None:
        cues = list(self.cues)
        unknown = [c for c in cues if c not in CUES]
        if unknown or not cues or len(set(cues)) != len(cues):
            raise ConfigError(f"model.cues must be distinct names among {', '.join(CUES)}, not {self.cues}")
        for key in ("hidden", "word_dim", "caption_layers", "tag_slots"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, not {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must lie in [0, 1), not {self.dropout}")
        if self.dropout_kind not in DROPOUT_KINDS:
            kinds = ", ".join(DROPOUT_KINDS)
            raise ConfigError(f"model.dropout_kind must be one of {kinds}, not {self.dropout_kind!r}")
        if not self.cnn_channels or any(c < 1 for c in self.cnn_channels):
            raise ConfigError(f"model.cnn_channels must be one or more widths >= 1, not {self.cnn_channels}")
        if not 0 <= self.cnn_pool <= len(self.cnn_channels):
            raise ConfigError(f"model.cnn_pool must be between 0 and len(model.cnn_channels), not {self.cnn_pool}")
        if (self.image_init or self.freeze_image) and "image" not in cues:
            raise ConfigError("model.image_init and model.freeze_image need the image cue in model.cues")
        if self.freeze_image and not self.image_init:
            raise ConfigError("model.freeze_image keeps an initialised encoder: set model.image_init to a VQA run")

    @property
    def experts(self) -> tuple[str, ...]:
        """The experts the cues make: one per non-image cue, or the image's own when it is the only cue."""
        named = tuple(e for e in EXPERTS if e in self.cues)
        return named or ("image",)


class GaussianDropout(nn.Module):
    """Multiplicative Gaussian noise N(1, p / (1 - p)) in training (and MC) mode: the mean and variance of
    inverted Bernoulli dropout at rate p (Srivastava et al. 2014, §10); the identity in eval mode."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * (1.0 + math.sqrt(self.p / (1.0 - self.p)) * torch.randn_like(x))


def _dropout(cfg: VQGConfig) -> nn.Module:
    return GaussianDropout(cfg.dropout) if cfg.dropout_kind == "gaussian" else nn.Dropout(cfg.dropout)


class Cues(NamedTuple):
    """What the generator reads besides the image; ``None`` for a cue not given to any row. A row without a
    caption has an all-PAD caption, a row without tags all-PAD tags, a row without a place an all-zero place."""

    place: torch.Tensor | None = None  # (B, P) probabilities over the places
    caption: torch.Tensor | None = None  # (B, Lc) word ids, PAD-padded
    tags: torch.Tensor | None = None  # (B, S) word ids, PAD for an empty slot


class ImageFeatures(NamedTuple):
    """What the grid CNN makes of the images (deterministic: no dropout)."""

    pooled: torch.Tensor  # (B, 2C) mean- and max-pooled cells
    regions: torch.Tensor  # (B, R, C) every grid cell, row-major


class Context(NamedTuple):
    """The encoded image and cues: what the decoder starts from, the moderator's weights, the cells it attends."""

    mixture: torch.Tensor  # (B, H)
    gates: torch.Tensor  # (B, K) the moderator's weights over ``cfg.experts`` (0 for a dropped expert)
    regions: torch.Tensor | None = None  # (B, R, H) projected grid cells (``attention`` only)


class Expert(nn.Module):
    """Fusion -> BatchNorm -> Tanh -> Dropout -> Linear(-> H) (reference §5)."""

    def __init__(self, in_dim: int, cfg: VQGConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.BatchNorm1d(in_dim), nn.Tanh(), _dropout(cfg), nn.Linear(in_dim, cfg.hidden))

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.net(fused)  # (B, in) -> (B, H)


class VQGBMN(nn.Module):
    """The Bayesian multi-cue moderator network; ``forward`` is teacher-forced, :meth:`step` decodes one word."""

    def __init__(self, cfg: VQGConfig, *, vocab_size: int, num_places: int, num_tags: int) -> None:
        super().__init__()
        self.cfg = cfg
        h, e = cfg.hidden, cfg.word_dim
        self.uses = set(cfg.cues)
        self.embed = nn.Embedding(vocab_size, e, padding_idx=PAD_ID)  # shared: captions, tags, questions
        if "image" in self.uses:
            self.image_encoder = GridCNN(channels=cfg.cnn_channels, pool=cfg.cnn_pool, out_dim=1, skip=cfg.cnn_skip)
            if cfg.freeze_image:
                self.image_encoder.requires_grad_(False)
            c2 = 2 * self.image_encoder.out_channels  # mean- and max-pooled cells
            self.image_proj = nn.ModuleDict(
                {k: nn.Sequential(nn.Linear(c2, h), nn.Tanh(), _dropout(cfg)) for k in cfg.experts}
            )
            self.gate = nn.Linear(c2, len(cfg.experts))
            self.place_head = nn.Linear(c2, max(num_places, 1))  # supplies the place cue when not given
            self.tag_head = nn.Linear(c2, max(num_tags, 1))  # supplies the tags when not given
        else:
            self.gate_logits = nn.Parameter(torch.zeros(len(cfg.experts)))
        if "place" in self.uses:
            self.place_encoder = nn.Sequential(nn.Linear(max(num_places, 1), h), nn.Tanh(), _dropout(cfg))
        if "caption" in self.uses:
            self.caption_drop = _dropout(cfg)
            self.caption_lstm = nn.LSTM(e, h, num_layers=cfg.caption_layers, batch_first=True)
        if "tag" in self.uses:
            self.tag_encoder = nn.Sequential(nn.Linear(cfg.tag_slots * e, h), nn.Tanh(), _dropout(cfg))
        with_image = "image" in self.uses
        in_dims = {"place": 2 * h if with_image else h, "caption": h, "tag": h, "image": h}
        self.experts = nn.ModuleDict({k: Expert(in_dims[k], cfg) for k in cfg.experts})
        self.init_state = nn.Linear(h, 2 * h)
        self.decoder = nn.LSTM(e + h, h, batch_first=True)
        self.attends = cfg.attention and with_image
        if self.attends:
            self.region_proj = nn.Linear(self.image_encoder.out_channels, h)
            self.att_regions, self.att_words, self.att_score = nn.Linear(h, h), nn.Linear(h, h), nn.Linear(h, 1)
        self.out_drop = _dropout(cfg)
        self.out = nn.Linear(2 * h if self.attends else h, vocab_size)

    def train(self, mode: bool = True) -> VQGBMN:
        """Train mode, except a frozen image encoder, which stays in eval (its BatchNorm statistics are kept)."""
        super().train(mode)
        if self.cfg.freeze_image and "image" in self.uses:
            self.image_encoder.eval()
        return self

    # ---- encoding --------------------------------------------------------------------------------------------

    def image_features(self, images: torch.Tensor) -> ImageFeatures:
        """images (B, 3, H, W) in [0, 1] -> the grid cells and their pooled vector (deterministic: no dropout)."""
        regions, _ = self.image_encoder(images)  # (B, R, C)
        return ImageFeatures(torch.cat([regions.mean(1), regions.amax(1)], dim=1), regions)  # (B, 2C), (B, R, C)

    def heads(self, features: ImageFeatures) -> tuple[torch.Tensor, torch.Tensor]:
        """Place logits (B, P) and tag logits (B, N) from the pooled image features."""
        return self.place_head(features.pooled), self.tag_head(features.pooled)

    def encode(self, features: ImageFeatures | None, cues: Cues) -> Context:
        """The moderated mixture of the experts' advice. ``features``: from :meth:`image_features`, or ``None`` when
        the image is not a cue. Raises ConfigError for a row with no expert's cue present."""
        pooled = features.pooled if features is not None else None  # (B, 2C)
        b = _batch_size(pooled, cues)
        advice, present = [], []
        for name in self.cfg.experts:
            image = self.image_proj[name](pooled) if pooled is not None else None  # (B, H)
            if name == "image":
                fused, have = image, torch.ones(b, dtype=torch.bool, device=image.device)
            else:
                cue, have = self._cue(name, cues)  # (B, H), (B,)
                fused = cue if image is None else _fuse(name, image, cue)
            advice.append(self.experts[name](fused))  # (B, H)
            present.append(have)
        advice_t = torch.stack(advice, dim=1)  # (B, K, H)
        have_t = torch.stack(present, dim=1)  # (B, K)
        if not bool(have_t.any(1).all()):
            missing = ", ".join(e for e in self.cfg.experts)
            raise ConfigError(f"a generator reading {missing} needs at least one of those cues for every image")
        logits = self.gate(pooled) if pooled is not None else self.gate_logits.expand(b, -1)  # (B, K)
        gates = torch.softmax(logits.masked_fill(~have_t, float("-inf")), dim=1)  # (B, K), 0 where dropped
        mixture = (gates.unsqueeze(-1) * advice_t).sum(1)  # (B, H)
        regions = self.region_proj(features.regions) if self.attends and features is not None else None  # (B, R, H)
        return Context(mixture, gates, regions)

    def _cue(self, name: str, cues: Cues) -> tuple[torch.Tensor, torch.Tensor]:
        """One cue's encoding (B, H) and which rows have it (B,)."""
        if name == "place":
            if cues.place is None:
                raise ConfigError("this generator reads the place cue; none was given")
            return self.place_encoder(cues.place), cues.place.abs().sum(1) > 0
        if name == "caption":
            if cues.caption is None:
                raise ConfigError("this generator reads the caption cue; none was given")
            tokens = cues.caption  # (B, Lc)
            out, _ = self.caption_lstm(self.caption_drop(self.embed(tokens)))  # (B, Lc, H)
            lengths = (tokens != PAD_ID).sum(1)  # (B,)
            last = out[torch.arange(tokens.shape[0], device=tokens.device), (lengths - 1).clamp(min=0)]  # (B, H)
            return last, lengths > 0
        if cues.tags is None:
            raise ConfigError("this generator reads the tag cue; none was given")
        tags = cues.tags[:, : self.cfg.tag_slots]  # (B, S)
        if tags.shape[1] < self.cfg.tag_slots:
            tags = nn.functional.pad(tags, (0, self.cfg.tag_slots - tags.shape[1]), value=PAD_ID)
        words = self.embed(tags).flatten(1)  # (B, S * E); PAD embeds to zeros
        return self.tag_encoder(words), (tags != PAD_ID).any(1)

    # ---- decoding --------------------------------------------------------------------------------------------

    def start(self, context: Context) -> tuple[torch.Tensor, torch.Tensor]:
        """The decoder's initial (h, c), each (1, B, H), from the mixture."""
        h, c = torch.tanh(self.init_state(context.mixture)).chunk(2, dim=1)  # (B, H) each
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def step(
        self, tokens: torch.Tensor, context: Context, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """tokens (B, L) given words -> word logits (B, L, V) for the next word at each position, and the state."""
        mixture = context.mixture.unsqueeze(1).expand(-1, tokens.shape[1], -1)  # (B, L, H)
        out, state = self.decoder(torch.cat([self.embed(tokens), mixture], dim=2), state)  # (B, L, H)
        if context.regions is not None:  # additive attention over the cells at every word
            keys = self.att_regions(context.regions).unsqueeze(1)  # (B, 1, R, H)
            scores = self.att_score(torch.tanh(keys + self.att_words(out).unsqueeze(2))).squeeze(-1)  # (B, L, R)
            attended = torch.softmax(scores, dim=-1) @ context.regions  # (B, L, H)
            out = torch.cat([out, attended], dim=-1)  # (B, L, 2H)
        return self.out(self.out_drop(out)), state  # (B, L, V)

    def forward(self, images: torch.Tensor | None, cues: Cues, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced word logits (B, L, V): ``tokens`` (B, L) are BOS then the question's words."""
        features = self.image_features(images) if "image" in self.uses else None
        context = self.encode(features, cues)
        logits, _ = self.step(tokens, context, self.start(context))
        return logits

    # ---- Monte Carlo dropout ---------------------------------------------------------------------------------

    def dropout_modules(self) -> list[nn.Module]:
        """Every dropout of the model (Bernoulli or Gaussian): what samples at inference."""
        return [m for m in self.modules() if isinstance(m, nn.Dropout | GaussianDropout) and m.p > 0]

    @contextlib.contextmanager
    def sampling(self, enabled: bool = True) -> Iterator[None]:
        """Eval mode with the dropouts sampling (``enabled``) or off (MC-SMN); normalisation layers stay in eval.
        Every module's mode is restored on exit."""
        flags = {m: m.training for m in self.modules()}
        self.eval()
        if enabled:
            for m in self.dropout_modules():
                m.train()
        try:
            yield
        finally:
            for m, flag in flags.items():
                m.train(flag)


def _batch_size(features: torch.Tensor | None, cues: Cues) -> int:
    for x in (features, *cues):
        if x is not None:
            return x.shape[0]
    raise ConfigError("the generator was given neither an image nor any cue")


def _fuse(name: str, image: torch.Tensor, cue: torch.Tensor) -> torch.Tensor:
    """The paper's fusions (B, H), (B, H) -> caption: product, tag: sum, place: concatenation (B, 2H)."""
    if name == "caption":
        return image * cue
    if name == "tag":
        return image + cue
    return torch.cat([image, cue], dim=1)
