"""Batch selection over the validated front by (expected) hypervolume improvement.

Greedy hypervolume improvement (HVI), expected HVI under the predictors' uncertainty, and the
normalisation / reach boxes they work in.
"""

from __future__ import annotations

import numpy as np

from search.analytics import additive_epsilon, hypervolume_contributions
from search.pareto import non_dominated_mask


def select_by_ehvi(
    front: np.ndarray,
    mean: np.ndarray,
    sigma: np.ndarray,
    n: int,
    rng: np.random.Generator,
    ref: float = 1.1,
    samples: int = 32,
    believer: bool = True,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Greedy batch of ``n`` candidates of largest expected hypervolume improvement (EHVI).

    Each candidate's objectives are Gaussian around the predicted ``mean`` with standard
    deviation ``sigma`` (per objective, or per candidate and objective); the EHVI over the
    validated ``front`` is a Monte-Carlo average over ``samples`` draws shared by all
    candidates. A candidate predicted
    just behind the front still has a chance to improve it, in proportion to how unsure the
    predictors are. With ``believer``, each pick joins the front at its predicted mean, so the
    next pick is valued for what it adds beyond it (a diverse batch). Everything is normalised
    to the front's box (:func:`normalisation_box`, or ``box``), reference point ``ref``.
    """
    n = min(n, len(mean))
    if n <= 0:
        return []
    if len(front) == 0:
        return list(range(n))
    P, M, span = normalised_to_front(front, mean, box)
    S = np.broadcast_to(np.asarray(sigma, dtype=float) / span, M.shape)  # per candidate
    refp = np.full(P.shape[1], ref)
    z = rng.standard_normal((samples, M.shape[1]))
    draws = (M[:, None, :] + z[None] * S[:, None, :]).reshape(-1, M.shape[1])
    chosen: list[int] = []
    free = np.ones(len(M), dtype=bool)
    while len(chosen) < n:
        idx = np.flatnonzero(free)
        rows = (idx[:, None] * samples + np.arange(samples)).ravel()
        gain = hypervolume_contributions(P, draws[rows], refp).reshape(len(idx), samples).mean(1)
        if gain.max() <= 0:
            break
        best = idx[int(np.argmax(gain))]
        chosen.append(best)
        free[best] = False
        if believer:
            P = np.vstack([P, M[best]])
            P = P[non_dominated_mask(P)]
    if len(chosen) < n:
        idx = np.flatnonzero(free)
        eps = additive_epsilon(P, M[idx])
        chosen.extend(idx[np.argsort(eps, kind="stable")[: n - len(chosen)]].tolist())
    return chosen


def normalisation_box(front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ideal and nadir of a front, leaving out isolated extremes.

    A front point whose gap to the rest of the front in some objective exceeds three times the
    span of the rest (NAS-Bench-201's 10%-accuracy cells, fastest only because nothing reaches
    the output) would squash every other point into a sliver of the box; it is left out of the
    box (it still counts as part of the front).
    """
    keep = np.ones(len(front), dtype=bool)
    for j in range(front.shape[1]):
        while keep.sum() > 2:
            idx = np.flatnonzero(keep)
            values = front[idx, j]
            worst = idx[int(np.argmax(values))]
            rest = front[keep & (np.arange(len(front)) != worst), j]
            if front[worst, j] - rest.max() > 3 * max(rest.max() - rest.min(), 1e-12):
                keep[worst] = False
            else:
                break
    return front[keep].min(0), front[keep].max(0)


def reach_box(
    front: np.ndarray, candidates: np.ndarray, toward: int
) -> tuple[np.ndarray, np.ndarray]:
    """The front's box (:func:`normalisation_box`) grown to cover the candidates predicted
    beyond the front's best value in objective ``toward``.

    Early in a search the validated front stops short of the far end of the true one (on
    NAS-Bench-201, the most accurate networks are also the slowest). Scaled to the front's own
    box, with the reference point just past it, a candidate more accurate than anything
    validated but slower than the box's nadir adds no hypervolume at all, so the search would
    never reach for that end. Growing the nadir along the other objectives to the predicted
    values of those candidates credits them. Only ``toward`` is reached for: growing the box
    for every objective also takes in whatever junk is predicted faster than the front, which
    squashes the accuracy axis.
    """
    ideal, nadir = normalisation_box(front)
    beyond = candidates[:, toward] < ideal[toward]
    if beyond.any():
        far = candidates[beyond].max(0)
        far[toward] = nadir[toward]
        nadir = np.maximum(nadir, far)
    return ideal, nadir


def normalised_to_front(
    front: np.ndarray,
    candidates: np.ndarray,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``front`` and ``candidates`` scaled to ``box`` (ideal, nadir; default the front's box,
    :func:`normalisation_box`), and the box's span (1 along an objective where it is flat)."""
    ideal, nadir = normalisation_box(front) if box is None else box
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (front - ideal) / span, (candidates - ideal) / span, span


def select_by_hvi(
    front: np.ndarray,
    candidates: np.ndarray,
    n: int,
    ref: float = 1.1,
    believer: bool = True,
    groups: np.ndarray | None = None,
    per_group: int | None = None,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Greedy batch of ``n`` candidates that most improve the front's hypervolume.

    ``front`` and ``candidates`` are minimisation objectives (candidates predicted). Both are
    normalised to the front's bounding box (or ``box``) with the reference point at ``ref``.
    Each pick takes the candidate of largest hypervolume improvement over the front plus the
    picks so far (a "believer" batch: predictions are taken as if true); once no candidate
    improves it, the rest are the candidates nearest to the front (smallest additive epsilon),
    which a weak predictor may have placed just behind it.
    """
    n = min(n, len(candidates))
    if n <= 0:
        return []
    if len(front) == 0:
        return list(range(n))
    P, C, _ = normalised_to_front(front, candidates, box)
    refp = np.full(P.shape[1], ref)
    chosen: list[int] = []
    free = np.ones(len(C), dtype=bool)
    capped = per_group is not None and groups is not None
    count: dict[int, int] = {}

    def take(i: int) -> None:
        chosen.append(int(i))
        free[i] = False
        if capped:
            count[groups[i]] = count.get(groups[i], 0) + 1
            if count[groups[i]] >= per_group:  # spread the batch over the front
                free[groups == groups[i]] = False

    fixed_gain = None if believer else hypervolume_contributions(P, C, refp)  # the front stays
    while len(chosen) < n and free.any():
        idx = np.flatnonzero(free)
        gain = hypervolume_contributions(P, C[idx], refp) if believer else fixed_gain[idx]
        if gain.max() <= 0:
            break
        best = idx[int(np.argmax(gain))]
        take(best)
        if believer:
            P = np.vstack([P, C[best]])
            P = P[non_dominated_mask(P)]
    if len(chosen) < n:
        idx = np.flatnonzero(free)
        for i in idx[np.argsort(additive_epsilon(P, C[idx]), kind="stable")]:
            if len(chosen) >= n:
                break
            if free[i]:
                take(i)
    if len(chosen) < n:  # every group is at its cap: fill by closeness regardless
        rest = np.setdiff1d(np.arange(len(C)), chosen)
        eps = additive_epsilon(P, C[rest])
        chosen.extend(rest[np.argsort(eps, kind="stable")[: n - len(chosen)]].tolist())
    return chosen
