"""Weak predictors: they learn what they should, deterministically, and reject bad input."""

from __future__ import annotations

import numpy as np
import pytest

from search.predictors import PREDICTORS, make_predictor, mape, predictor_scores
from search.spaces import create_space


@pytest.fixture(scope="module")
def additive_data():
    """An additive 'latency' per (edge, op) plus noise: the model a lookup table assumes."""
    space = create_space("nb201")
    rng = np.random.default_rng(0)
    X = np.stack([space.encode(a) for a in space.sample_unique(rng, 600)])
    cost = rng.uniform(0.5, 3.0, size=(6, 5))
    y = 2.0 + cost[np.arange(6), X].sum(1) + rng.normal(0, 0.05, len(X))
    return X, y


@pytest.mark.parametrize("kind", PREDICTORS)
def test_predictor_learns_additive_cost(kind, additive_data):
    X, y = additive_data
    model = make_predictor(kind, [5] * 6, seed=0).fit(X[:400], y[:400])
    scores = predictor_scores(y[400:], model.predict(X[400:]))
    assert scores["kendall_tau"] > 0.85
    assert scores["mape"] < 5.0


def test_ridge_is_near_exact_on_additive_cost(additive_data):
    X, y = additive_data
    model = make_predictor("ridge", [5] * 6).fit(X[:400], y[:400])
    assert predictor_scores(y[400:], model.predict(X[400:]))["mape"] < 1.0


def test_mlp_same_seed_same_predictions(additive_data):
    X, y = additive_data
    a = make_predictor("mlp", [5] * 6, seed=3).fit(X[:200], y[:200]).predict(X[400:])
    b = make_predictor("mlp", [5] * 6, seed=3).fit(X[:200], y[:200]).predict(X[400:])
    c = make_predictor("mlp", [5] * 6, seed=4).fit(X[:200], y[:200]).predict(X[400:])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_inputs_raise_clear_errors(additive_data):
    with pytest.raises(ValueError, match="unknown predictor 'xgb'.*ridge"):
        make_predictor("xgb", [5] * 6)
    with pytest.raises(ValueError, match="zero targets"):
        mape(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    X, y = additive_data
    model = make_predictor("ridge", [5] * 6).fit(X[:100], y[:100])
    with pytest.raises(ValueError):
        model.predict(np.full((1, 6), 7))  # choice 7 does not exist


def test_mape_value():
    assert mape(np.array([100.0, 200.0]), np.array([110.0, 180.0])) == pytest.approx(10.0)
