"""Analytics plots of a search: the front, every evaluated point, hypervolume vs evaluations."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and in tests
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from search.runner import SearchResult  # noqa: E402
from search.tactics import normalisation_box  # noqa: E402


def _values(result: SearchResult, evaluations) -> np.ndarray:
    return np.array(
        [[np.nan if e.metrics.get(k) is None else e.metrics[k] for k in result.keys[:2]]
         for e in evaluations],
        dtype=float,
    ).reshape(len(evaluations), 2)  # fmt: skip


def plot_front(result: SearchResult, path: Path) -> Path:
    """First two objectives: every evaluation (coloured by order), the found front and, when
    known, the true front."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    V = _values(result, result.evaluations)
    sc = ax.scatter(V[:, 0], V[:, 1], c=np.arange(len(V)), cmap="viridis", s=10, alpha=0.6)
    fig.colorbar(sc, ax=ax, label="evaluation order")
    if result.reference is not None:
        T = result.reference.front[:, :2] * np.where(np.array(result.modes[:2]) == "max", -1, 1)
        T = T[np.argsort(T[:, 1])]
        ax.step(T[:, 0], T[:, 1], where="post", color="grey", lw=1, label="true front")
    sign = np.where(np.array(result.modes[:2]) == "max", -1.0, 1.0)
    F = _values(result, result.front)
    F = F[np.argsort(F[:, 1])]
    ax.plot(F[:, 0], F[:, 1], "o-", color="crimson", ms=4, lw=1, label="found front")
    # zoom on the front: an isolated extreme (NAS-Bench-201's 10% cells) would squash the rest
    box = result.reference.front[:, :2] if result.reference is not None else None
    if box is None and len(F) > 1:
        box = np.array(normalisation_box(F * sign))
    if box is not None:
        lo, hi = (box * sign).min(0), (box * sign).max(0)
        pad = 0.08 * np.where(hi > lo, hi - lo, 1.0)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_xlabel(f"{result.keys[0]} ({result.modes[0]})")
    ax.set_ylabel(f"{result.keys[1]} ({result.modes[1]})")
    ax.legend(loc="best")
    ax.set_title(f"{result.n_validated} validated, {len(result.front)} on the front")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_hypervolume(result: SearchResult, path: Path) -> Path:
    """Hypervolume (fraction of the true front's, when known) against validated evaluations."""
    curve = np.array(result.hv_curve(), dtype=float).reshape(-1, 2)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve[:, 0], curve[:, 1], color="navy")
    ax.set_xlabel("validated evaluations")
    ax.set_ylabel("hypervolume fraction" if result.reference is not None else "hypervolume")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
