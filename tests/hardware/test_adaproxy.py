"""AdaProxy (One-Proxy eq. 3): exact solver, recovery of a known scaling, Pareto removal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from hardware.adaproxy import (
    AdaProxy,
    LinearProxy,
    _lasso_with_free_scale,
    op_features,
    remove_non_pareto,
)
from search.pareto import non_dominated_mask


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(3000, 6))
    proxy_w = rng.uniform(0.5, 3.0, op_features(X[:1], [5] * 6).shape[1])
    proxy = LinearProxy([5] * 6)
    proxy.fit(X, op_features(X, [5] * 6) @ proxy_w)
    b = np.zeros_like(proxy_w)
    b[[2, 11]] = [1.5, -0.8]  # two operators slow down differently on the target
    target = op_features(X, [5] * 6) @ ((2.5 + b) * proxy_w)
    return X, proxy, target, b


def test_proxy_predictor_is_exact_on_linear_latency(synthetic):
    X, proxy, _, _ = synthetic
    F = op_features(X, [5] * 6)
    assert proxy.predict(X) == pytest.approx(F @ proxy.w)
    assert F.shape[1] == 6 * 4 + 1 and (F[:, -1] == 1).all()


def test_adaproxy_recovers_scale_and_sparse_correction(synthetic):
    X, proxy, y, b = synthetic
    noisy = y + np.random.default_rng(1).normal(0, 0.01, len(y))
    ada = AdaProxy(proxy, val_size=20).fit(X[:80], noisy[:80], np.random.default_rng(2))
    assert ada.alpha_ == pytest.approx(2.5, abs=0.05)
    assert ada.b_[[2, 11]] == pytest.approx([1.5, -0.8], abs=0.08)
    others = np.delete(ada.b_, [2, 11])
    assert np.abs(others).max() < 0.05
    assert np.corrcoef(ada.predict(X[80:]), y[80:])[0, 1] > 0.999


def test_solver_matches_direct_minimisation_of_eq3():
    rng = np.random.default_rng(3)
    Z = rng.random((30, 5))
    s = Z.sum(1)
    y = 1.7 * s + Z @ np.array([0.4, 0, 0, -0.3, 0]) + rng.normal(0, 0.05, 30)
    lam = 0.01
    alpha, b = _lasso_with_free_scale(s, Z, y, lam)

    def eq3(p):
        return np.mean((p[0] * s + Z @ p[1:] - y) ** 2) + lam * np.abs(p[1:]).sum()

    ref = minimize(
        eq3, np.zeros(6), method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200000}
    )
    assert eq3(np.r_[alpha, b]) <= ref.fun + 1e-7


def test_adaproxy_input_checks(synthetic):
    X, proxy, y, _ = synthetic
    with pytest.raises(ValueError, match="more than val_size"):
        AdaProxy(proxy, val_size=20).fit(X[:21], y[:21], np.random.default_rng(0))
    with pytest.raises(ValueError, match="fitted proxy"):
        AdaProxy(LinearProxy([5] * 6))
    with pytest.raises(ValueError, match="choices outside"):
        op_features(np.array([[5, 0, 0, 0, 0, 0]]), [5] * 6)


def test_non_pareto_removal():
    rng = np.random.default_rng(4)
    acc, lat = rng.random(200), rng.random(200)
    keep = remove_non_pareto(acc, lat)
    assert (keep == non_dominated_mask(np.c_[-acc, lat])).all()
    # With a tolerance, a slower arch of "similar" accuracy goes.
    keep_tol = remove_non_pareto(
        np.array([90.0, 90.2, 80.0]), np.array([1.0, 2.0, 0.5]), acc_tol=0.5
    )
    assert keep_tol.tolist() == [True, False, True]
    assert remove_non_pareto(np.array([90.0, 90.2]), np.array([1.0, 2.0])).tolist() == [True, True]
