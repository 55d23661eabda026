"""Lip2Wav-style lip-to-speech model: a 3D-convolutional face encoder and a Tacotron-2 decoder (Prajwal et al.,
CVPR 2020, Rudrabha/Lip2Wav ``synthesizer/models/tacotron.py``, ``modules.py``; reference §6.7).

Reimplemented from the description, not copied. A window of ``frames`` face crops (25 fps) becomes the 80-band
mel spectrogram of the same time span (``frames * 16 / 5`` steps: 80 mel steps per second):

- encoder: ``len(encoder_channels)`` blocks, each a Conv3d with spatial stride (1, 2, 2) (kernel 5 in the first
  block, 3 after) and two residual 3x3x3 Conv3d, BatchNorm + ReLU; the last block adds a Conv3d with stride
  (1, 3, 3) over the remaining 3x3 grid, so each frame becomes one vector. The temporal stride stays 1;
- a bidirectional LSTM over the frames (the reference's zoneout 0.1 becomes dropout 0.1 on its outputs: PyTorch's
  LSTM has no zoneout);
- decoder (``decoder="tacotron"``): Tacotron 2 with location-sensitive attention (cumulative weights through a
  conv of ``attention_filters`` filters of width ``attention_kernel``), a prenet, a stack of LSTM cells, and
  ``outputs_per_step`` mel frames per step; no stop token: the output length follows the input's;
- postnet: ``postnet_layers`` Conv1d (BatchNorm, tanh but the last), added to the decoder's mel.

``decoder="conv"`` is the non-autoregressive baseline: the encoder's frames are interpolated linearly to the
mel steps and a stack of Conv1d (BatchNorm, ReLU, dropout) predicts the mel, followed by the same postnet.

Teacher forcing: the decoder is fed the true previous mel frame with probability ``teacher_forcing`` (one draw
per decoder step for the whole batch, as the reference's scheduled mode) and its own prediction otherwise;
:func:`teacher_forcing_ratio` is the reference's cosine decay of that probability over training steps.

Uncertainty: every dropout is an ``nn.Dropout`` module, so ``mumo.uncertainty.mc_dropout`` samples them. The
prenet's dropout stays on at inference, as in Tacotron 2 (:class:`AlwaysDropout`: its output depends on the
random state; seed it for a reproducible decode); MC dropout's T passes give a per-frame spread of the mel.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mumo.errors import ConfigError, MumoError

DECODERS = ("tacotron", "conv")
MEL_STEPS_PER_FRAME = 16 / 5  # 80 mel steps per second / 25 fps


@dataclass
class Lip2WavConfig:
    """A lip-to-speech model. The defaults are the reference's sizes (the ``chem`` speaker: 5 encoder blocks of
    32..512 filters, BiLSTM 384, decoder LSTMs 1024), windows of 75 frames (3 s at 25 fps, the ``dl`` preset's
    length at mumo's frame rate) of 96-pixel faces."""

    name: str = "lip2wav"
    decoder: str = "tacotron"  # one of DECODERS
    frames: int = 75  # face frames per window (25 fps); a multiple of 5 so the mel window is whole steps
    face_size: int = 96  # face crops are resized to this; face_size / 2**blocks must be 3
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    encoder_lstm: int = 384  # units per direction
    encoder_dropout: float = 0.1  # on the BiLSTM's outputs (the reference's zoneout 0.1)
    mel_bins: int = 80
    outputs_per_step: int = 2  # mel frames per decoder step (Tacotron's r)
    prenet: list[int] = field(default_factory=lambda: [256, 256])
    prenet_dropout: float = 0.5  # on at inference too (Tacotron 2)
    attention_dim: int = 128
    attention_filters: int = 32
    attention_kernel: int = 31
    decoder_lstm: list[int] = field(default_factory=lambda: [1024, 1024])
    decoder_dropout: float = 0.1  # on the decoder LSTM's output (the reference's zoneout 0.1)
    postnet_channels: int = 512
    postnet_layers: int = 5
    postnet_kernel: int = 5
    postnet_dropout: float = 0.5
    conv_decoder_channels: int = 512  # decoder="conv": width and depth of the non-autoregressive decoder
    conv_decoder_layers: int = 6
    conv_decoder_kernel: int = 5

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ConfigError(f"model.decoder must be one of {', '.join(DECODERS)}, not {self.decoder!r}")
        if self.frames < 5 or self.frames % 5:
            raise ConfigError(f"model.frames must be a positive multiple of 5 (whole mel steps), not {self.frames}")
        if not self.encoder_channels or min(self.encoder_channels) < 1:
            raise ConfigError(f"model.encoder_channels must be positive widths, not {self.encoder_channels}")
        if self.face_size != 3 * 2 ** len(self.encoder_channels):
            raise ConfigError(
                f"model.face_size must be 3 * 2**{len(self.encoder_channels)} = {3 * 2 ** len(self.encoder_channels)} "
                f"for {len(self.encoder_channels)} encoder blocks (each halves the face, the last conv takes the 3x3 "
                f"grid to one vector), not {self.face_size}"
            )
        if self.mel_steps % self.outputs_per_step:
            raise ConfigError(
                f"model.outputs_per_step ({self.outputs_per_step}) must divide the window's {self.mel_steps} mel steps"
            )
        for key in ("encoder_lstm", "mel_bins", "attention_dim", "attention_filters", "postnet_channels",
                    "conv_decoder_channels", "outputs_per_step"):  # fmt: skip
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, not {getattr(self, key)}")
        if self.attention_kernel < 1 or self.attention_kernel % 2 == 0:
            raise ConfigError(f"model.attention_kernel must be odd and positive, not {self.attention_kernel}")
        if self.postnet_kernel % 2 == 0 or self.conv_decoder_kernel % 2 == 0:
            raise ConfigError("model.postnet_kernel and model.conv_decoder_kernel must be odd")
        if self.postnet_layers < 1 or self.conv_decoder_layers < 1:
            raise ConfigError("model.postnet_layers and model.conv_decoder_layers must be >= 1")
        if not self.prenet or not self.decoder_lstm or min(self.prenet + self.decoder_lstm) < 1:
            raise ConfigError("model.prenet and model.decoder_lstm must be non-empty lists of positive widths")
        for key in ("encoder_dropout", "prenet_dropout", "decoder_dropout", "postnet_dropout"):
            p = getattr(self, key)
            if not (math.isfinite(p) and 0.0 <= p < 1.0):
                raise ConfigError(f"model.{key} must lie in [0, 1), not {p}")

    @property
    def mel_steps(self) -> int:
        """Mel steps of a window: ``frames * 16 / 5``."""
        return self.frames * 16 // 5


def mel_steps_of(frames: int) -> int:
    """Mel steps spanned by ``frames`` video frames at 25 fps (80 per second), rounded down."""
    return (frames * 16) // 5


def teacher_forcing_ratio(step: int, *, start: int, decay_steps: int, final: float = 0.0) -> float:
    """The probability of feeding the true previous frame at training ``step`` (the reference's scheduled mode):
    1 until ``start``, then a cosine decay to ``final`` over ``decay_steps`` steps, ``final`` after.

    >>> teacher_forcing_ratio(0, start=10, decay_steps=100), teacher_forcing_ratio(60, start=10, decay_steps=100)
    (1.0, 0.5)
    """
    if step < start or decay_steps <= 0:
        return 1.0 if step < start else final
    progress = min(step - start, decay_steps) / decay_steps
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))


class AlwaysDropout(nn.Dropout):
    """Dropout that stays on in eval mode (Tacotron 2's prenet); MC dropout still finds and samples it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True, inplace=self.inplace)


class Conv3dBlock(nn.Module):
    """Conv3d + BatchNorm3d + ReLU; ``residual`` adds the input before the ReLU (same shape in and out)."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0, *, residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return F.relu(y + x if self.residual else y)


def _encoder_blocks(channels: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = 3
    for i, c in enumerate(channels):
        k = 5 if i == 0 else 3
        layers.append(Conv3dBlock(cin, c, k, (1, 2, 2), k // 2))  # (B, c, F, S/2, S/2)
        layers += [Conv3dBlock(c, c, 3, 1, 1, residual=True) for _ in range(2)]
        cin = c
    layers.append(Conv3dBlock(cin, cin, 3, (1, 3, 3), (1, 0, 0)))  # 3x3 grid -> 1x1
    return nn.Sequential(*layers)


class LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see the cumulative attention so far through a conv (Chorowski et
    al. 2015, Tacotron 2): ``e_j = v . tanh(W q + V m_j + U conv(cum)_j)``."""

    def __init__(self, query_dim: int, memory_dim: int, dim: int, filters: int, kernel: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, dim, bias=False)
        self.memory = nn.Linear(memory_dim, dim, bias=False)
        self.location_conv = nn.Conv1d(1, filters, kernel, padding=kernel // 2, bias=False)
        self.location = nn.Linear(filters, dim, bias=False)
        self.v = nn.Linear(dim, 1, bias=True)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, cumulative: torch.Tensor,
                mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """query (B, Q), keys = self.memory(memory) (B, N, D), memory (B, N, C), cumulative (B, N), mask (B, N)
        True where valid -> context (B, C), weights (B, N)."""
        loc = self.location(self.location_conv(cumulative[:, None]).transpose(1, 2))  # (B, N, D)
        energies = self.v(torch.tanh(self.query(query)[:, None] + keys + loc)).squeeze(-1)  # (B, N)
        if mask is not None:
            energies = energies.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1)  # (B, N)
        context = torch.bmm(weights[:, None], memory).squeeze(1)  # (B, C)
        return context, weights


class Postnet(nn.Module):
    """Tacotron 2's postnet: Conv1d + BatchNorm (+ tanh but the last) + dropout; its output is added to the mel."""

    def __init__(self, mel_bins: int, channels: int, layers: int, kernel: int, dropout: float) -> None:
        super().__init__()
        widths = [mel_bins] + [channels] * (layers - 1) + [mel_bins]
        self.convs = nn.ModuleList(nn.Conv1d(a, b, kernel, padding=kernel // 2) for a, b in itertools.pairwise(widths))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) for b in widths[1:])
        self.dropout = nn.Dropout(dropout)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, M, T) -> (B, M, T) residual."""
        x = mel
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = norm(conv(x))
            x = self.dropout(torch.tanh(x) if i < len(self.convs) - 1 else x)
        return x


class TacotronDecoder(nn.Module):
    """Tacotron 2's decoder: prenet, LSTM cells fed [prenet(previous frame), previous context], location-sensitive
    attention queried by the top cell, and a projection of [top cell, context] to ``r`` mel frames per step."""

    def __init__(self, cfg: Lip2WavConfig, memory_dim: int) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [cfg.mel_bins, *cfg.prenet]
        self.prenet = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.prenet_dropout = AlwaysDropout(cfg.prenet_dropout)
        sizes = [cfg.prenet[-1] + memory_dim, *cfg.decoder_lstm]
        self.cells = nn.ModuleList(nn.LSTMCell(a, b) for a, b in itertools.pairwise(sizes))
        self.dropout = nn.Dropout(cfg.decoder_dropout)
        top = cfg.decoder_lstm[-1]
        self.attention = LocationSensitiveAttention(top, memory_dim, cfg.attention_dim, cfg.attention_filters,
                                                    cfg.attention_kernel)  # fmt: skip
        self.project = nn.Linear(top + memory_dim, cfg.mel_bins * cfg.outputs_per_step)

    def _prenet(self, frame: torch.Tensor) -> torch.Tensor:
        for layer in self.prenet:
            frame = self.prenet_dropout(F.relu(layer(frame)))
        return frame

    def forward(self, memory: torch.Tensor, steps: int, mask: torch.Tensor | None = None,
                targets: torch.Tensor | None = None,
                feed: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """memory (B, N, C), ``steps`` mel steps (a multiple of r), mask (B, N), targets (B, M, steps), feed
        (steps / r,) bool: step i+1 reads the true last frame of step i where True, its own prediction elsewhere
        -> mel (B, M, steps) and alignments (B, steps / r, N)."""
        cfg, r = self.cfg, self.cfg.outputs_per_step
        b, n, c = memory.shape
        keys = self.attention.memory(memory)  # (B, N, D), once per window
        states = [(memory.new_zeros(b, h), memory.new_zeros(b, h)) for h in cfg.decoder_lstm]
        context = memory.new_zeros(b, c)
        cumulative = memory.new_zeros(b, n)
        frame = memory.new_zeros(b, cfg.mel_bins)  # the <GO> frame
        frames, alignments = [], []
        for i in range(steps // r):
            x = torch.cat([self._prenet(frame), context], dim=-1)  # (B, P + C)
            for k, cell in enumerate(self.cells):
                states[k] = cell(x, states[k])
                x = self.dropout(states[k][0])  # (B, H_k)
            context, weights = self.attention(x, keys, memory, cumulative, mask)  # (B, C), (B, N)
            cumulative = cumulative + weights
            out = self.project(torch.cat([x, context], dim=-1)).view(b, r, cfg.mel_bins)  # (B, r, M)
            frames.append(out)
            alignments.append(weights)
            if targets is not None and feed is not None and bool(feed[i]):
                frame = targets[:, :, (i + 1) * r - 1]  # the true last frame of this step
            else:
                frame = out[:, -1]
        mel = rearrange(torch.cat(frames, dim=1), "b t m -> b m t")  # (B, M, steps)
        return mel, torch.stack(alignments, dim=1)  # (B, M, steps), (B, steps / r, N)


class ConvDecoder(nn.Module):
    """The non-autoregressive baseline: encoder frames interpolated to the mel steps, then Conv1d blocks."""

    def __init__(self, cfg: Lip2WavConfig, memory_dim: int) -> None:
        super().__init__()
        widths = [memory_dim] + [cfg.conv_decoder_channels] * cfg.conv_decoder_layers
        k = cfg.conv_decoder_kernel
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv1d(a, b, k, padding=k // 2), nn.BatchNorm1d(b), nn.ReLU(),
                          nn.Dropout(cfg.decoder_dropout))
            for a, b in itertools.pairwise(widths)
        )  # fmt: skip
        self.out = nn.Conv1d(widths[-1], cfg.mel_bins, 1)

    def forward(self, memory: torch.Tensor, steps: int) -> torch.Tensor:
        """memory (B, N, C) -> mel (B, M, steps)."""
        x = F.interpolate(rearrange(memory, "b n c -> b c n"), size=steps, mode="linear", align_corners=False)
        for block in self.blocks:
            x = block(x)  # (B, W, steps)
        return self.out(x)


class Lip2Wav(nn.Module):
    """Face crops -> mel spectrogram (module docstring).

    Example:
        >>> model = Lip2Wav(Lip2WavConfig(frames=25, face_size=48, encoder_channels=[8, 16, 32, 64]))
        >>> out = model(torch.rand(2, 25, 3, 48, 48))  # (B, frames, 3, S, S) in [0, 1]
        >>> out.mel.shape, out.alignments.shape      # (B, 80, 80), (B, 40, 25)
    """

    def __init__(self, cfg: Lip2WavConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = _encoder_blocks(cfg.encoder_channels)
        self.lstm = nn.LSTM(cfg.encoder_channels[-1], cfg.encoder_lstm, batch_first=True, bidirectional=True)
        self.encoder_dropout = nn.Dropout(cfg.encoder_dropout)
        memory_dim = 2 * cfg.encoder_lstm
        if cfg.decoder == "tacotron":
            self.decoder: nn.Module = TacotronDecoder(cfg, memory_dim)
        else:
            self.decoder = ConvDecoder(cfg, memory_dim)
        self.postnet = Postnet(cfg.mel_bins, cfg.postnet_channels, cfg.postnet_layers, cfg.postnet_kernel,
                               cfg.postnet_dropout)  # fmt: skip

    def encode(self, faces: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F, 3, S, S) in [0, 1] -> memory (B, F, 2 * encoder_lstm)."""
        s = self.cfg.face_size
        if faces.ndim != 5 or faces.shape[2] != 3 or tuple(faces.shape[3:]) != (s, s):
            raise MumoError(f"faces must be (B, frames, 3, {s}, {s}) in [0, 1], not shape {tuple(faces.shape)}")
        x = self.encoder(rearrange(faces, "b f c h w -> b c f h w"))  # (B, C, F, 1, 1)
        x = rearrange(x, "b c f 1 1 -> b f c")  # (B, F, C)
        if lengths is not None:  # padded frames must not run into the backward LSTM
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=faces.shape[1])
        else:
            x, _ = self.lstm(x)  # (B, F, 2H)
        return self.encoder_dropout(x)

    def forward(self, faces: torch.Tensor, *, lengths: torch.Tensor | None = None,
                targets: torch.Tensor | None = None, teacher_forcing: float = 1.0,
                draws: torch.Tensor | None = None) -> Lip2WavOutput:  # fmt: skip
        """faces (B, F, 3, S, S) in [0, 1] (F <= frames at inference; exactly frames in training), ``lengths``
        (B,) valid frames of each (padded) window, ``targets`` (B, 80, steps) the true mel for teacher forcing:
        decoder step i + 1 is fed the true frame where ``draws[i] < teacher_forcing`` (``draws``: (steps / r,)
        uniform [0, 1) draws; default drawn here from the global generator).

        The output spans ``mel_steps_of(F)`` steps rounded up to a whole decoder step; with ``lengths`` the
        attention never looks past a window's last valid frame."""
        b, f = faces.shape[:2]
        memory = self.encode(faces, lengths)  # (B, F, C)
        r = self.cfg.outputs_per_step
        steps = math.ceil(mel_steps_of(f) / r) * r
        if targets is not None and tuple(targets.shape) != (b, self.cfg.mel_bins, steps):
            raise MumoError(f"targets must be (B, {self.cfg.mel_bins}, {steps}), not {tuple(targets.shape)}")
        mask = None
        if lengths is not None:
            mask = torch.arange(f, device=faces.device)[None] < lengths.to(faces.device)[:, None]  # (B, F)
        if isinstance(self.decoder, TacotronDecoder):
            feed = None
            if targets is not None:
                draws = torch.rand(steps // r) if draws is None else draws
                feed = draws.cpu() < teacher_forcing  # (steps / r,) bool
            before, alignments = self.decoder(memory, steps, mask, targets, feed)
        else:
            before, alignments = self.decoder(memory, steps), None
        after = before + self.postnet(before)  # (B, M, steps)
        return Lip2WavOutput(before, after, alignments)


@dataclass
class Lip2WavOutput:
    """The decoder's mel, the mel after the postnet (the prediction), and the attention (tacotron only)."""

    mel_before: torch.Tensor  # (B, 80, steps)
    mel: torch.Tensor  # (B, 80, steps)
    alignments: torch.Tensor | None  # (B, steps / r, F)


def lip2wav_loss(out: Lip2WavOutput, target: torch.Tensor, model: nn.Module | None = None, *,
                 mask: torch.Tensor | None = None, l2: float = 1e-7) -> torch.Tensor:  # fmt: skip
    """The reference's loss: MSE of the decoder's mel + MSE of the postnet's mel + L1 of the decoder's mel, over
    the valid steps (``mask`` (B, steps), True where valid), + ``l2`` times the squared weights of ``model``
    (matrices and kernels; biases and norms are not regularised)."""
    if mask is None:
        mask = torch.ones(target.shape[0], target.shape[-1], dtype=torch.bool, device=target.device)
    w = mask[:, None].to(target.dtype).expand_as(target)  # (B, M, steps)
    n = w.sum().clamp_min(1.0)
    loss = (((out.mel_before - target) ** 2 * w).sum() + ((out.mel - target) ** 2 * w).sum()
            + ((out.mel_before - target).abs() * w).sum()) / n  # fmt: skip
    if model is not None and l2 > 0:
        loss = loss + l2 * sum((p**2).sum() for name, p in model.named_parameters() if p.ndim > 1)
    return loss
