"""Typed containers passed between data, models, training and serving, and the capabilities a model may offer.

A capability is a :class:`typing.Protocol` that a model satisfies by having the methods (no base class to
inherit); callers check it once with ``isinstance(model, Protocol)``. Members are methods or class attributes,
never submodules or parameters: ``nn.Module`` keeps those out of ``__dict__``, where the check looks (Python 3.12+).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class VQABatch:
    """A batch of questions grouped by image: the image side runs once per image.

    Shapes: B images, N questions (each question belongs to one of the B images), L tokens, C answers.
    """

    images: torch.Tensor  # (B, 3, H, W) float in [0, 1], or (B, R, D) region features
    tokens: torch.Tensor  # (N, L) int64 token ids, PAD = 0
    image_index: torch.Tensor  # (N,) int64, which of the B images each question asks about
    targets: torch.Tensor | None = None  # (N, C) soft answer scores in [0, 1]
    question_ids: torch.Tensor | None = None  # (N,) int64 index of each question in its split
    object_masks: torch.Tensor | None = None  # (B, O, h, w) bool object masks, where the data set has them
    question_objects: torch.Tensor | None = None  # (N, G, O) the objects each reasoning step looks at

    def to(self, device: torch.device | str) -> VQABatch:
        """The same batch on ``device``."""

        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return VQABatch(
            move(self.images), move(self.tokens), move(self.image_index), move(self.targets),
            move(self.question_ids), move(self.object_masks), move(self.question_objects),
        )  # fmt: skip


@dataclass
class VQAOutput:
    """What a VQA model returns: answer logits and, when asked, attention weights."""

    logits: torch.Tensor  # (N, C)
    attentions: dict[str, torch.Tensor] = field(default_factory=dict)
    log_variance: torch.Tensor | None = None  # (N, C) or (N, 1): learned aleatoric log sigma^2 of the logits
    grid: tuple[int, int] | None = None  # (rows, cols) of the image regions, when they form a grid


@dataclass
class AnswerScore:
    """One candidate answer and its probability."""

    answer: str
    probability: float


@dataclass
class Uncertainty:
    """Uncertainty of one prediction, in nats: total = aleatoric + epistemic."""

    total: float  # predictive entropy H[p̄]
    aleatoric: float  # expected entropy E_t H[p_t] (includes the learned logit noise, if any)
    epistemic: float  # mutual information H[p̄] − E_t H[p_t] (0 without MC dropout or an ensemble)
    variation_ratio: float  # 1 − (votes for the modal answer) / T
    mc_samples: int  # T; 0 for a deterministic pass
    # which MC-dropout scope ran (``all``, or MCAN's ``attflat``: only the AttFlat scoring MLPs' dropout, whose
    # mutual information is not comparable with ``all``'s); None for a deterministic pass
    mc_scope: str | None = None
    mc_dropout_modules: int = 0  # nn.Dropout modules that sampled masks (per model; 0 for a deterministic pass)
    ensemble_members: int = 1  # M runs answering together (a deep ensemble: epistemic = their disagreement)
    temperature: float = 1.0  # the answer logits were divided by this (temperature scaling; 1 = none)
    # with a fitted density (`mumo fit-density RUN`): negative log density of the fused feature (nats;
    # high = unlike the training data) and the fraction of validation questions scoring lower
    feature_density: float | None = None
    feature_density_quantile: float | None = None
    # with image_uncertainty=True: mean mutual information of the answers to K training questions about
    # this image (nats; high = the model does not know the image, whatever the question)
    image_epistemic: float | None = None
    question_bank_size: int = 0


DONT_KNOW = "don't know"


@dataclass
class Prediction:
    """The result of :meth:`mumo.serve.predict.VQAPredictor.predict`."""

    question: str
    answer: str  # the top answer, or "don't know" when the model abstained
    probability: float  # probability of the top answer (mean over MC samples)
    top_k: list[AnswerScore]
    uncertainty: Uncertainty | None = None
    abstained: bool = False
    abstain_reason: str | None = None  # e.g. "predictive_entropy 0.93 > threshold 0.50"
    best_guess: str = ""  # the top answer, also when abstaining
    # the run's default out-of-distribution check on the image (mumo.tasks.vqa.ood): method, score, its quantile
    # among validation images, threshold, alpha, out_of_distribution; None when the run has no check
    out_of_distribution: dict | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        out = {
            "question": self.question,
            "answer": self.answer,
            "probability": self.probability,
            "top_k": [{"answer": a.answer, "probability": a.probability} for a in self.top_k],
            "abstained": self.abstained,
            "best_guess": self.best_guess,
        }
        if self.uncertainty is not None:
            out["uncertainty"] = dict(self.uncertainty.__dict__)
        if self.abstain_reason is not None:
            out["abstain_reason"] = self.abstain_reason
        out["out_of_distribution"] = self.out_of_distribution
        return out


# Capabilities: what a model may offer beyond forward(), checked with isinstance(model, Protocol)


class TrunkState(Protocol):
    """What :meth:`TrunkHead.trunk` returns: the deterministic state the head reads, B rows."""

    @property
    def num_rows(self) -> int:
        """B: the head's batch size (for MCAN, the questions N)."""
        ...

    def repeat(self, k: int) -> TrunkState:
        """k stacked copies for k MC samples, sample-major: rows (B, ...) become (k * B, ...)."""
        ...


@runtime_checkable
class TrunkHead(Protocol):
    """A model split for fast MC dropout (:func:`mumo.uncertainty.mc_dropout.mc_forward`): a deterministic trunk
    run once, then a stochastic head run on stacked copies; ``head(trunk(*inputs))`` equals ``model(*inputs)``."""

    def trunk(self, *inputs: Any, **options: Any) -> TrunkState:
        """Everything before the first sampled dropout, B rows (MCAN: a VQABatch -> questions (N, L, H) and image
        regions (B, R, C)). A :class:`ScopedDropout` model also takes ``scope=``: the trunk then ends before that
        scope's first dropout."""
        ...

    def head(self, state: TrunkState) -> Any:
        """The stochastic rest on a (k * B, ...) stacked state: the model's output for k * B rows, sample-major."""
        ...

    def trunk_is_deterministic(self, scope: str = "all") -> bool:
        """False when the trunk of ``scope`` holds sampled dropout (the fast path cannot cache it)."""
        ...


@runtime_checkable
class ScopedDropout(Protocol):
    """A model that names which of its dropout modules sample in MC dropout (``scope``)."""

    mc_scopes: tuple[str, ...]  # the scopes it offers, "all" among them (MCAN: "all", "attflat")

    def mc_dropout_modules(self, scope: str = "all") -> list[nn.Dropout]:
        """The ``nn.Dropout`` modules with p > 0 that sample in ``scope``."""
        ...


@runtime_checkable
class Explainable(Protocol):
    """A model with a default layer for CAM explanations (Grad-CAM, U-CAM)."""

    def explain_layer(self) -> nn.Module:
        """The module whose output the maps are taken on: for MCAN the image features (N, R, C), one copy per
        question, so each question gets its own (N, R) map."""
        ...


@runtime_checkable
class HasImageFeatureLayer(Protocol):
    """A model with a layer of image features that no question has touched, for the default OOD check
    (:mod:`mumo.tasks.vqa.ood`)."""

    def image_feature_layer(self) -> nn.Module:
        """The module whose (N, R, C) output holds each question's image features over R cells or regions."""
        ...


@runtime_checkable
class HasDensityLayer(Protocol):
    """A model with a feature layer for feature-density OOD scores (DDU, :mod:`mumo.uncertainty.density`)."""

    def density_layer(self) -> nn.Module:
        """The module whose (N, F) output the class Gaussians are fitted on: for MCAN the fused vector the answer
        classifier reads."""
        ...


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float, at any depth of dicts, lists and tuples, replaced by None: what
    strict JSON (RFC 8259) can hold, for ``--json`` output and the REST API alike."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value


def strict_json(value: Any, *, indent: int | None = None) -> str:
    """``json.dumps`` of ``value`` with non-finite floats as ``null``; never writes NaN or Infinity."""
    import json

    return json.dumps(finite_or_null(value), indent=indent, allow_nan=False)
