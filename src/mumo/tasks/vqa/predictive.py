"""Predictive samples of VQA models: answer probabilities (T, N, C) from T MC-dropout passes, one deterministic
pass, or the members of a deep ensemble (:class:`~mumo.tasks.vqa.ensemble.DeepEnsemble`) stacked member-major
(M·T, N, C).

For a model with an aleatoric head each pass's probabilities are E_ε softmax(f_t + σ_t ε), so the expected
entropy (aleatoric part) includes the learned noise.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import nn

from mumo.data.vqa.split import VQASplit, image_batches, progress_bar
from mumo.errors import MumoError
from mumo.tasks.vqa.ensemble import DeepEnsemble
from mumo.types import VQABatch
from mumo.uncertainty.losses import noisy_logit_probs
from mumo.uncertainty.mc_dropout import check_num_samples, mc_forward
from mumo.uncertainty.scores import check_probs
from mumo.uncertainty.shift import feature_noise

MEMBER_SEED_STRIDE = 1000  # member k samples its dropout masks and logit noise with seed + k * stride


def members(model: nn.Module) -> list[nn.Module]:
    """The members of a :class:`DeepEnsemble`, or ``[model]`` for one model."""
    return list(model.members) if isinstance(model, DeepEnsemble) else [model]


def model_device(model: nn.Module) -> torch.device:
    """The device of the (first member's) parameters."""
    return next(model.parameters()).device


@contextlib.contextmanager
def image_feature_noise(model: nn.Module, std: float, *, seed: int = 0) -> Iterator[None]:
    """Within the block every member's image features get N(0, std²) noise (the 2021 MCAN study's shift).

    The noise goes on the image encoder's output: the grid CNN's regions, or the precomputed region
    features, before the per-question projection. Hooks are removed on exit.
    """
    with contextlib.ExitStack() as stack:
        for m in members(model):
            stack.enter_context(feature_noise(m.image_encoder, std, seed=seed))
        yield


@torch.no_grad()
def predictive_probs(
    model: nn.Module,
    batch: VQABatch,
    *,
    mc_samples: int | None = None,
    mc_scope: str = "all",
    seed: int = 0,
    noise_samples: int = 50,
    temperature: float = 1.0,
    independent_rows: bool = False,
) -> torch.Tensor:
    """Answer probabilities (T, N, C) for a batch: T MC-dropout passes, or (1, N, C) deterministic.

    ``independent_rows``: row n gets exactly what a batch of question n alone would get (its own dropout masks
    and logit noise; :func:`mumo.uncertainty.mc_dropout.mc_forward`), so a server may batch requests freely.

    ``model`` may be a :class:`DeepEnsemble` of M models: their samples stack member-major,
    (M·T, N, C) or (M, N, C), member k seeded with ``seed + k * MEMBER_SEED_STRIDE``.

    ``mc_scope`` picks which dropout modules sample: ``all`` or, for MCAN, ``attflat`` (only the dropout inside
    the two AttFlat scoring MLPs; the co-attention runs once, so T = 20 costs about 2-3 deterministic passes,
    but the mutual information is not comparable with ``all``'s; ``head`` is its deprecated alias). ``temperature``
    divides every pass's logits (and a learned logit noise's scale) before the softmax
    (:mod:`mumo.uncertainty.temperature`).

    Raises:
        MumoError: T < 1 or too large; the model has no dropout; NaN or infinite outputs.
    """
    if isinstance(model, DeepEnsemble):
        return torch.cat([
            predictive_probs(
                m, batch, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed + k * MEMBER_SEED_STRIDE,
                noise_samples=noise_samples, temperature=temperature, independent_rows=independent_rows,
            )  # (T, N, C) of member k
            for k, m in enumerate(model.members)
        ])  # fmt: skip
    gen = torch.Generator(device=batch.tokens.device).manual_seed(seed)
    if mc_samples is None:
        model.eval()
        out = model(batch)
        logits, log_var = out.logits[None], None if out.log_variance is None else out.log_variance[None]
    else:
        check_num_samples(mc_samples)
        samples = mc_forward(
            model, batch, num_samples=mc_samples, seed=seed, scope=mc_scope,
            output_fn=lambda o: (o.logits, o.log_variance) if o.log_variance is not None else (o.logits,),
            independent_rows=batch.tokens.shape[0] if independent_rows else 0,
        )  # fmt: skip
        logits, log_var = samples[0], samples[1] if len(samples) > 1 else None
    if not torch.isfinite(logits).all():
        raise MumoError("the model produced NaN or infinite logits; the checkpoint may be broken")
    if not temperature > 0:
        raise MumoError(f"the temperature must be > 0, not {temperature}")
    if temperature != 1.0:  # (f + σε) / T: the mean and the noise scale alike
        logits = logits / temperature
        log_var = None if log_var is None else log_var - 2 * math.log(temperature)
    if independent_rows and log_var is not None:  # each row's logit noise as it would draw it alone
        probs = torch.cat([
            noisy_logit_probs(logits[:, n : n + 1].float(), log_var[:, n : n + 1], num_samples=noise_samples,
                              generator=torch.Generator(device=batch.tokens.device).manual_seed(seed))
            for n in range(logits.shape[1])
        ], dim=1)  # fmt: skip
    else:
        probs = noisy_logit_probs(logits.float(), log_var, num_samples=noise_samples, generator=gen)  # (T, N, C)
    return check_probs(probs)


def split_probs(
    model: nn.Module,
    split: VQASplit,
    *,
    mc_samples: int | None,
    mc_scope: str = "all",
    images_per_batch: int = 128,
    seed: int = 0,
    progress: bool = False,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Predictive probabilities (T, N, C) for every question of a split, in question order.

    ``progress``: a progress bar on an interactive terminal (none when stderr is not a TTY).
    """
    if split.num_questions == 0:
        raise MumoError(f"the {split.name!r} split holds no questions")
    device = model_device(model)
    out = None
    batches = progress_bar(image_batches(split.num_images, images_per_batch, shuffle=False), split.name, progress)
    for i, idx in enumerate(batches):
        batch = split.batch(idx).to(device)
        probs = predictive_probs(
            model, batch, mc_samples=mc_samples, mc_scope=mc_scope, seed=seed + i, temperature=temperature
        ).cpu()
        if out is None:
            out = torch.empty(probs.shape[0], split.num_questions, probs.shape[2])
        out[:, batch.question_ids.cpu()] = probs
    assert out is not None
    return out
