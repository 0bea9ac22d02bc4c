"""Weak predictors as an evaluator: one per metric, fitted on validated evaluations."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class PredictorEvaluator:
    """Weak predictors, one per metric, trained on validated evaluations (Intel section 4.3).

    Args:
        num_choices: choices per decision of the space (encoding layout).
        kinds: metric key -> predictor kind (``ridge``, ``svr``, ``mlp``); keys not listed use
            ``default``. A key may also be a metric without its device (``latency_ms``).
        default: predictor kind for unlisted metrics.
        seed: seed of the predictors.
        target: the targets' transform (``standard`` or ``power``, see
            :func:`search.predictors.make_predictor`).
    """

    kind = "predictor"

    def __init__(
        self,
        num_choices: Sequence[int],
        kinds: Mapping[str, str] | None = None,
        default: str = "ridge",
        seed: int = 0,
        target: str = "standard",
    ) -> None:
        self.num_choices = list(num_choices)
        self.target = target
        self.kinds = dict(kinds or {})
        self.default = default
        self.seed = seed
        self.models: dict[str, Any] = {}
        self.name = "predictor"

    def kind_of(self, key: str) -> str:
        if key in self.kinds:
            return self.kinds[key]
        for metric, kind in self.kinds.items():
            if key.startswith(metric + "_"):
                return kind
        return self.default

    def fit(
        self, X: np.ndarray, targets: Mapping[str, np.ndarray], cv_folds: int = 0
    ) -> PredictorEvaluator:
        """Fit one predictor per metric on encodings ``X``; NaN targets are left out.

        With ``cv_folds`` > 1, ``residual_std[key]`` holds the standard deviation of the
        cross-validated residuals: how far off a prediction for an unseen architecture is.
        """
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.model_selection import KFold, cross_val_predict

        from search.predictors import make_predictor

        X = np.asarray(X, dtype=np.int64)
        self.residual_std: dict[str, float] = {}
        for key, y in targets.items():
            y = np.asarray(y, dtype=float)
            ok = ~np.isnan(y)
            if ok.sum() < 3:
                raise ValueError(f"need >= 3 measured values of {key!r} to fit, got {ok.sum()}")
            model = make_predictor(
                self.kind_of(key), self.num_choices, seed=self.seed, target=self.target
            )
            with warnings.catch_warnings():  # a GP's kernel at its bounds on few samples
                warnings.simplefilter("ignore", ConvergenceWarning)
                if cv_folds > 1 and ok.sum() >= 2 * cv_folds:
                    folds = KFold(cv_folds, shuffle=True, random_state=self.seed)
                    cv = cross_val_predict(model, X[ok], y[ok], cv=folds)
                    self.residual_std[key] = float(np.std(y[ok] - cv))
                self.models[key] = model.fit(X[ok], y[ok])
        self.name = "predictor:" + ",".join(f"{k}={self.kind_of(k)}" for k in self.models)
        return self

    def predict(self, X: np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """(n, len(keys)) predicted metrics of encodings ``X``."""
        missing = [k for k in keys if k not in self.models]
        if missing:
            raise KeyError(f"no fitted predictor for {missing}; fitted: {sorted(self.models)}")
        X = np.asarray(X, dtype=np.int64)
        return np.stack([self.models[k].predict(X) for k in keys], axis=1)

    def predict_std(self, X: np.ndarray, keys: Sequence[str]) -> np.ndarray:
        """(n, len(keys)) standard deviation of each prediction: the posterior's for a Gaussian
        process (small next to validated architectures, large far from them), else the constant
        cross-validated ``residual_std`` (0 when the predictors were fitted without
        ``cv_folds``)."""
        X = np.asarray(X, dtype=np.int64)
        out = np.zeros((len(X), len(keys)))
        for j, key in enumerate(keys):
            model = self.models[key]
            encode, target = model[:-1], model[-1]  # one-hot, then the transformed regressor
            regressor = target.regressor_
            if not hasattr(regressor, "kernel_"):
                out[:, j] = self.residual_std.get(key, 0.0)
                continue
            mu, sd = regressor.predict(encode.transform(X), return_std=True)
            # one standard deviation either side, mapped back through the target transform
            inverse = target.transformer_.inverse_transform
            hi, lo = inverse((mu + sd)[:, None])[:, 0], inverse((mu - sd)[:, None])[:, 0]
            out[:, j] = (hi - lo) / 2
        return out
