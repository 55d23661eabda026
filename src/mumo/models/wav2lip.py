"""Wav2Lip-style speech-to-lip generator and its two discriminators (Prajwal et al. 2020, Wav2Lip's
``models/wav2lip.py`` and ``models/conv.py``; LipGAN, Prajwal et al. 2019; reference §6.2, §6.3, §6.5).

Reimplemented from the description, not copied. The generator redraws the mouth of one face per video frame
from the mel window of that frame:

- input: 6 channels per frame, the target frame with its lower half zeroed (channels 0-2, see
  :func:`generator_input`) and a reference frame of the same person (channels 3-5), 96x96 in [0, 1];
- face encoder, 7 stages, each map kept for a U-Net skip: 16@96 -> 32@48 -> 64@24 -> 128@12 -> 256@6 ->
  512@3 -> 512@1 (the face code);
- audio encoder over the (1, 80, 16) mel window -> a 512x1x1 embedding;
- decoder: a 1x1 block on the audio embedding, then 6 transposed-conv stages back up to 96 px; after every
  stage the face-encoder map of the same size is concatenated on channels (512 + 512 = 1024 ... 64 + 16 = 80);
- output block: 80 -> 32 (3x3 block), a plain 1x1 conv 32 -> 3 and a sigmoid: the face in [0, 1].

The frames of a window are folded into the batch axis and generated independently. Every block is Conv2d (or
ConvTranspose2d) + BatchNorm + ReLU, a residual block adding its input before the ReLU (:class:`ConvBlock` of
the sync expert). The defaults are the reference's layout, stage for stage; (kernel, stride, padding) then
residual 3x3 blocks per stage:

- face: 6->16 (7, 1, 3); 16->32 (3, 2, 1) + 2; 32->64 (3, 2, 1) + 3; 64->128 (3, 2, 1) + 2;
  128->256 (3, 2, 1) + 2; 256->512 (3, 2, 1) + 1; 512->512 (3, 1, 0), the valid conv over the 3x3 grid, then
  512->512 1x1;
- audio: 1->32 (3, 1, 1) + 2; 32->64 (3, (3, 1), 1) + 2; 64->128 (3, 3, 1) + 2; 128->256 (3, (3, 2), 1) + 1;
  256->512 (3, 1, 0), the valid conv; 512->512 1x1;
- decoder: 512->512 1x1; transposed 1024->512 (3, 1, 0) + 1 (1 -> 3 px); then transposed (3, 2, 1, output
  padding 1) doubling the size, + 2 each: 1024->512 @6, 768->384 @12, 512->256 @24, 320->128 @48, 160->64 @96;
- output: 80->32 (3, 1, 1) block, 32->3 1x1 conv, sigmoid.

MC dropout: the one addition to the reference is an ``nn.Dropout`` on the audio embedding and one on the face
code (the identity in eval mode, so an eval-mode forward pass is deterministic and computes the reference's
face). ``mumo.uncertainty.mc_dropout.mc_forward(generator, faces, mels, num_samples=T)`` samples them, giving
(T, B, frames, 3, S, S): the per-pixel spread of the T sampled faces is the model's uncertainty about the mouth.

The discriminators:

- :class:`VisualDiscriminator`, Wav2Lip's visual-quality discriminator: plain convs with LeakyReLU(0.01), no
  normalisation, over the lower half of each face (3x48x96), one probability "real" per face;
- :class:`LipGANDiscriminator`, LipGAN's jointly trained sync discriminator: face and audio encoders (the
  generator's builders) ending in L2-normalised embeddings, scored by their Euclidean distance and trained with
  :func:`contrastive_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from mumo.errors import ConfigError, MumoError
from mumo.models.sync_expert import ConvBlock

# Spatial schedules, fixed as in the reference; widths and residual counts come from the config.
# (kernel, stride, padding) per strided stage; the last stage of each encoder (a valid conv over the remaining
# grid, then a 1x1 block) is added by the builders.
_FACE_STAGES = [
    ((7, 7), (1, 1), (3, 3)),  # 96 -> 96
    ((3, 3), (2, 2), (1, 1)),  # -> 48
    ((3, 3), (2, 2), (1, 1)),  # -> 24
    ((3, 3), (2, 2), (1, 1)),  # -> 12
    ((3, 3), (2, 2), (1, 1)),  # -> 6
    ((3, 3), (2, 2), (1, 1)),  # -> 3, then a valid 3x3 conv -> 1
]
_AUDIO_STAGES = [  # the sync expert's audio schedule
    ((3, 3), (1, 1), (1, 1)),  # 80x16 -> 80x16
    ((3, 3), (3, 1), (1, 1)),  # -> 27x16
    ((3, 3), (3, 3), (1, 1)),  # -> 9x6
    ((3, 3), (3, 2), (1, 1)),  # -> 3x3, then a valid 3x3 conv -> 1x1
]
# Transposed decoder stages after the 1x1 block: (kernel, stride, padding, output padding).
_DECODER_STAGES = [
    (3, 1, 0, 0),  # 1 -> 3
    (3, 2, 1, 1),  # -> 6
    (3, 2, 1, 1),  # -> 12
    (3, 2, 1, 1),  # -> 24
    (3, 2, 1, 1),  # -> 48
    (3, 2, 1, 1),  # -> 96
]
# Visual discriminator on the 48x96 lower half: (kernel, stride, padding) of each stage's first conv; every stage
# but the first adds one same-width conv of the same kernel, stride 1. Then a valid conv and a 1x1 conv.
_DISC_STAGES = [
    ((7, 7), (1, 1), (3, 3)),  # 48x96 -> 48x96
    ((5, 5), (1, 2), (2, 2)),  # -> 48x48
    ((5, 5), (2, 2), (2, 2)),  # -> 24x24
    ((5, 5), (2, 2), (2, 2)),  # -> 12x12
    ((3, 3), (2, 2), (1, 1)),  # -> 6x6
    ((3, 3), (2, 2), (1, 1)),  # -> 3x3, then a valid 3x3 conv -> 1x1
]
_MAX_WEIGHTS = 2**31  # the bound MCANConfig and SyncExpertConfig use (8 GiB in float32)


def _sizes(size: tuple[int, int], stages: list) -> list[tuple[int, int]]:
    """Height and width after each strided stage."""
    h, w = size
    out = []
    for (kh, kw), (sh, sw), (ph, pw) in stages:
        h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        out.append((h, w))
    return out


def _check_widths(owner: str, widths: dict[str, tuple[list[int], int]], counts: dict[str, tuple[list[int], int]]):
    """Lengths, positive widths and non-negative residual counts; ``{field: (value, wanted length)}``."""
    for key, (value, n) in {**widths, **counts}.items():
        if len(value) != n:
            raise ConfigError(f"{owner}.{key} needs {n} entries, one per stage, not {value}")
    for key, (value, _) in widths.items():
        if min(value) < 1:
            raise ConfigError(f"{owner}.{key} must be widths >= 1, not {value}")
    for key, (value, _) in counts.items():
        if min(value) < 0:
            raise ConfigError(f"{owner}.{key} must be residual block counts >= 0, not {value}")


@dataclass
class Wav2LipConfig:
    """Sizes of the generator (and of :class:`LipGANDiscriminator`, which reuses its encoders). The defaults are
    the reference's widths."""

    name: str = "wav2lip"  # registry name of the model
    # Inputs: 96x96 faces at 25 fps, 0.2 s of mel (80 steps/s) per frame
    frames: int = 5  # frames per training window (what the sync expert scores); the generator takes any number
    face_size: int = 96  # S; the U-Net skips line up only on the 96 -> 48 -> 24 -> 12 -> 6 -> 3 -> 1 schedule
    mel_bins: int = 80  # mel channels (mumo.data.av.audio, Wav2Lip's front-end)
    mel_steps: int = 16  # mel steps per window (5 frames x 3.2 steps)
    # Face encoder: 7 stage widths (the last is the 1x1 face code), residual blocks for the first 6 stages
    face_channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 256, 512, 512])
    face_residual: list[int] = field(default_factory=lambda: [0, 2, 3, 2, 2, 1])
    # Audio encoder: 5 widths (the last is the 1x1 audio embedding), residual blocks for the first 4 stages
    audio_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])
    audio_residual: list[int] = field(default_factory=lambda: [2, 2, 2, 1])
    # Decoder: the 1x1 block on the audio embedding, then the 6 transposed stages (1 -> 3 -> 6 ... -> 96 px)
    decoder_channels: list[int] = field(default_factory=lambda: [512, 512, 512, 384, 256, 128, 64])
    decoder_residual: list[int] = field(default_factory=lambda: [1, 2, 2, 2, 2, 2])  # per transposed stage
    output_channels: int = 32  # hidden width of the output block (80 -> 32 -> 3)
    dropout: float = 0.1  # nn.Dropout on the audio embedding and on the face code (MC dropout); the reference has none

    def __post_init__(self) -> None:
        _check_widths(
            "model",
            {"face_channels": (self.face_channels, 7), "audio_channels": (self.audio_channels, 5),
             "decoder_channels": (self.decoder_channels, 7)},
            {"face_residual": (self.face_residual, 6), "audio_residual": (self.audio_residual, 4),
             "decoder_residual": (self.decoder_residual, 6)},
        )  # fmt: skip
        for key in ("frames", "face_size", "mel_bins", "mel_steps", "output_channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1, not {getattr(self, key)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must lie in [0, 1), not {self.dropout}")
        face, decoder = self.face_schedule, self.decoder_schedule
        if face != decoder[::-1]:
            raise ConfigError(
                f"model.face_size must be 96, not {self.face_size}: the face encoder takes it through "
                f"{' -> '.join(map(str, face))} px but the decoder grows {' -> '.join(map(str, decoder))}, so the "
                "U-Net skips only line up on the 96 -> 48 -> 24 -> 12 -> 6 -> 3 -> 1 schedule"
            )
        total = self.num_weights
        if total > _MAX_WEIGHTS:
            named = ", ".join(f"model.{k}={getattr(self, k)}" for k in ("face_channels", "decoder_channels"))
            raise ConfigError(
                f"the generator would have about {total:.2g} weights, more than the 2**31 (8 GiB in float32) a run "
                f"may have: {named}"
            )

    @property
    def face_schedule(self) -> list[int]:
        """Face-encoder map sizes, stage by stage ([96, 48, 24, 12, 6, 3, 1] at 96 px; 0 where it runs out)."""
        sizes = [h for h, _ in _sizes((self.face_size, self.face_size), _FACE_STAGES)]
        return [*sizes, max(0, sizes[-1] - 2)]  # the last stage is a valid 3x3 conv

    @property
    def decoder_schedule(self) -> list[int]:
        """Decoder map sizes, stage by stage: [1, 3, 6, 12, 24, 48, 96]."""
        sizes = [1]  # the 1x1 block on the audio embedding
        for k, s, p, op in _DECODER_STAGES:
            sizes.append((sizes[-1] - 1) * s - 2 * p + k + op)
        return sizes

    @property
    def mel_grid(self) -> tuple[int, int]:
        """Audio feature map size before the final valid conv (3x3 at 80x16)."""
        return _sizes((self.mel_bins, self.mel_steps), _AUDIO_STAGES)[-1]

    @property
    def num_weights(self) -> int:
        """Conv weights of the generator (biases and BatchNorm left out), counted from the config alone."""
        total = 0
        cin = 6
        for cout, n_res, ((kh, kw), _, _) in zip(self.face_channels, self.face_residual, _FACE_STAGES, strict=False):
            total += kh * kw * cin * cout + n_res * 9 * cout * cout
            cin = cout
        total += 9 * cin * self.face_channels[-1] + self.face_channels[-1] ** 2
        cin = 1
        for cout, n_res in zip(self.audio_channels, self.audio_residual, strict=False):
            total += 9 * cin * cout + n_res * 9 * cout * cout
            cin = cout
        total += self.mel_grid[0] * self.mel_grid[1] * cin * self.audio_channels[-1] + self.audio_channels[-1] ** 2
        dec = self.decoder_channels
        total += self.audio_channels[-1] * dec[0]
        for i, n_res in enumerate(self.decoder_residual, start=1):
            cin = dec[i - 1] + self.face_channels[-i]
            total += 9 * cin * dec[i] + n_res * 9 * dec[i] * dec[i]
        return total + 9 * (dec[-1] + self.face_channels[0]) * self.output_channels + 3 * self.output_channels


class ConvTransposeBlock(nn.Module):
    """ConvTranspose2d + BatchNorm + ReLU (the decoder's upsampling block)."""

    def __init__(self, *, cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding)
        self.norm = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def _residuals(width: int, count: int) -> list[nn.Module]:
    return [ConvBlock(cin=width, cout=width, kernel=3, padding=1, residual=True) for _ in range(count)]


def _face_stages(*, cin: int, channels: list[int], residual: list[int]) -> list[nn.Sequential]:
    """The 7 face-encoder stages, (N, cin, 96, 96) -> ... -> (N, C, 1, 1), one module per stage (U-Net skips)."""
    stages = []
    for cout, n_res, (kernel, stride, padding) in zip(channels, residual, _FACE_STAGES, strict=False):
        block = ConvBlock(cin=cin, cout=cout, kernel=kernel, stride=stride, padding=padding)
        stages.append(nn.Sequential(block, *_residuals(cout, n_res)))
        cin = cout
    code = channels[-1]  # valid 3x3 conv over the 3x3 grid, then 1x1
    stages.append(nn.Sequential(ConvBlock(cin=cin, cout=code, kernel=3), ConvBlock(cin=code, cout=code, kernel=1)))
    return stages


def _audio_encoder(*, channels: list[int], residual: list[int], grid: tuple[int, int]) -> nn.Sequential:
    """(N, 1, 80, 16) mel windows -> (N, E, 1, 1) embeddings, E = channels[-1]."""
    layers: list[nn.Module] = []
    cin = 1
    for cout, n_res, (kernel, stride, padding) in zip(channels, residual, _AUDIO_STAGES, strict=False):
        layers += [ConvBlock(cin=cin, cout=cout, kernel=kernel, stride=stride, padding=padding)]
        layers += _residuals(cout, n_res)
        cin = cout
    emb = channels[-1]  # valid conv over the remaining grid, then 1x1
    layers += [ConvBlock(cin=cin, cout=emb, kernel=grid), ConvBlock(cin=emb, cout=emb, kernel=1)]
    return nn.Sequential(*layers)


def _check_mels(mels: torch.Tensor, lead: int, cfg: Wav2LipConfig) -> torch.Tensor:
    """Mels with ``lead`` leading axes, the channel axis added when absent: (..., 1, M, steps)."""
    if mels.ndim == lead + 2:
        mels = mels.unsqueeze(lead)
    want = (1, cfg.mel_bins, cfg.mel_steps)
    if mels.ndim != lead + 3 or tuple(mels.shape[lead:]) != want:
        axes = "B, T" if lead == 2 else "N"
        raise MumoError(f"mels must be ({axes}, 1, {want[1]}, {want[2]}), not {tuple(mels.shape)}")
    return mels


def mask_lower_half(frames: torch.Tensor) -> torch.Tensor:
    """A copy of (..., 3, S, S) frames with rows S // 2 onwards (the mouth) zeroed; the input is left untouched.

    The masked pixels are constants in the copy, so no gradient flows back to them.
    """
    if frames.ndim < 3 or frames.shape[-3] != 3 or frames.shape[-1] != frames.shape[-2]:
        raise MumoError(f"frames must be (..., 3, S, S), not {tuple(frames.shape)}")
    out = frames.clone()
    out[..., frames.shape[-2] // 2 :, :] = 0
    return out


def lower_half(faces: torch.Tensor) -> torch.Tensor:
    """The mouth half of (..., 3, S, S) faces: (..., 3, S // 2, S), rows S // 2 onwards (a view).

    Channel-first; ``mumo.data.av.faces.lower_half`` is the channel-last version for (T, S, S, 3) crops.
    """
    if faces.ndim < 3 or faces.shape[-3] != 3 or faces.shape[-1] != faces.shape[-2]:
        raise MumoError(f"faces must be (..., 3, S, S), not {tuple(faces.shape)}")
    return faces[..., faces.shape[-2] // 2 :, :]


def generator_input(target: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The generator's 6-channel input: the target frames with their lower half zeroed, then the reference frames.

    Args:
        target: (B, T, 3, S, S) frames in [0, 1] whose mouths are generated; their lower half never reaches the
            generator.
        reference: (B, T, 3, S, S) frames of the same person (training: another window of the same video, out of
            sync; inference: the target frames themselves).

    Returns:
        (B, T, 6, S, S).
    """
    if target.ndim != 5 or target.shape[2] != 3 or target.shape != reference.shape:
        raise MumoError(
            f"target and reference must be two (B, T, 3, S, S) tensors, not {tuple(target.shape)} and "
            f"{tuple(reference.shape)}"
        )
    return torch.cat([mask_lower_half(target), reference], dim=2)  # (B, T, 6, S, S)


class Wav2Lip(nn.Module):
    """The generator: a U-Net from the masked face and the mel window to the face with its mouth redrawn.

    With dropout sampled (:func:`mumo.uncertainty.mc_dropout.mc_forward`), the per-pixel spread of T sampled
    faces is the model's uncertainty about the mouth.
    """

    def __init__(self, *, cfg: Wav2LipConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or Wav2LipConfig()
        self.cfg = cfg
        self.face_encoder = nn.ModuleList(
            _face_stages(cin=6, channels=cfg.face_channels, residual=cfg.face_residual)
        )  # 7 stages: 96, 48, 24, 12, 6, 3, 1 px
        self.audio_encoder = _audio_encoder(channels=cfg.audio_channels, residual=cfg.audio_residual, grid=cfg.mel_grid)
        self.face_dropout = nn.Dropout(cfg.dropout)  # on the face code
        self.audio_dropout = nn.Dropout(cfg.dropout)  # on the audio embedding
        dec, face = cfg.decoder_channels, cfg.face_channels
        stages = [nn.Sequential(ConvBlock(cin=cfg.audio_channels[-1], cout=dec[0], kernel=1))]  # 1 px
        for i, (n_res, (k, s, p, op)) in enumerate(zip(cfg.decoder_residual, _DECODER_STAGES, strict=True), start=1):
            up = ConvTransposeBlock(
                cin=dec[i - 1] + face[-i], cout=dec[i], kernel=k, stride=s, padding=p, output_padding=op
            )
            stages.append(nn.Sequential(up, *_residuals(dec[i], n_res)))
        self.decoder = nn.ModuleList(stages)  # 7 stages: 1, 3, 6, 12, 24, 48, 96 px
        self.output_block = nn.Sequential(
            ConvBlock(cin=dec[-1] + face[0], cout=cfg.output_channels, kernel=3, padding=1),
            nn.Conv2d(cfg.output_channels, 3, kernel_size=1),
            nn.Sigmoid(),
        )

    def _check(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        s = self.cfg.face_size
        if faces.ndim != 5 or tuple(faces.shape[2:]) != (6, s, s):
            raise MumoError(f"faces must be (B, T, 6, {s}, {s}), not {tuple(faces.shape)}")
        if not faces.is_floating_point():
            raise MumoError(f"faces must be float in [0, 1], not {faces.dtype}")
        mels = _check_mels(mels, 2, self.cfg)
        if faces.shape[:2] != mels.shape[:2]:
            raise MumoError(f"faces are {tuple(faces.shape[:2])} (B, T) windows but mels {tuple(mels.shape[:2])}")
        if faces.shape[0] * faces.shape[1] == 0:
            raise MumoError(f"faces hold no frame: {tuple(faces.shape)}")
        if faces[:, :, :3, s // 2 :].any():
            raise MumoError("the target frames (channels 0-2) must have their lower half zeroed: use generator_input")
        return mels

    def forward(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """Generate one face per frame.

        Args:
            faces: (B, T, 6, S, S) float in [0, 1]: the masked target frames, then the reference frames
                (:func:`generator_input`).
            mels: (B, T, 1, 80, 16) or (B, T, 80, 16), the mel window of each frame.

        Returns:
            (B, T, 3, S, S) generated faces in [0, 1].
        """
        mels = self._check(faces, mels)
        b = faces.shape[0]
        x = rearrange(faces, "b t c h w -> (b t) c h w")  # (N, 6, S, S), N = B * T frames
        a = rearrange(mels, "b t c m s -> (b t) c m s")  # (N, 1, 80, 16)
        skips = []
        for stage in self.face_encoder:
            x = stage(x)  # (N, C_i, S_i, S_i), S_i = 96, 48, 24, 12, 6, 3, 1
            skips.append(x)
        skips[-1] = self.face_dropout(skips[-1])  # (N, C, 1, 1) face code
        x = self.audio_dropout(self.audio_encoder(a))  # (N, E, 1, 1)
        for stage, skip in zip(self.decoder, reversed(skips), strict=True):
            x = torch.cat([stage(x), skip], dim=1)  # (N, D_i + C_i, S_i, S_i): 1024@1 ... 80@96
        out = self.output_block(x)  # (N, 3, S, S) in [0, 1]
        return rearrange(out, "(b t) c h w -> b t c h w", b=b)


@dataclass
class VisualDiscriminatorConfig:
    """Sizes of the visual-quality discriminator. The defaults are the reference's widths."""

    face_size: int = 96  # S; the discriminator sees the S/2 x S lower half
    # Widths of the 6 strided stages, then of the valid conv and its 1x1 conv
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512, 512, 512])

    def __post_init__(self) -> None:
        _check_widths("discriminator", {"channels": (self.channels, 7)}, {})
        if self.face_size < 2 or self.face_size % 2:
            raise ConfigError(f"discriminator.face_size must be even and >= 2 (S/2 rows), not {self.face_size}")

    @property
    def grid(self) -> tuple[int, int]:
        """Feature map size before the valid conv (3x3 for a 48x96 lower half)."""
        return _sizes((self.face_size // 2, self.face_size), _DISC_STAGES)[-1]


def _leaky(cin: int, cout: int, kernel, stride=1, padding=0) -> nn.Sequential:
    """Conv2d + LeakyReLU(0.01), no normalisation."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding), nn.LeakyReLU(0.01))


class VisualDiscriminator(nn.Module):
    """Wav2Lip's visual-quality discriminator: P(real) for the lower half of each face.

    Trained with BCE (real faces 1, generated 0); the generator's adversarial term is BCE(D(G(x)), 1).
    """

    def __init__(self, *, cfg: VisualDiscriminatorConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or VisualDiscriminatorConfig()
        self.cfg = cfg
        layers: list[nn.Module] = []
        cin = 3
        for i, (cout, (kernel, stride, padding)) in enumerate(zip(cfg.channels, _DISC_STAGES, strict=False)):
            layers.append(_leaky(cin, cout, kernel, stride, padding))
            if i > 0:
                layers.append(_leaky(cout, cout, kernel, 1, padding))  # same width, same size
            cin = cout
        last = cfg.channels[-1]
        layers += [_leaky(cin, last, cfg.grid), _leaky(last, last, 1)]  # valid conv -> 1x1, then 1x1
        self.encoder = nn.Sequential(*layers)
        self.classifier = nn.Conv2d(last, 1, kernel_size=1)

    def logits(self, halves: torch.Tensor) -> torch.Tensor:
        """(N, 3, S/2, S) lower halves in [0, 1] -> (N,) logits of "real"."""
        s = self.cfg.face_size
        if halves.ndim != 4 or tuple(halves.shape[1:]) != (3, s // 2, s):
            raise MumoError(f"halves must be (N, 3, {s // 2}, {s}) lower halves of faces, not {tuple(halves.shape)}")
        return self.classifier(self.encoder(halves)).flatten()  # (N,)

    def forward(self, halves: torch.Tensor) -> torch.Tensor:
        """(N, 3, S/2, S) lower halves of faces (:func:`lower_half`) in [0, 1] -> (N,) probability "real"."""
        return torch.sigmoid(self.logits(halves))


def contrastive_loss(distance: torch.Tensor, label: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """LipGAN's contrastive loss, mean over the batch: (1 - y) d² + y max(0, margin - d)².

    Args:
        distance: (N,) Euclidean distances between face and audio embeddings.
        label: (N,) 0 = real face with its in-sync audio, 1 = generated face or off-sync audio (any dtype).
        margin: distance beyond which a negative pair costs nothing.

    Returns:
        Scalar loss.
    """
    if distance.shape != label.shape:
        raise MumoError(
            f"distance and label must have the same shape, not {tuple(distance.shape)} and {tuple(label.shape)}"
        )
    if margin <= 0:
        raise MumoError(f"the contrastive margin must be > 0, not {margin}")
    y = label.to(distance.dtype)
    return ((1 - y) * distance.square() + y * (margin - distance).clamp(min=0).square()).mean()


class LipGANDiscriminator(nn.Module):
    """LipGAN's sync discriminator: the Euclidean distance between L2-normalised face and audio embeddings.

    Its encoders are the generator's (built from the same :class:`Wav2LipConfig` widths), the face encoder over
    the whole 3xSxS face; each ends in a plain 1x1 projection to E = ``audio_channels[-1]`` (no ReLU, so the unit
    embeddings can lie anywhere on the sphere and distances span [0, 2]). Trained jointly with the generator by
    :func:`contrastive_loss`. mumo feeds it the generator's (1, 80, 16) mel window, not LipGAN's 12x35 MFCCs.
    """

    def __init__(self, *, cfg: Wav2LipConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or Wav2LipConfig()
        self.cfg = cfg
        self.face_encoder = nn.Sequential(*_face_stages(cin=3, channels=cfg.face_channels, residual=cfg.face_residual))
        self.audio_encoder = _audio_encoder(channels=cfg.audio_channels, residual=cfg.audio_residual, grid=cfg.mel_grid)
        emb = cfg.audio_channels[-1]
        self.face_out = nn.Conv2d(cfg.face_channels[-1], emb, kernel_size=1)
        self.audio_out = nn.Conv2d(emb, emb, kernel_size=1)

    def embed_faces(self, faces: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) faces in [0, 1] -> (N, E) unit-norm embeddings."""
        s = self.cfg.face_size
        if faces.ndim != 4 or tuple(faces.shape[1:]) != (3, s, s):
            raise MumoError(f"faces must be (N, 3, {s}, {s}), not {tuple(faces.shape)}")
        return F.normalize(self.face_out(self.face_encoder(faces)).flatten(1), dim=1)  # (N, E)

    def embed_audio(self, mels: torch.Tensor) -> torch.Tensor:
        """(N, 1, 80, 16) or (N, 80, 16) mel windows -> (N, E) unit-norm embeddings."""
        mels = _check_mels(mels, 1, self.cfg)
        return F.normalize(self.audio_out(self.audio_encoder(mels)).flatten(1), dim=1)  # (N, E)

    def forward(self, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
        """faces (N, 3, S, S) in [0, 1], mels (N, 1, 80, 16) -> (N,) distances in [0, 2]; small = in sync."""
        if faces.shape[0] != mels.shape[0]:
            raise MumoError(f"{faces.shape[0]} faces but {mels.shape[0]} mel windows")
        v, a = self.embed_faces(faces), self.embed_audio(mels)  # (N, E) each
        return torch.linalg.vector_norm(v - a, dim=1)  # (N,)
