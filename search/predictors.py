"""Weak performance predictors on architecture encodings (Intel HW-NAS system, sections 4.3, 5.4).

A predictor maps an architecture's integer encoding (one choice index per decision, as
``space.encode`` returns it) to a metric such as accuracy or latency. Every predictor is a
scikit-learn pipeline: one-hot encoding of the decisions (so a linear model learns one weight
per (decision, choice), the additive form of a latency lookup table), then the regressor, with
the target standardised so one set of hyperparameters fits accuracies in % and latencies in ms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVR

from search.ranking import kendall_tau_b

PREDICTORS = ("ridge", "svr", "mlp")


def make_predictor(kind: str, num_choices: Sequence[int], seed: int = 0) -> Pipeline:
    """An unfitted predictor for integer architecture encodings.

    Args:
        kind: ``ridge`` (RidgeCV over a log grid of penalties), ``svr`` (RBF SVR, C chosen by
            3-fold grid search) or ``mlp`` (two hidden layers of 64, early stopping).
        num_choices: number of choices of every decision, in encoding order.
        seed: seed of the MLP's initialisation and the CV shuffles (the predictor is
            deterministic given the seed and the training data).

    Returns:
        A scikit-learn pipeline with ``fit(X, y)`` / ``predict(X)`` on (n, d) int arrays.
    """
    if kind not in PREDICTORS:
        raise ValueError(f"unknown predictor {kind!r}; valid predictors: {list(PREDICTORS)}")
    if kind == "ridge":
        regressor = RidgeCV(alphas=np.logspace(-3, 3, 13))
    elif kind == "svr":
        regressor = GridSearchCV(SVR(kernel="rbf", gamma="scale"), {"C": [0.3, 1, 3, 10, 30]}, cv=3)
    else:
        regressor = MLPRegressor(
            hidden_layer_sizes=(64, 64),
            alpha=1e-3,
            learning_rate_init=3e-3,
            max_iter=2000,
            early_stopping=True,
            n_iter_no_change=30,
            random_state=seed,
        )
    categories = [np.arange(n) for n in num_choices]
    encoder = OneHotEncoder(categories=categories, handle_unknown="error", sparse_output=False)
    return make_pipeline(
        encoder, TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())
    )


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error in % (targets must be non-zero)."""
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    if np.any(y_true == 0):
        raise ValueError("MAPE is undefined for zero targets")
    return float(np.mean(np.abs((y_pred - y_true) / y_true)) * 100)


def predictor_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Predictor quality as the Intel paper reports it: MAPE (%) and Kendall tau-b."""
    return {"mape": mape(y_true, y_pred), "kendall_tau": kendall_tau_b(y_pred, y_true)}
