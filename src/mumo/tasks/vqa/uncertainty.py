"""Uncertainty for VQA models: MC-dropout predictive samples, calibration, misclassification and OOD.

Probabilities are (T, N, C): T MC-dropout passes (T = 1 and dropout off for the deterministic
model), N questions, C answers. A deep ensemble (M models, :class:`mumo.tasks.vqa.ensemble.DeepEnsemble`) stacks
its members' samples along T, member-major: (M·T, N, C), or (M, N, C) with dropout off. For a model with
an aleatoric head each pass's probabilities are E_ε softmax(f_t + σ_t ε), so the expected entropy
(aleatoric part) includes the learned noise.
Calibration uses exact match against the top-scored answers of each question (any of tied ones); questions
with no answer scored above 0 count as wrong and are left out of ECE, NLL and Brier (:func:`exact_match`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mumo.data.vqa.split import VQASplit
from mumo.errors import MumoError
from mumo.metrics.calibration import (
    adaptive_calibration_error,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
)
from mumo.metrics.uncertainty import (
    aurc,
    coverage_at_risk,
    fpr_at_95_tpr,
    misclassification_aupr,
    misclassification_auroc,
    misclassification_auroc_interval,
    ood_aupr,
    ood_auroc,
    ood_auroc_interval,
    risk_at_coverage,
    risk_coverage_curve,
    selective_answering,
    selective_figures,
)
from mumo.tasks.vqa.density import fit_split_density, split_features
from mumo.tasks.vqa.ensemble import DeepEnsemble
from mumo.tasks.vqa.predictive import members, split_probs
from mumo.tasks.vqa.question_bank import QuestionBank, split_image_mutual_information
from mumo.uncertainty.density import ClassGaussians, feature_density_score
from mumo.uncertainty.scores import uncertainty_scores


def per_image_mean(scores: torch.Tensor, split: VQASplit) -> torch.Tensor:
    """Mean of a per-question score over each image's questions: (N,) -> (I,)."""
    sums = torch.zeros(split.num_images, dtype=scores.dtype).index_add_(0, split.image_index, scores)
    counts = torch.bincount(split.image_index, minlength=split.num_images).clamp_min(1)
    return sums / counts


def ood_auroc_by_type(in_scores: torch.Tensor, split: VQASplit, ood_scores: torch.Tensor, ood: VQASplit) -> dict:
    """OOD AUROC within each question type both splits hold (e.g. ``yes/no``, ``color``, ``shape``).

    A yes/no question about an image unlike the training set often has a confident, *correct*
    answer ("is there a red circle?" -> "no"), so per-question OOD scores are weakest there; the
    breakdown shows which questions carry the signal.
    """
    out = {}
    for t in sorted(set(split.question_types) & set(ood.question_types)):
        a = torch.tensor([q == t for q in split.question_types])
        b = torch.tensor([q == t for q in ood.question_types])
        out[t] = ood_auroc(in_scores[a], ood_scores[b])
    return out


def misclassification_auroc_by_type(scores: torch.Tensor, correct: torch.Tensor, split: VQASplit) -> dict:
    """Misclassification AUROC within each question type (NaN for a type answered all right or all wrong)."""
    out = {}
    for t in sorted(set(split.question_types)):
        m = torch.tensor([q == t for q in split.question_types])
        out[t] = misclassification_auroc(scores[m], correct[m])
    return out


def _main_score(num_samples: int) -> str:
    """The OOD score: the mutual information when there are several samples (MC dropout, ensembles)."""
    return "mutual_information" if num_samples > 1 else "predictive_entropy"


def exact_match(probs: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact-match correctness of the top answers of ``probs`` (N, C) against soft ``targets`` (N, C).

    Returns (N,) each: ``correct`` (the answer is one of the top-scored ones, and that score is above 0), the
    calibration ``labels`` (the predicted answer when it is among tied top-scored answers, else the first
    top-scored one) and ``answerable`` (some answer scores above 0; a VQA v2 question whose annotators' answers
    are all outside the answer vocabulary has none, and no label for calibration).
    """
    best = targets.max(-1).values  # (N,)
    pred = probs.argmax(-1)  # (N,)
    answerable = best > 0
    correct = answerable & (targets.gather(1, pred[:, None]).squeeze(1) == best)
    labels = torch.where(correct, pred, targets.argmax(-1))
    return correct, labels, answerable


def evaluate_uncertainty(
    model: nn.Module,
    split: VQASplit,
    *,
    mc_samples: int | None,
    mc_scope: str = "all",
    ood: VQASplit | None = None,
    density_fit: VQASplit | None = None,
    density: ClassGaussians | None = None,
    question_bank: QuestionBank | None = None,
    plots_dir: Path | None = None,
    abstain: tuple[float, ...] = (0.01, 0.1, 0.5),
    n_bins: int = 15,
    images_per_batch: int = 128,
    seed: int = 0,
    progress: bool = False,
    temperature: float = 1.0,
    probs: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Accuracy, calibration, misclassification detection, selective prediction and (with ``ood``)
    OOD detection, optionally writing the plots as PNGs into ``plots_dir``.

    Misclassification scores use the predictive entropy (total uncertainty), with a 95 % bootstrap interval
    over images for its AUROC (``auroc_misclassification_ci95``, and ``auroc_ood_ci95``); OOD scores use the
    mutual information (epistemic) with MC dropout and the predictive entropy without it, per
    question and (``auroc_ood_per_image``) averaged over each image's questions. Every score is also
    reported under ``*_by_score``. With ``density_fit`` (training questions) or a fitted ``density``
    the scores include ``feature_density``: the negative log density of the model's fused features
    under class Gaussians (:mod:`mumo.uncertainty.density`). ``selective`` says what abstaining above
    each threshold in ``abstain`` (predictive entropy, nats) would do: coverage, risk, PAvPU. ``reliable_vqa``
    (predictive entropy) and ``reliable_vqa_by_score`` hold the reliable-VQA figures of
    :func:`mumo.metrics.uncertainty.selective_figures` (C@1 %, C@5 %, AURC, AUGRC, best Φ_1/Φ_10/Φ_100 over
    thresholds), scored by VQA accuracy (the split's soft target of the answer) rather than exact match. With a
    ``question_bank`` and MC dropout (or an ensemble) the scores include ``image_mutual_information``: the mean MI of
    the answers to the bank's questions about each question's image (:mod:`mumo.tasks.vqa.question_bank`).
    ``temperature`` scales the answer logits (temperature scaling) of every figure but the feature density
    and the image mutual information. ``model`` may be a :class:`DeepEnsemble`: the answer
    probabilities and the image mutual information pool all members' samples; the feature density is the
    first member's. ``auroc_misclassification_by_type`` breaks the misclassification AUROC down by question
    type: a pooled figure also ranks question types against each other (a yes/no answer's entropy is at most
    ln 2, a colour answer's is not).

    ``probs``: the split's probabilities (T, N, C) when the caller already has them from :func:`split_probs` with
    these settings (an ensemble's accuracy needs the same passes); the forward passes are then skipped.
    """
    if probs is None:
        probs = split_probs(
            model, split, mc_samples=mc_samples, mc_scope=mc_scope, images_per_batch=images_per_batch, seed=seed,
            progress=progress, temperature=temperature,
        )  # fmt: skip
    elif probs.dim() != 3 or probs.shape[1] != split.num_questions:
        raise MumoError(
            f"probs must be (T, {split.num_questions}, C) for the {split.name!r} split, not {tuple(probs.shape)}"
        )
    mean = probs.mean(0)  # (N, C)
    correct, labels, answerable = exact_match(mean, split.targets)
    vqa_accuracy = split.targets.gather(1, mean.argmax(-1, keepdim=True)).squeeze(1)  # (N,) soft, in [0, 1]
    cal_probs, cal_labels = mean[answerable], labels[answerable]  # calibration needs a true answer
    scores = uncertainty_scores(probs)
    first = members(model)[0]
    if density is None and density_fit is not None:
        density = fit_split_density(first, density_fit, images_per_batch=images_per_batch, progress=progress)
    if density is not None:
        feats = split_features(first, split, images_per_batch=images_per_batch, progress=progress)
        scores["feature_density"] = feature_density_score(density, feats)
    bank_mi, image_mi_percentiles = None, None
    if question_bank is not None and probs.shape[0] > 1:

        def bank_mi(s: VQASplit, seed: int) -> torch.Tensor:  # (I,) one score per image
            return split_image_mutual_information(
                model, s, question_bank, mc_samples=mc_samples, mc_scope=mc_scope,
                images_per_batch=images_per_batch, seed=seed, progress=progress,
            )  # fmt: skip

        per_image = bank_mi(split, seed + 11)
        scores["image_mutual_information"] = per_image[split.image_index]  # (N,): each question gets its image's
        # where this split's images lie: thresholds for abstain_on="image_mutual_information" (run it on val)
        image_mi_percentiles = {f"p{q}": float(torch.quantile(per_image, q / 100)) for q in (50, 95, 99)}
    res: dict[str, Any] = {
        "mc_samples": mc_samples or 0,
        "mc_scope": mc_scope if mc_samples else None,
        "ensemble_members": len(members(model)),
        "temperature": temperature,
        "accuracy": float(correct.float().mean()),
        "ece": expected_calibration_error(cal_probs, cal_labels, n_bins=n_bins),
        "ace": adaptive_calibration_error(cal_probs, cal_labels, n_bins=n_bins),
        "mce": maximum_calibration_error(cal_probs, cal_labels, n_bins=n_bins),
        "nll": negative_log_likelihood(cal_probs, cal_labels),
        "brier": brier_score(cal_probs, cal_labels),
        "questions_without_a_correct_answer": int((~answerable).sum()),
        "auroc_misclassification": misclassification_auroc(scores["predictive_entropy"], correct),
        # 95 % percentile bootstrap over images (an image's questions are resampled together)
        "auroc_misclassification_ci95": misclassification_auroc_interval(
            scores["predictive_entropy"], correct, groups=split.image_index, seed=seed
        ),
        "aupr_misclassification": misclassification_aupr(scores["predictive_entropy"], correct),
        "aurc": aurc(scores["predictive_entropy"], correct),
        "risk_at_80_coverage": risk_at_coverage(scores["predictive_entropy"], correct, 0.8),
        "coverage_at_5_risk": coverage_at_risk(scores["predictive_entropy"], correct, 0.05),
        "auroc_misclassification_by_score": {k: misclassification_auroc(v, correct) for k, v in scores.items()},
        "auroc_misclassification_by_type": misclassification_auroc_by_type(
            scores["predictive_entropy"], correct, split
        ),
        "selective": [selective_answering(scores["predictive_entropy"], correct, t) for t in sorted(set(abstain))],
        # reliable-VQA figures (Whitehead et al. 2022) on VQA accuracy, the soft correctness that work scores
        "reliable_vqa": selective_figures(scores["predictive_entropy"], vqa_accuracy),
        "reliable_vqa_by_score": {k: selective_figures(v, vqa_accuracy) for k, v in scores.items()},
        "mean_uncertainty": {k: float(v.mean()) for k, v in scores.items()},
    }
    if image_mi_percentiles is not None:
        res["image_mutual_information_percentiles"] = image_mi_percentiles
    ood_scores = None
    if ood is not None:
        ood_probs = split_probs(
            model, ood, mc_samples=mc_samples, mc_scope=mc_scope, images_per_batch=images_per_batch, seed=seed + 7,
            progress=progress, temperature=temperature,
        )  # fmt: skip
        ood_scores = uncertainty_scores(ood_probs)
        if density is not None:
            feats = split_features(first, ood, images_per_batch=images_per_batch, progress=progress)
            ood_scores["feature_density"] = feature_density_score(density, feats)
        if bank_mi is not None:  # the same masks as above: OOD == ID gives AUROC 0.5
            ood_scores["image_mutual_information"] = bank_mi(ood, seed + 11)[ood.image_index]
        key = _main_score(probs.shape[0])
        res.update(
            ood_set=ood.name,
            ood_score=key,
            auroc_ood=ood_auroc(scores[key], ood_scores[key]),
            auroc_ood_ci95=ood_auroc_interval(  # 95 % bootstrap over the ID and OOD images
                scores[key], ood_scores[key], id_groups=split.image_index, ood_groups=ood.image_index, seed=seed
            ),
            aupr_ood=ood_aupr(scores[key], ood_scores[key]),
            fpr95_ood=fpr_at_95_tpr(scores[key], ood_scores[key]),
            auroc_ood_by_score={k: ood_auroc(scores[k], ood_scores[k]) for k in scores},
            # is the *image* OOD? the score averaged over each image's questions
            auroc_ood_per_image=ood_auroc(per_image_mean(scores[key], split), per_image_mean(ood_scores[key], ood)),
            auroc_ood_per_image_by_score={
                k: ood_auroc(per_image_mean(scores[k], split), per_image_mean(ood_scores[k], ood)) for k in scores
            },
            auroc_ood_by_type=ood_auroc_by_type(scores[key], split, ood_scores[key], ood),
            mean_uncertainty_ood={k: float(v.mean()) for k, v in ood_scores.items()},
        )
    if plots_dir is not None:
        tag = f"mc{mc_samples}" if mc_samples else "deterministic"
        tag = f"ensemble{len(model)}_{tag}" if isinstance(model, DeepEnsemble) else tag
        res["plots"] = _plots(plots_dir, mean, labels, correct, scores, ood_scores, tag, probs.shape[0], n_bins)
    return res


def _plots(
    folder: Path,
    mean: torch.Tensor,
    labels: torch.Tensor,
    correct: torch.Tensor,
    scores: dict[str, torch.Tensor],
    ood_scores: dict[str, torch.Tensor] | None,
    tag: str,
    num_samples: int,
    n_bins: int,
) -> list[str]:
    from mumo.metrics.plots import plot_reliability_diagram, plot_risk_coverage, plot_uncertainty_histograms

    folder.mkdir(parents=True, exist_ok=True)
    groups = {"correct": scores["predictive_entropy"][correct], "wrong": scores["predictive_entropy"][~correct]}
    paths = [
        plot_reliability_diagram(mean, labels, folder / f"reliability_{tag}.png", n_bins=n_bins),
        plot_uncertainty_histograms(
            {k: v for k, v in groups.items() if v.numel()},  # a split answered all right has one group only
            folder / f"uncertainty_correct_wrong_{tag}.png",
            xlabel="predictive entropy (nats)",
        ),
        plot_risk_coverage(
            {k: risk_coverage_curve(v, correct) for k, v in scores.items()},
            folder / f"risk_coverage_{tag}.png",
        ),
    ]
    if ood_scores is not None:
        key = _main_score(num_samples)
        paths.append(
            plot_uncertainty_histograms(
                {"in-distribution": scores[key], "OOD": ood_scores[key]},
                folder / f"uncertainty_ood_{tag}.png",
                xlabel=key.replace("_", " ") + " (nats)",
            )
        )
        if "feature_density" in ood_scores:
            paths.append(
                plot_uncertainty_histograms(
                    {"in-distribution": scores["feature_density"], "OOD": ood_scores["feature_density"]},
                    folder / "uncertainty_ood_feature_density.png",
                    xlabel="negative log feature density (nats)",
                    symlog=True,
                )
            )
        if "image_mutual_information" in ood_scores:
            paths.append(
                plot_uncertainty_histograms(
                    {
                        "in-distribution": scores["image_mutual_information"],
                        "OOD": ood_scores["image_mutual_information"],
                    },
                    folder / f"uncertainty_ood_image_mi_{tag}.png",
                    xlabel="image mutual information: mean over the question bank (nats)",
                )
            )
    return [str(p) for p in paths]
