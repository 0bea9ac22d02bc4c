"""Non-dominated sorting against brute force, and ranking correlations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from search.pareto import non_dominated_mask, pareto_ranks, to_minimization
from search.ranking import kendall_tau_b, ranking_report


def brute_force_ranks(F: np.ndarray) -> np.ndarray:
    """O(n^2) per front: peel off the points no remaining point dominates."""
    n = len(F)
    ranks = np.zeros(n, dtype=int)
    remaining = set(range(n))
    rank = 1
    while remaining:
        front = [
            i
            for i in remaining
            if not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in remaining if j != i)
        ]
        for i in front:
            ranks[i] = rank
        remaining -= set(front)
        rank += 1
    return ranks


@pytest.mark.parametrize("seed", range(12))
def test_pareto_ranks_match_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 80), rng.integers(2, 4)
    F = rng.integers(0, 6, size=(n, k)).astype(float)  # few levels: many ties and duplicates
    np.testing.assert_array_equal(pareto_ranks(F), brute_force_ranks(F))
    np.testing.assert_array_equal(non_dominated_mask(F), brute_force_ranks(F) == 1)


def test_to_minimization_and_errors():
    np.testing.assert_array_equal(to_minimization([[90.0, 3.0]], ["max", "min"]), [[-90.0, 3.0]])
    with pytest.raises(ValueError, match="'min' or 'max'"):
        to_minimization([[1.0, 2.0]], ["max", "fast"])
    with pytest.raises(ValueError, match="NaN"):
        pareto_ranks(np.array([[1.0, np.nan]]))


def test_kendall_tau_b_is_scipy_variant_b_with_ties():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    assert kendall_tau_b(a, b) == pytest.approx(stats.kendalltau(a, b, variant="b").statistic)
    assert np.isnan(kendall_tau_b(np.ones(5), np.arange(5)))


def test_ranking_report_perfect_reversed_and_unmeasured_cost():
    rng = np.random.default_rng(1)
    true = rng.uniform(60, 95, 40)
    cost = rng.uniform(1, 10, 40)
    cost[:5] = np.nan  # not measured: dropped from the Pareto comparison only
    perfect = ranking_report(true + 0.0, true, cost)
    assert perfect["kendall_tau_acc"] == pytest.approx(1.0)
    assert perfect["kendall_tau_pareto"] == pytest.approx(1.0)
    assert perfect["n_pareto"] == 35 and perfect["n_archs"] == 40
    reversed_ = ranking_report(-true, true)
    assert reversed_["kendall_tau_acc"] == pytest.approx(-1.0)
    # Pareto ranks of estimates equal the brute-force ranks computed by hand.
    est = true + rng.normal(0, 5, 40)
    keep = ~np.isnan(cost)
    expected = kendall_tau_b(
        brute_force_ranks(np.c_[-est[keep], cost[keep]]),
        brute_force_ranks(np.c_[-true[keep], cost[keep]]),
    )
    assert ranking_report(est, true, cost)["kendall_tau_pareto"] == pytest.approx(expected)
