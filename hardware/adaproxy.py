"""AdaProxy: adapt a proxy device's linear latency predictor to a target device (One-Proxy eq. 3).

The proxy predictor is linear in an operator encoding, ``L_d0(x) = w^T x`` (section 5.4.1): one
indicator per (decision, choice), the reference choice of each decision (index 0; ``none`` in
NAS-Bench-201, which costs nothing) left out, plus a constant 1 for the fixed part of the
network. AdaProxy rescales it for a target device d from a few target measurements (x_i, y_i):

    min_{alpha, b} 1/N sum_i ( [(alpha 1 + b) o w]^T x_i - y_i )^2 + lambda ||b||_1     (eq. 3)

alpha scales every operator alike (a slower device is slower everywhere); the sparse b corrects
the operators whose slow-down differs. With z_i = w o x_i and s_i = w^T x_i the prediction is
``alpha s_i + b^T z_i``: a lasso in b with one unpenalised column s. It is solved exactly by
partialling s out (for fixed b the best alpha is least squares, and substituting it leaves a
plain lasso on the residual-projected data, solved by scikit-learn's coordinate descent),
then recovering alpha. lambda is chosen on a validation split of the target samples along the
lasso path, and the model is refit on all samples with it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso, LinearRegression

from hardware.monotonicity import spearman


def op_features(X: np.ndarray, num_choices: Sequence[int]) -> np.ndarray:
    """Operator indicators of integer encodings: choices 1.. of every decision, then a 1.

    Args:
        X: (n, d) int array, one choice index per decision (``space.encode``).
        num_choices: number of choices of every decision.

    Returns:
        (n, sum(num_choices) - d + 1) float array.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != len(num_choices):
        raise ValueError(f"need an (n, {len(num_choices)}) encoding, got shape {X.shape}")
    blocks = []
    for j, k in enumerate(num_choices):
        if X[:, j].min(initial=0) < 0 or X[:, j].max(initial=0) >= k:
            raise ValueError(f"decision {j} holds choices outside 0..{k - 1}")
        blocks.append(X[:, j : j + 1] == np.arange(1, k)[None, :])
    blocks.append(np.ones((len(X), 1), dtype=bool))
    return np.concatenate(blocks, axis=1).astype(float)


class LinearProxy:
    """The proxy device's linear latency predictor ``w^T x`` (least squares on its latencies).

    Args:
        num_choices: number of choices of every decision (5 x 6 for NAS-Bench-201).
    """

    def __init__(self, num_choices: Sequence[int]) -> None:
        self.num_choices = list(num_choices)
        self.w: np.ndarray | None = None

    def features(self, X: np.ndarray) -> np.ndarray:
        return op_features(X, self.num_choices)

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearProxy:
        F = self.features(X)
        self.w = LinearRegression(fit_intercept=False).fit(F, np.asarray(y, float)).coef_
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.w is None:
            raise RuntimeError("fit the proxy predictor first")
        return self.features(X) @ self.w


def _lasso_with_free_scale(s: np.ndarray, Z: np.ndarray, y: np.ndarray, lam: float):
    """Exact minimiser of (1/N)||y - alpha s - Z b||^2 + lam ||b||_1 over (alpha, b)."""
    ss = float(s @ s)
    proj = lambda v: v - np.outer(s, s @ v) / ss if v.ndim == 2 else v - s * (s @ v) / ss  # noqa: E731
    Zt, yt = proj(Z), proj(y)
    if lam > 0:
        # scikit-learn's lasso minimises 1/(2N)||.||^2 + a||b||_1, so a = lam / 2. Projecting s
        # out makes the design collinear (its columns sum to 0), which slows coordinate descent
        # at the smallest lambdas of the path; a duality gap under 1e-6 is plenty there.
        lasso = Lasso(alpha=lam / 2, fit_intercept=False, max_iter=20_000, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            b = lasso.fit(Zt, yt).coef_
    else:
        b = np.linalg.lstsq(Zt, yt, rcond=None)[0]
    alpha = float(s @ (y - Z @ b) / ss)
    return alpha, b


class AdaProxy:
    """A proxy predictor adapted to a target device with eq. 3 (alpha scale + sparse b).

    Args:
        proxy: the fitted proxy predictor.
        val_size: target samples held out to choose lambda (the paper uses 20).
        n_lambdas: points of the lambda path (log-spaced from the all-zero-b lambda down by
            ``lambda_ratio``), plus lambda = 0 (no sparsity) when it is identifiable.
        lambda_ratio: smallest / largest lambda of the path.
        criterion: validation criterion, ``mse`` or ``srcc`` (1 - Spearman, for rankings).
    """

    def __init__(
        self,
        proxy: LinearProxy,
        val_size: int = 20,
        n_lambdas: int = 40,
        lambda_ratio: float = 1e-4,
        criterion: str = "mse",
    ) -> None:
        if proxy.w is None:
            raise ValueError("AdaProxy needs a fitted proxy predictor")
        if criterion not in ("mse", "srcc"):
            raise ValueError(f"criterion must be 'mse' or 'srcc', got {criterion!r}")
        self.proxy = proxy
        self.val_size = val_size
        self.n_lambdas = n_lambdas
        self.lambda_ratio = lambda_ratio
        self.criterion = criterion
        self.alpha_: float | None = None
        self.b_: np.ndarray | None = None
        self.lambda_: float | None = None

    def _parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self.proxy.features(X) * self.proxy.w
        return Z.sum(1), Z

    def _loss(self, y: np.ndarray, pred: np.ndarray) -> float:
        if self.criterion == "mse":
            return float(np.mean((y - pred) ** 2))
        r = spearman(pred, y)
        return 1.0 - (r if np.isfinite(r) else 0.0)

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> AdaProxy:
        """Choose lambda on a random validation split of (X, y), then refit on all of it."""
        y = np.asarray(y, float)
        if len(y) <= self.val_size + 2:
            raise ValueError(
                f"need more than val_size + 2 = {self.val_size + 2} target samples, got {len(y)}"
            )
        perm = rng.permutation(len(y))
        val, tr = perm[: self.val_size], perm[self.val_size :]
        s, Z = self._parts(X)
        self.lambda_path_ = self._lambda_grid(s[tr], Z[tr], y[tr])
        losses = []
        for lam in self.lambda_path_:
            alpha, b = _lasso_with_free_scale(s[tr], Z[tr], y[tr], lam)
            losses.append(self._loss(y[val], alpha * s[val] + Z[val] @ b))
        self.val_losses_ = np.array(losses)
        self.lambda_ = float(self.lambda_path_[int(np.argmin(self.val_losses_))])
        self.alpha_, self.b_ = _lasso_with_free_scale(s, Z, y, self.lambda_)
        return self

    def _lambda_grid(self, s: np.ndarray, Z: np.ndarray, y: np.ndarray) -> np.ndarray:
        ss = float(s @ s)
        Zt = Z - np.outer(s, s @ Z) / ss
        yt = y - s * (s @ y) / ss
        # The smallest lambda with b = 0 is 2 max|Z~^T y~| / N (lasso KKT in eq. 3's scaling).
        lam_max = 2 * np.abs(Zt.T @ yt).max() / len(y)
        if lam_max <= 0:
            return np.array([0.0])
        grid = np.geomspace(lam_max, lam_max * self.lambda_ratio, self.n_lambdas)
        return np.append(grid, 0.0) if np.linalg.matrix_rank(Zt) == Zt.shape[1] else grid

    def predict(self, X: np.ndarray) -> np.ndarray:
        """AdaProxy latency ``[(alpha 1 + b) o w]^T x``."""
        if self.alpha_ is None:
            raise RuntimeError("fit AdaProxy first")
        s, Z = self._parts(X)
        return self.alpha_ * s + Z @ self.b_


def remove_non_pareto(
    accuracy: np.ndarray, latency: np.ndarray, acc_tol: float = 0.0
) -> np.ndarray:
    """Mask of the architectures kept after removing non-Pareto ones on the target (section 5.5).

    An architecture is removed when another one is no slower and at most ``acc_tol`` less
    accurate, and strictly better in one of the two (``acc_tol = 0``: plain Pareto dominance).

    Args:
        accuracy: accuracies of the candidate set (higher is better).
        latency: their latencies measured on the target device (lower is better).
        acc_tol: accuracy difference treated as "the same or similar accuracy".
    """
    # Minimisation form: accuracy (maximised) negated, latency as is.
    F = np.c_[-np.asarray(accuracy, float), np.asarray(latency, float)]
    if np.isnan(F).any():
        raise ValueError("accuracy and latency must be measured (no NaN) for every candidate")
    neg_acc, lat = F[:, 0], F[:, 1]
    # j dominates i: lat_j <= lat_i, acc_j >= acc_i - tol, strictly better in one of them.
    no_slower = lat[None, :] <= lat[:, None]
    similar = neg_acc[None, :] <= neg_acc[:, None] + acc_tol
    strictly = (lat[None, :] < lat[:, None]) | (neg_acc[None, :] < neg_acc[:, None])
    dominated = no_slower & similar & strictly
    np.fill_diagonal(dominated, False)
    return ~dominated.any(axis=1)
