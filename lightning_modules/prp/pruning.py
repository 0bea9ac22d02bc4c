"""Pruning operations by hypervolume improvement (PRP-NAS section 3.2, step 3 and eq. 3).

Among the sampled sub-networks of Pareto ranks 1 and 2 (the set ``P``), the hypervolume
improvement of op ``o_ij`` is ``HV(P with S_o) - HV(P without S_o)``, ``S_o`` being the
sub-networks of ``P`` that use op ``i`` on decision ``j`` (eq. 3; ``S_o`` is inside ``P``, so
the first term is ``HV(P)``). The paper then "selects n sub-networks based on the HVI" and
removes, per decision, the ops that no selected sub-network uses. A sub-network is scored here
by the summed HVI of its ops (how much front its choices carry), the top ``n`` are selected,
and an op survives if one of them uses it. The reference point is a fixed, pre-sampled
low-accuracy, high-latency corner so that hypervolumes of different epochs compare.
"""

from __future__ import annotations

import numpy as np

from search.analytics import hypervolume


def front_set(ranks: np.ndarray, max_rank: int = 2) -> np.ndarray:
    """Indices of the sub-networks of Pareto rank ``<= max_rank`` (the set ``P``)."""
    return np.flatnonzero(np.asarray(ranks) <= max_rank)


def op_hvi(
    F: np.ndarray, choices: np.ndarray, ranks: np.ndarray, ref: np.ndarray, alive: np.ndarray
) -> np.ndarray:
    """(L, K) hypervolume improvement of each alive op over ``P`` (eq. 3); 0 for dead ops.

    Args:
        F: (A, k) minimisation objectives of the sampled sub-networks.
        choices: (A, L) choice index of each sub-network on each decision.
        ranks: (A,) Pareto ranks (1 = best).
        ref: (k,) reference point.
        alive: (L, K) bool, ops still in the supernet.
    """
    P = front_set(ranks)
    hv_all = hypervolume(F[P], ref)
    hvi = np.zeros(alive.shape)
    for j, k in zip(*np.nonzero(alive), strict=True):
        uses = choices[P, j] == k
        if uses.any():
            hvi[j, k] = hv_all - hypervolume(F[P[~uses]], ref)
    return hvi


def select_by_hvi(hvi: np.ndarray, choices: np.ndarray, ranks: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` sub-networks of ``P`` whose ops carry the most HVI (ties: lower rank first)."""
    P = front_set(ranks)
    score = hvi[np.arange(choices.shape[1]), choices[P]].sum(1)
    order = np.lexsort((np.asarray(ranks)[P], -score))
    return P[order[:n]]


def surviving_ops(choices: np.ndarray, selected: np.ndarray, alive: np.ndarray) -> np.ndarray:
    """(L, K) bool: alive ops used by at least one selected sub-network."""
    used = np.zeros_like(alive)
    for j in range(choices.shape[1]):
        used[j, np.unique(choices[selected, j])] = True
    return alive & used
