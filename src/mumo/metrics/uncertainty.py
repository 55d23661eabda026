"""Uncertainty quality: misclassification and OOD detection, selective prediction (risk–coverage, AURC, AUGRC,
coverage at a risk level, effective reliability) and PAvPU.

Every score is an *uncertainty* (higher = less certain: entropy, mutual information, 1 − max prob, ...). Detection
tasks follow reference §3.6: positives (label 1) are the wrongly classified samples for misclassification detection
and the OOD samples for OOD detection. Inputs are torch tensors, outputs plain Python floats (or tensors for curves).

Selective prediction answers the samples whose uncertainty is at most a threshold. Tied scores are answered or
refused together: a threshold never splits a tie, so operating points (`coverage_at_risk`, the effective
reliability) only lie at score boundaries, and where a figure is read at a coverage that falls inside a tie
(`risk_coverage_curve`, `aurc`, `risk_at_coverage`, `augrc`) each tied group contributes its average error, i.e.
the figure is its expectation over a random order of the tied samples. No figure depends on the input order.
The selective figures take hard (bool) or soft correctness in [0, 1] (VQA accuracy; the error is 1 − accuracy).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from mumo.errors import MumoError

TPR_LEVEL = 0.95  # detection rate of OOD samples at which `fpr_at_95_tpr` reads the ID false-positive rate


def _check_scores(scores: torch.Tensor, name: str = "scores") -> np.ndarray:
    """Return a float64 NumPy copy of a finite, non-empty (N,) score tensor, or raise MumoError."""
    if scores.ndim != 1:
        raise MumoError(f"{name} must have shape (N,), got {tuple(scores.shape)}")
    if scores.shape[0] == 0:
        raise MumoError(f"empty input: {name} holds no samples (N = 0)")
    if scores.dtype == torch.bool or scores.is_complex():
        raise MumoError(f"{name} must be a real-valued tensor, got {scores.dtype}")
    if not torch.isfinite(scores).all():
        raise MumoError("uncertainty scores hold NaN or infinite values")
    return scores.detach().cpu().to(torch.float64).numpy()


def _check_correct(scores: torch.Tensor, correct: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N,) scores and (N,) correctness flags (bool, or integers in {0, 1}); return NumPy copies."""
    if correct.ndim != 1 or scores.ndim != 1 or correct.shape[0] != scores.shape[0]:
        raise MumoError(
            f"scores and correct must both have shape (N,), got {tuple(scores.shape)} and {tuple(correct.shape)}"
        )
    s = _check_scores(scores)
    if correct.dtype != torch.bool:
        if correct.is_floating_point() or correct.is_complex() or not ((correct == 0) | (correct == 1)).all():
            raise MumoError(f"correct must be a bool tensor (or integers in {{0, 1}}), got {correct.dtype}")
        correct = correct.bool()
    return s, correct.detach().cpu().numpy()


def _check_accuracy(scores: torch.Tensor, correct: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Validate (N,) scores and (N,) correctness that may be soft: bool, integers in {0, 1} or real values in
    [0, 1] (e.g. VQA accuracy); return float64 NumPy copies of the scores and the accuracies."""
    if correct.ndim != 1 or scores.ndim != 1 or correct.shape[0] != scores.shape[0]:
        raise MumoError(
            f"scores and correct must both have shape (N,), got {tuple(scores.shape)} and {tuple(correct.shape)}"
        )
    s = _check_scores(scores)
    if correct.is_complex():
        raise MumoError(f"correct must be bool or real values in [0, 1], got {correct.dtype}")
    acc = correct.detach().cpu().to(torch.float64).numpy()
    if not ((acc >= 0) & (acc <= 1)).all():  # NaN fails both comparisons
        raise MumoError("correct must be bool or real values in [0, 1] (soft correctness such as VQA accuracy)")
    return s, acc


def _tied_groups(s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The samples sorted by increasing uncertainty, in groups of equal score.

    (N,) scores and per-sample values -> ``(start, size, sums)``, each (U,) over the U distinct scores in
    increasing order: the sorted position where each group starts, how many samples it holds and the sum of its
    values (any order within a tie gives the same three).
    """
    order = np.argsort(s, kind="stable")  # (N,)
    s_sorted = s[order]
    start = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # (U,)
    return start, np.diff(np.r_[start, len(s)]), np.add.reduceat(values[order], start)


def _expected_cumulative_errors(s: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """(N,) expected error count among the k most certain samples, k = 1..N, each tied group's error spread
    evenly over its samples (the expectation over a random order within ties); exact at group boundaries."""
    start, size, errors = _tied_groups(s, 1.0 - acc)
    before = np.cumsum(errors) - errors  # (U,) error of the groups before each group
    group = np.repeat(np.arange(len(start)), size)  # (N,) group of each sorted position
    k = np.arange(1, len(s) + 1)  # (N,)
    return before[group] + errors[group] * ((k - start[group]) / size[group])


def _boundary_points(s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The operating points a threshold can reach: answering every sample whose score is ≤ one distinct score.

    Returns ``(answered, total)``, each (U,) in increasing order of the threshold: how many samples are answered
    and the sum of their ``values`` (N,).
    """
    start, size, sums = _tied_groups(s, values)
    return start + size, np.cumsum(sums)


def _ood_labels_and_scores(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels (ID = 0, OOD = 1) and scores over ID ∪ OOD, (N + M,) each."""
    s_id = _check_scores(id_scores, "id_scores")
    s_ood = _check_scores(ood_scores, "ood_scores")
    y = np.concatenate([np.zeros(len(s_id), dtype=np.int64), np.ones(len(s_ood), dtype=np.int64)])
    return y, np.concatenate([s_id, s_ood])


def misclassification_auroc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """AUROC for detecting wrong predictions from their uncertainty (positives = wrong).

    Args:
        scores: Uncertainty per sample, (N,); higher means more likely wrong.
        correct: Whether each prediction is right, (N,) bool (or integers in {0, 1}).

    Returns:
        AUROC in [0, 1] (ties count one half), or ``nan`` when all predictions are right or all are wrong (AUROC is
        undefined with a single class).

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores or non-binary ``correct``.
    """
    s, c = _check_correct(scores, correct)
    if c.all() or not c.any():
        return float("nan")
    from sklearn.metrics import roc_auc_score  # imported where used: scikit-learn costs ~0.5 s to import

    return float(roc_auc_score(~c, s))


def misclassification_auroc_interval(
    scores: torch.Tensor,
    correct: torch.Tensor,
    *,
    groups: torch.Tensor | None = None,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    min_count: int = 10,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of :func:`misclassification_auroc`.

    Args:
        scores: Uncertainty per sample, (N,); higher means more likely wrong.
        correct: Whether each prediction is right, (N,) bool (or integers in {0, 1}).
        groups: (N,) integer group of each sample, resampled together (a cluster bootstrap: the questions
            about one image are not independent draws). Default: every sample is its own group.
        level: Coverage of the interval, in (0, 1).
        resamples: Bootstrap resamples (each draws as many groups as there are, with replacement).
        seed: Seeds the resampling.
        min_count: Fewest wrong (and right) answers to bootstrap: resampling a handful of errors only
            reshuffles them and understates the spread (4 errors can give an interval 0.01 wide).

    Returns:
        (low, high). Resamples holding only right or only wrong answers define no AUROC and are left out;
        ``(nan, nan)`` when there are fewer than ``min_count`` wrong or right answers, or fewer than half
        the resamples define an AUROC (too few errors to say).

    Raises:
        MumoError: Bad ``scores``/``correct`` (as :func:`misclassification_auroc`), ``groups`` of another
            shape, ``level`` outside (0, 1) or ``resamples`` < 1.
    """
    s, c = _check_correct(scores, correct)
    if groups is not None and tuple(groups.shape) != s.shape:
        raise MumoError(f"groups must have shape {s.shape}, got {tuple(groups.shape)}")
    return _auroc_interval(
        s, ~c, _dense_groups(groups, len(s)), level=level, resamples=resamples, seed=seed, min_count=min_count
    )


def ood_auroc_interval(
    id_scores: torch.Tensor,
    ood_scores: torch.Tensor,
    *,
    id_groups: torch.Tensor | None = None,
    ood_groups: torch.Tensor | None = None,
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
    min_count: int = 10,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of :func:`ood_auroc` (OOD = positive).

    ``id_groups`` (N,) and ``ood_groups`` (M,) put samples that are resampled together (the questions
    about one image) in one group; the two sides' groups are kept apart. Other arguments and the result
    as in :func:`misclassification_auroc_interval`, with ``min_count`` applying to each side.
    """
    y, s = _ood_labels_and_scores(id_scores, ood_scores)
    n_id = len(y) - int(y.sum())
    for name, groups, n in (("id_groups", id_groups, n_id), ("ood_groups", ood_groups, len(y) - n_id)):
        if groups is not None and tuple(groups.shape) != (n,):
            raise MumoError(f"{name} must have shape ({n},), got {tuple(groups.shape)}")
    g_id, g_ood = _dense_groups(id_groups, n_id), _dense_groups(ood_groups, len(y) - n_id)
    g = np.concatenate([g_id, g_ood + int(g_id.max()) + 1])  # (N + M,): no group spans both sides
    return _auroc_interval(s, y.astype(bool), g, level=level, resamples=resamples, seed=seed, min_count=min_count)


def _dense_groups(groups: torch.Tensor | np.ndarray | None, n: int) -> np.ndarray:
    """(n,) group ids renumbered 0..G-1; every sample its own group when ``groups`` is None."""
    if groups is None:
        return np.arange(n)
    groups = groups.detach().cpu().numpy() if isinstance(groups, torch.Tensor) else groups
    return np.unique(groups, return_inverse=True)[1].reshape(-1)


def _auroc_interval(
    s: np.ndarray, positive: np.ndarray, g: np.ndarray, *, level: float, resamples: int, seed: int, min_count: int
) -> tuple[float, float]:
    """The percentile bootstrap behind the ``*_auroc_interval`` functions, on validated (N,) arrays; ``g`` holds
    group ids 0..G-1 (:func:`_dense_groups`)."""
    if not 0 < level < 1:
        raise MumoError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise MumoError(f"resamples must be >= 1, got {resamples}")
    if min(positive.sum(), (~positive).sum()) < max(min_count, 1):  # at least one of each, always
        return float("nan"), float("nan")
    n_groups = int(g.max()) + 1
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_groups, np.full(n_groups, 1.0 / n_groups), size=resamples)  # (B, G)
    values = _weighted_aurocs(s, positive, g, counts)  # (B,), nan where a resample lacks a class
    values = values[~np.isnan(values)]
    if len(values) < resamples / 2:
        return float("nan"), float("nan")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _weighted_aurocs(scores: np.ndarray, positive: np.ndarray, group: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """AUROC of every bootstrap resample at once: sample i weighs ``counts[b, group[i]]`` in resample b.

    (N,) scores, (N,) bool positives, (N,) group in [0, G), (B, G) counts -> (B,) AUROCs, equal to sklearn's
    ``roc_auc_score(positive, scores, sample_weight=counts[b, group])`` (ties count one half), nan where a
    resample holds no positive or no negative weight. Weighted Mann-Whitney over the distinct score values.
    """
    from scipy.sparse import csr_matrix

    value = np.unique(scores, return_inverse=True)[1].reshape(-1)  # (N,) rank among the U distinct scores
    shape = (counts.shape[1], int(value.max()) + 1)  # (G, U)
    # how many negatives / positives of each group have each score value, (G, U) sparse
    neg = csr_matrix((np.ones((~positive).sum()), (group[~positive], value[~positive])), shape=shape)
    pos = csr_matrix((np.ones(positive.sum()), (group[positive], value[positive])), shape=shape)
    out = np.empty(len(counts))
    chunk = max(1, 4_000_000 // shape[1])  # bounds the (b, U) intermediates
    for start in range(0, len(counts), chunk):
        c = counts[start : start + chunk].T.astype(np.float64)  # (G, b)
        n_w = np.asarray(neg.T @ c).T  # (b, U) negative weight at each score value
        p_w = np.asarray(pos.T @ c).T  # (b, U)
        below = np.cumsum(n_w, axis=1) - n_w  # negative weight strictly below each value
        total = n_w.sum(1) * p_w.sum(1)  # (b,)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + chunk] = np.where(total > 0, (p_w * (below + 0.5 * n_w)).sum(1) / total, np.nan)
    return out


def misclassification_aupr(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the precision–recall curve (average precision) for detecting wrong predictions (positives = wrong).

    Args:
        scores: Uncertainty per sample, (N,); higher means more likely wrong.
        correct: Whether each prediction is right, (N,) bool (or integers in {0, 1}).

    Returns:
        Average precision (sklearn ``average_precision_score``, step-wise, no interpolation) in [0, 1], or ``nan``
        when all predictions are right or all are wrong.

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores or non-binary ``correct``.
    """
    s, c = _check_correct(scores, correct)
    if c.all() or not c.any():
        return float("nan")
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(~c, s))


def ood_auroc(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> float:
    """AUROC for separating OOD (positive) from in-distribution samples by their uncertainty.

    Args:
        id_scores: Uncertainty of the in-distribution samples, (N,).
        ood_scores: Uncertainty of the OOD samples, (M,); higher should mean OOD.

    Returns:
        AUROC in [0, 1]; ties count one half, so identical ID and OOD sets give 0.5.

    Raises:
        MumoError: On an empty set, a non-(N,) shape or NaN/inf scores.
    """
    y, s = _ood_labels_and_scores(id_scores, ood_scores)
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s))


def ood_aupr(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> float:
    """AUPR-Out: average precision for detecting OOD samples (OOD = positive) by their uncertainty.

    Args:
        id_scores: Uncertainty of the in-distribution samples, (N,).
        ood_scores: Uncertainty of the OOD samples, (M,); higher should mean OOD.

    Returns:
        Average precision (sklearn ``average_precision_score``) in [0, 1]; its chance level is M / (N + M).

    Raises:
        MumoError: On an empty set, a non-(N,) shape or NaN/inf scores.
    """
    y, s = _ood_labels_and_scores(id_scores, ood_scores)
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, s))


def fpr_at_95_tpr(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> float:
    """False-positive rate on ID samples at the first operating point that detects ≥ 95 % of OOD samples.

    Samples with score ≥ t are flagged OOD. Sweeping t downwards over the distinct scores (sklearn ``roc_curve`` with
    ``drop_intermediate=False``), this returns the FPR at the highest threshold whose TPR (fraction of OOD flagged)
    reaches 0.95, i.e. the smallest FPR among the thresholds with TPR ≥ 0.95. Tied scores move together, so no
    threshold splits a tie.

    Args:
        id_scores: Uncertainty of the in-distribution samples, (N,).
        ood_scores: Uncertainty of the OOD samples, (M,); higher should mean OOD.

    Returns:
        FPR in [0, 1] (lower is better); uncertainty-baselines reports 1 − this value.

    Raises:
        MumoError: On an empty set, a non-(N,) shape or NaN/inf scores.
    """
    y, s = _ood_labels_and_scores(id_scores, ood_scores)
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    # tpr is non-decreasing along the sweep and ends at 1, so the first index reaching the level always exists.
    first = int(np.argmax(tpr >= TPR_LEVEL))
    return float(fpr[first])


def risk_coverage_curve(scores: torch.Tensor, correct: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Selective-prediction risk–coverage curve: error rate among the k most certain samples, k = 1..N.

    Ties: samples are sorted by increasing uncertainty, and each group of tied scores contributes its average error
    to every position it spans, so risk_k is the expected error rate among the k most certain samples over a random
    order of the tied ones. At the score boundaries (the coverages a threshold reaches) it is the exact error rate
    of the answered samples; the curve never depends on the input order.

    Args:
        scores: Uncertainty per sample, (N,); lower means more certain (kept first).
        correct: Correctness per sample, (N,): bool (or integers in {0, 1}), or soft values in [0, 1] such as VQA
            accuracy (the error is then 1 − correct).

    Returns:
        ``(coverage, risk)``, each (N,) float64: coverage[k-1] = k / N and risk[k-1] = mean error among the k
        lowest-uncertainty samples (ties averaged as above).

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores or ``correct`` outside [0, 1] (or NaN).
    """
    s, acc = _check_accuracy(scores, correct)
    k = np.arange(1, len(s) + 1, dtype=np.float64)  # (N,)
    return torch.from_numpy(k / len(s)), torch.from_numpy(_expected_cumulative_errors(s, acc) / k)


def aurc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the risk–coverage curve, as the plain mean of the risk at coverages k/N, k = 1..N.

    AURC = (1/N) Σ_{k=1..N} risk_k, with risk_k the error rate among the k most certain samples (see
    `risk_coverage_curve`: each tied group contributes its average error, so AURC is its expectation over a random
    order of tied samples and does not depend on the input order). This is a right Riemann sum over coverage (no
    point at coverage 0, no trapezoid), the discrete form of Geifman et al. (2019). A random ranking gives about
    the overall error rate; a perfect one gives the lowest value reachable for that error rate.

    Args:
        scores: Uncertainty per sample, (N,); lower means more certain.
        correct: Correctness per sample, (N,): bool (or integers in {0, 1}), or soft values in [0, 1].

    Returns:
        AURC in [0, 1] (lower is better).

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores or ``correct`` outside [0, 1].
    """
    _, risk = risk_coverage_curve(scores, correct)
    return float(risk.mean())


def augrc(scores: torch.Tensor, correct: torch.Tensor) -> float:
    """Area under the generalized risk–coverage curve (Traub et al., 2024, "Overcoming common flaws in the
    evaluation of selective classification systems").

    The generalized risk at a coverage is the share of *all* N samples that are answered and wrong (the summed
    error 1 − correct of the answered samples, divided by N, not by the number answered), so the most certain
    samples do not dominate as they do in `aurc`. The curve runs through (0, 0) and one point per distinct score
    (answering every sample with score ≤ it; ties are answered together), joined by straight lines, and AUGRC is
    its area (the trapezoid rule). Joining the boundary points linearly is the same as letting each tied group
    contribute its average error, so the figure does not depend on the input order. This follows the authors'
    reference code (fd-shifts); torch-uncertainty's ``AUGRC`` integrates the same generalized risk over the
    coverages k/N, k = 1..N, divided by 1 − 1/N, which differs by O(1/N) when scores do not tie.

    Args:
        scores: Uncertainty per sample, (N,); lower means more certain.
        correct: Correctness per sample, (N,): bool (or integers in {0, 1}), or soft values in [0, 1].

    Returns:
        AUGRC in [0, 1/2] (lower is better; an all-wrong set gives 1/2, an all-right one 0).

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores or ``correct`` outside [0, 1].
    """
    s, acc = _check_accuracy(scores, correct)
    n = len(s)
    answered, errors = _boundary_points(s, 1.0 - acc)
    coverage = np.r_[0.0, answered / n]  # (U + 1,)
    risk = np.r_[0.0, errors / n]  # (U + 1,) generalized risk
    return float(np.sum(np.diff(coverage) * (risk[1:] + risk[:-1]) / 2))


def risk_at_coverage(scores: torch.Tensor, correct: torch.Tensor, coverage: float = 0.8) -> float:
    """Error rate among the ⌈coverage · N⌉ most certain samples (e.g. risk at 80 % coverage).

    Where that count falls inside a group of tied scores, the tie contributes its average error (the expected risk
    over a random order of the tied samples; see `risk_coverage_curve`), so the input order does not matter.
    ``correct`` may be soft, in [0, 1].

    Raises:
        MumoError: as `risk_coverage_curve`, or ``coverage`` outside (0, 1].
    """
    if not 0 < coverage <= 1:
        raise MumoError(f"coverage must lie in (0, 1], got {coverage}")
    _, risk = risk_coverage_curve(scores, correct)
    k = math.ceil(coverage * len(risk) - 1e-9)  # samples kept
    return float(risk[k - 1])


def coverage_at_risk(scores: torch.Tensor, correct: torch.Tensor, risk: float = 0.05) -> float:
    """Coverage at a risk level (C@r, e.g. C@1 %, C@5 % in Whitehead et al., ECCV 2022): the largest share of
    samples a threshold can answer, most certain first, while the error rate among the answered stays ≤ ``risk``.

    Only thresholds are considered, so tied scores are answered or refused together: the candidate coverages are
    the score boundaries, as in the reliable-VQA evaluation (``computeCatR``). The risk is the mean error
    1 − correct of the answered samples, so soft correctness (VQA accuracy) gives the paper's risk. 0 when no
    threshold answers anything within ``risk`` (torch-uncertainty's ``CovAtxRisk`` returns NaN there).

    Raises:
        MumoError: as `risk_coverage_curve`, or ``risk`` outside [0, 1].
    """
    if not 0 <= risk <= 1:
        raise MumoError(f"risk must lie in [0, 1], got {risk}")
    s, acc = _check_accuracy(scores, correct)
    answered, errors = _boundary_points(s, 1.0 - acc)
    ok = np.flatnonzero(errors / answered <= risk + 1e-12)
    return float(answered[ok[-1]] / len(s)) if len(ok) else 0.0


def _check_cost(cost: float) -> float:
    cost = float(cost)
    if not (math.isfinite(cost) and cost >= 0):
        raise MumoError(f"cost must be a finite number >= 0, got {cost}")
    return cost


def _reliability_values(acc: np.ndarray, cost: float) -> np.ndarray:
    """(N,) what answering each sample is worth: its accuracy when > 0, else − ``cost``."""
    return np.where(acc > 0, acc, -cost)


def effective_reliability(scores: torch.Tensor, correct: torch.Tensor, threshold: float, cost: float) -> float:
    """Effective reliability Φ_c (Whitehead et al., "Reliable Visual Question Answering: Abstain Rather Than Answer
    Incorrectly", ECCV 2022) when answering the samples whose uncertainty is ≤ ``threshold``.

    Per sample, Φ_c(x) = acc(x) if answered and acc(x) > 0, −c if answered and acc(x) = 0, and 0 if abstained;
    this returns the mean over all N samples. Tied scores fall on the same side of the threshold. The paper
    reports Φ_1, Φ_10 and Φ_100 with the threshold chosen on validation data.

    Args:
        scores: Uncertainty per sample, (N,).
        correct: Correctness per sample, (N,): bool (or integers in {0, 1}), or soft values in [0, 1] (VQA
            accuracy, as in the paper).
        threshold: Uncertainty at or below which a sample is answered.
        cost: c ≥ 0, the penalty for answering wrongly (accuracy 0).

    Returns:
        Φ_c in [−c, 1] (higher is better; abstaining on everything gives 0).

    Raises:
        MumoError: as `risk_coverage_curve`, a NaN/inf ``threshold``, or a negative or non-finite ``cost``.
    """
    s, acc = _check_accuracy(scores, correct)
    if not math.isfinite(float(threshold)):
        raise MumoError(f"threshold must be a finite number, got {threshold}")
    values = _reliability_values(acc, _check_cost(cost))
    return float(np.where(s <= threshold, values, 0.0).mean())


def best_effective_reliability(scores: torch.Tensor, correct: torch.Tensor, cost: float) -> float:
    """The largest effective reliability Φ_c (`effective_reliability`) over every threshold on these samples.

    An *oracle* figure: the threshold is chosen on the very samples it is scored on, so it is an upper bound on
    the Φ_c a threshold chosen on validation data (the paper's protocol) reaches here. The thresholds are the
    distinct scores (ties answered together) and one below them all (abstain on everything, Φ_c = 0), so the
    result is ≥ 0. It is not the paper's "best possible Φ_c" of a perfect selector that answers exactly the
    samples with accuracy > 0.

    Raises:
        MumoError: as `effective_reliability` (no threshold).
    """
    s, acc = _check_accuracy(scores, correct)
    values = _reliability_values(acc, _check_cost(cost))
    _, total = _boundary_points(s, values)  # (U,) N · Φ_c at each threshold
    return float(max(0.0, total.max()) / len(s))


RISK_LEVELS = (0.01, 0.05)  # C@1 %, C@5 %: the risk levels `selective_figures` reads the coverage at
COSTS = (1.0, 10.0, 100.0)  # Φ_1, Φ_10, Φ_100: the costs of a wrong answer Whitehead et al. report


def selective_figures(scores: torch.Tensor, correct: torch.Tensor) -> dict[str, float]:
    """The selective-answering figures reliable-VQA work reports (Whitehead et al., ECCV 2022), for one score.

    Returns:
        ``coverage_at_1_risk`` and ``coverage_at_5_risk`` (`coverage_at_risk`), ``aurc``, ``augrc`` and
        ``best_effective_reliability_1`` / ``_10`` / ``_100`` (`best_effective_reliability` at c = 1, 10, 100:
        the threshold is chosen on these samples, an oracle upper bound).

    Raises:
        MumoError: as `risk_coverage_curve`.
    """
    out = {f"coverage_at_{round(100 * r)}_risk": coverage_at_risk(scores, correct, r) for r in RISK_LEVELS}
    out |= {"aurc": aurc(scores, correct), "augrc": augrc(scores, correct)}
    return out | {f"best_effective_reliability_{c:g}": best_effective_reliability(scores, correct, c) for c in COSTS}


def pavpu(scores: torch.Tensor, correct: torch.Tensor, threshold: float) -> float:
    """Patch accuracy vs patch uncertainty (Mukhoti & Gal, arXiv:1811.12709), per sample.

    PAvPU = (n accurate-and-certain + n inaccurate-and-uncertain) / N, where a sample is certain when its score is
    ≤ ``threshold``.

    Args:
        scores: Uncertainty per sample, (N,).
        correct: Whether each prediction is right, (N,) bool (or integers in {0, 1}).
        threshold: Uncertainty at or below which a sample counts as certain.

    Returns:
        PAvPU in [0, 1] (higher is better).

    Raises:
        MumoError: On N = 0, shape mismatch, NaN/inf scores, non-binary ``correct`` or a NaN/inf threshold.
    """
    s, c = _check_correct(scores, correct)
    if not math.isfinite(float(threshold)):
        raise MumoError(f"threshold must be a finite number, got {threshold}")
    certain = s <= threshold
    return float(((c & certain) | (~c & ~certain)).mean())


def selective_answering(scores: torch.Tensor, correct: torch.Tensor, threshold: float) -> dict[str, float]:
    """What abstaining above ``threshold`` does: answer the samples whose score is ≤ ``threshold``.

    Returns:
        ``threshold``; ``coverage`` (fraction answered); ``risk`` (error rate among the answered, NaN
        when none is); ``accuracy`` over all samples counting abstentions as wrong; and ``pavpu``.

    Raises:
        MumoError: as :func:`pavpu`.
    """
    s, c = _check_correct(scores, correct)
    p = pavpu(scores, correct, threshold)  # also checks the threshold
    answered = s <= threshold
    n = int(answered.sum())
    risk = float((~c[answered]).mean()) if n else math.nan
    return {"threshold": float(threshold), "coverage": n / len(s), "risk": risk,
            "accuracy": float((c & answered).mean()), "pavpu": p}  # fmt: skip
