"""Hypervolume against brute-force grid counting; HVI, epsilon, ratio of dominance, true fronts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from search.analytics import (
    ReferenceFront,
    additive_epsilon,
    dominates,
    hypervolume,
    hypervolume_contributions,
    hypervolume_improvement,
    ratio_of_dominance,
)
from search.tactics import normalisation_box, reach_box, select_by_ehvi, select_by_hvi


def grid_hypervolume(F: np.ndarray, ref: np.ndarray) -> int:
    """Unit cells [c, c+1)^k below ``ref`` dominated by some point (exact for integer inputs)."""
    count = 0
    for cell in itertools.product(*[range(int(r)) for r in ref]):
        if any(np.all(f <= np.array(cell)) for f in F):
            count += 1
    return count


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("seed", range(6))
def test_hypervolume_matches_grid_counting(k, seed):
    rng = np.random.default_rng(seed)
    F = rng.integers(0, 7, size=(rng.integers(1, 15), k)).astype(float)  # ties and duplicates
    ref = np.full(k, 7.0) if k < 4 else np.full(k, 5.0)
    assert hypervolume(F, ref) == pytest.approx(grid_hypervolume(F, ref))


def test_hypervolume_edge_cases():
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0
    assert hypervolume([[1.0, 0.0]], [1.0, 1.0]) == 0.0  # on the reference boundary: no volume
    assert hypervolume([[0.5, 0.5], [0.5, 0.5]], [1.0, 1.0]) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="NaN"):
        hypervolume([[np.nan, 0.0]], [1.0, 1.0])
    with pytest.raises(ValueError, match="3 columns, reference point has 2"):
        hypervolume(np.zeros((1, 3)), [1.0, 1.0])


@pytest.mark.parametrize("k", [2, 3])
def test_contributions_equal_hypervolume_improvement(k):
    rng = np.random.default_rng(k)
    F, C = rng.uniform(0, 1, (12, k)), rng.uniform(0, 1.2, (30, k))
    ref = np.full(k, 1.1)
    expected = [hypervolume_improvement(F, c, ref) for c in C]
    np.testing.assert_allclose(hypervolume_contributions(F, C, ref), expected, atol=1e-12)
    assert hypervolume_improvement(F, F[:3], ref) == pytest.approx(0.0, abs=1e-12)


def test_additive_epsilon_is_the_shift_that_escapes_domination():
    F = np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    C = np.array([[0.5, 0.5], [1.5, 1.2], [3.0, 3.0]])
    eps = additive_epsilon(F, C)
    assert eps[0] == 0.0  # non-dominated
    assert eps[1] == pytest.approx(0.2)  # beat (1, 1) in f2 by 0.2 or (2, 0)... min over escapes
    assert eps[2] == pytest.approx(2.0)
    for c, e in zip(C, eps, strict=True):  # shifted by a hair more than eps, nothing dominates it
        assert not dominates(F, (c - e - 1e-9)[None]).any()


def test_ratio_of_dominance_both_ways():
    A = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.2]])
    B = np.array([[0.5, 0.5], [2.0, 2.0]])
    assert ratio_of_dominance(A, B) == pytest.approx(1.0)  # every A point beats (2, 2)
    assert ratio_of_dominance(B, A) == 0.0
    assert ratio_of_dominance(B, B) == pytest.approx(0.5)  # (0.5, 0.5) dominates (2, 2)


def test_reference_front_normalises_to_its_own_box():
    rng = np.random.default_rng(0)
    F = rng.uniform(0, 10, (200, 2))
    ref = ReferenceFront(F)
    assert ref.hv_fraction(F) == pytest.approx(1.0)
    assert ref.hv_fraction(ref.front) == pytest.approx(1.0)
    np.testing.assert_allclose(ref.normalize(ref.front).min(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ref.normalize(ref.front).max(0), 1.0, atol=1e-12)
    partial = ref.front[::2]
    assert 0 < ref.hv_fraction(partial) < 1
    report = ref.report(partial)
    assert report["true_front_found"] == pytest.approx(len(partial) / len(ref.front))
    assert report["igd"] > 0
    assert report["rod_true_over_found"] == 0.0  # on the true front: nothing dominates it
    behind = ref.report(ref.front + 0.5)
    assert behind["rod_true_over_found"] == 1.0 and behind["true_front_found"] == 0.0


def test_normalisation_box_leaves_out_isolated_extremes():
    # NB201-like: a front from 86 to 94 % accuracy plus the degenerate 10 % cell at ~0 ms
    front = np.array([[-94.0, 20.0], [-92.0, 8.0], [-89.0, 2.0], [-86.5, 1.0], [-10.0, 0.01]])
    ideal, nadir = normalisation_box(front)
    assert nadir[0] == -86.5 and ideal[1] == 1.0 and nadir[1] == 20.0  # the 10 % cell is out


def test_reach_box_grows_toward_the_named_objective_only():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])  # (error, latency)
    beyond_error = [-2.0, 2.0]  # more accurate than the front, slower than its box
    faster_junk = [5.0, -1.0]  # faster than the front, far worse error
    cands = np.array([beyond_error, faster_junk, [0.5, 0.5]])
    ideal, nadir = reach_box(front, cands, toward=0)
    assert ideal.tolist() == [0.0, 0.0] and nadir.tolist() == [1.0, 2.0]  # junk left out
    assert reach_box(front, cands[1:], toward=0)[1].tolist() == [1.0, 1.0]  # nothing beyond
    # scaled to the front's own box the accurate-but-slow candidate lies past the reference
    # point and adds nothing; in the reached box it is the best pick
    cands = np.array([beyond_error, [0.6, 0.6]])
    assert select_by_hvi(front, cands, 1) == [1]
    box = reach_box(front, cands, toward=0)
    assert select_by_hvi(front, cands, 1, box=box) == [0]
    assert select_by_ehvi(front, cands, np.zeros(2), 1, np.random.default_rng(0), box=box) == [0]


def test_select_by_hvi_prefers_the_gap_and_never_repeats():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    cands = np.array([[0.9, 0.9], [0.3, 0.3], [2.0, 2.0], [0.5, 0.5], [0.31, 0.31]])
    # largest gain first; once the picks leave no gain, nearest to the front first; the far
    # dominated point (2, 2) is left out
    assert select_by_hvi(front, cands, 4, believer=True) == [1, 4, 3, 0]
    assert select_by_hvi(front, cands, 4, believer=False) == [1, 4, 3, 0]
    assert select_by_hvi(front, cands, 9) == [1, 4, 3, 0, 2]


def test_select_by_hvi_spreads_over_groups_when_capped():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    cands = np.array([[0.3, 0.3], [0.31, 0.31], [0.32, 0.32], [0.9, 0.9], [0.8, 0.95]])
    groups = np.array([0, 0, 0, 1, 1])
    picks = select_by_hvi(front, cands, 4, believer=False, groups=groups, per_group=2)
    assert picks == [0, 1, 4, 3]  # two per group, best first; (0.32, 0.32) waits
    assert select_by_hvi(front, cands, 5, groups=groups, per_group=2)[-1] == 2  # cap relaxed last


@pytest.mark.parametrize("believer", [True, False])
def test_ehvi_without_uncertainty_is_hvi(believer):
    rng = np.random.default_rng(0)
    front = rng.uniform(0, 1, (8, 2))
    front = front[np.argsort(front[:, 0])]
    cands = rng.uniform(0, 1.2, (40, 2))
    hvi = select_by_hvi(front, cands, 10, believer=believer)
    ehvi = select_by_ehvi(front, cands, np.zeros(2), 10, rng, believer=believer)
    assert ehvi == hvi
    # with uncertainty, a candidate just behind the front gains a chance to improve it
    behind = np.array([[0.5, 0.5]]) + 0.01
    on_front = np.array([[0.5, 0.5]])
    assert select_by_ehvi(on_front, behind, np.zeros(2), 1, rng) == [0]
    assert select_by_ehvi(on_front, np.vstack([behind, [[3.0, 3.0]]]), np.full(2, 0.1), 1, rng) == [
        0
    ]
