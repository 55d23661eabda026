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
    it is. With ``skip`` the first block's features, max-pooled to the output grid, are appended to the
    last block's (a hypercolumn: low-level cues such as colour survive the deep stack). Each pooling
    halves the size rounding up (75 px -> 38 -> 19 -> 10 -> 5), so no pixel row is dropped. Output
    regions are in row-major grid order; ``grid_shape`` gives (rows, cols). With ``dropout`` > 0 an
    ``nn.Dropout`` follows every block (then this front-end is no longer deterministic).
    """

    def __init__(
        self, *, channels: list[int], pool: int, out_dim: int, dropout: float = 0.0, skip: bool = False
    ) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        c_in = 3 + 2
        self.first_block_end = 0  # modules in the first block (the hypercolumn taps its output)
        for i, c in enumerate(channels):
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if dropout > 0:  # MC dropout over the image features (makes the front-end stochastic)
                blocks.append(nn.Dropout(dropout))
            if i < pool:
                blocks.append(nn.MaxPool2d(2, ceil_mode=True))  # odd sizes keep their last row / column
            if i == 0:
                self.first_block_end = len(blocks)
            c_in = c
        self.body = nn.Sequential(*blocks)
        self.skip = skip
        self.out_channels = c_in + (channels[0] if skip and channels else 0)
        self.proj = nn.Linear(self.out_channels, out_dim)
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
        if not self.skip:
            fmap = self.body(x)  # (B, C, h', w')
        else:  # hypercolumn: the first block's features, max-pooled to the grid, beside the last's
            # body runs as one module (so hooks on ``image_encoder.body``, e.g. Grad-CAM's, still fire)
            taps: list[torch.Tensor] = []
            tap = self.body[self.first_block_end - 1].register_forward_hook(lambda _m, _i, out: taps.append(out))
            try:
                fmap = self.body(x)  # (B, C, h', w')
            finally:
                tap.remove()
            pooled = nn.functional.adaptive_max_pool2d(taps[-1], fmap.shape[-2:])  # (B, C1, h', w')
            fmap = torch.cat([fmap, pooled], dim=1)  # (B, C + C1, h', w')
        rows, cols = fmap.shape[-2:]
        regions = rearrange(fmap, "b c h w -> b (h w) c")  # (B, R, C)
        return regions, (rows, cols)


def grid_centres(rows: int, cols: int, *, device: torch.device | None = None) -> torch.Tensor:
    """(rows * cols, 2) centre (x, y) of every grid cell in [-1, 1], row-major like the regions."""
    ys = (torch.arange(rows, device=device) + 0.5) / rows * 2 - 1  # (rows,)
    xs = (torch.arange(cols, device=device) + 0.5) / cols * 2 - 1  # (cols,)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # (rows, cols) each
    return torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (R, 2)


class GridPosition(nn.Module):
    """A learned embedding of each grid cell's centre, added to the projected regions.

    Attention is blind to order, so without it the co-attention only knows where a region is if the
    CNN features happen to carry it; relation networks tag every cell with its coordinates for the
    same reason (Santoro et al. 2017, §4).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, hidden))

    def forward(self, grid: tuple[int, int], *, device: torch.device | None = None) -> torch.Tensor:
        """(rows, cols) -> (R, hidden)."""
        return self.mlp(grid_centres(*grid, device=device))


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
