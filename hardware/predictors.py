"""The LUT-sum latency predictor: per-op times fitted from whole-network measurements.

The operator-level lookup table of One-Proxy section 5.4.1 fitted from whole-network
measurements: ``latency = fixed + sum_op count(op) * t_op`` with non-negative per-op times
(NNLS), where ``count(op)`` is how often an op is chosen across the decisions (every cell of a
NAS-Bench-201 network repeats the same six edges, so the per-network op count is proportional
to it). It is what a hook-built LUT (:mod:`hardware.lut`) computes when the per-op times cannot
be timed on the device itself, e.g. for the benchmark table's devices. The learning-curve
analysis that compares it with search's predictors is :mod:`search.predictor_analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import nnls
from sklearn.base import BaseEstimator, RegressorMixin


class LutSumPredictor(RegressorMixin, BaseEstimator):
    """``fixed + sum_c count_c(x) * t_c`` with ``t_c, fixed >= 0`` fitted by NNLS.

    Args:
        num_choices: choices per decision; all decisions must share one choice set (ops).
        reference_choice: the choice that costs nothing (``none`` = 0 in NAS-Bench-201).
    """

    def __init__(self, num_choices: Sequence[int] = (), reference_choice: int = 0) -> None:
        self.num_choices = num_choices
        self.reference_choice = reference_choice

    def _counts(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        k = set(self.num_choices)
        if len(k) != 1:
            raise ValueError(
                f"LUT-sum needs decisions sharing one op set, got choice counts {self.num_choices}"
            )
        n_ops = k.pop()
        ops = [c for c in range(n_ops) if c != self.reference_choice]
        counts = np.stack([np.count_nonzero(np.equal(X, op), axis=1) for op in ops], 1)
        return np.c_[counts, np.ones(len(X))].astype(float)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LutSumPredictor:
        self.op_ms_, _ = nnls(self._counts(X), np.asarray(y, float))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._counts(X) @ self.op_ms_
