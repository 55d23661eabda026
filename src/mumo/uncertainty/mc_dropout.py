"""MC dropout for any ``nn.Module`` with several inputs (Gal & Ghahramani; reference §3.1, §3.5).

At prediction time only the ``nn.Dropout`` modules sample; everything else (BatchNorm, LayerNorm)
stays in eval mode and is left untouched. Each Monte Carlo sample t draws its dropout masks from
its own generator seeded by (seed, t), so results are reproducible and **the fast path equals the
naive loop sample for sample**:

- naive: T full forward passes, ``(T, B, ...)``;
- fast: the model's deterministic trunk (everything before the first dropout) runs once, then the
  T stochastic passes run batched (sample-major, chunked to bound memory) through the head.

The fast path needs a :class:`~mumo.types.TrunkHead` model (``trunk(*inputs) -> state``, ``head(state) ->
output``, ``state.repeat(k)`` stacking k copies sample-major); other models, and models whose
``trunk_is_deterministic(scope)`` says the trunk has sampled dropout, use the naive loop.
Functional dropout (``F.dropout`` inside ``forward``) cannot be found or sampled.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from mumo.errors import MumoError
from mumo.types import ScopedDropout, TrunkHead

MAX_SAMPLES = 10_000  # more passes than this is almost certainly a mistake
DEFAULT_MAX_ROWS = 4096  # rows (samples x batch) per batched head call
SCOPE_ALIASES = {"head": "attflat"}  # deprecated scope name -> the name it now has


def resolve_scope(model: nn.Module, scope: str) -> str:
    """``scope`` under its current name: a deprecated alias (``head``) becomes the scope it names (``attflat``)
    when the model offers that scope, with a FutureWarning; any other name is returned unchanged."""
    new = SCOPE_ALIASES.get(scope)
    if new is not None and isinstance(model, ScopedDropout) and new in model.mc_scopes:
        warnings.warn(
            f"MC dropout scope {scope!r} is deprecated: it is called {new!r} now (it samples only the dropout "
            "inside MCAN's AttFlat scoring MLPs, not an answer head)",
            FutureWarning,
            stacklevel=3,
        )
        return new
    return scope


def dropout_modules(model: nn.Module, scope: str = "all") -> list[nn.Dropout]:
    """The ``nn.Dropout`` modules (p > 0) that sample in an MC scope.

    ``all`` means every dropout module; other scopes are declared by a :class:`~mumo.types.ScopedDropout`
    model, e.g. MCAN's ``attflat``: only the dropout inside the two AttFlat scoring MLPs (``head`` is its
    deprecated alias).
    """
    scope = resolve_scope(model, scope)
    scoped = isinstance(model, ScopedDropout)
    if scope == "all" and not scoped:
        return [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p > 0]
    scopes = model.mc_scopes if scoped else ("all",)
    if scope not in scopes:
        raise MumoError(f"MC dropout scope {scope!r} is not offered by this model; choose one of: {', '.join(scopes)}")
    return model.mc_dropout_modules(scope)


def num_sampled_dropout(model: nn.Module, scope: str = "all") -> int:
    """How many ``nn.Dropout`` modules (p > 0) sample masks in ``scope``: the ones :func:`mc_dropout` hooks.

    Pure: the model is not run or changed. 0 when the model has none in this scope; MumoError for a scope the
    model does not offer. MCAN: 10 per layer + 2 for ``all`` (more with region or CNN dropout), 2 for ``attflat``.
    """
    return len(dropout_modules(model, scope))


def check_num_samples(num_samples: int) -> int:
    """Validate T; raises MumoError for T < 1 or T > MAX_SAMPLES."""
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 1:
        raise MumoError(f"the number of MC samples must be an integer >= 1, not {num_samples!r}")
    if num_samples > MAX_SAMPLES:
        raise MumoError(f"{num_samples} MC samples is more than the limit of {MAX_SAMPLES}")
    return num_samples


class _MaskSampler:
    """Applies per-sample seeded dropout masks inside forward hooks.

    ``rows`` > 0: the batch's rows are independent: row b draws its masks from generators of its own, exactly
    those a batch of row b alone would use, so a row's samples do not depend on the batch it rides in (what a
    server batching requests needs); with 0 a sample's masks for the whole batch come from one generator.
    """

    def __init__(self, seed: int, rows: int = 0) -> None:
        self.seed = seed
        self._generators: dict[tuple[int, str], torch.Generator] = {}
        self.first, self.count = 0, 0
        self.sampled: set[int] = set()  # id() of every dropout module that has drawn masks in this context
        self.rows = [_MaskSampler(seed) for _ in range(rows)]

    def _generator(self, t: int, device: torch.device) -> torch.Generator:
        key = (t, str(device))
        if key not in self._generators:
            self._generators[key] = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + t)
        return self._generators[key]

    def keep_mask(self, t: int, like: torch.Tensor, keep: float) -> tuple[torch.Tensor, float]:
        """Bernoulli(keep) mask shaped like ``like`` from sample t's generator, and its exact keep rate.

        Four 16-bit uniform integers come from each 64-bit draw (about 5x faster than ``bernoulli_`` on
        a CPU); keep is rounded to a multiple of 1/65536, and the mask is rescaled by that exact rate.
        """
        gen = self._generator(t, like.device)
        n = like.numel()
        bits = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, generator=gen, device=like.device)
        threshold = round(keep * 65536)
        uniform16 = bits.view(torch.int16)[:n].view(like.shape)  # uniform in [-32768, 32767]
        return uniform16 < threshold - 32768, threshold / 65536

    def hook(self, module: nn.Dropout, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        if self.count == 0:
            raise RuntimeError("a dropout module ran outside an MC sample (is there dropout in the trunk?)")
        self.sampled.add(id(module))
        x = inputs[0]  # (k * n, ...) sample-major
        if x.shape[0] % self.count:
            raise RuntimeError(f"dropout input of {x.shape[0]} rows is not {self.count} stacked samples")
        outs = []
        for i, chunk in enumerate(x.chunk(self.count, dim=0)):  # k x (n, ...)
            if self.rows and chunk.shape[0] != len(self.rows):
                raise RuntimeError(f"dropout input of {chunk.shape[0]} rows per sample, not the {len(self.rows)} rows")
            parts = (
                zip(self.rows, chunk.split(1), strict=True) if self.rows else [(self, chunk)]
            )  # (1, ...) or (n, ...)
            for sampler, part in parts:
                mask, keep = sampler.keep_mask(self.first + i, part, 1.0 - module.p)
                outs.append(torch.where(mask, part * (1.0 / keep), torch.zeros((), dtype=part.dtype)))
        return torch.cat(outs) if len(outs) > 1 else outs[0]


@contextlib.contextmanager
def mc_dropout(model: nn.Module, *, seed: int = 0, scope: str = "all", rows: int = 0) -> Iterator[_MaskSampler]:
    """Context in which the model's dropout modules sample seeded masks and nothing else changes.

    The model is put in eval mode (normalisation layers use running statistics and are not updated);
    hooks are removed and every module's training flag restored on exit, even after an exception.
    Call ``sampler.first, sampler.count = t, k`` before a forward that holds samples t..t+k-1.

    Dropout modules outside ``scope`` stay off (eval mode).

    ``sampler.sampled`` collects the ids of the dropout modules that drew masks (those of ``scope`` that ran).

    ``rows`` > 0: every forward holds batches of this many independent rows, each drawing the masks it would draw
    alone (see :class:`_MaskSampler`).

    Raises:
        MumoError: the model has no ``nn.Dropout`` module with p > 0 in this scope.
    """
    modules = dropout_modules(model, scope)
    if not modules:
        raise MumoError("the model has no nn.Dropout modules with p > 0: MC dropout has nothing to sample")
    flags = {m: m.training for m in model.modules()}
    sampler = _MaskSampler(seed, rows)
    handles = [m.register_forward_hook(sampler.hook) for m in modules]
    model.eval()
    try:
        yield sampler
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags.items():
            m.train(flag)


Samples = torch.Tensor | tuple[torch.Tensor, ...]


def _default_output(out: Any) -> torch.Tensor:
    return out.logits if hasattr(out, "logits") else out


def _stack(outs: list[Samples], dim_fn: Callable[[list[torch.Tensor]], torch.Tensor]) -> Samples:
    if isinstance(outs[0], tuple):
        return tuple(dim_fn([o[i] for o in outs]) for i in range(len(outs[0])))  # type: ignore[index]
    return dim_fn(outs)  # type: ignore[arg-type]


def has_fast_path(model: nn.Module) -> bool:
    """Whether the model exposes the trunk/head split the fast path needs (:class:`~mumo.types.TrunkHead`)."""
    return isinstance(model, TrunkHead)


def mc_forward_naive(
    model: nn.Module,
    *inputs: Any,
    num_samples: int,
    seed: int = 0,
    scope: str = "all",
    output_fn: Callable[[Any], Samples] = _default_output,
    independent_rows: int = 0,
) -> Samples:
    """T full forward passes with dropout sampling: returns (T, B, ...) (a tuple of them when
    ``output_fn`` returns a tuple). ``independent_rows``: as :func:`mc_forward`'s."""
    check_num_samples(num_samples)
    scope = resolve_scope(model, scope)
    outs = []
    with mc_dropout(model, seed=seed, scope=scope, rows=independent_rows) as sampler:
        for t in range(num_samples):
            sampler.first, sampler.count = t, 1
            outs.append(output_fn(model(*inputs)))
    return _stack(outs, torch.stack)


def mc_forward(
    model: nn.Module,
    *inputs: Any,
    num_samples: int,
    seed: int = 0,
    scope: str = "all",
    max_rows: int = DEFAULT_MAX_ROWS,
    output_fn: Callable[[Any], Samples] = _default_output,
    state: Any = None,
    independent_rows: int = 0,
) -> Samples:
    """T MC-dropout samples, fast path when the model has a trunk/head split: returns (T, B, ...).

    ``state``: the model's ``trunk(*inputs)`` of this scope when the caller already has it (fast path only).

    ``independent_rows`` = B (the batch's rows): row b gets exactly the samples a batch of row b alone would get
    (its own mask generators), so results do not depend on batching, at the cost of B mask draws per dropout
    module; 0 (the default): each sample's masks for the whole batch come from one generator.

    The trunk runs once; the head runs on ``k`` stacked copies of its state at a time, with
    ``k * B <= max_rows`` (at least one sample per call), so memory stays bounded for any T.
    ``scope`` picks which dropout modules sample (see :func:`dropout_modules`); the trunk then
    extends up to the first of them.
    """
    check_num_samples(num_samples)
    scope = resolve_scope(model, scope)
    if not has_fast_path(model) or not model.trunk_is_deterministic(scope):
        return mc_forward_naive(model, *inputs, num_samples=num_samples, seed=seed, scope=scope, output_fn=output_fn,
                                independent_rows=independent_rows)  # fmt: skip
    outs = []
    with mc_dropout(model, seed=seed, scope=scope, rows=independent_rows) as sampler:
        if state is None:
            state = model.trunk(*inputs) if scope == "all" else model.trunk(*inputs, scope=scope)
        rows = max(1, state.num_rows)
        per_call = max(1, min(num_samples, max_rows // rows))
        for first in range(0, num_samples, per_call):
            k = min(per_call, num_samples - first)
            sampler.first, sampler.count = first, k
            out = output_fn(model.head(state.repeat(k)))  # (k * B, ...)
            if isinstance(out, tuple):
                outs.append(tuple(o.reshape(k, -1, *o.shape[1:]) for o in out))
            else:
                outs.append(out.reshape(k, -1, *out.shape[1:]))  # (k, B, ...)
    return _stack(outs, torch.cat)
