"""Choosing a processor's family levels from its accuracy-latency front (Dynamic-OFA section 3.2).

The paper keeps the Pareto-optimal sub-networks with about 1% top-1 between neighbours, 6-7 per
processor. The rule here, on the front of everything the search evaluated:

1. ``step = max(acc_step, span / (n_levels - 1))`` where ``span`` is the front's top-1 range:
   1% steps where the front spans at most ``(n_levels - 1)`` points of accuracy, wider steps
   otherwise, so the ladder always reaches down to the fastest front member (the level a
   loaded processor falls back to). ``cover=False`` keeps the steps at ``acc_step`` exactly.
2. Targets ``t_k = top - k * step`` for ``k = 0 .. n_levels - 1``; level ``k`` is the *fastest*
   front member with accuracy ``>= t_k`` (the cheapest network that reaches the target, which
   is what a lookup-table policy wants). Equal picks collapse into one level, so a front with
   fewer distinct accuracy steps gives fewer levels.
3. Levels are returned fastest first (level 1 = fastest), as the artifact stores them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from search.pareto import non_dominated_mask


def front_indices(acc: Sequence[float], latency: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points (max accuracy, min latency), by latency ascending."""
    acc, latency = np.asarray(acc, dtype=float), np.asarray(latency, dtype=float)
    if acc.shape != latency.shape or acc.ndim != 1:
        raise ValueError(
            f"need equal-length accuracy and latency lists, got {acc.shape}, {latency.shape}"
        )
    if len(acc) == 0:
        return []
    mask = non_dominated_mask(np.stack([-acc, latency], axis=1))
    idx = np.flatnonzero(mask)
    # equal points are all non-dominated: keep the first of each (acc, latency) pair
    seen, out = set(), []
    for i in idx[np.lexsort((-acc[idx], latency[idx]))]:
        if (acc[i], latency[i]) not in seen:
            seen.add((acc[i], latency[i]))
            out.append(int(i))
    return out


def select_levels(
    acc: Sequence[float],
    latency: Sequence[float],
    n_levels: int = 7,
    acc_step: float = 1.0,
    cover: bool = True,
) -> list[int]:
    """Indices of the family levels among the points, fastest first (rule in the module doc).

    Args:
        acc: top-1 accuracy (%) of every evaluated point.
        latency: latency of every point (same order).
        n_levels: at most this many levels.
        acc_step: accuracy step between levels (percentage points).
        cover: widen the step so the ladder reaches the fastest front member.

    Raises:
        ValueError: for ``n_levels < 1`` or ``acc_step <= 0``.
    """
    if n_levels < 1:
        raise ValueError(f"n_levels must be >= 1, got {n_levels}")
    if acc_step <= 0:
        raise ValueError(f"acc_step must be > 0 (percentage points), got {acc_step}")
    front = front_indices(acc, latency)
    if not front:
        return []
    a = np.asarray(acc, dtype=float)
    top, bottom = a[front].max(), a[front].min()
    step = acc_step
    if cover and n_levels > 1:
        step = max(acc_step, (top - bottom) / (n_levels - 1))
    chosen: list[int] = []
    for k in range(n_levels):
        target = top - k * step
        # the front is sorted by latency ascending, so the first that reaches it is the fastest
        pick = next(i for i in front if a[i] >= target - 1e-9)
        if pick not in chosen:
            chosen.append(pick)
    lat = np.asarray(latency, dtype=float)
    return sorted(chosen, key=lambda i: (lat[i], a[i]))
