"""Candidate architectures from weak predictors (ConcurrentNAS, predictor search).

Fitted predictors, predicted objective matrices, the inner evolutionary search on them and the
Hamming neighbourhood of the validated front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.problem import Problem

from search.algorithms import KnownElimination, as_int
from search.evaluators import PredictorEvaluator
from search.objectives import Objective
from search.pareto import to_minimization
from search.problem import SearchProblem, _encoding_problem
from search.tactics.base import AlgorithmBuilder


class _PredictedProblem(Problem):
    """pymoo problem whose objectives (and constraint) come from fitted predictors."""

    def __init__(
        self,
        problem: SearchProblem,
        predictors: PredictorEvaluator,
    ) -> None:
        objectives, constraints = problem.objectives, problem.constraints
        base = _encoding_problem(problem.num_choices, len(objectives))
        super().__init__(
            n_var=base.n_var, n_obj=base.n_obj, n_ieq_constr=1, xl=base.xl, xu=base.xu,
            vtype=int, vars=base.vars,
        )  # fmt: skip
        self.predictors, self.objectives, self.constraints = predictors, objectives, constraints
        self.featurize = problem.features
        self.visited: set[tuple[int, ...]] = set()

    def _evaluate(self, X, out, *args, **kwargs):
        X = as_int(X)
        self.visited.update(map(tuple, X.tolist()))
        out["F"], out["G"] = predicted_matrices(
            self.predictors, self.featurize(X), self.objectives, self.constraints
        )


def predicted_matrices(
    predictors: PredictorEvaluator,
    X: np.ndarray,
    objectives: Sequence[Objective],
    constraints: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray]:
    """Predicted minimisation objectives and constraint violation of encodings ``X``."""
    F = to_minimization(
        predictors.predict(X, [o.key for o in objectives]), [o.mode for o in objectives]
    )
    G = np.zeros((len(X), 1))
    if constraints:
        values = predictors.predict(X, [c.key for c in constraints])
        G[:, 0] = np.max(
            [[c.violation(v) for v in values[:, j]] for j, c in enumerate(constraints)], 0
        )
    return F, G


class UninformedPredictor:
    """Ablation baseline: "predicts" independent standard normal noise, so a tactic that uses it
    picks its candidates at random (e.g. ConcurrentNAS's neighbourhood becomes a plain Pareto
    local search). Measures what the real predictors add."""

    name = "predictor:none"

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def predict(self, X: np.ndarray, keys: Sequence[str]) -> np.ndarray:
        return self.rng.standard_normal((len(X), len(keys)))


def fit_on_seen(
    problem: SearchProblem,
    kinds: Mapping[str, str],
    default: str,
    seed: int,
    cv_folds: int = 0,
    target: str = "standard",
):
    if default == "none":
        return UninformedPredictor(seed)
    evals = list(problem.seen.values())
    X = problem.features(problem.encode([e.arch for e in evals]))
    keys = [t.key for t in problem.targets]
    targets = {
        k: np.array([np.nan if e.metrics.get(k) is None else e.metrics[k] for e in evals])
        for k in keys
    }
    predictors = PredictorEvaluator(problem.feature_choices, kinds, default, seed, target)
    return predictors.fit(X, targets, cv_folds)


def hamming_neighbours(
    X: np.ndarray, num_choices: Sequence[int], radius: int, rng: np.random.Generator, limit: int
) -> np.ndarray:
    """Encodings differing from a row of ``X`` in 1..``radius`` decisions (at most ``limit``)."""
    from itertools import combinations, product

    out = set()
    d = len(num_choices)
    for x in np.asarray(X, dtype=np.int64).tolist():
        for r in range(1, radius + 1):
            for dims in combinations(range(d), r):
                alts = [[v for v in range(num_choices[j]) if v != x[j]] for j in dims]
                for values in product(*alts):
                    y = list(x)
                    for j, v in zip(dims, values, strict=True):
                        y[j] = v
                    out.add(tuple(y))
    out = np.array(sorted(out), dtype=np.int64).reshape(-1, d)
    if len(out) > limit:
        out = out[np.sort(rng.choice(len(out), size=limit, replace=False))]
    return out


def inner_search(
    builder: AlgorithmBuilder,
    problem: SearchProblem,
    predictors: PredictorEvaluator,
    seed_X: np.ndarray | None,
    generations: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``builder`` on the predictors; returns (final population X, every visited X)."""
    pp = _PredictedProblem(problem, predictors)
    kwargs: dict[str, Any] = {
        "n_obj": len(problem.objectives),
        "eliminate_duplicates": KnownElimination(),
    }
    if seed_X is not None and len(seed_X):
        kwargs["sampling"] = seed_X
    algorithm = builder(**kwargs)
    algorithm.setup(pp, seed=seed, termination=("n_gen", generations), verbose=False)
    algorithm.run()
    visited = np.array(sorted(pp.visited), dtype=np.int64).reshape(-1, len(problem.num_choices))
    return as_int(algorithm.pop.get("X")), visited
