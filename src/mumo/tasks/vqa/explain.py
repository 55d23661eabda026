"""Explanation maps of a trained VQA run: one example (``mumo explain RUN --image --question``) and
scores against ground-truth object masks over a split (``mumo explain RUN --evaluate``).

Methods (registered by name in ``explain_methods``; ``EXPLAIN_METHODS`` lists them), each giving one map per
question over the model's image grid (N, R):

- ``attention``: MCAN's image attention (AttFlat weights, mean over glimpses);
- ``gradcam``: Grad-CAM of the predicted answer's logit, the pre-softmax score y^c of Selvaraju et al.
  (``target="logit"``, the default), or of its log-probability (``target="log-prob"``), at the image
  features entering the co-attention. The log-probability's gradient is the logit's minus the
  p-weighted mean of every answer's: a contrast against the other answers that vanishes as the model
  saturates (p -> 1), leaving undefined (all-zero) maps;
- ``ucam``: U-CAM (:mod:`mumo.explain.uncertainty_cam`), the gradient of an uncertainty, not of an
  answer score (reference §4.2): variant ``predictive`` by default (H[p̄] over T dropout passes, any
  model with dropout) or ``loss`` / ``aleatoric`` (U-CAM's loss L_U or its uncertainty part; models
  trained with ``model.aleatoric=ucam``), with the public code's sign unless ``negate``. ``target``
  does not apply to it.

Every result records what each map is the gradient of (``target``, :func:`map_target`).

Ground truth (reference §4.4): Sort-of-CLEVR's masks of the objects each question refers to, and
easy-VQA's single shape segmented from its plain background, both pooled to the grid as the fraction
of each cell covered. Scores: Spearman rank correlation, pointing game, energy inside the mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from mumo.data.vqa.split import VQASplit, image_batches
from mumo.errors import ConfigError, MumoError
from mumo.explain.attention import attention_maps
from mumo.explain.gradcam import grad_cam
from mumo.explain.targets import AnswerLogit, AnswerLogProb
from mumo.explain.uncertainty_cam import UCAM_VARIANTS, uncertainty_cam
from mumo.metrics.attention import summarize_map_scores
from mumo.metrics.vqa import soft_accuracy
from mumo.registry import Registry
from mumo.runs import Run
from mumo.tasks.vqa.config import RunConfig
from mumo.types import Explainable, VQABatch

SCORED_DATASETS = ("easy-vqa", "sort-of-clevr", "scenes")
GRADCAM_TARGETS = {"logit": AnswerLogit, "log-prob": AnswerLogProb}  # Grad-CAM's score y of the explained answer
UCAM_TARGETS = {"predictive": "predictive-entropy", "loss": "uncertainty-loss", "aleatoric": "aleatoric-loss"}


@dataclass
class ExplainOptions:
    """How maps are computed: Grad-CAM's ``target`` (``logit``: the pre-softmax answer score, as in Selvaraju
    et al.; ``log-prob``: its log-softmax), U-CAM's variant, samples and sign; the seed of its randomness."""

    ucam_variant: str = "predictive"
    samples: int = 20
    negate: bool = False
    seed: int = 0
    target: str = "logit"

    def __post_init__(self) -> None:
        if self.ucam_variant not in UCAM_VARIANTS:
            raise ConfigError(f"unknown U-CAM variant {self.ucam_variant!r}; choose one of: {', '.join(UCAM_VARIANTS)}")
        if self.target not in GRADCAM_TARGETS:
            raise ConfigError(f"unknown Grad-CAM target {self.target!r}; choose one of: {', '.join(GRADCAM_TARGETS)}")


def map_target(method: str, opts: ExplainOptions) -> str | None:
    """What ``method``'s map is the gradient of: Grad-CAM's ``opts.target`` of the explained answer (``logit``
    or ``log-prob``); U-CAM's uncertainty (``predictive-entropy`` H[p̄], ``uncertainty-loss`` L_U or
    ``aleatoric-loss`` gce + var + dep, ``neg-`` in front when negated); None for attention (no gradient)."""
    if method == "gradcam":
        return opts.target
    if method == "ucam":
        return ("neg-" if opts.negate else "") + UCAM_TARGETS[opts.ucam_variant]
    return None


# method(model, batch, opts, answers) -> (maps (N, R) detached and >= 0, the output they explain)
ExplainMethod = Callable[[nn.Module, VQABatch, ExplainOptions, torch.Tensor | None], tuple[torch.Tensor, Any]]
explain_methods: Registry[ExplainMethod] = Registry("explanation method")


@explain_methods.register("attention")
def _attention(
    model: nn.Module, batch: VQABatch, opts: ExplainOptions, answers: torch.Tensor | None
) -> tuple[torch.Tensor, Any]:
    """MCAN's image attention (AttFlat weights, mean over glimpses)."""
    with torch.no_grad():
        res = attention_maps(model, batch)
    return res.image, res.output


@explain_methods.register("gradcam")
def _gradcam(
    model: nn.Module, batch: VQABatch, opts: ExplainOptions, answers: torch.Tensor | None
) -> tuple[torch.Tensor, Any]:
    """Grad-CAM of ``answers``' ``opts.target`` (logit or log-probability; default answers: the argmax) at
    ``model.explain_layer()``."""
    res = grad_cam(model, batch, GRADCAM_TARGETS[opts.target](answers))
    return res.maps.detach(), res.output


@explain_methods.register("ucam")
def _ucam(
    model: nn.Module, batch: VQABatch, opts: ExplainOptions, answers: torch.Tensor | None
) -> tuple[torch.Tensor, Any]:
    """U-CAM of ``opts.ucam_variant``'s uncertainty at ``model.explain_layer()``."""
    res = uncertainty_cam(
        model, batch, variant=opts.ucam_variant, samples=opts.samples, seed=opts.seed, negate=opts.negate
    )
    return res.maps.detach(), res.output


EXPLAIN_METHODS = tuple(explain_methods.names())  # sorted: ("attention", "gradcam", "ucam"), the default order


def check_method(model: nn.Module, method: str) -> None:
    """Refuse unknown methods (listing the valid ones) and methods the model cannot support."""
    explain_methods.get(method)  # ConfigError for an unknown name
    if method != "attention" and not isinstance(model, Explainable):
        raise MumoError(
            f"{type(model).__name__} declares no image feature layer (explain_layer) for {method}; "
            "the attention method applies only if it returns image attention"
        )


def explain_batch(
    model: nn.Module, batch: VQABatch, method: str, opts: ExplainOptions, answers: torch.Tensor | None = None
) -> tuple[torch.Tensor, Any]:
    """Maps (N, R), detached and ≥ 0, and the output they explain.

    ``answers`` (N,): the answers Grad-CAM explains (default: the model's argmax).
    """
    check_method(model, method)
    return explain_methods.get(method)(model, batch, opts, answers)


def ground_truth_maps(cfg: RunConfig, split: VQASplit, grid: tuple[int, int]) -> torch.Tensor:
    """(Q, R) fraction of every grid cell covered by the objects each question of ``split`` refers to.

    Sort-of-CLEVR: the test split only (validation is carved out of train by image, and its masks are
    read from the training files). easy-VQA: every question refers to the image's one shape. mumo scenes: the
    visible masks of the objects each question refers to; all zero for a question about the place (no object).
    """
    from mumo.data.vqa.masks import easy_vqa_shape_masks, pool_to_grid

    if cfg.data.name == "easy-vqa":
        per_image = pool_to_grid(easy_vqa_shape_masks(split.images), grid)  # (I, R)
        return per_image[split.image_index]  # (Q, R)
    if cfg.data.name == "sort-of-clevr":
        from mumo.data.vqa.masks import sort_of_clevr_question_masks
        from mumo.tasks.vqa.data import sort_of_clevr_root

        if split.name != "test":
            raise ConfigError("Sort-of-CLEVR maps are scored on the test split")
        return pool_to_grid(sort_of_clevr_question_masks(sort_of_clevr_root(cfg), "test"), grid)  # (Q, R)
    if cfg.data.name == "scenes":
        from mumo.data.scenes.dataset import question_masks
        from mumo.tasks.vqa.data import scenes_root

        masks = torch.from_numpy(question_masks(scenes_root(cfg), split.name))  # (Q, H, W) bool
        return pool_to_grid(masks, grid)  # (Q, R)
    raise MumoError(
        f"no ground-truth maps for {cfg.data.name!r}: maps are scored on {', '.join(SCORED_DATASETS)} "
        "(their generators know where the objects are)"
    )


def evaluate_explanations(
    model: nn.Module,
    cfg: RunConfig,
    split: VQASplit,
    methods: tuple[str, ...] = EXPLAIN_METHODS,
    *,
    opts: ExplainOptions | None = None,
    max_images: int | None = None,
    images_per_batch: int = 64,
    progress: bool = True,
) -> dict[str, Any]:
    """Scores of every method's maps against the ground truth, overall and per question type.

    ``max_images``: score the questions of the first N images only (all by default).
    """
    opts = opts or ExplainOptions()
    for m in methods:
        check_method(model, m)
    if max_images is not None and max_images < 1:
        raise ConfigError(f"--images must be at least 1, not {max_images}")
    model.eval()
    n_images = split.num_images if max_images is None else min(max_images, split.num_images)
    maps: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    ids, logits, grid = [], [], None
    batches = [b for b in image_batches(split.num_images, images_per_batch, shuffle=False, pad=False)]
    batches = [b[b < n_images] for b in batches if bool((b < n_images).any())]
    device = next(model.parameters()).device
    for image_idx in tqdm(batches, desc="explaining", disable=not progress, leave=False):
        batch = split.batch(image_idx).to(device)
        for m in methods:
            cam, out = explain_batch(model, batch, m, opts)
            maps[m].append(cam.float().cpu())
            grid = out.grid or grid
            if m == methods[0]:
                logits.append(out.logits.detach().float().cpu())
        ids.append(batch.question_ids.cpu())
    if grid is None:
        raise MumoError("the model's image features do not form a grid: maps cannot be scored against masks")
    q = torch.cat(ids)
    truth = ground_truth_maps(cfg, split, grid)[q]  # (n, R)
    about_objects = truth.sum(1) > 0  # questions about the whole image (a scene's place) have no mask to score
    if not bool(about_objects.all()):
        q, truth = q[about_objects], truth[about_objects]
        maps = {m: [torch.cat(v)[about_objects]] for m, v in maps.items()}
        logits = [torch.cat(logits)[about_objects]]
    types = [split.question_types[i] for i in q.tolist()]
    correct = soft_accuracy(torch.cat(logits), split.targets[q])  # (n,)
    res: dict[str, Any] = {
        "num_questions": len(q), "num_images": n_images, "grid": list(grid),
        "accuracy": float(correct.mean()), "methods": {},
        "questions_without_objects": int((~about_objects).sum()),  # left out: nothing to point at
    }  # fmt: skip
    for m in methods:
        all_maps = torch.cat(maps[m])  # (n, R)
        entry = summarize_map_scores(all_maps, truth)
        entry["by_type"] = {
            t: summarize_map_scores(all_maps[sel], truth[sel])
            for t in sorted(set(types))
            for sel in [torch.tensor([x == t for x in types])]
        }
        entry["target"] = map_target(m, opts)  # what the map is the gradient of (None: attention)
        res["methods"][m] = entry
    if "attention" in methods and "gradcam" in methods:  # how far the model's attention is from its explanation
        from mumo.metrics.attention import mean_ignoring_nan, rank_correlation

        agree, _ = mean_ignoring_nan(rank_correlation(torch.cat(maps["attention"]), torch.cat(maps["gradcam"])))
        res["attention_gradcam_rank_correlation"] = agree
    return res


def explain_run(
    run_dir: str | Path,
    *,
    split: str = "test",
    methods: tuple[str, ...] = EXPLAIN_METHODS,
    opts: ExplainOptions | None = None,
    max_images: int | None = None,
    progress: bool = True,
    device: str = "auto",
) -> dict[str, Any]:
    """:func:`evaluate_explanations` for a run directory (loads the model, its config and its data) on
    ``device`` (``auto``: a GPU if there is one)."""
    from mumo.tasks.vqa.data import load_data
    from mumo.tasks.vqa.model import load_model

    if split not in ("val", "test"):
        raise ConfigError(f"--split must be 'val' or 'test', not {split!r}")
    if max_images is not None and max_images < 1:
        raise ConfigError(f"--images must be at least 1, not {max_images}")
    run_dir = Path(run_dir)
    model = load_model(run_dir, device=device)
    for m in methods:
        check_method(model, m)
    cfg = Run(run_dir).config(RunConfig)
    if cfg.data.name not in SCORED_DATASETS:
        raise MumoError(f"no ground-truth maps for {cfg.data.name!r}: maps are scored on {', '.join(SCORED_DATASETS)}")
    data = load_data(cfg)
    res = evaluate_explanations(
        model, cfg, getattr(data, split), methods, opts=opts, max_images=max_images, progress=progress
    )
    return {"run": str(run_dir), "split": split, **res}


def explain_example(
    run_dir: str | Path | None,
    image: Any,
    question: str,
    method: str,
    *,
    opts: ExplainOptions | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    predictor: Any = None,
) -> dict[str, Any]:
    """The map of one image-question pair (``image``: a path, PIL image or array), the answer, its probability and
    uncertainty; with ``out`` an overlay PNG (checked writable before any work). The model runs on ``device``.

    ``predictor``: a :class:`~mumo.tasks.vqa.predictor.VQAPredictor` already loaded (a server's, a demo's), used
    instead of loading ``run_dir``."""
    from mumo.explain.overlay import check_writable_path, save_overlay
    from mumo.tasks.vqa.predictor import VQAPredictor

    opts = opts or ExplainOptions()
    if out is not None:
        check_writable_path(Path(out))  # before any work
    if predictor is None:
        predictor = VQAPredictor.from_run(run_dir, device=device)
    check_method(predictor.model, method)
    batch = predictor.encode(image, question)
    pred = predictor.predict(image, question, mc_samples=opts.samples if _has_dropout(predictor.model) else None)
    shown = torch.tensor([predictor.answers.index(pred.best_guess)])  # explain the answer that is shown
    cam, output = explain_batch(predictor.model, batch, method, opts, answers=shown)
    grid = getattr(output, "grid", None)
    res: dict[str, Any] = {
        "method": method if method != "ucam" else f"ucam-{opts.ucam_variant}",
        "target": map_target(method, opts),  # what the map is the gradient of (None: attention)
        **pred.to_dict(),
        "grid": list(grid) if grid is not None else None,
        "map": cam[0].tolist(),
    }
    if method == "attention":  # also the guided attention: per layer, head and question token, a map
        guided = attention_maps(predictor.model, batch).guided
        if guided is not None:
            n_tokens = int((batch.tokens[0] != 0).sum())
            words = [predictor.vocab.tokens[int(t)] for t in batch.tokens[0, :n_tokens]]
            res["guided"] = {"tokens": words, "maps": guided[0, :, :, :n_tokens].tolist()}  # (layers, heads, L, R)
    if out is not None:
        unc = pred.uncertainty
        save_overlay(
            Path(out), batch.images[0].cpu(), cam[0].cpu(), question=question, answer=pred.answer,
            probability=pred.probability,
            uncertainty={"total": unc.total, "epistemic": unc.epistemic} if unc else None,
            method=res["method"], grid=grid,
        )  # fmt: skip
        res["overlay"] = str(out)
    return res


def _has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())
