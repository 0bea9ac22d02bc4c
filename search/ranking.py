"""Ranking quality of an estimator against ground truth (PRP-NAS section 3.1).

Kendall tau-b suits these comparisons because Pareto ranks hold many ties.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from search.pareto import pareto_ranks


def _corr(fn, a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")  # undefined for constant inputs
    return float(fn(a, b).statistic)


def kendall_tau_b(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall tau-b (tie-corrected) between two score vectors; NaN when undefined."""
    return _corr(lambda x, y: stats.kendalltau(x, y, variant="b"), np.asarray(a), np.asarray(b))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; NaN when undefined."""
    return _corr(stats.spearmanr, np.asarray(a), np.asarray(b))


def ranking_report(
    est_acc: np.ndarray, true_acc: np.ndarray, cost: np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy and Pareto ranking correlations of estimated vs true accuracies.

    Args:
        est_acc: accuracies estimated by the supernet (higher is better).
        true_acc: ground-truth accuracies of the same architectures.
        cost: a hardware cost to minimise (e.g. latency) for the Pareto ranks; rows where it
            is NaN ("not measured") are left out of the Pareto comparison only.

    Returns:
        ``kendall_tau_acc``, ``spearman_acc``, ``n_archs`` and, with ``cost``,
        ``kendall_tau_pareto`` (tau-b between the Pareto ranks of (est_acc, cost) and of
        (true_acc, cost)) and ``n_pareto``.
    """
    est_acc, true_acc = np.asarray(est_acc, float), np.asarray(true_acc, float)
    if est_acc.shape != true_acc.shape:
        raise ValueError(f"shape mismatch: estimated {est_acc.shape} vs true {true_acc.shape}")
    out = {
        "kendall_tau_acc": kendall_tau_b(est_acc, true_acc),
        "spearman_acc": spearman(est_acc, true_acc),
        "n_archs": len(est_acc),
    }
    if cost is not None:
        cost = np.asarray(cost, float)
        keep = ~np.isnan(cost)
        est_ranks = pareto_ranks(np.c_[-est_acc[keep], cost[keep]])
        true_ranks = pareto_ranks(np.c_[-true_acc[keep], cost[keep]])
        out["kendall_tau_pareto"] = kendall_tau_b(est_ranks, true_ranks)
        out["n_pareto"] = int(keep.sum())
    return out


def pareto_score_report(
    scores: np.ndarray, true_acc: np.ndarray, cost: np.ndarray
) -> dict[str, float]:
    """Correlation of a predicted Pareto score (higher = better rank) with the true Pareto ranks.

    For estimators that score the Pareto rank directly (PRP-NAS's sum of alphas) rather than
    accuracy: ``kendall_tau_pareto_score`` is tau-b between the scores and the negated Pareto
    ranks of (true_acc, cost), over the rows where cost was measured.
    """
    scores, true_acc, cost = (np.asarray(v, float) for v in (scores, true_acc, cost))
    keep = ~np.isnan(cost)
    true_ranks = pareto_ranks(np.c_[-true_acc[keep], cost[keep]])
    return {
        "kendall_tau_pareto_score": kendall_tau_b(scores[keep], -true_ranks),
        "kendall_tau_acc_score": kendall_tau_b(scores, true_acc),
    }
