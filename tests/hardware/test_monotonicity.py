"""SRCC matrix, proxy selection and SRCC estimation against brute-force references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hardware.monotonicity import (
    estimate_srcc,
    plot_srcc_heatmap,
    select_proxy,
    spearman,
    srcc_matrix,
)
from search.benchmarks import NB201Table
from search.benchmarks.latencies import table_latencies


def test_srcc_matrix_matches_scipy_pairwise():
    rng = np.random.default_rng(0)
    base = rng.random(40)
    data = {"a": base, "b": base + 0.3 * rng.random(40), "c": rng.random(40)}
    data["b"][[3, 7]] = np.nan  # not measured on b
    m = srcc_matrix(data)
    for x in data:
        for y in data:
            keep = ~(np.isnan(data[x]) | np.isnan(data[y]))
            ref = stats.spearmanr(data[x][keep], data[y][keep]).statistic
            assert m.loc[x, y] == pytest.approx(ref, abs=1e-12)


def test_proxy_selection_counts_strong_pairs():
    m = pd.DataFrame(
        [[1, 0.95, 0.92, 0.5], [0.95, 1, 0.8, 0.6], [0.92, 0.8, 1, 0.91], [0.5, 0.6, 0.91, 1]],
        index=list("abcd"),
        columns=list("abcd"),
    )
    out = select_proxy(m, threshold=0.9)
    # a and c both reach two devices at >= 0.9; c has the higher mean SRCC.
    assert out["proxy"] == "c" and out["n_strong"] == 2
    assert [r["device"] for r in out["ranking"]][:2] == ["c", "a"]


def test_srcc_estimate_from_samples():
    rng = np.random.default_rng(1)
    a = rng.random(500)
    b = a + 0.2 * rng.random(500)
    full = estimate_srcc(a, b, n=500, rng=rng, draws=3)
    assert full["std"] == pytest.approx(0, abs=1e-12) and full["mean"] == pytest.approx(
        full["srcc"]
    )
    est = estimate_srcc(a, b, n=40, rng=np.random.default_rng(2), draws=300)
    idx = np.random.default_rng(2)
    one = [
        stats.spearmanr(a[i], b[i]).statistic
        for i in (idx.choice(500, 40, replace=False) for _ in range(300))
    ]
    assert est["mean"] == pytest.approx(np.mean(one), abs=1e-12)  # same draws, brute force
    with pytest.raises(ValueError, match="n must be"):
        estimate_srcc(a, b, n=2, rng=rng)


def test_table_matrix_and_heatmap(tmp_path):
    lat = table_latencies(NB201Table.bundled(), ["pixel3", "raspi4", "edgegpu"])
    m = srcc_matrix(lat)
    assert np.allclose(np.diag(m), 1) and np.allclose(m, m.T)
    keep = lat[["pixel3", "edgegpu"]].dropna()
    assert m.loc["pixel3", "edgegpu"] == pytest.approx(
        stats.spearmanr(keep["pixel3"], keep["edgegpu"]).statistic
    )
    path = plot_srcc_heatmap(m, tmp_path / "srcc.png", title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spearman_matches_scipy_and_is_nan_when_undefined():
    rng = np.random.default_rng(3)
    a, b = rng.random(30), rng.random(30)
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert np.isnan(spearman(np.ones(5), b[:5])) and np.isnan(spearman(a[:1], b[:1]))
