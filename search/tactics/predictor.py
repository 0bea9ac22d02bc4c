"""Predictor full search (Intel section 4.4): train predictors once, validate their front."""

from __future__ import annotations

from collections.abc import Mapping

from search.problem import SearchProblem
from search.tactics.base import AlgorithmBuilder
from search.tactics.concurrent import ConcurrentNAS


class PredictorSearch(ConcurrentNAS):
    """Predictor full search (Intel section 4.4): validate ``train_size`` random architectures,
    train predictors once, search on them for ``inner_generations``, then validate the predicted
    front (best hypervolume improvement first) with the rest of the budget."""

    def __init__(
        self,
        algorithm: AlgorithmBuilder,
        train_size: int = 100,
        inner_generations: int = 200,
        predictors: Mapping[str, str] | None = None,
        default_predictor: str = "ridge",
        candidate_pool: int = 500,
    ) -> None:
        super().__init__(
            algorithm,
            batch_size=10**9,  # the whole predicted front, capped by the budget
            initial_size=train_size,
            inner_generations=inner_generations,
            predictors=predictors,
            default_predictor=default_predictor,
            candidate_pool=candidate_pool,
            neighbourhood=0,  # the predicted front of the inner search, nothing else
            believer=True,
            anchor=False,
        )
        self.front_only = True

    def step(self, problem: SearchProblem) -> None:
        if self.round >= 1:  # the predicted front has been chosen: validate it and stop
            problem.evaluate(self.next_batch)
            self._score(problem, [problem.seen[a] for a in self.next_batch if a in problem.seen])
            self.finished = True
            return
        super().step(problem)
