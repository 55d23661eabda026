"""SyncNet-style lip-sync expert (Prajwal et al. 2020, Wav2Lip's ``color_syncnet_train.py``; reference §6.4).

Reimplemented from the description, not copied. Two convolutional streams map one 5-frame window to a
pair of embeddings:

- face stream: the lower (mouth) halves of 5 RGB frames in [0, 1], stacked on channels frame-major
  (channel ``3 * frame + colour``): (B, 15, 48, 96) -> (B, E);
- audio stream: the 16-step mel window of the same 0.2 s: (B, 1, 80, 16) -> (B, E).

Every block is Conv2d + BatchNorm + ReLU, residual blocks adding their input before the ReLU. Both
streams end in a ReLU, so the L2-normalised embeddings are non-negative and their cosine similarity, the
sync score, lies in [0, 1]: it is trained with plain BCE against in-sync (1) / off-sync (0) labels.

The defaults (preset ``sync-wav2lip``) are the block layout of Wav2Lip's ``SyncNet_color``
(``models/syncnet.py``, blocks from ``models/conv.py``), block for block; (kernel, stride, padding) then
residual 3x3 blocks (stride 1, padding 1) per stage:

- face: 15->32 (7, 1, 3); 32->64 (5, (1, 2), 1) + 2; 64->128 (3, 2, 1) + 3; 128->256 (3, 2, 1) + 2;
  256->512 (3, 2, 1) + 2; 512->512 (3, 2, 1); 512->512 (3, 1, 0), the valid conv over the 3x3 grid;
  512->512 1x1 (``face_out``);
- audio: 1->32 (3, 1, 1) + 2; 32->64 (3, (3, 1), 1) + 2; 64->128 (3, 3, 1) + 2; 128->256 (3, (3, 2), 1) + 2;
  256->512 (3, 1, 0), the valid conv; 512->512 1x1 (``audio_out``).

That is 16,435,072 parameters (13,031,808 face, 3,403,264 audio), the reference's exact count. What differs
from the reference, none of it a parameter: the ``nn.Dropout`` before each stream's final 1x1 block (below;
the identity in eval mode, so an eval-mode forward pass computes the reference's embeddings), the cosine score
(clamped to [0, 1]) computed in the model, the input colour order and the layer names. Wav2Lip reads frames
with OpenCV, so its released expert saw BGR channels: flip the colour order, and rename the layers, before
loading those weights here: its ``face_encoder.0-15`` and ``audio_encoder.0-12`` are ours, its
``face_encoder.16`` / ``audio_encoder.13`` our ``face_out`` / ``audio_out``, and in each block its
``conv_block.0`` / ``conv_block.1`` our ``conv`` / ``norm``.

Each stream has an ``nn.Dropout`` before its final 1x1 block. Everything before the two dropouts is the
deterministic :meth:`SyncExpert.trunk`, the rest the stochastic :meth:`SyncExpert.head`, so
``mumo.uncertainty.mc_dropout.mc_forward`` samples the sync score with the encoders run once, e.g.
``mc_forward(expert, faces, mels, num_samples=20, output_fn=lambda o: o.score)`` -> (T, B).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from mumo.errors import ConfigError, MumoError

# Spatial schedule of the strided blocks, fixed as in the reference; channel widths and the number of
# residual blocks per stage come from the config. (kernel, stride, padding) per stage.
_FACE_STAGES = [
    ((7, 7), (1, 1), (3, 3)),  # 48x96 -> 48x96
    ((5, 5), (1, 2), (1, 1)),  # -> 46x47
    ((3, 3), (2, 2), (1, 1)),  # -> 23x24
    ((3, 3), (2, 2), (1, 1)),  # -> 12x12
    ((3, 3), (2, 2), (1, 1)),  # -> 6x6
    ((3, 3), (2, 2), (1, 1)),  # -> 3x3, then a valid 3x3 conv -> 1x1
]
_AUDIO_STAGES = [
    ((3, 3), (1, 1), (1, 1)),  # 80x16 -> 80x16
    ((3, 3), (3, 1), (1, 1)),  # -> 27x16
    ((3, 3), (3, 3), (1, 1)),  # -> 9x6
    ((3, 3), (3, 2), (1, 1)),  # -> 3x3, then a valid 3x3 conv -> 1x1
]


def _out_size(size: tuple[int, int], stages: list) -> tuple[int, int]:
    """Height and width after the strided stages."""
    h, w = size
    for (kh, kw), (sh, sw), (ph, pw) in stages:
        h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return h, w


@dataclass
class SyncExpertConfig:
    """Sizes of the lip-sync expert. The defaults are the reference (``sync-wav2lip``)."""

    name: str = "sync_expert"  # registry name of the model
    # Inputs: one window of `frames` video frames at 25 fps and the matching 0.2 s of mel (80 steps/s)
    frames: int = 5  # frames per window; their RGB lower halves are stacked on channels (3 * 5 = 15)
    face_height: int = 48  # lower half of a 96x96 face crop
    face_width: int = 96
    mel_bins: int = 80  # mel channels (mumo.data.av.audio, Wav2Lip's front-end)
    mel_steps: int = 16  # mel steps per window (5 frames x 3.2 steps)
    # Widths: one entry per strided stage (the spatial schedule is fixed, see _FACE_STAGES / _AUDIO_STAGES)
    face_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 512])
    face_residual: list[int] = field(default_factory=lambda: [0, 2, 3, 2, 2, 0])  # residual 3x3 blocks per stage
    audio_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    audio_residual: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    embedding: int = 512  # E, both streams
    dropout: float = 0.1  # nn.Dropout before each stream's final 1x1 block (MC dropout); the reference has none

    def __post_init__(self) -> None:
        if len(self.face_channels) != len(_FACE_STAGES) or len(self.face_residual) != len(_FACE_STAGES):
            raise ConfigError(
                f"model.face_channels and model.face_residual need {len(_FACE_STAGES)} entries, one per stage, not "
                f"{self.face_channels} and {self.face_residual}"
            )
        if len(self.audio_channels) != len(_AUDIO_STAGES) or len(self.audio_residual) != len(_AUDIO_STAGES):
            raise ConfigError(
                f"model.audio_channels and model.audio_residual need {len(_AUDIO_STAGES)} entries, one per stage, "
                f"not {self.audio_channels} and {self.audio_residual}"
            )
        for key in ("frames", "face_height", "face_width", "mel_bins", "mel_steps", "embedding"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, not {getattr(self, key)}")
        for key in ("face_channels", "audio_channels"):
            if min(getattr(self, key)) < 1:
                raise ConfigError(f"model.{key} must be widths >= 1, not {getattr(self, key)}")
        for key in ("face_residual", "audio_residual"):
            if min(getattr(self, key)) < 0:
                raise ConfigError(f"model.{key} must be residual block counts >= 0, not {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must lie in [0, 1), not {self.dropout}")
        if min(self.face_grid) < 1:
            raise ConfigError(f"a {self.face_height}x{self.face_width} face is too small for the face stream")
        if min(self.mel_grid) < 1:
            raise ConfigError(f"a {self.mel_bins}x{self.mel_steps} mel window is too small for the audio stream")
        # Sizes that cannot fit are refused before anything is allocated: at most 2**31 conv weights (8 GiB in
        # float32), the bound MCANConfig uses (sync-wav2lip has 16.4 M). Counted: every stage's strided conv,
        # its residual 3x3 convs, the valid conv over the last grid and the final 1x1 block, per stream.
        total = 2 * self.embedding * self.embedding
        streams = (
            (self.face_in_channels, self.face_channels, self.face_residual, _FACE_STAGES, self.face_grid),
            (1, self.audio_channels, self.audio_residual, _AUDIO_STAGES, self.mel_grid),
        )
        for cin, channels, residual, stages, (gh, gw) in streams:
            for cout, n_res, ((kh, kw), _, _) in zip(channels, residual, stages, strict=True):
                total += kh * kw * cin * cout + n_res * 9 * cout * cout
                cin = cout
            total += gh * gw * cin * self.embedding
        if total > 2**31:
            named = ", ".join(f"model.{k}={getattr(self, k)}" for k in ("face_channels", "audio_channels", "embedding"))
            raise ConfigError(
                f"the sync expert would have about {total:.2g} weights, more than the 2**31 (8 GiB in float32) a run "
                f"may have: {named}"
            )

    @property
    def face_in_channels(self) -> int:
        """3 * frames: RGB frames stacked on channels."""
        return 3 * self.frames

    @property
    def face_grid(self) -> tuple[int, int]:
        """Face feature map size before the final valid conv (3x3 at 48x96)."""
        return _out_size((self.face_height, self.face_width), _FACE_STAGES)

    @property
    def mel_grid(self) -> tuple[int, int]:
        """Audio feature map size before the final valid conv (3x3 at 80x16)."""
        return _out_size((self.mel_bins, self.mel_steps), _AUDIO_STAGES)

    @classmethod
    def from_name(cls, name: str, **overrides) -> SyncExpertConfig:
        """The ``model`` section of a shipped preset (``sync-wav2lip``, ``sync-cpu``; YAML files in
        ``mumo/configs``), optionally with field overrides."""
        from mumo.config import preset_section

        if name not in cls.preset_names():
            raise ConfigError(f"unknown sync expert preset {name!r}; choose one of: {', '.join(cls.preset_names())}")
        return dataclasses.replace(cls(), **{**preset_section(name, "model"), **overrides})

    @staticmethod
    def preset_names() -> list[str]:
        """Names accepted by :meth:`from_name`: the shipped presets of the ``sync`` task."""
        from mumo.config import list_presets

        return list_presets("sync")


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm + ReLU; a residual block adds its input before the ReLU (same shape in and out)."""

    def __init__(self, *, cin: int, cout: int, kernel, stride=1, padding=0, residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.norm = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.norm(self.conv(x))
        if self.residual:
            out = out + x
        return F.relu(out)


def _encoder(
    *, cin: int, channels: list[int], residual: list[int], stages: list, grid: tuple[int, int], embedding: int
) -> nn.Sequential:
    """Strided stages with residual blocks, then a valid conv over the remaining grid: (B, C, H, W) -> (B, E, 1, 1)."""
    layers: list[nn.Module] = []
    for cout, n_res, (kernel, stride, padding) in zip(channels, residual, stages, strict=True):
        layers.append(ConvBlock(cin=cin, cout=cout, kernel=kernel, stride=stride, padding=padding))
        layers += [ConvBlock(cin=cout, cout=cout, kernel=3, padding=1, residual=True) for _ in range(n_res)]
        cin = cout
    layers.append(ConvBlock(cin=cin, cout=embedding, kernel=grid))  # (B, E, 1, 1)
    return nn.Sequential(*layers)


@dataclass
class SyncOutput:
    """Expert output for B windows."""

    audio_embedding: torch.Tensor  # (B, E) unit norm, non-negative
    face_embedding: torch.Tensor  # (B, E) unit norm, non-negative
    score: torch.Tensor  # (B,) cosine similarity in [0, 1]; 1 = in sync


@dataclass
class SyncTrunk:
    """Deterministic part of both streams (before the dropouts), cached by MC dropout."""

    face: torch.Tensor  # (B, E, 1, 1)
    audio: torch.Tensor  # (B, E, 1, 1)

    @property
    def num_rows(self) -> int:
        return int(self.face.shape[0])

    def repeat(self, k: int) -> SyncTrunk:
        """k stacked copies (k * B, ...), sample-major."""
        return SyncTrunk(self.face.repeat(k, 1, 1, 1), self.audio.repeat(k, 1, 1, 1))


def sync_loss(score: torch.Tensor, label: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Mean BCE between sync scores and labels, the score clamped to [eps, 1 - eps] for stability.

    Args:
        score: (B,) cosine similarities in [0, 1].
        label: (B,) 1 = in sync, 0 = off sync (any dtype).

    Returns:
        Scalar loss; ln 2 ≈ 0.693 is chance.
    """
    if score.shape != label.shape:
        raise MumoError(f"score and label must have the same shape, got {tuple(score.shape)} and {tuple(label.shape)}")
    return F.binary_cross_entropy(score.clamp(eps, 1.0 - eps), label.to(score.dtype))


def stack_frames(window: torch.Tensor) -> torch.Tensor:
    """(B, T, H, W, 3) RGB frames (uint8, or float in [0, 1]) -> (B, 3T, H, W) float face input.

    Channels are frame-major (``3 * frame + colour``), as the expert expects; pass the lower halves
    (``mumo.data.av.faces.lower_half``).
    """
    if window.ndim != 5 or window.shape[-1] != 3:
        raise MumoError(f"window must be (B, T, H, W, 3), not {tuple(window.shape)}")
    x = window.float() / 255.0 if window.dtype == torch.uint8 else window.float()
    b, t, h, w, c = x.shape
    return x.permute(0, 1, 4, 2, 3).reshape(b, t * c, h, w)  # (B, T*3, H, W)


class SyncExpert(nn.Module):
    """Face and audio encoders scored by cosine similarity."""

    def __init__(self, *, cfg: SyncExpertConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or SyncExpertConfig()
        self.cfg = cfg
        self.face_encoder = _encoder(
            cin=cfg.face_in_channels, channels=cfg.face_channels, residual=cfg.face_residual,
            stages=_FACE_STAGES, grid=cfg.face_grid, embedding=cfg.embedding,
        )  # fmt: skip
        self.audio_encoder = _encoder(
            cin=1, channels=cfg.audio_channels, residual=cfg.audio_residual,
            stages=_AUDIO_STAGES, grid=cfg.mel_grid, embedding=cfg.embedding,
        )  # fmt: skip
        self.face_dropout = nn.Dropout(cfg.dropout)
        self.audio_dropout = nn.Dropout(cfg.dropout)
        self.face_out = ConvBlock(cin=cfg.embedding, cout=cfg.embedding, kernel=1)  # final ReLU: non-negative
        self.audio_out = ConvBlock(cin=cfg.embedding, cout=cfg.embedding, kernel=1)

    def _check_faces(self, faces: torch.Tensor) -> None:
        c = self.cfg
        want = (c.face_in_channels, c.face_height, c.face_width)
        if faces.ndim != 4 or tuple(faces.shape[1:]) != want:
            raise MumoError(f"faces must be (B, {want[0]}, {want[1]}, {want[2]}), not {tuple(faces.shape)}")

    def _check_mels(self, mels: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        if mels.ndim == 3:
            mels = mels.unsqueeze(1)  # (B, 1, M, S)
        if mels.ndim != 4 or tuple(mels.shape[1:]) != (1, c.mel_bins, c.mel_steps):
            raise MumoError(f"mels must be (B, 1, {c.mel_bins}, {c.mel_steps}), not {tuple(mels.shape)}")
        return mels

    def trunk(self, faces: torch.Tensor, mels: torch.Tensor) -> SyncTrunk:
        """Both encoders up to the dropouts: faces (B, 15, 48, 96), mels (B, 1, 80, 16) or (B, 80, 16)."""
        self._check_faces(faces)
        mels = self._check_mels(mels)
        if faces.shape[0] != mels.shape[0]:
            raise MumoError(f"{faces.shape[0]} face windows but {mels.shape[0]} mel windows")
        return SyncTrunk(self.face_encoder(faces), self.audio_encoder(mels))  # (B, E, 1, 1) each

    def _face_head(self, x: torch.Tensor) -> torch.Tensor:
        v = self.face_out(self.face_dropout(x)).flatten(1)  # (B, E) non-negative
        return F.normalize(v, p=2, dim=1)

    def _audio_head(self, x: torch.Tensor) -> torch.Tensor:
        a = self.audio_out(self.audio_dropout(x)).flatten(1)  # (B, E) non-negative
        return F.normalize(a, p=2, dim=1)

    def head(self, state: SyncTrunk) -> SyncOutput:
        """Dropouts, final 1x1 blocks, L2 normalisation and the cosine score."""
        v = self._face_head(state.face)  # (B, E)
        a = self._audio_head(state.audio)  # (B, E)
        score = (a * v).sum(dim=1).clamp(0.0, 1.0)  # (B,) cosine of unit vectors
        return SyncOutput(audio_embedding=a, face_embedding=v, score=score)

    def embed_faces(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 15, 48, 96) stacked lower-half frames in [0, 1] -> (B, E) unit-norm embeddings."""
        self._check_faces(faces)
        return self._face_head(self.face_encoder(faces))

    def embed_audio(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, 16) or (B, 80, 16) mel windows -> (B, E) unit-norm embeddings."""
        return self._audio_head(self.audio_encoder(self._check_mels(mels)))

    sync_loss = staticmethod(sync_loss)

    # MC dropout: every dropout sits after the trunk, so the fast path can always cache it.
    def trunk_is_deterministic(self, scope: str = "all") -> bool:
        return True

    def forward(self, faces: torch.Tensor, mels: torch.Tensor) -> SyncOutput:
        """faces (B, 15, 48, 96) in [0, 1], mels (B, 1, 80, 16) -> embeddings (B, E) and score (B,)."""
        return self.head(self.trunk(faces, mels))
