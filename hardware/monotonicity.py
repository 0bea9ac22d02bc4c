"""Latency monotonicity across devices and proxy-device selection (One-Proxy, sections 3.3, 5.3).

Two devices are latency-monotonic when they rank architectures alike; the degree is measured
by Spearman's rank correlation (SRCC) of the architectures' latencies on the two devices. The
functions take the latencies themselves (a frame with one column per device, one row per
architecture, NaN = not measured), wherever they come from: a benchmark table, measurements.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (SRCC) of two score vectors; NaN when undefined (fewer than two
    values, or a constant vector)."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)


def srcc_matrix(latencies: pd.DataFrame | Mapping[str, np.ndarray], min_common: int = 3):
    """SRCC between every pair of devices, over the architectures measured on both.

    Args:
        latencies: one column (or mapping entry) per device, one row per architecture; NaN
            marks "not measured" and drops that architecture from the pairs involving it.
        min_common: pairs sharing fewer measured architectures get NaN.

    Returns:
        A symmetric devices x devices frame with 1 on the diagonal.
    """
    frame = latencies if isinstance(latencies, pd.DataFrame) else pd.DataFrame(latencies)
    # pandas ranks each pair's complete rows and takes Pearson of the ranks: exactly SRCC.
    return frame.corr(method="spearman", min_periods=min_common)


def select_proxy(matrix: pd.DataFrame, threshold: float = 0.9) -> dict[str, object]:
    """The device with strong monotonicity (SRCC >= threshold) to the most others (section 5.3.1).

    Ties are broken by the mean SRCC to the other devices.

    Returns:
        ``proxy``, its ``n_strong`` and ``mean_srcc``, and ``ranking`` (all devices, best first).
    """
    m = matrix.to_numpy(float).copy()
    np.fill_diagonal(m, np.nan)
    n_strong = np.nansum(m >= threshold, axis=1)
    mean = np.nanmean(m, axis=1)
    order = np.lexsort((-mean, -n_strong))
    names = list(matrix.index)
    return {
        "proxy": names[order[0]],
        "n_strong": int(n_strong[order[0]]),
        "mean_srcc": float(mean[order[0]]),
        "threshold": threshold,
        "ranking": [
            {"device": names[i], "n_strong": int(n_strong[i]), "mean_srcc": float(mean[i])}
            for i in order
        ],
    }


def estimate_srcc(
    a: np.ndarray, b: np.ndarray, n: int, rng: np.random.Generator, draws: int = 1000
) -> dict[str, float]:
    """SRCC estimated from ``n`` sampled architectures, repeated ``draws`` times (Fig. 11(b,c)).

    Args:
        a, b: latencies of the same architectures on two devices (NaN rows are skipped).
        n: sample architectures per estimate (the paper finds 30-50 enough for a 0.9 threshold).
        rng: the sampler's generator.
        draws: repetitions of the estimate.

    Returns:
        ``mean``, ``std``, 5th / 95th percentiles of the estimates and the full-data ``srcc``.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    if not 2 < n <= len(a):
        raise ValueError(f"n must be in 3..{len(a)} (measured pairs), got {n}")
    idx = np.stack([rng.choice(len(a), size=n, replace=False) for _ in range(draws)])
    # Vectorised Spearman: rank each sample row, then Pearson of the ranks.
    ra, rb = stats.rankdata(a[idx], axis=1), stats.rankdata(b[idx], axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    est = (ra * rb).sum(1) / np.sqrt((ra**2).sum(1) * (rb**2).sum(1))
    return {
        "n": n,
        "draws": draws,
        "mean": float(est.mean()),
        "std": float(est.std(ddof=1)),
        "p05": float(np.percentile(est, 5)),
        "p95": float(np.percentile(est, 95)),
        "srcc": float(stats.spearmanr(a, b).statistic),
    }


def plot_srcc_heatmap(matrix: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Save the SRCC matrix as an annotated heatmap (PNG or any matplotlib format)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(matrix.index)
    k = len(names)
    fig, ax = plt.subplots(figsize=(0.42 * k + 2.5, 0.42 * k + 2))
    im = ax.imshow(
        matrix.to_numpy(float), vmin=min(0.0, np.nanmin(matrix.values)), vmax=1.0, cmap="viridis"
    )
    ax.set_xticks(range(k), names, rotation=90, fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    for i in range(k):
        for j in range(k):
            v = matrix.iat[i, j]
            if np.isfinite(v):
                text = f"{v:.2f}".replace("0.", ".", 1) if abs(v) < 0.995 else f"{v:.0f}"
                color = "white" if v < 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=5, color=color)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="SRCC")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
