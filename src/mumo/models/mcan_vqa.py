"""MCAN: deep modular co-attention network for VQA (Yu et al. 2019, arXiv:1906.10770; reference §2).

Encoder-decoder stacking (MCA-ED): the question passes through ``layers`` self-attention (SA) blocks;
the image regions pass through ``layers`` self-attention + question-guided attention (SGA) blocks,
every one of which attends to the *final* question encoding. Attentional reduction (AttFlat) on
both sides, sum fusion + LayerNorm, linear answer head returning logits.

The model splits into a deterministic :meth:`MCANVQA.trunk` (image and question front-ends, no
dropout) and the stochastic :meth:`MCANVQA.head` (every dropout module), so MC dropout can cache the
trunk. All dropout is ``nn.Dropout`` modules declared here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import rearrange
from torch import nn

from mumo.data.text import PAD_ID, UNK_ID
from mumo.errors import ConfigError
from mumo.models.encoders import GridCNN, GridPosition, QuestionEncoder, RegionAdapter
from mumo.types import VQABatch, VQAOutput


@dataclass
class MCANConfig:
    """MCAN sizes and front-ends (reference §2); a VQA run's ``model`` section."""

    name: str = "mcan"  # registry name of the model
    hidden: int = 512  # H, width of every attention block
    heads: int = 8  # attention heads; hidden % heads == 0
    layers: int = 6  # SA blocks in the encoder and SGA blocks in the decoder
    ff: int = 2048  # feed-forward width (4H in the paper)
    dropout: float = 0.1  # every dropout (attention weights, residual branches, FFN, AttFlat)
    region_dropout: float = 0.0  # dropout on the image regions entering the co-attention (0 = none)
    cnn_dropout: float = 0.0  # dropout after every conv block of the grid CNN (> 0 makes the trunk stochastic)
    flat_mlp: int = 512  # AttFlat MLP width
    flat_glimpses: int = 1  # AttFlat glimpses
    flat_out: int = 1024  # AttFlat output (2H in the paper)
    answer_mlp: int = 0  # hidden width of a ReLU MLP answer head; 0 = MCAN's linear classifier on the fused vector
    word_dim: int = 300  # word embedding size
    word_vectors: str = "none"  # "none" or "glove-6b-50d" (needs the [glove] extra and word_dim=50)
    image_encoder: str = "cnn"  # "cnn" (grid from pixels) or "regions" (precomputed (N, D) features)
    cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # one conv block each
    cnn_pool: int = 3  # how many of the blocks halve the resolution, rounding up (64 px -> 8x8 grid at 3)
    cnn_skip: bool = False  # append the first conv block's features, max-pooled to the grid, to the last block's
    grid_position: bool = False  # add a learned embedding of each grid cell's (x, y) centre to its features
    region_dim: int = 2048  # input feature size for image_encoder="regions"
    blank: str = "none"  # "none", "image" (question-only model) or "question" (image-only model)
    aleatoric: str = "none"  # "none", "kendall-gal" (per-class logit variance) or "ucam" (one variance)
    aleatoric_samples: int = 20  # T logit-noise samples in the aleatoric loss (U-CAM's code uses 100)

    def __post_init__(self) -> None:
        from itertools import pairwise

        sizes = ("hidden", "heads", "layers", "ff", "flat_mlp", "flat_glimpses", "flat_out", "word_dim", "region_dim")
        for key in sizes:
            if getattr(self, key) < 1:  # layers=0 builds, but the first forward fails (no guided attention to stack)
                raise ConfigError(f"model.{key} must be >= 1, not {getattr(self, key)}")
        if any(c < 1 for c in self.cnn_channels):  # an empty list is fine: the grid is then the pixels themselves
            raise ConfigError(f"model.cnn_channels must be widths >= 1, not {self.cnn_channels}")
        if self.hidden % self.heads:
            raise ConfigError(f"model.hidden={self.hidden} is not divisible by model.heads={self.heads}")
        if self.image_encoder not in ("cnn", "regions"):
            raise ConfigError(f"model.image_encoder must be 'cnn' or 'regions', not {self.image_encoder!r}")
        if self.blank not in ("none", "image", "question"):
            raise ConfigError(f"model.blank must be 'none', 'image' or 'question', not {self.blank!r}")
        if self.aleatoric not in ("none", "kendall-gal", "ucam"):
            raise ConfigError(f"model.aleatoric must be 'none', 'kendall-gal' or 'ucam', not {self.aleatoric!r}")
        if self.aleatoric_samples < 1:
            raise ConfigError(f"model.aleatoric_samples must be >= 1, not {self.aleatoric_samples}")
        if self.word_vectors not in ("none", "glove-6b-50d"):
            raise ConfigError(f"model.word_vectors must be 'none' or 'glove-6b-50d', not {self.word_vectors!r}")
        if self.word_vectors == "glove-6b-50d" and self.word_dim != 50:
            raise ConfigError("model.word_vectors=glove-6b-50d needs model.word_dim=50")
        if not all(0.0 <= p < 1.0 for p in (self.dropout, self.region_dropout, self.cnn_dropout)):
            raise ConfigError("model.dropout, model.region_dropout and model.cnn_dropout must lie in [0, 1)")
        if (self.cnn_skip or self.grid_position) and self.image_encoder != "cnn":
            raise ConfigError("model.cnn_skip and model.grid_position need model.image_encoder=cnn")
        if self.cnn_skip and not self.cnn_channels:
            raise ConfigError("model.cnn_skip needs at least one conv block in model.cnn_channels")
        if self.answer_mlp < 0:
            raise ConfigError(f"model.answer_mlp must be >= 0 (0 = a linear classifier), not {self.answer_mlp}")
        if not 0 <= self.cnn_pool <= len(self.cnn_channels):
            raise ConfigError(f"model.cnn_pool must be between 0 and len(model.cnn_channels), not {self.cnn_pool}")
        # Sizes that cannot fit are refused here, before anything is allocated or written. The rule: at most
        # 2**31 weights (8 GiB in float32; about 32 GiB to train with the gradients and Adam's two moments), a fixed
        # bound so that a config is valid on every machine (mcan-small has ~50 M, MCAN-large ~200 M). The estimate
        # counts the dominant weight matrices, without biases, norms and the parts sized by the data (vocabulary x
        # word_dim, answers x flat_out): (keys, weights) per part, the keys named when the total is too large.
        h, channels = self.hidden, self.cnn_channels
        parts: list[tuple[tuple[str, ...], int]] = [
            (("layers", "hidden"), self.layers * 12 * h * h),  # attention q, k, v, merge: 1 in SA, 2 in SGA
            (("layers", "hidden", "ff"), self.layers * 4 * h * self.ff),  # the FFN of every SA and SGA block
            (("hidden", "word_dim"), 4 * h * (self.word_dim + h)),  # the question LSTM
            (("hidden", "flat_mlp"), 2 * h * self.flat_mlp),  # AttFlat's MLP, question and image side
            (("hidden", "flat_glimpses", "flat_out"), 2 * h * self.flat_glimpses * self.flat_out),  # AttFlat's merge
            (("flat_out", "answer_mlp"), self.flat_out * self.answer_mlp),
        ]
        if self.image_encoder == "cnn":
            widths = [5, *channels]  # RGB + 2 coordinate channels in, then one 3x3 conv per block
            parts.append((("cnn_channels",), sum(9 * a * b for a, b in pairwise(widths))))
            parts.append((("cnn_channels", "hidden"), (widths[-1] + (channels[0] if self.cnn_skip else 0)) * h))
        else:
            parts.append((("region_dim", "hidden"), self.region_dim * h))
        total = sum(n for _, n in parts)
        if total > 2**31:
            keys = max(parts, key=lambda part: part[1])[0]
            named = ", ".join(f"model.{k}={getattr(self, k)}" for k in keys)
            raise ConfigError(
                f"the model would have about {total:.2g} weights, more than the 2**31 (8 GiB in float32) a run may "
                f"have; most of them come from {named}"
            )


class LayerNorm(nn.Module):
    """MCAN's LayerNorm: a * (x - mean) / (std + eps) + b, with the *unbiased* std (not nn.LayerNorm)."""

    def __init__(self, size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(size))
        self.b = nn.Parameter(torch.zeros(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(-1, keepdim=True)
        std = x.std(-1, keepdim=True)  # unbiased
        return self.a * (x - mean) / (std + self.eps) + self.b


class MHAtt(nn.Module):
    """Multi-head attention with dropout on the attention weights."""

    def __init__(self, *, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.v, self.k, self.q = (
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
            nn.Linear(hidden, hidden),
        )
        self.merge = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, v: torch.Tensor, k: torch.Tensor, q: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """v, k (N, Lk, H), q (N, Lq, H), mask (N, 1, 1, Lk) True = padding -> (N, Lq, H), att (N, h, Lq, Lk)."""
        split = "n l (h d) -> n h l d"
        v = rearrange(self.v(v), split, h=self.heads)  # (N, h, Lk, d)
        k = rearrange(self.k(k), split, h=self.heads)  # (N, h, Lk, d)
        q = rearrange(self.q(q), split, h=self.heads)  # (N, h, Lq, d)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (N, h, Lq, Lk)
        if mask is not None:
            scores = scores.masked_fill(mask, -1e9)
        att = scores.softmax(dim=-1)  # (N, h, Lq, Lk)
        out = self.dropout(att) @ v  # (N, h, Lq, d)
        return self.merge(rearrange(out, "n h l d -> n l (h d)")), att


class FFN(nn.Module):
    """Linear(H -> FF), ReLU, dropout, Linear(FF -> H)."""

    def __init__(self, *, hidden: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(hidden, ff), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ff, hidden)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SA(nn.Module):
    """Self-attention block, post-LN residuals."""

    def __init__(self, cfg: MCANConfig) -> None:
        super().__init__()
        self.att = MHAtt(hidden=cfg.hidden, heads=cfg.heads, dropout=cfg.dropout)
        self.ffn = FFN(hidden=cfg.hidden, ff=cfg.ff, dropout=cfg.dropout)
        self.drop1, self.drop2 = nn.Dropout(cfg.dropout), nn.Dropout(cfg.dropout)
        self.norm1, self.norm2 = LayerNorm(cfg.hidden), LayerNorm(cfg.hidden)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor | None) -> torch.Tensor:
        """x (N, L, H) -> (N, L, H)."""
        x = self.norm1(x + self.drop1(self.att(x, x, x, x_mask)[0]))
        return self.norm2(x + self.drop2(self.ffn(x)))


class SGA(nn.Module):
    """Self-attention on x, then attention guided by y (queries from x, keys/values from y), then FFN."""

    def __init__(self, cfg: MCANConfig) -> None:
        super().__init__()
        self.self_att = MHAtt(hidden=cfg.hidden, heads=cfg.heads, dropout=cfg.dropout)
        self.guided_att = MHAtt(hidden=cfg.hidden, heads=cfg.heads, dropout=cfg.dropout)
        self.ffn = FFN(hidden=cfg.hidden, ff=cfg.ff, dropout=cfg.dropout)
        self.drop1, self.drop2, self.drop3 = (nn.Dropout(cfg.dropout) for _ in range(3))
        self.norm1, self.norm2, self.norm3 = (LayerNorm(cfg.hidden) for _ in range(3))

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, x_mask: torch.Tensor | None, y_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, R, H) image, y (N, L, H) question -> (N, R, H), guided attention (N, h, R, L)."""
        x = self.norm1(x + self.drop1(self.self_att(x, x, x, x_mask)[0]))
        guided, att = self.guided_att(y, y, x, y_mask)
        x = self.norm2(x + self.drop2(guided))
        return self.norm3(x + self.drop3(self.ffn(x))), att


class AttFlat(nn.Module):
    """Attentional reduction: MLP scores -> masked softmax over positions -> weighted sum -> Linear."""

    def __init__(self, cfg: MCANConfig) -> None:
        super().__init__()
        self.glimpses = cfg.flat_glimpses
        self.mlp = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.flat_mlp), nn.ReLU(inplace=True), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.flat_mlp, cfg.flat_glimpses),
        )  # fmt: skip
        self.merge = nn.Linear(cfg.hidden * cfg.flat_glimpses, cfg.flat_out)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, L, H) -> (N, flat_out), weights (N, L, glimpses)."""
        scores = self.mlp(x)  # (N, L, G)
        if x_mask is not None:
            scores = scores.masked_fill(rearrange(x_mask, "n 1 1 l -> n l 1"), -1e9)
        weights = scores.softmax(dim=1)  # (N, L, G)
        pooled = torch.einsum("nlg,nlh->ngh", weights, x)  # (N, G, H)
        return self.merge(rearrange(pooled, "n g h -> n (g h)")), weights


@dataclass
class MCANTrunk:
    """Output of the deterministic trunk. B images, N questions, R regions, L tokens."""

    question: torch.Tensor  # (N, L, H) LSTM states
    question_mask: torch.Tensor  # (N, 1, 1, L) True = padding
    image: torch.Tensor  # (B, R, C) region features before the projection to H
    image_mask: torch.Tensor | None  # (B, 1, 1, R) True = padding, None for a full grid
    image_index: torch.Tensor  # (N,) which image each question asks about
    grid: tuple[int, int]  # (rows, cols) of the image regions

    @property
    def num_rows(self) -> int:
        """Questions in the batch (the head's batch size)."""
        return int(self.image_index.shape[0])

    def repeat(self, k: int) -> MCANTrunk:
        """k stacked copies for k MC samples, sample-major: question rows (k * N, ...).

        Image regions are shared, not copied: only the question side and the index are tiled.
        """
        return MCANTrunk(
            question=self.question.repeat(k, 1, 1),  # (k * N, L, H)
            question_mask=self.question_mask.repeat(k, 1, 1, 1),  # (k * N, 1, 1, L)
            image=self.image,
            image_mask=self.image_mask,
            image_index=self.image_index.repeat(k),  # (k * N,)
            grid=self.grid,
        )


@dataclass
class MCANCoattended:
    """Output of the co-attention layers. N questions, L tokens, R regions."""

    question: torch.Tensor  # (N, L, H)
    question_mask: torch.Tensor  # (N, 1, 1, L)
    image: torch.Tensor  # (N, R, H) question-guided image regions
    image_mask: torch.Tensor | None  # (N, 1, 1, R)
    guided: torch.Tensor  # (N, layers, h, R, L) guided-attention weights
    grid: tuple[int, int] | None = None  # (rows, cols) of the image regions

    @property
    def num_rows(self) -> int:
        return int(self.question.shape[0])

    def repeat(self, k: int) -> MCANCoattended:
        """k stacked copies (k * N, ...), sample-major."""
        return MCANCoattended(
            self.question.repeat(k, 1, 1),
            self.question_mask.repeat(k, 1, 1, 1),
            self.image.repeat(k, 1, 1),
            None if self.image_mask is None else self.image_mask.repeat(k, 1, 1, 1),
            self.guided.repeat(k, 1, 1, 1, 1),
            self.grid,
        )


class MCANVQA(nn.Module):
    """MCAN-ED VQA model over a grid CNN or precomputed region features."""

    def __init__(self, *, cfg: MCANConfig, vocab_size: int, num_answers: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.question_encoder = QuestionEncoder(vocab_size=vocab_size, word_dim=cfg.word_dim, hidden=cfg.hidden)
        if cfg.image_encoder == "cnn":
            self.image_encoder: nn.Module = GridCNN(
                channels=cfg.cnn_channels,
                pool=cfg.cnn_pool,
                out_dim=cfg.hidden,
                dropout=cfg.cnn_dropout,
                skip=cfg.cnn_skip,
            )
        else:
            self.image_encoder = RegionAdapter(in_dim=cfg.region_dim, out_dim=cfg.hidden)
        self.position = GridPosition(cfg.hidden) if cfg.grid_position else None  # config: cnn only
        self.image_features = nn.Identity()  # per-question image features before the projection: CAM layer
        self.region_dropout = nn.Dropout(cfg.region_dropout)  # identity at p = 0
        self.encoder = nn.ModuleList(SA(cfg) for _ in range(cfg.layers))
        self.decoder = nn.ModuleList(SGA(cfg) for _ in range(cfg.layers))
        self.flat_question, self.flat_image = AttFlat(cfg), AttFlat(cfg)
        self.fusion_norm = LayerNorm(cfg.flat_out)
        if cfg.answer_mlp:  # answers that combine glimpses nonlinearly (count: which shape x how many)
            self.classifier = nn.Sequential(
                nn.Linear(cfg.flat_out, cfg.answer_mlp), nn.ReLU(inplace=True), nn.Linear(cfg.answer_mlp, num_answers)
            )
        else:
            self.classifier = nn.Linear(cfg.flat_out, num_answers)
        # Aleatoric head (reference §3.3-3.4): per-class log-variance of the logits (Kendall & Gal), or
        # one variance per example from the logits, softplus(Linear(C -> 1)) as in U-CAM's code.
        self.log_variance: nn.Linear | None = None
        if cfg.aleatoric == "kendall-gal":
            self.log_variance = nn.Linear(cfg.flat_out, num_answers)
        elif cfg.aleatoric == "ucam":
            self.log_variance = nn.Linear(num_answers, 1)

    def trunk(self, batch: VQABatch, *, scope: str = "all") -> MCANTrunk | MCANCoattended:
        """The deterministic part, run once per batch by MC dropout.

        ``scope="all"``: the front-ends (no dropout), so every dropout module can sample afterwards;
        ``scope="attflat"`` (deprecated alias ``head``): also the co-attention (its dropout off), so only the
        dropout inside the two AttFlat scoring MLPs samples (the answer classifier has none).
        """
        t = self._front(batch)
        return t if self._scope(scope) == "all" else self.coattend(t)

    def _front(self, batch: VQABatch) -> MCANTrunk:
        images, tokens = batch.images, batch.tokens
        if self.cfg.blank == "image":
            images = torch.zeros_like(images)
        if self.cfg.blank == "question":
            tokens = torch.full_like(tokens, PAD_ID)
            tokens[:, 0] = UNK_ID
        question_mask = rearrange(tokens == PAD_ID, "n l -> n 1 1 l")  # (N, 1, 1, L)
        image_mask = None
        if self.cfg.image_encoder == "regions":
            image_mask = rearrange(images.abs().sum(-1) == 0, "b r -> b 1 1 r")  # (B, 1, 1, R)
        image, grid = self.image_encoder(images)  # (B, R, C)
        return MCANTrunk(self.question_encoder(tokens), question_mask, image, image_mask, batch.image_index, grid)

    def coattend(self, t: MCANTrunk) -> MCANCoattended:
        """Co-attention: question self-attention encoder, then the image decoder guided by the question."""
        y, y_mask = t.question, t.question_mask  # (N, L, H), (N, 1, 1, L)
        for layer in self.encoder:
            y = layer(y, y_mask)
        features = self.image_features(t.image[t.image_index])  # (N, R, C): each question gets its image's regions
        x = self.image_encoder.proj(features)  # (N, R, H)
        if self.position is not None:
            x = x + self.position(t.grid, device=x.device)  # + (R, H)
        x = self.region_dropout(x)
        x_mask = None if t.image_mask is None else t.image_mask[t.image_index]  # (N, 1, 1, R)
        guided = []
        for layer in self.decoder:
            x, att = layer(x, y, x_mask, y_mask)
            guided.append(att)
        return MCANCoattended(y, y_mask, x, x_mask, torch.stack(guided, dim=1), t.grid)  # guided (N, layers, h, R, L)

    def answer(self, c: MCANCoattended, *, output_attentions: bool = False) -> VQAOutput:
        """Attentional reduction of both sides, sum fusion + LayerNorm, answer logits (and log-variance)."""
        flat_y, _ = self.flat_question(c.question, c.question_mask)  # (N, F)
        flat_x, image_weights = self.flat_image(c.image, c.image_mask)  # (N, F), (N, R, G)
        fused = self.fusion_norm(flat_y + flat_x)  # (N, F)
        logits = self.classifier(fused)  # (N, C)
        log_variance = None
        if self.cfg.aleatoric == "kendall-gal":
            log_variance = self.log_variance(fused)  # (N, C)
        elif self.cfg.aleatoric == "ucam":
            log_variance = torch.log(nn.functional.softplus(self.log_variance(logits)) + 1e-12)  # (N, 1)
        attentions = {}
        if output_attentions:
            attentions = {"image_flat": image_weights, "guided": c.guided}
        return VQAOutput(logits=logits, attentions=attentions, log_variance=log_variance, grid=c.grid)

    def head(self, state: MCANTrunk | MCANCoattended, *, output_attentions: bool = False) -> VQAOutput:
        """The stochastic part after a :meth:`trunk` of the same scope."""
        if isinstance(state, MCANTrunk):
            state = self.coattend(state)
        return self.answer(state, output_attentions=output_attentions)

    def explain_layer(self) -> nn.Module:
        """Where CAM methods take the image features: the grid CNN's last (non-negative) feature map, or
        the raw region features, one copy per question (N, R, C), so each question gets its own map."""
        return self.image_features

    def density_layer(self) -> nn.Module:
        """Where feature-density OOD scores read the model: the fused (N, F) vector the classifier reads."""
        return self.fusion_norm

    def image_feature_layer(self) -> nn.Module:
        """Where the default OOD check reads the image: the grid CNN's feature map or the raw regions, (N, R, C),
        before any question has touched them."""
        return self.image_features

    # MC dropout scopes: which dropout modules sample, and so where the deterministic trunk ends. ``attflat``
    # samples only the dropout inside the AttFlat scoring MLPs (question and image side, one module each): a
    # partial approximation of MC dropout whose mutual information is not comparable with ``all``'s.
    mc_scopes = ("all", "attflat")

    def _scope(self, scope: str) -> str:
        scope = "attflat" if scope == "head" else scope  # the deprecated name, kept for saved scripts
        if scope not in self.mc_scopes:
            raise ConfigError(f"MC dropout scope {scope!r} is not offered by MCAN; choose one of: all, attflat")
        return scope

    def trunk_is_deterministic(self, scope: str = "all") -> bool:
        """False when the grid CNN has dropout and every dropout samples: the fast path cannot cache it."""
        return self._scope(scope) != "all" or self.cfg.cnn_dropout == 0

    def mc_dropout_modules(self, scope: str = "all") -> list[nn.Dropout]:
        """Dropout modules sampled in an MC scope: ``all``, or ``attflat`` (only the dropout inside the two
        AttFlat scoring MLPs; ``head`` is its deprecated alias)."""
        parts = [self] if self._scope(scope) == "all" else [self.flat_question, self.flat_image]
        return [m for part in parts for m in part.modules() if isinstance(m, nn.Dropout) and m.p > 0]

    def forward(self, batch: VQABatch, *, output_attentions: bool = False) -> VQAOutput:
        return self.answer(self.coattend(self._front(batch)), output_attentions=output_attentions)
