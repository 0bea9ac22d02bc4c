"""Latency and accuracy predictors vs training-set size: the Intel paper's analysis (section 5.4).

:func:`learning_curves`: for each trial a random split into a pool and a fixed test set (500
architectures), predictors trained on the first 100..1000 pool samples, MAPE and Kendall tau on
the test set, repeated over trials. Predictors are search's ridge / SVR / MLP / GP
(:mod:`search.predictors`) and hardware's LUT-sum (:class:`hardware.predictors.LutSumPredictor`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hardware.predictors import LutSumPredictor
from search.predictors import PREDICTORS, make_predictor, predictor_scores

KINDS = (*PREDICTORS, "lut_sum")


def make_latency_predictor(kind: str, num_choices: Sequence[int], seed: int = 0):
    """A predictor of :data:`KINDS` (ridge / svr / mlp from search.predictors, or lut_sum)."""
    if kind == "lut_sum":
        return LutSumPredictor(tuple(num_choices))
    if kind not in KINDS:
        raise ValueError(f"unknown predictor {kind!r}; valid predictors: {list(KINDS)}")
    return make_predictor(kind, num_choices, seed=seed)


def learning_curves(
    X: np.ndarray,
    y: np.ndarray,
    num_choices: Sequence[int],
    kinds: Sequence[str] = KINDS,
    sizes: Sequence[int] = tuple(range(100, 1001, 100)),
    trials: int = 10,
    test_size: int = 500,
    seed: int = 0,
) -> pd.DataFrame:
    """MAPE and Kendall tau of predictors vs training-set size over random splits (Intel 5.4).

    Args:
        X: (n, d) integer encodings; y: (n,) targets (NaN rows are dropped).
        num_choices: choices per decision.
        kinds: predictors to evaluate (see :data:`KINDS`).
        sizes: training-set sizes; each trial's subsets are nested prefixes of one pool.
        trials: random splits.
        test_size: test architectures per trial (the same for every size within a trial).
        seed: seed of the split generator and the MLP.

    Returns:
        One row per (kind, n_train, trial) with ``mape`` and ``kendall_tau``.
    """
    X, y = np.asarray(X), np.asarray(y, float)
    keep = ~np.isnan(y)
    X, y = X[keep], y[keep]
    if max(sizes) + test_size > len(y):
        raise ValueError(f"need {max(sizes) + test_size} measured rows, have {len(y)}")
    rng = np.random.default_rng(seed)
    rows = []
    for trial in range(trials):
        perm = rng.permutation(len(y))
        test, pool = perm[:test_size], perm[test_size:]
        for n in sizes:
            train = pool[:n]
            for kind in kinds:
                model = make_latency_predictor(kind, num_choices, seed=seed + trial)
                model.fit(X[train], y[train])
                scores = predictor_scores(y[test], model.predict(X[test]))
                rows.append({"kind": kind, "n_train": n, "trial": trial, **scores})
    return pd.DataFrame(rows)


def summarize_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over trials of MAPE and Kendall tau per (kind, n_train)."""
    g = curves.groupby(["kind", "n_train"])[["mape", "kendall_tau"]]
    out = g.agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    return out.reset_index()
