"""Pareto-rank losses on operation scores (PRP-NAS section 3.2, step 2 and eq. 2).

Every sampled sub-network ``a`` gets a predicted Pareto score ``P_s(a) = sum of alpha over its
ops`` (one alpha per decision and choice). Two losses train alpha:

- the listwise ranking loss: ListNet's top-one cross-entropy between ``softmax(P_s)`` and
  ``softmax(-rank / T)`` of the ground-truth Pareto ranks (the paper's "cross entropy between
  the ranking scores and the Pareto ranks");
- the hinge loss of eq. 2 over op frequencies among the top-N sub-networks.

Eq. 2 as printed reads ``max[0, m - g(argmax alpha, l_j) - g_hat(op_i, l_j)]``; it is read here
as ``max[0, m - (g(argmax, l_j) - g_hat(op_i, l_j))]``: for every op ``i`` (not the argmax) that
appears more often among the predicted top-N than among the true top-N, the argmax op must
appear at least ``m`` more times among the predicted top-N than op ``i`` does in the truth.
Counts over a hard top-N have no gradient, so the predicted counts ``g`` use a soft top-N
membership (a sigmoid of the score's distance to the N-th/N+1-th boundary, temperature ``T``;
``T = 0`` gives the hard counts the equation states). Ties at the boundary of the true top-N
share the remaining places equally, so tied sub-networks count alike.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def path_scores(alpha: torch.Tensor, choices: torch.Tensor) -> torch.Tensor:
    """Predicted Pareto score ``P_s`` of each sub-network: the sum of its ops' alphas.

    Args:
        alpha: (L, K) one score per decision and choice.
        choices: (A, L) choice index of each sub-network on each decision.
    """
    return alpha.gather(1, choices.T).sum(0)


def top_n_weights(values: torch.Tensor, n: int, temperature: float = 0.0) -> torch.Tensor:
    """Membership of each item in the top ``n`` by value (higher is better), in [0, 1].

    ``temperature=0`` is the hard top-n: ties at the boundary share the places left, so the
    weights sum to exactly ``n``. A positive temperature gives a differentiable soft top-n
    centred between the n-th and (n+1)-th values.
    """
    a = values.numel()
    if not 0 < n <= a:
        raise ValueError(f"top-N needs 0 < N <= {a} sampled sub-networks, got N={n}")
    if n == a:
        return torch.ones_like(values)
    ordered = torch.sort(values.detach(), descending=True).values
    if temperature > 0:
        threshold = (ordered[n - 1] + ordered[n]) / 2
        return torch.sigmoid((values - threshold) / temperature)
    boundary = ordered[n - 1]
    above = values.detach() > boundary
    tied = values.detach() == boundary
    share = (n - above.sum()) / tied.sum()
    return above.to(values.dtype) + tied.to(values.dtype) * share


def op_counts(choices: torch.Tensor, weights: torch.Tensor, num_choices: int) -> torch.Tensor:
    """(L, K) weighted count of each choice on each decision: ``g(op_i, l_j)``."""
    one_hot = F.one_hot(choices, num_choices).to(weights.dtype)  # (A, L, K)
    return torch.einsum("a,alk->lk", weights, one_hot)


def listwise_loss(
    scores: torch.Tensor, ranks: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """ListNet top-one cross-entropy between predicted scores and Pareto ranks (1 = best)."""
    target = torch.softmax(-ranks.to(scores.dtype) / temperature, dim=0)
    return -(target * torch.log_softmax(scores, dim=0)).sum()


def pareto_hinge_loss(
    alpha: torch.Tensor,
    g: torch.Tensor,
    g_hat: torch.Tensor,
    margin: float,
    alive: torch.Tensor | None = None,
) -> torch.Tensor:
    """Eq. 2: hinge on op frequencies among the predicted (``g``) vs true (``g_hat``) top-N.

    Args:
        alpha: (L, K) op scores; the argmax is taken over alive ops.
        g: (L, K) counts among the predicted top-N (differentiable for a gradient).
        g_hat: (L, K) counts among the true top-N.
        margin: ``m``.
        alive: (L, K) bool, ops still in the supernet (pruned ones never count).
    """
    alive = torch.ones_like(alpha, dtype=torch.bool) if alive is None else alive
    best = alpha.detach().masked_fill(~alive, float("-inf")).argmax(1)  # (L,)
    g_best = g.gather(1, best[:, None])  # (L, 1)
    others = torch.ones_like(alive)
    others[torch.arange(len(best)), best] = False
    over = (g.detach() > g_hat) & others & alive
    terms = torch.relu(margin - (g_best - g_hat))
    return (terms * over).sum()
