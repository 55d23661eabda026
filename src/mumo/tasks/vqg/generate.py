"""Writing questions with MC-BMN: T dropout passes per image, each decoded greedily, by sampling or by beam search,
and each question's uncertainty.

Monte Carlo samples are sample-major: the T passes over B images are T * B rows, row t * B + b, and every result is
``(T, B, ...)``. With ``mc=False`` the dropouts are off (MC-SMN): the T passes are the same deterministic pass.

A question's uncertainty is read teacher-forced: its words are fed through T fresh dropout passes, giving T word
distributions at every position; ``entropy`` is the mean over its words (EOS included) of the entropy of their mean
(total), ``epistemic`` the mean of their mutual information (the part the dropout passes disagree on), ``surprise``
the mean negative log-probability of the words it wrote under the mean distribution (how sure it was of them).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mumo.data.text import PAD_ID
from mumo.errors import ConfigError
from mumo.models.vqg_bmn import VQGBMN, Cues, ImageFeatures
from mumo.tasks.vqg.data import BOS_ID, EOS_ID
from mumo.uncertainty.scores import mutual_information, predictive_entropy

METHODS = ("greedy", "sample", "beam")
MAX_SAMPLES = 1000  # more passes per image than this is almost certainly a mistake


@dataclass(frozen=True)
class Decoding:
    """How questions are written: ``method`` greedy, sample (with ``temperature``) or beam (``beam`` wide)."""

    method: str = "greedy"
    temperature: float = 1.0
    beam: int = 3
    max_len: int = 24

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"decoding method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, not {self.temperature}")
        if self.beam < 1 or self.max_len < 1:
            raise ConfigError("beam width and max_len must be >= 1")


def check_samples(samples: int) -> int:
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise ConfigError(f"--samples must be an integer from 1 to {MAX_SAMPLES}, not {samples!r}")
    return samples


def _repeat(features: ImageFeatures | None, cues: Cues, t: int) -> tuple[ImageFeatures | None, Cues]:
    """Sample-major copies: (B, ...) -> (T * B, ...)."""

    def rep(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None else x.repeat(t, *([1] * (x.ndim - 1)))

    feats = None if features is None else ImageFeatures(*(rep(f) for f in features))
    return feats, Cues(*(rep(c) for c in cues))


def generate(
    model: VQGBMN,
    features: ImageFeatures | None,
    cues: Cues,
    *,
    samples: int,
    mc: bool = True,
    decoding: Decoding = Decoding(),
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """T questions per image: word ids (T, B, L) (EOS, then PAD, after the last word) and the moderator's weights
    (T, B, K) under each pass. ``features``: the model's image features (``None`` without the image cue)."""
    check_samples(samples)
    b = _batch_size(features, cues)
    with torch.random.fork_rng(devices=[]), model.sampling(mc), torch.no_grad():
        torch.manual_seed(seed)
        feats, reps = _repeat(features, cues, samples)
        context = model.encode(feats, reps)  # (T * B, H)
        if decoding.method == "beam":
            tokens = _beam(model, context, decoding)
        else:
            tokens = _step_by_step(model, context, decoding)
    return tokens.view(samples, b, -1), context.gates.view(samples, b, -1)


def _batch_size(features: ImageFeatures | None, cues: Cues) -> int:
    return next(x.shape[0] for x in (features.pooled if features is not None else None, *cues) if x is not None)


def _step_by_step(model: VQGBMN, context, decoding: Decoding) -> torch.Tensor:
    """Greedy or sampled decoding: (N, L) word ids."""
    n = context.mixture.shape[0]
    device = context.mixture.device
    state = model.start(context)
    word = torch.full((n, 1), BOS_ID, dtype=torch.long, device=device)
    out = torch.full((n, decoding.max_len + 1), PAD_ID, dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    for i in range(decoding.max_len + 1):
        logits, state = model.step(word, context, state)  # (N, 1, V)
        logits = _allowed(logits[:, 0], i, decoding.max_len)  # (N, V)
        if decoding.method == "greedy":
            nxt = logits.argmax(1)  # (N,)
        else:
            nxt = torch.multinomial(torch.softmax(logits / decoding.temperature, 1), 1)[:, 0]  # (N,)
        out[:, i] = torch.where(done, torch.full_like(nxt, PAD_ID), nxt)
        done |= nxt == EOS_ID
        if bool(done.all()):
            break
        word = nxt.unsqueeze(1)
    return out


def _allowed(logits: torch.Tensor, position: int, max_len: int) -> torch.Tensor:
    """Never PAD, BOS or (as a first word) EOS; EOS once ``max_len`` words are written."""
    logits = logits.clone()
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")
    if position == 0:
        logits[:, EOS_ID] = float("-inf")
    if position == max_len:
        eos = logits[:, EOS_ID].clone()
        logits.fill_(float("-inf"))
        logits[:, EOS_ID] = eos
    return logits


def _beam(model: VQGBMN, context, decoding: Decoding) -> torch.Tensor:
    """Beam search per row (``decoding.beam`` wide), the best finished beam by total log-probability: (N, L)."""
    from mumo.models.vqg_bmn import Context

    n, k = context.mixture.shape[0], decoding.beam
    device = context.mixture.device
    ctx = Context(*(None if x is None else x.repeat_interleave(k, 0) for x in context))  # (N * k, ...)
    h, c = model.start(ctx)
    length = decoding.max_len + 1
    seqs = torch.full((n * k, length), PAD_ID, dtype=torch.long, device=device)
    scores = torch.zeros(n, k, device=device)
    scores[:, 1:] = float("-inf")  # the beams start as one
    done = torch.zeros(n * k, dtype=torch.bool, device=device)
    word = torch.full((n * k, 1), BOS_ID, dtype=torch.long, device=device)
    for i in range(length):
        logits, (h, c) = model.step(word, ctx, (h, c))  # (N * k, 1, V)
        logp = torch.log_softmax(_allowed(logits[:, 0], i, decoding.max_len), 1)  # (N * k, V)
        v = logp.shape[1]
        # a finished beam only extends by PAD, at no cost
        logp = torch.where(done.unsqueeze(1), torch.full_like(logp, float("-inf")), logp)
        logp[done, PAD_ID] = 0.0
        total = (scores.view(-1, 1) + logp).view(n, k * v)  # (N, k * V)
        best, flat = total.topk(k, dim=1)  # (N, k)
        src = (flat // v) + torch.arange(n, device=device).unsqueeze(1) * k  # (N, k) rows they extend
        nxt = (flat % v).view(-1)  # (N * k,)
        src = src.view(-1)
        seqs = seqs[src]
        seqs[:, i] = nxt
        h, c, done = h[:, src], c[:, src], done[src] | (nxt == EOS_ID) | (nxt == PAD_ID)
        scores = best
        if bool(done.all()):
            break
        word = nxt.unsqueeze(1)
    top = scores.argmax(1) + torch.arange(n, device=device) * k  # (N,)
    return seqs[top]


def question_uncertainty(
    model: VQGBMN, features: ImageFeatures | None, cues: Cues, tokens: torch.Tensor, *, samples: int, seed: int = 1
) -> dict[str, torch.Tensor]:
    """Teacher-forced uncertainty of B questions (``tokens`` (B, L): words, EOS, PAD) under T dropout passes:
    ``entropy`` and ``epistemic`` (B,), the means over each question's words and EOS, and ``surprise`` (B,), the mean
    negative log-probability of its own words under the passes' mean distribution."""
    check_samples(samples)
    b, length = tokens.shape
    inputs = torch.cat([torch.full((b, 1), BOS_ID, dtype=torch.long, device=tokens.device), tokens[:, :-1]], 1)
    inputs = inputs.masked_fill(inputs == EOS_ID, PAD_ID)  # (B, L)
    with torch.random.fork_rng(devices=[]), model.sampling(True), torch.no_grad():
        torch.manual_seed(seed)
        feats, reps = _repeat(features, cues, samples)
        context = model.encode(feats, reps)
        logits, _ = model.step(inputs.repeat(samples, 1), context, model.start(context))  # (T * B, L, V)
    probs = torch.softmax(logits.float(), -1).view(samples, b * length, -1)  # (T, B * L, V)
    real = (tokens != PAD_ID).float()  # (B, L)
    count = real.sum(1).clamp_min(1)  # (B,)
    entropy = (predictive_entropy(probs).view(b, length) * real).sum(1) / count  # (B,)
    epistemic = (mutual_information(probs).view(b, length) * real).sum(1) / count  # (B,)
    chosen = probs.mean(0).gather(1, tokens.reshape(-1, 1).clamp_min(0)).view(b, length)  # (B, L) p̄ of each word
    surprise = (-chosen.clamp_min(1e-12).log() * real).sum(1) / count  # (B,)
    return {"entropy": entropy, "epistemic": epistemic, "surprise": surprise}
