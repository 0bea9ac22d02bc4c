"""Predictor analysis: learning curves follow the Intel protocol; LUT-sum ranks real latency."""

from __future__ import annotations

import numpy as np
import pytest

from search.benchmarks import NB201Table
from search.predictor_analysis import (
    KINDS,
    learning_curves,
    make_latency_predictor,
    summarize_curves,
)
from search.spaces import create_space


@pytest.fixture(scope="module")
def encodings():
    space = create_space("nb201")
    return np.stack([space.encode(a) for a in space.sample_unique(np.random.default_rng(0), 800)])


def test_learning_curves_protocol(encodings):
    y = 1.0 + np.array([0.0, 0.1, 0.7, 2.5, 0.4])[encodings].sum(1)
    y[::50] = np.nan  # unmeasured rows are dropped, never used as zeros
    curves = learning_curves(
        encodings,
        y,
        (5,) * 6,
        kinds=("ridge", "lut_sum"),
        sizes=(100, 200),
        trials=2,
        test_size=300,
    )
    assert len(curves) == 2 * 2 * 2
    summary = summarize_curves(curves).set_index(["kind", "n_train"])
    assert summary.loc[("lut_sum", 100), "mape_mean"] < 1e-6  # exact model of this target
    assert summary.loc[("ridge", 200), "kendall_tau_mean"] > 0.95
    with pytest.raises(ValueError, match="measured rows"):
        learning_curves(encodings, y, (5,) * 6, sizes=(1000,), test_size=500)
    with pytest.raises(ValueError, match="unknown predictor"):
        make_latency_predictor("xgboost", (5,) * 6)
    assert set(KINDS) == {"ridge", "svr", "mlp", "gp", "lut_sum"}


def test_lut_sum_ranks_real_pixel3_latency():
    table = NB201Table.bundled()
    space = create_space("nb201")
    X = np.stack([space.encode(a) for a in table.frame["arch_str"]])
    y = table.frame["latency_ms_pixel3"].to_numpy()
    curves = learning_curves(
        X, y, (5,) * 6, kinds=("lut_sum",), sizes=(200,), trials=1, test_size=2000
    )
    assert curves["kendall_tau"].iloc[0] > 0.7
