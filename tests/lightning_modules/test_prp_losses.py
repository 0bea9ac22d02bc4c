"""PRP-NAS losses (eq. 2 and the listwise loss) and HVI pruning (eq. 3) against hand-computed
and brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from lightning_modules.prp.losses import (
    listwise_loss,
    op_counts,
    pareto_hinge_loss,
    path_scores,
    top_n_weights,
)
from lightning_modules.prp.pruning import op_hvi, select_by_hvi, surviving_ops
from search.pareto import pareto_ranks

# 4 sub-networks, 2 decisions with 3 choices each.
CHOICES = torch.tensor([[0, 1], [0, 2], [1, 1], [2, 0]])


def test_path_scores_sum_the_alphas_of_the_ops():
    alpha = torch.tensor([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])
    assert path_scores(alpha, CHOICES).tolist() == [21.0, 31.0, 22.0, 13.0]


def test_top_n_weights_share_places_between_ties():
    ranks = torch.tensor([1.0, 2.0, 2.0, 3.0])  # the true top-2: arch 0, then a tie
    w = top_n_weights(-ranks, 2)
    assert w.tolist() == [1.0, 0.5, 0.5, 0.0] and float(w.sum()) == 2.0
    assert top_n_weights(torch.tensor([4.0, 3.0, 2.0, 1.0]), 2).tolist() == [1, 1, 0, 0]
    soft = top_n_weights(torch.tensor([4.0, 3.0, 2.0, 1.0]), 2, temperature=0.01)
    torch.testing.assert_close(soft, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="0 < N <= 4"):
        top_n_weights(ranks, 5)


def test_hinge_loss_of_eq2_by_hand_with_ties():
    # alpha argmax: choice 0 on decision 0, choice 1 on decision 1
    alpha = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2]])
    scores = path_scores(alpha, CHOICES)  # [1.7, 1.1, 0.9, 0.9]: predicted top-2 = archs 0, 1
    g = op_counts(CHOICES, top_n_weights(scores, 2), 3)
    assert g.tolist() == [[2, 0, 0], [0, 1, 1]]
    # truth: arch 2 best, archs 0 and 3 tied second -> top-2 = {2: 1, 0: 0.5, 3: 0.5}
    true_ranks = torch.tensor([2.0, 3.0, 1.0, 2.0])
    g_hat = op_counts(CHOICES, top_n_weights(-true_ranks, 2), 3)
    assert g_hat.tolist() == [[0.5, 1, 0.5], [0.5, 1.5, 0]]
    # decision 0: ops with g > g_hat other than argmax 0: none (g = [2,0,0]).
    # decision 1: argmax 1, g(1) = 1; op 2 has g 1 > g_hat 0 -> max(0, m - (1 - 0)).
    for m, expected in ((1.0, 0.0), (2.5, 1.5), (4.0, 3.0)):
        assert float(pareto_hinge_loss(alpha, g, g_hat, m)) == pytest.approx(expected)
    # a pruned op never counts: kill op 2 of decision 1
    alive = torch.ones(2, 3, dtype=torch.bool)
    alive[1, 2] = False
    assert float(pareto_hinge_loss(alpha, g, g_hat, 4.0, alive)) == 0.0


def test_hinge_is_zero_exactly_when_the_top_n_is_respected():
    alpha = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.8, 0.2]])
    scores = path_scores(alpha, CHOICES)
    # true ranks that order the archs as the scores do: same top-N, loss 0 at any margin
    respected = torch.tensor([1.0, 2.0, 3.0, 3.0])
    g = op_counts(CHOICES, top_n_weights(scores, 2), 3)
    g_hat = op_counts(CHOICES, top_n_weights(-respected, 2), 3)
    for m in (0.5, 1.0, 5.0):
        assert float(pareto_hinge_loss(alpha, g, g_hat, m)) == 0.0
    # swap the truth of arch 1 and arch 3: an over-represented op appears, the loss is > 0
    violated = torch.tensor([1.0, 3.0, 3.0, 2.0])
    g_hat = op_counts(CHOICES, top_n_weights(-violated, 2), 3)
    assert float(pareto_hinge_loss(alpha, g, g_hat, 5.0)) > 0.0


def test_listwise_loss_is_listnet_cross_entropy():
    scores = torch.tensor([2.0, 1.0, 0.0, -1.0])
    ranks = torch.tensor([1.0, 2.0, 2.0, 3.0])
    target = np.exp(-ranks.numpy()) / np.exp(-ranks.numpy()).sum()
    logp = scores.numpy() - np.log(np.exp(scores.numpy()).sum())
    assert float(listwise_loss(scores, ranks)) == pytest.approx(-(target * logp).sum(), rel=1e-6)
    # it prefers scores that order like the ranks
    assert listwise_loss(-ranks, ranks) < listwise_loss(ranks, ranks)


def _brute_hv(F: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by F inside ref, by summing grid cells over all distinct coordinates."""
    if len(F) == 0:
        return 0.0
    xs = np.unique(np.concatenate([F[:, 0], [ref[0]]]))
    ys = np.unique(np.concatenate([F[:, 1], [ref[1]]]))
    area = 0.0
    for (x0, x1), (y0, y1) in itertools.product(itertools.pairwise(xs), itertools.pairwise(ys)):
        if ((F[:, 0] <= x0) & (F[:, 1] <= y0)).any():
            area += (x1 - x0) * (y1 - y0)
    return area


def test_op_hvi_matches_brute_force_hypervolume_with_and_without_the_op():
    rng = np.random.default_rng(0)
    F = rng.random((30, 2))
    choices = rng.integers(0, 4, size=(30, 3))
    ranks = pareto_ranks(F)
    ref = np.array([1.1, 1.1])
    alive = np.ones((3, 4), dtype=bool)
    alive[2, 3] = False
    hvi = op_hvi(F, choices, ranks, ref, alive)
    P = np.flatnonzero(ranks <= 2)
    for j, k in itertools.product(range(3), range(4)):
        if not alive[j, k]:
            assert hvi[j, k] == 0.0
            continue
        uses = choices[P, j] == k
        expected = _brute_hv(F[P], ref) - _brute_hv(F[P[~uses]], ref)
        assert hvi[j, k] == pytest.approx(expected, abs=1e-12)
    assert (hvi >= 0).all() and hvi.max() > 0


def test_pruning_keeps_exactly_the_ops_of_the_selected_subnets():
    F = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [2.0, 2.0], [3.0, 3.0]])
    choices = np.array([[0, 0], [1, 1], [1, 0], [2, 2], [3, 3]])
    ranks = pareto_ranks(F)
    assert ranks.tolist() == [1, 1, 1, 2, 3]
    alive = np.ones((2, 4), dtype=bool)
    hvi = op_hvi(F, choices, ranks, np.array([4.0, 4.0]), alive)
    selected = select_by_hvi(hvi, choices, ranks, n=3)
    assert 4 not in selected and len(selected) == 3  # rank 3 is never selected
    keep = surviving_ops(choices, selected, alive)
    used = {(j, choices[i, j]) for i in selected for j in range(2)}
    assert {(int(j), int(k)) for j, k in zip(*np.nonzero(keep), strict=True)} == used
