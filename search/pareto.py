"""Pareto dominance, non-dominated sorting and Pareto ranks (PRP-NAS section 3.1, eq. 1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def to_minimization(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Objective matrix (n, k) turned into minimisation form: ``max`` columns are negated."""
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(modes):
        raise ValueError(f"need an (n, {len(modes)}) objective matrix, got shape {values.shape}")
    bad = [m for m in modes if m not in ("min", "max")]
    if bad:
        raise ValueError(f"objective modes must be 'min' or 'max', got {bad}")
    sign = np.array([1.0 if m == "min" else -1.0 for m in modes])
    return values * sign


def pareto_ranks(objectives: np.ndarray) -> np.ndarray:
    """Pareto rank of every row of a minimisation objective matrix (PRP-NAS eq. 1).

    Rank 1 is the non-dominated front F_1; rank k holds the points non-dominated once the
    fronts F_1..F_(k-1) are removed. Identical points share a rank (neither dominates).

    Args:
        objectives: (n, k) array, every column minimised, no NaN.

    Returns:
        (n,) int array of ranks starting at 1.
    """
    F = np.asarray(objectives, dtype=float)
    if F.ndim != 2:
        raise ValueError(f"need an (n, k) objective matrix, got shape {F.shape}")
    if np.isnan(F).any():
        raise ValueError("objective matrix holds NaN (an unmeasured value); drop those rows first")
    if len(F) == 0:
        return np.zeros(0, dtype=int)
    _, rank = NonDominatedSorting().do(F, return_rank=True)
    return np.asarray(rank, dtype=int) + 1


def non_dominated_mask(objectives: np.ndarray) -> np.ndarray:
    """Boolean mask of the first front (rank 1) of a minimisation objective matrix."""
    return pareto_ranks(objectives) == 1
