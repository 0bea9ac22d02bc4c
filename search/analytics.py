"""Search analytics: hypervolume, hypervolume improvement, ratio of dominance, front quality.

All functions take objective matrices in minimisation form (see ``search.pareto.to_minimization``).
"""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.indicators.igd import IGD

from search.pareto import non_dominated_mask


def _matrix(F: np.ndarray, k: int | None = None) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim == 1 and F.size == 0:
        return F.reshape(0, 0 if k is None else k)
    if F.ndim != 2:
        raise ValueError(f"need an (n, k) objective matrix, got shape {F.shape}")
    if k is not None and F.shape[1] != k:
        raise ValueError(f"objective matrix has {F.shape[1]} columns, reference point has {k}")
    if np.isnan(F).any():
        raise ValueError("objective matrix holds NaN (an unmeasured value); drop those rows first")
    return F


def hypervolume(F: np.ndarray, ref: np.ndarray) -> float:
    """Volume dominated by the points of ``F`` and bounded by the reference point ``ref``.

    Exact sweep in O(n log n) for two objectives; pymoo's exact algorithm for more. Points that
    do not strictly dominate ``ref`` contribute nothing.
    """
    ref = np.asarray(ref, dtype=float).ravel()
    F = _matrix(F, len(ref))
    F = F[np.less(F, ref).all(axis=1)]  # strictly inside the reference box
    if len(F) == 0:
        return 0.0
    if len(ref) == 2:
        F = F[np.lexsort((F[:, 1], F[:, 0]))]  # by f1, ties by f2
        volume, best_f2 = 0.0, ref[1]
        for f1, f2 in F:
            if f2 < best_f2:  # else dominated by (or equal to) an earlier point
                # earlier points (smaller f1) already cover everything above best_f2
                volume += (ref[0] - f1) * (best_f2 - f2)
                best_f2 = f2
        return float(volume)
    return float(HV(ref_point=ref)(F))


def hypervolume_improvement(F: np.ndarray, candidates: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume gained by adding ``candidates`` to the front ``F`` (PRP-NAS eq. 3, HVI)."""
    ref = np.asarray(ref, dtype=float).ravel()
    F, C = _matrix(F, len(ref)), _matrix(np.atleast_2d(candidates), len(ref))
    return hypervolume(np.vstack([F, C]), ref) - hypervolume(F, ref)


def hypervolume_contributions(F: np.ndarray, candidates: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each candidate on its own over the front ``F``.

    Vectorised over candidates for two objectives (the area of a candidate's box not under the
    front's staircase); one exact hypervolume per candidate for more.
    """
    ref = np.asarray(ref, dtype=float).ravel()
    F, C = _matrix(F, len(ref)), _matrix(np.atleast_2d(candidates), len(ref))
    if len(ref) != 2:
        base = hypervolume(F, ref)
        return np.array([hypervolume(np.vstack([F, c[None]]), ref) - base for c in C])
    F = F[np.less(F, ref).all(axis=1)]  # strictly inside the reference box
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    # staircase of the front: on [x_i, x_(i+1)) everything above height s_i is dominated
    xs, heights, best = [-np.inf], [ref[1]], ref[1]
    for f1, f2 in F:
        if f2 < best:
            xs.append(f1)
            heights.append(f2)
            best = f2
    lo = np.asarray(xs)
    hi = np.append(lo[1:], np.inf)
    s = np.asarray(heights)
    c1, c2 = C[:, :1], C[:, 1:]
    width = np.clip(np.minimum(hi, ref[0]) - np.maximum(lo, c1), 0, None)
    height = np.clip(np.minimum(s, ref[1]) - c2, 0, None)
    return (width * height).sum(1)


def additive_epsilon(F: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Shift each candidate needs (in every objective) to be dominated by no point of ``F``.

    Zero for candidates already non-dominated; small values mark near misses, the candidates a
    weak predictor may have placed just behind the front.
    """
    F, C = _matrix(F), _matrix(np.atleast_2d(candidates))
    if len(F) == 0:
        return np.zeros(len(C))
    gap = (C[:, None, :] - F[None, :, :]).min(2)  # escaping q needs beating it in one objective
    dominated = dominates(F, C).T
    return np.where(dominated, np.maximum(gap, 0), 0).max(1)


def dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Pareto dominance matrix: ``out[i, j]`` is whether ``a[i]`` dominates ``b[j]``."""
    a, b = np.asarray(a, float)[:, None, :], np.asarray(b, float)[None, :, :]
    return np.all(a <= b, axis=2) & np.any(a < b, axis=2)


def ratio_of_dominance(A: np.ndarray, B: np.ndarray) -> float:
    """Share of the solutions in ``A`` that dominate at least one solution of ``B`` (HADAS, RoD).

    HADAS reports it both ways (``ratio_of_dominance(A, B)`` and ``(B, A)``); 1.0 means every
    solution of ``A`` beats some solution of ``B``.
    """
    A, B = _matrix(A), _matrix(B)
    if len(A) == 0:
        return float("nan")
    if len(B) == 0:
        return 0.0
    return float(dominates(A, B).any(axis=1).mean())


class ReferenceFront:
    """A known true Pareto front, and how close a found front comes to it.

    Objectives are normalised to the true front's own bounding box (its ideal and nadir points
    map to 0 and 1) and hypervolumes are taken against ``ref`` in that normalised space, so the
    hypervolume fraction of the true front itself is exactly 1.

    Args:
        F: the true front (or any set containing it), minimisation form.
        ref: reference point in normalised space.
    """

    def __init__(self, F: np.ndarray, ref: float | np.ndarray = 1.1) -> None:
        F = _matrix(F)
        if len(F) == 0:
            raise ValueError("a reference front needs at least one point")
        self.front = F[non_dominated_mask(F)]
        self.ideal, self.nadir = self.front.min(0), self.front.max(0)
        span = self.nadir - self.ideal
        self.span = np.where(span > 0, span, 1.0)  # a single-point front: no scaling
        self.ref = np.broadcast_to(np.asarray(ref, dtype=float), F.shape[1:]).copy()
        self.hypervolume = hypervolume(self.normalize(self.front), self.ref)

    def normalize(self, F: np.ndarray) -> np.ndarray:
        """Map objectives into the true front's bounding box (ideal -> 0, nadir -> 1)."""
        return (_matrix(F, len(self.ideal)) - self.ideal) / self.span

    def hv_fraction(self, F: np.ndarray) -> float:
        """Hypervolume of ``F`` over the true front's, both normalised (1.0 = the true front)."""
        F = _matrix(F, len(self.ideal))
        return hypervolume(self.normalize(F), self.ref) / self.hypervolume if len(F) else 0.0

    def report(self, F: np.ndarray) -> dict[str, float]:
        """Front approximation: HV fraction, IGD (normalised), share of the true front recovered,
        and the ratio of dominance of the true front over the found one (0 = nothing to gain)."""
        F = _matrix(F, len(self.ideal))
        if len(F) == 0:
            return {
                "hv_fraction": 0.0,
                "igd": float("inf"),
                "true_front_found": 0.0,
                "rod_true_over_found": 1.0,
            }
        found = (np.abs(self.front[:, None, :] - F[None]).max(2) < 1e-9).any(1)
        return {
            "hv_fraction": self.hv_fraction(F),
            "igd": float(IGD(self.normalize(self.front))(self.normalize(F))),
            "true_front_found": float(found.mean()),
            "rod_true_over_found": ratio_of_dominance(self.front, F),
        }


def compare_fronts(A: np.ndarray, B: np.ndarray, ref: float = 1.1) -> dict[str, float]:
    """Hypervolume of two fronts in one normalisation, and their ratios of dominance (HADAS Fig. 6).

    Both are normalised to the bounding box of their union (ideal -> 0, nadir -> 1) and
    measured against the reference point ``ref`` in every objective, so the two hypervolumes
    are comparable.

    Returns:
        ``hv_a``, ``hv_b``, ``rod_a_over_b`` (share of A dominating some point of B) and
        ``rod_b_over_a``.
    """
    A, B = _matrix(A), _matrix(B)
    if len(A) == 0 or len(B) == 0 or A.shape[1] != B.shape[1]:
        raise ValueError(f"need two non-empty fronts of one width, got {A.shape} and {B.shape}")
    both = np.vstack([A, B])
    ideal, nadir = both.min(0), both.max(0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    point = np.full(A.shape[1], ref, dtype=float)
    return {
        "hv_a": hypervolume((A - ideal) / span, point),
        "hv_b": hypervolume((B - ideal) / span, point),
        "rod_a_over_b": ratio_of_dominance(A, B),
        "rod_b_over_a": ratio_of_dominance(B, A),
    }
