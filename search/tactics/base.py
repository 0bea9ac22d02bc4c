"""The tactic interface: a deterministic step machine that spends a search problem's budget.

A tactic is ``setup`` once with the study's seed, then ``step``-ped until ``done``. Every
validation goes through ``SearchProblem.evaluate`` (archive, dedup, budget). A tactic holds no
state that the runner saves: a resumed study replays the tactic from ``setup`` (the archive
serves the study's own evaluations back as already paid), so a tactic must be a deterministic
function of its settings, the seed's generator and what ``evaluate`` returns.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pymoo.core.algorithm import Algorithm

from search.problem import SearchProblem

AlgorithmBuilder = Callable[..., Algorithm]
INFEASIBLE_PENALTY = 1e9  # added to the objectives of infeasible solutions where unconstrained


class Tactic:
    """Base class: a step machine that spends a :class:`SearchProblem`'s budget."""

    finished = False

    def setup(self, problem: SearchProblem, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def attach(self, problem: SearchProblem) -> None:
        """Called before stepping, on a fresh start and on resume (e.g. to restrict the space)."""

    def step(self, problem: SearchProblem) -> None:
        raise NotImplementedError

    def done(self, problem: SearchProblem) -> bool:
        return self.finished or problem.remaining <= 0

    def predictor_scores(self) -> dict[str, float]:
        """Quality of the tactic's predictors on the last validated batch (if it has any):
        Kendall tau and MAPE of the predictions made for it before it was validated."""
        return {}

    def predictor_history(self) -> list[dict[str, float]]:
        """:meth:`predictor_scores` of every round so far."""
        return []


def seed_of(rng: np.random.Generator) -> int:
    """A seed for a pymoo algorithm or a predictor, drawn from the tactic's generator."""
    return int(rng.integers(2**31 - 1))


def unique_new(problem: SearchProblem, rng: np.random.Generator, n: int) -> list[str]:
    """Up to ``n`` distinct random architectures the search has not seen."""
    out: dict[str, None] = {}
    for _ in range(100):
        if len(out) >= n:
            break
        for arch in problem.sample(rng, 2 * n):
            if not problem.is_known(arch) and arch not in out:
                out[arch] = None
    return list(out)[:n]
