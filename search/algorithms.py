"""Multi-objective evolutionary algorithms from pymoo, set up for discrete search spaces.

Every builder takes the number of objectives, the population size, operators that respect the
integer encoding (integer sampling; crossover and mutation that produce valid choice indices,
either natively or through pymoo's rounding repair) and the duplicate filter of the search,
which also rejects architectures the search already knows, so no offspring is wasted on a
repeat. The search drives them through pymoo's ask / tell interface, which leaves the budget
and the archive under its control.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pymoo.algorithms.moo.moead import ParallelMOEAD
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.moo.unsga3 import UNSGA3
from pymoo.core.algorithm import Algorithm
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import DefaultDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.population import Population
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.ux import UniformCrossover
from pymoo.operators.mutation.rm import ChoiceRandomMutation
from pymoo.operators.sampling.rnd import IntegerRandomSampling
from pymoo.util.ref_dirs import get_reference_directions


def as_int(X) -> np.ndarray:
    """Integer encodings from what pymoo operators return (float after SBX / PM, object after
    choice mutation), rounded to the nearest choice."""
    return np.rint(np.asarray(X, dtype=float)).astype(np.int64)


class KnownElimination(DefaultDuplicateElimination):
    """pymoo duplicate filter that also drops encodings the search has already evaluated.

    pymoo removes duplicates within a generation and against the current population; this
    filter also consults ``known``, the encodings of every architecture the search has seen,
    so an algorithm never spends an offspring on a known architecture.
    """

    def __init__(self, known: Iterable[tuple[int, ...]] = ()) -> None:
        super().__init__()
        self.known: set[tuple[int, ...]] = set(known)

    def add(self, X: np.ndarray) -> None:
        self.known.update(map(tuple, as_int(X).tolist()))

    def _do(self, pop, other, is_duplicate):
        is_duplicate = super()._do(pop, other, is_duplicate)
        if other is None and self.known:
            X = as_int(pop.get("X"))
            is_duplicate |= np.array([tuple(x) in self.known for x in X.tolist()], dtype=bool)
        return is_duplicate


def _operators(sampling, crossover, mutation, eliminate_duplicates) -> dict:
    """Operator keyword arguments of a pymoo algorithm, discrete-space defaults filled in."""
    return {
        "sampling": IntegerRandomSampling() if sampling is None else sampling,
        "crossover": UniformCrossover(prob=0.9) if crossover is None else crossover,
        "mutation": ChoiceRandomMutation() if mutation is None else mutation,
        "eliminate_duplicates": eliminate_duplicates or KnownElimination(),
    }


def nsga2(
    n_obj: int,
    pop_size: int = 50,
    sampling: Sampling | Population | np.ndarray | None = None,
    crossover: Crossover | None = None,
    mutation: Mutation | None = None,
    eliminate_duplicates: KnownElimination | None = None,
) -> NSGA2:
    """NSGA-II (Deb et al. 2002): non-dominated sorting with crowding distance."""
    return NSGA2(
        pop_size=pop_size,
        **_operators(sampling, crossover, mutation, eliminate_duplicates),
    )


def agemoea(
    n_obj: int,
    pop_size: int = 50,
    sampling: Sampling | Population | np.ndarray | None = None,
    crossover: Crossover | None = None,
    mutation: Mutation | None = None,
    eliminate_duplicates: KnownElimination | None = None,
) -> Algorithm:
    """AGE-MOEA (Panichella 2019): survival by the estimated geometry of the front."""
    from pymoo.algorithms.moo.age import AGEMOEA  # imports numba (slow): only when asked for

    return AGEMOEA(
        pop_size=pop_size,
        **_operators(sampling, crossover, mutation, eliminate_duplicates),
    )


def _ref_dirs(n_obj: int, pop_size: int) -> np.ndarray:
    if n_obj == 2:
        return get_reference_directions("das-dennis", 2, n_partitions=pop_size - 1)
    return get_reference_directions("energy", n_obj, pop_size, seed=1)


def unsga3(
    n_obj: int,
    pop_size: int = 50,
    sampling: Sampling | Population | np.ndarray | None = None,
    crossover: Crossover | None = None,
    mutation: Mutation | None = None,
    eliminate_duplicates: KnownElimination | None = None,
) -> UNSGA3:
    """U-NSGA-III (Seada & Deb 2016): reference directions, for three or more objectives.

    The ``pop_size`` reference directions are Das-Dennis for two objectives and Riesz energy
    directions for more.
    """
    return UNSGA3(
        ref_dirs=_ref_dirs(n_obj, pop_size),
        pop_size=pop_size,
        **_operators(sampling, crossover, mutation, eliminate_duplicates),
    )


def moead(
    n_obj: int,
    pop_size: int = 50,
    n_neighbors: int = 15,
    prob_neighbor_mating: float = 0.7,
    sampling: Sampling | Population | np.ndarray | None = None,
    crossover: Crossover | None = None,
    mutation: Mutation | None = None,
    eliminate_duplicates: KnownElimination | None = None,
) -> ParallelMOEAD:
    """MOEA/D (Zhang & Li 2007), pymoo's batch variant that supports ask / tell.

    MOEA/D handles no constraints: the search folds infeasibility into the objectives as a
    penalty. pymoo's MOEA/D keeps no duplicate filter, so ``eliminate_duplicates`` is unused
    (repeats are served from the archive for free).
    """
    operators = _operators(sampling, crossover, mutation, None)
    del operators["eliminate_duplicates"], eliminate_duplicates
    return ParallelMOEAD(
        ref_dirs=_ref_dirs(n_obj, pop_size),
        n_neighbors=min(n_neighbors, pop_size),
        prob_neighbor_mating=prob_neighbor_mating,
        **operators,
    )


class RandomSearch(Algorithm):
    """Uniform random search with pymoo's ask / tell interface: each ask draws ``pop_size``
    architectures not seen before (the baseline every search must beat)."""

    def __init__(
        self,
        pop_size: int = 50,
        sampling: Sampling | None = None,
        eliminate_duplicates: KnownElimination | None = None,
        max_tries: int = 100,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.pop_size = pop_size
        self.sampling = IntegerRandomSampling() if sampling is None else sampling
        self.eliminate_duplicates = eliminate_duplicates or KnownElimination()
        self.max_tries = max_tries

    def _initialize_infill(self):
        return self._infill()

    def _infill(self):
        pop = Population.empty()
        for _ in range(self.max_tries):
            new = self.sampling.do(self.problem, self.pop_size, random_state=self.random_state)
            pop = self.eliminate_duplicates.do(Population.merge(pop, new))
            if len(pop) >= self.pop_size:
                break
        return pop[: self.pop_size]

    def _initialize_advance(self, infills=None, **kwargs):
        self.pop = infills

    def _advance(self, infills=None, **kwargs):
        self.pop = Population.merge(self.pop, infills)


def random_search(
    n_obj: int,
    pop_size: int = 50,
    sampling: Sampling | Population | np.ndarray | None = None,
    eliminate_duplicates: KnownElimination | None = None,
) -> RandomSearch:
    """Random search (``n_obj`` is accepted for a uniform builder signature)."""
    del n_obj
    if isinstance(sampling, (Population, np.ndarray)):
        raise ValueError("random search draws its own samples; it takes no initial population")
    return RandomSearch(
        pop_size=pop_size, sampling=sampling, eliminate_duplicates=eliminate_duplicates
    )
