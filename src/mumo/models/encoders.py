"""Deterministic front-ends (no dropout): image grid CNN, region-feature adapter, question LSTM.

Together they form a VQA model's *trunk*; MC dropout can run them once and sample only the rest.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from mumo.data.text import PAD_ID


class GridCNN(nn.Module):
    """A small CNN trained from scratch that turns pixels into a grid of region features.

    Two coordinate channels (x, y in [-1, 1]) are appended to the input so every cell knows where
    it is. Output regions are in row-major grid order; ``grid_shape`` gives (rows, cols). With
    ``dropout`` > 0 an ``nn.Dropout`` follows every block (then this front-end is no longer deterministic).
    """

    def __init__(self, *, channels: list[int], pool: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 3 + 2
        for i, c in enumerate(channels):
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if dropout > 0:  # MC dropout over the image features (makes the front-end stochastic)
                blocks.append(nn.Dropout(dropout))
            if i < pool:
                blocks.append(nn.MaxPool2d(2))
            c_in = c
        self.body = nn.Sequential(*blocks)
        self.proj = nn.Linear(c_in, out_dim)
        self.pool = pool

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """images (B, 3, H, W) in [0, 1] -> regions (B, R, C) (last block's channels, ≥ 0), grid (rows, cols).

        The model applies ``proj`` (C -> out_dim) per question, after the regions are gathered, so
        explanation maps are taken on these non-negative conv features (see ``MCANVQA.explain_layer``).
        """
        b, _, h, w = images.shape
        ys = torch.linspace(-1, 1, h, device=images.device, dtype=images.dtype)
        xs = torch.linspace(-1, 1, w, device=images.device, dtype=images.dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (H, W) each
        coords = torch.stack([xx, yy]).expand(b, 2, h, w)  # (B, 2, H, W)
        x = torch.cat([(images - 0.5) / 0.25, coords], dim=1)  # (B, 5, H, W)
        fmap = self.body(x)  # (B, C, h', w')
        rows, cols = fmap.shape[-2:]
        regions = rearrange(fmap, "b c h w -> b (h w) c")  # (B, R, C)
        return regions, (rows, cols)


class RegionAdapter(nn.Module):
    """Linear adapter over precomputed region features (e.g. bottom-up attention, (N, 2048))."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """features (B, R, D) unchanged, and (R, 1); all-zero rows are padding (masked later).

        The model applies ``proj`` (D -> out_dim) per question, like the grid CNN's.
        """
        return features, (features.shape[1], 1)


class QuestionEncoder(nn.Module):
    """Word embedding -> 1-layer LSTM; every timestep is kept (MCAN)."""

    def __init__(self, *, vocab_size: int, word_dim: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(word_dim, hidden, batch_first=True)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, L) -> (N, L, hidden)."""
        out, _ = self.lstm(self.embed(tokens))
        return out
