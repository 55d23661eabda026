"""Attention trained against its explanation (reference §4.3): discriminators and losses, pure.

The explanation ("real") is a Grad-CAM map computed with the ground-truth answer; the attention
("fake") is the model's own image attention. Both are distributions over the R cells.

- AAN: one discriminator over the whole map, an MLP R -> hidden -> 1 (ReLU, dropout 0.5), as in the
  public two-player code.
- PAAN: one discriminator per cell (pixel-wise), each an MLP over that cell's map-weighted image
  feature m_r · v_r (K -> hidden -> 1); the R discriminators run batched as grouped weights.
- MSE baseline: Σ_r (α_r − e_r)², the attention regressed onto the explanation.

The two players are optimised with one combined loss: :func:`discriminator_loss` only reaches the
discriminator (its inputs are detached) and :func:`generator_loss` only reaches the attention (the
discriminator's parameters are detached there), so one backward pass gives each player the gradient
of its own objective (simultaneous rather than alternating updates).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call


class MapDiscriminator(nn.Module):
    """AAN's discriminator: (N, R) maps -> (N,) logits of "this is an explanation"."""

    def __init__(self, *, cells: int, hidden: int = 0, dropout: float = 0.5) -> None:
        super().__init__()
        hidden = hidden or cells
        self.net = nn.Sequential(
            nn.Linear(cells, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )  # fmt: skip

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """maps (N, R) -> (N,)."""
        return self.net(maps * maps.shape[-1]).squeeze(-1)  # x R: a uniform map becomes all ones


class PixelDiscriminator(nn.Module):
    """PAAN's R per-cell discriminators: (N, R, K) map-weighted cell features -> (N, R) logits."""

    def __init__(self, *, cells: int, features: int, hidden: int = 32, dropout: float = 0.5) -> None:
        super().__init__()
        bound1, bound2 = 1 / math.sqrt(features), 1 / math.sqrt(hidden)
        self.w1 = nn.Parameter(torch.empty(cells, features, hidden).uniform_(-bound1, bound1))  # (R, K, D)
        self.b1 = nn.Parameter(torch.zeros(cells, hidden))  # (R, D)
        self.w2 = nn.Parameter(torch.empty(cells, hidden).uniform_(-bound2, bound2))  # (R, D)
        self.b2 = nn.Parameter(torch.zeros(cells))  # (R,)
        self.dropout = nn.Dropout(dropout)

    def forward(self, cell_features: torch.Tensor) -> torch.Tensor:
        """cell_features (N, R, K) -> (N, R)."""
        h = torch.relu(torch.einsum("nrk,rkd->nrd", cell_features, self.w1) + self.b1)  # (N, R, D)
        return torch.einsum("nrd,rd->nr", self.dropout(h), self.w2) + self.b2  # (N, R)


def explanation_distribution(maps: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-negative maps (N, R) -> (distributions (N, R) summing to 1, valid rows (N,) bool).

    Rows with no positive mass (nothing explains the answer) are invalid and set to uniform.
    """
    mass = maps.clamp_min(0).sum(-1, keepdim=True)  # (N, 1)
    valid = mass.squeeze(-1) > eps  # (N,)
    uniform = torch.full_like(maps, 1.0 / maps.shape[-1])
    return torch.where(valid[:, None], maps.clamp_min(0) / mass.clamp_min(eps), uniform), valid


def mse_attention_loss(attention: torch.Tensor, explanation: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Σ_r (α_r − e_r)² per question (N,), zero where the explanation is invalid. e is detached."""
    per_row = ((attention - explanation.detach()) ** 2).sum(-1)  # (N,)
    return per_row * valid.to(per_row.dtype)


def kl_attention_loss(attention: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """KL(t || α) = Σ_r t_r (log t_r − log α_r) per question (N,), zero where the target is invalid. t is detached.

    The cross-entropy of the attention under the target, less the target's own entropy: 0 when α = t, and,
    unlike the squared error, it keeps pulling on a cell the target covers however small α_r has become.
    """
    t = target.detach()
    log_ratio = torch.where(t > 0, t.clamp_min(1e-12).log() - attention.clamp_min(1e-12).log(), 0.0)  # (N, R)
    return (t * log_ratio).sum(-1) * valid.to(attention.dtype)


def _bce(logits: torch.Tensor, value: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))


def discriminator_loss(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L_D = −E log D(real) − E log(1 − D(fake)); both inputs detached (only D learns from it)."""
    return _bce(discriminator(real.detach()), 1.0) + _bce(discriminator(fake.detach()), 0.0)


def generator_loss(discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating −E log D(fake), through a frozen copy of D's parameters (only the attention learns)."""
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    return _bce(functional_call(discriminator, frozen, (fake,)), 1.0)
