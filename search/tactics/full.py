"""Full search (Intel section 4.4): an evolutionary algorithm evaluated on validation only."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem

from search.algorithms import KnownElimination, as_int
from search.problem import SearchProblem, _encoding_problem
from search.tactics.base import INFEASIBLE_PENALTY, AlgorithmBuilder, Tactic, seed_of

log = logging.getLogger(__name__)


class FullSearch(Tactic):
    """An evolutionary algorithm evaluated on validation only (Intel section 4.4).

    Args:
        algorithm: builder ``algorithm(n_obj=, eliminate_duplicates=, [sampling=])``, e.g.
            ``functools.partial(search.algorithms.nsga2, pop_size=50)``.
        initial: architectures of the first population (warm start); default random.
        max_idle_steps: stop after this many generations in a row that validate nothing new
            (an algorithm without a duplicate filter circling known architectures).
    """

    def __init__(
        self,
        algorithm: AlgorithmBuilder,
        initial: Sequence[str] | None = None,
        max_idle_steps: int = 20,
    ) -> None:
        self.algorithm_builder = algorithm
        self.initial = list(initial) if initial is not None else None
        self.max_idle_steps = max_idle_steps

    def setup(self, problem: SearchProblem, rng: np.random.Generator) -> None:
        self.known = KnownElimination()
        kwargs: dict[str, Any] = {
            "n_obj": len(problem.objectives),
            "eliminate_duplicates": self.known,
        }
        if self.initial:
            kwargs["sampling"] = problem.encode(self.initial)
        self.algorithm = self.algorithm_builder(**kwargs)
        # pymoo's MOEA/D handles no constraints: infeasibility becomes an objective penalty
        self.constrained = type(self.algorithm).__name__ not in ("MOEAD", "ParallelMOEAD")
        pymoo_problem = _encoding_problem(problem.num_choices, len(problem.objectives))
        if not self.constrained:
            pymoo_problem.n_ieq_constr = 0
        self.algorithm.setup(pymoo_problem, seed=seed_of(rng), termination=NoTermination())
        self.idle_steps = 0

    def step(self, problem: SearchProblem) -> None:
        pop = self.algorithm.ask()
        if pop is None or len(pop) == 0:
            log.info("%s proposes no new architecture: stopping", type(self.algorithm).__name__)
            self.finished = True
            return
        X = as_int(pop.get("X"))
        pop.set("X", X)
        archs = problem.decode(X)
        before = problem.n_validated
        evals = problem.evaluate(archs)
        self.known.add(X[: len(evals)])
        if len(evals) < len(archs):  # budget spent within the generation
            self.finished = True
            return
        self.idle_steps = 0 if problem.n_validated > before else self.idle_steps + 1
        if self.idle_steps >= self.max_idle_steps:
            log.info("%d generations without a new architecture: stopping", self.idle_steps)
            self.finished = True
        F, G = problem.matrices(evals)
        values = {"F": F, "G": G}
        if not self.constrained:
            values = {"F": F + INFEASIBLE_PENALTY * (G > 0)}
        PymooEvaluator().eval(StaticProblem(self.algorithm.problem, **values), pop)
        self.algorithm.tell(infills=pop)
