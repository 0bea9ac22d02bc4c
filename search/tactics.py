"""Search tactics of the Intel HW-NAS system (section 4): how validations are spent.

A tactic is a resumable step machine: ``setup`` once, then ``step`` until ``done``; the runner
checkpoints the pickled tactic (algorithm population, random generators, predictors) after
every step, so a killed search resumes exactly. Every validation goes through
``SearchProblem.evaluate`` (archive, dedup, budget).

* :class:`FullSearch`: a pymoo algorithm on validation (section 4.4); with ``initial`` it is the
  warm start (seeded from another search's best front, :func:`front_archs`).
* :class:`PredictorSearch`: validate a sample, train predictors, search on them, validate the
  predicted front (section 4.4, "full search" with predictors).
* :class:`ConcurrentNAS`: Algorithm 1 (section 4.5), improved as described in its docstring.
* :class:`PopDB`: population density-based reduction of the space (section 4.6), then a tactic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pymoo.core.algorithm import Algorithm
from pymoo.core.evaluator import Evaluator as PymooEvaluator
from pymoo.core.problem import Problem
from pymoo.core.termination import NoTermination
from pymoo.problems.static import StaticProblem

from search.algorithms import KnownElimination, as_int
from search.analytics import additive_epsilon, hypervolume_contributions
from search.archive import Archive, Evaluation
from search.evaluators import PredictorEvaluator
from search.objectives import Objective
from search.pareto import non_dominated_mask, pareto_ranks, to_minimization
from search.problem import SearchProblem, _encoding_problem

log = logging.getLogger(__name__)

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


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def _unique_new(problem: SearchProblem, rng: np.random.Generator, n: int) -> list[str]:
    """Up to ``n`` distinct random architectures the search has not seen."""
    out: dict[str, None] = {}
    for _ in range(100):
        if len(out) >= n:
            break
        for arch in problem.space.sample(rng, 2 * n):
            if not problem.is_known(arch) and arch not in out:
                out[arch] = None
    return list(out)[:n]


# ----------------------------------------------------------------------------- full search


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
        self.algorithm.setup(pymoo_problem, seed=_seed(rng), termination=NoTermination())
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


def front_archs(
    url: str, study: str, size: int | None = None, busy_timeout_s: float = 60.0
) -> list[str]:
    """Best architectures of another search in an archive, by Pareto rank (warm start).

    The study's own recorded objectives decide what "best" means; rank-1 architectures come
    first, then rank 2, and so on, up to ``size`` (default: the first front only).
    """
    archive = Archive(url, busy_timeout_s=busy_timeout_s)
    try:
        info = archive.study(study)
        objectives = [Objective(**o) for o in info["objectives"]]
        evals = archive.evaluations(study=study)
    finally:
        archive.close()
    keys, modes = [o.key for o in objectives], [o.mode for o in objectives]
    done = [e for e in evals if all(e.metrics.get(k) is not None for k in keys)]
    if not done:
        raise ValueError(f"study {study!r} in {url} has no evaluation with all of {keys}")
    F = to_minimization(np.array([[e.metrics[k] for k in keys] for e in done]), modes)
    ranks = pareto_ranks(F)
    order = np.lexsort((np.arange(len(done)), ranks))
    if size is None:
        order = order[ranks[order] == 1]
    return [done[i].arch for i in order[:size]]


# ----------------------------------------------------------------------------- predictors


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


def _fit_predictors(
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


def _inner_search(
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


def select_by_ehvi(
    front: np.ndarray,
    mean: np.ndarray,
    sigma: np.ndarray,
    n: int,
    rng: np.random.Generator,
    ref: float = 1.1,
    samples: int = 32,
    believer: bool = True,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Greedy batch of ``n`` candidates of largest expected hypervolume improvement (EHVI).

    Each candidate's objectives are Gaussian around the predicted ``mean`` with standard
    deviation ``sigma`` (per objective, or per candidate and objective); the EHVI over the
    validated ``front`` is a Monte-Carlo average over ``samples`` draws shared by all
    candidates. A candidate predicted
    just behind the front still has a chance to improve it, in proportion to how unsure the
    predictors are. With ``believer``, each pick joins the front at its predicted mean, so the
    next pick is valued for what it adds beyond it (a diverse batch). Everything is normalised
    to the front's box (:func:`normalisation_box`, or ``box``), reference point ``ref``.
    """
    n = min(n, len(mean))
    if n <= 0:
        return []
    if len(front) == 0:
        return list(range(n))
    P, M, span = normalised_to_front(front, mean, box)
    S = np.broadcast_to(np.asarray(sigma, dtype=float) / span, M.shape)  # per candidate
    refp = np.full(P.shape[1], ref)
    z = rng.standard_normal((samples, M.shape[1]))
    draws = (M[:, None, :] + z[None] * S[:, None, :]).reshape(-1, M.shape[1])
    chosen: list[int] = []
    free = np.ones(len(M), dtype=bool)
    while len(chosen) < n:
        idx = np.flatnonzero(free)
        rows = (idx[:, None] * samples + np.arange(samples)).ravel()
        gain = hypervolume_contributions(P, draws[rows], refp).reshape(len(idx), samples).mean(1)
        if gain.max() <= 0:
            break
        best = idx[int(np.argmax(gain))]
        chosen.append(best)
        free[best] = False
        if believer:
            P = np.vstack([P, M[best]])
            P = P[non_dominated_mask(P)]
    if len(chosen) < n:
        idx = np.flatnonzero(free)
        eps = additive_epsilon(P, M[idx])
        chosen.extend(idx[np.argsort(eps, kind="stable")[: n - len(chosen)]].tolist())
    return chosen


def normalisation_box(front: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ideal and nadir of a front, leaving out isolated extremes.

    A front point whose gap to the rest of the front in some objective exceeds three times the
    span of the rest (NAS-Bench-201's 10%-accuracy cells, fastest only because nothing reaches
    the output) would squash every other point into a sliver of the box; it is left out of the
    box (it still counts as part of the front).
    """
    keep = np.ones(len(front), dtype=bool)
    for j in range(front.shape[1]):
        while keep.sum() > 2:
            idx = np.flatnonzero(keep)
            values = front[idx, j]
            worst = idx[int(np.argmax(values))]
            rest = front[keep & (np.arange(len(front)) != worst), j]
            if front[worst, j] - rest.max() > 3 * max(rest.max() - rest.min(), 1e-12):
                keep[worst] = False
            else:
                break
    return front[keep].min(0), front[keep].max(0)


def reach_box(
    front: np.ndarray, candidates: np.ndarray, toward: int
) -> tuple[np.ndarray, np.ndarray]:
    """The front's box (:func:`normalisation_box`) grown to cover the candidates predicted
    beyond the front's best value in objective ``toward``.

    Early in a search the validated front stops short of the far end of the true one (on
    NAS-Bench-201, the most accurate networks are also the slowest). Scaled to the front's own
    box, with the reference point just past it, a candidate more accurate than anything
    validated but slower than the box's nadir adds no hypervolume at all, so the search would
    never reach for that end. Growing the nadir along the other objectives to the predicted
    values of those candidates credits them. Only ``toward`` is reached for: growing the box
    for every objective also takes in whatever junk is predicted faster than the front, which
    squashes the accuracy axis.
    """
    ideal, nadir = normalisation_box(front)
    beyond = candidates[:, toward] < ideal[toward]
    if beyond.any():
        far = candidates[beyond].max(0)
        far[toward] = nadir[toward]
        nadir = np.maximum(nadir, far)
    return ideal, nadir


def normalised_to_front(
    front: np.ndarray,
    candidates: np.ndarray,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``front`` and ``candidates`` scaled to ``box`` (ideal, nadir; default the front's box,
    :func:`normalisation_box`), and the box's span (1 along an objective where it is flat)."""
    ideal, nadir = normalisation_box(front) if box is None else box
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return (front - ideal) / span, (candidates - ideal) / span, span


def select_by_hvi(
    front: np.ndarray,
    candidates: np.ndarray,
    n: int,
    ref: float = 1.1,
    believer: bool = True,
    groups: np.ndarray | None = None,
    per_group: int | None = None,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[int]:
    """Greedy batch of ``n`` candidates that most improve the front's hypervolume.

    ``front`` and ``candidates`` are minimisation objectives (candidates predicted). Both are
    normalised to the front's bounding box (or ``box``) with the reference point at ``ref``.
    Each pick takes the candidate of largest hypervolume improvement over the front plus the
    picks so far (a "believer" batch: predictions are taken as if true); once no candidate
    improves it, the rest are the candidates nearest to the front (smallest additive epsilon),
    which a weak predictor may have placed just behind it.
    """
    n = min(n, len(candidates))
    if n <= 0:
        return []
    if len(front) == 0:
        return list(range(n))
    P, C, _ = normalised_to_front(front, candidates, box)
    refp = np.full(P.shape[1], ref)
    chosen: list[int] = []
    free = np.ones(len(C), dtype=bool)
    capped = per_group is not None and groups is not None
    count: dict[int, int] = {}

    def take(i: int) -> None:
        chosen.append(int(i))
        free[i] = False
        if capped:
            count[groups[i]] = count.get(groups[i], 0) + 1
            if count[groups[i]] >= per_group:  # spread the batch over the front
                free[groups == groups[i]] = False

    fixed_gain = None if believer else hypervolume_contributions(P, C, refp)  # the front stays
    while len(chosen) < n and free.any():
        idx = np.flatnonzero(free)
        gain = hypervolume_contributions(P, C[idx], refp) if believer else fixed_gain[idx]
        if gain.max() <= 0:
            break
        best = idx[int(np.argmax(gain))]
        take(best)
        if believer:
            P = np.vstack([P, C[best]])
            P = P[non_dominated_mask(P)]
    if len(chosen) < n:
        idx = np.flatnonzero(free)
        for i in idx[np.argsort(additive_epsilon(P, C[idx]), kind="stable")]:
            if len(chosen) >= n:
                break
            if free[i]:
                take(i)
    if len(chosen) < n:  # every group is at its cap: fill by closeness regardless
        rest = np.setdiff1d(np.arange(len(C)), chosen)
        eps = additive_epsilon(P, C[rest])
        chosen.extend(rest[np.argsort(eps, kind="stable")[: n - len(chosen)]].tolist())
    return chosen


class ConcurrentNAS(Tactic):
    """ConcurrentNAS (Intel Algorithm 1): validate a population, retrain weak predictors on all
    validated data, search on the predictors, pick the next population to validate.

    Beyond the paper and DyNAS-T's LINAS: a known architecture is never validated again
    (candidates are filtered against everything the search has seen, and the archive serves
    repeats); the next population is the greedy batch of largest predicted hypervolume
    improvement over the validated front (:func:`select_by_hvi`, or :func:`select_by_ehvi`
    with ``uncertainty``); each round ends by validating its selection, so the last predicted
    front is always validated. Candidates come from the inner evolutionary search (its
    population kept from round to round, seeded with the validated front, not restarted) and
    from the Hamming ``neighbourhood`` of the validated front, where a weak predictor is most
    reliable, more so once each prediction is ``anchor``-ed on its nearest validated
    architecture. The defaults are the best measured on NAS-Bench-201 (neighbourhood 1,
    anchored Gaussian processes on power-transformed targets, no inner search); the paper's
    literal form is ``inner_generations=200, neighbourhood=0, believer=True, anchor=False,
    default_predictor="ridge", target="standard"``.

    Args:
        algorithm: inner evolutionary algorithm builder (NSGA-II in the paper).
        batch_size: architectures validated per round (c in Algorithm 1).
        initial_size: random architectures validated first (default 2 x ``batch_size``).
        inner_generations: generations of the inner search per round (J); 0: none.
        predictors: metric (or metric key) -> predictor kind; others use ``default_predictor``.
        default_predictor: ``gp``, ``ridge``, ``svr`` or ``mlp``; ``none`` for the ablation without
            predictors (:class:`UninformedPredictor`).
        candidate_pool: best-ranked predicted candidates considered for selection.
        initial: warm-start architectures validated first instead of a random sample.
        neighbourhood: Hamming radius around the validated front whose architectures are
            candidates (0: none).
        believer: each pick joins the front at its predicted values before the next pick.
        hv_reference: reference point of the selection's normalised hypervolume.
        uncertainty: expected improvement under the predictors' uncertainty (a GP's posterior
            standard deviation per candidate, else the cross-validated error).
        explore: share of each batch drawn uniformly at random from unseen architectures.
        trust_radius: keep only candidates this close (Hamming) to the validated front.
        anchor: correct each prediction by the residual of the nearest validated architecture.
        per_parent: at most this many picks per nearest front member.
        target: the predictors' target transform, ``standard`` or ``power``.
        reach: metric key of an objective (e.g. ``acc_top1``) whose far end the selection
            reaches for: its box grows to cover the candidates predicted beyond the front's best
            value in it (:func:`reach_box`); ``None``: the front's own box.
    """

    def __init__(
        self,
        algorithm: AlgorithmBuilder,
        batch_size: int = 25,
        initial_size: int | None = None,
        inner_generations: int = 0,
        predictors: Mapping[str, str] | None = None,
        default_predictor: str = "gp",
        candidate_pool: int = 500,
        initial: Sequence[str] | None = None,
        neighbourhood: int = 1,
        believer: bool = False,
        hv_reference: float = 1.1,
        uncertainty: bool = False,
        explore: float = 0.0,
        trust_radius: int | None = None,
        anchor: bool = True,
        per_parent: int | None = None,
        target: str = "power",
        reach: str | None = None,
    ) -> None:
        if batch_size < 1 or inner_generations < 0:
            raise ValueError(
                "batch_size and inner_generations must be >= 1, got "
                f"{batch_size}, {inner_generations}"
            )
        self.algorithm_builder = algorithm
        self.batch_size = batch_size
        self.initial_size = 2 * batch_size if initial_size is None else initial_size
        self.inner_generations = inner_generations
        self.predictor_kinds = dict(predictors or {})
        self.default_predictor = default_predictor
        self.candidate_pool = candidate_pool
        self.initial = list(initial) if initial is not None else None
        self.front_only = False
        self.neighbourhood = neighbourhood
        self.believer = believer
        self.hv_reference = hv_reference
        self.uncertainty = uncertainty
        if not 0 <= explore <= 1:
            raise ValueError(f"explore is a share of the batch in [0, 1], got {explore}")
        self.explore = explore
        self.trust_radius = trust_radius
        self.anchor = anchor
        self.per_parent = per_parent
        self.target = target
        self.reach = reach

    def setup(self, problem: SearchProblem, rng: np.random.Generator) -> None:
        if self.reach is not None and self.reach not in problem.keys:
            raise ValueError(
                f"tactic.reach={self.reach!r} is not an objective; valid: {problem.keys} or null"
            )
        self.rng = rng
        self.round = 0
        self.inner_X: np.ndarray | None = None
        self.next_batch = self.initial or _unique_new(problem, rng, self.initial_size)
        self.predicted: dict[str, np.ndarray] = {}
        self.scores: dict[str, float] = {}
        self.score_history: list[dict[str, float]] = []

    def predictor_scores(self) -> dict[str, float]:
        return dict(self.scores)

    def predictor_history(self) -> list[dict[str, float]]:
        return list(self.score_history)

    def step(self, problem: SearchProblem) -> None:
        evals = problem.evaluate(self.next_batch)
        self._score(problem, evals)
        if problem.remaining <= 0 or len(evals) < len(self.next_batch):
            self.finished = True
            return
        self.round += 1
        predictors = self.fit_predictors(problem)
        front = problem.front()
        front_X = problem.encode([e.arch for e in front]) if front else None
        candidates = [np.zeros((0, len(problem.num_choices)), dtype=np.int64)]
        if self.inner_generations > 0:
            self.inner_X, visited = _inner_search(
                self.algorithm_builder,
                problem,
                predictors,
                self._inner_seed(front_X),
                self.inner_generations,
                _seed(self.rng),
            )
            candidates.append(visited)
        if self.neighbourhood > 0 and front_X is not None:
            candidates.append(
                hamming_neighbours(
                    front_X, problem.num_choices, self.neighbourhood, self.rng, limit=20_000
                )
            )
        visited = np.unique(np.vstack(candidates), axis=0)
        if self.trust_radius is not None and front_X is not None and len(visited):
            # a weak predictor is trusted only near what has been validated
            dist = (visited[:, None, :] != front_X[None, :, :]).sum(2).min(1)
            visited = visited[dist <= self.trust_radius]
        self.next_batch = self._select(problem, predictors, visited, front)

    def _inner_seed(self, front_X: np.ndarray | None) -> np.ndarray | None:
        """First population of the inner search: the validated front, then the population the
        inner search ended with last round (kept, not restarted), up to the population size."""
        parts = [x for x in (front_X, self.inner_X) if x is not None and len(x)]
        if not parts:
            return None
        X = np.vstack(parts)
        _, first = np.unique(X, axis=0, return_index=True)
        X = X[np.sort(first)]
        pop_size = getattr(self.algorithm_builder, "keywords", {}).get("pop_size", 50)
        return X[:pop_size]

    def fit_predictors(self, problem: SearchProblem) -> Any:
        """The round's predictors, fitted on everything validated so far: an object with
        ``predict(X, keys)`` (and ``predict_std`` for ``uncertainty``) over feature rows.
        Override it to plug in another model (the benchmark's oracle ablation does)."""
        return _fit_predictors(
            problem,
            self.predictor_kinds,
            self.default_predictor,
            _seed(self.rng),
            cv_folds=5 if self.uncertainty else 0,
            target=self.target,
        )

    def _select(
        self, problem, predictors, visited: np.ndarray, front: list[Evaluation]
    ) -> list[str]:
        archs = problem.decode(visited)
        new = np.array([not problem.is_known(a) for a in archs], dtype=bool)
        visited, archs = visited[new], [a for a, k in zip(archs, new, strict=True) if k]
        n = min(self.batch_size, problem.remaining)
        n_explore = int(round(self.explore * n))  # uniformly random share of the batch
        n -= n_explore
        if len(archs) < n:  # the inner search saw too little that is new: top up at random
            taken = set(archs)
            extra = [a for a in _unique_new(problem, self.rng, n) if a not in taken]
            extra = extra[: n - len(archs)]
            if extra:
                archs += extra
                visited = np.vstack([visited, problem.encode(extra)])
        F, G = predicted_matrices(
            predictors, problem.features(visited), problem.objectives, problem.constraints
        )
        if self.anchor and len(visited):
            F = F + self._anchor_residuals(problem, predictors, visited)
        ok = G[:, 0] <= 0
        if ok.sum() >= n:
            visited, F, archs = visited[ok], F[ok], [a for a, k in zip(archs, ok, strict=True) if k]
        # the best-ranked candidates only: selection is quadratic in the pool
        ranks = pareto_ranks(F)
        pool = np.argsort(ranks, kind="stable")[: self.candidate_pool]
        if self.front_only:  # the predicted front, however large, and nothing else
            pool = np.flatnonzero(ranks == 1)
            n = min(n, len(pool))
        front_F = problem.matrices(front)[0] if front else np.zeros((0, F.shape[1]))
        box = None
        if self.reach is not None and len(front_F):
            box = reach_box(front_F, F[pool], problem.keys.index(self.reach))
        if self.uncertainty and hasattr(predictors, "predict_std"):
            sigma = predictors.predict_std(problem.features(visited[pool]), problem.keys)
            picks = select_by_ehvi(
                front_F, F[pool], sigma, n, self.rng, self.hv_reference,
                believer=self.believer, box=box,
            )  # fmt: skip
        else:
            groups = None
            if self.per_parent is not None and front:
                front_X = problem.encode([e.arch for e in front])
                groups = (visited[pool][:, None, :] != front_X[None]).sum(2).argmin(1)
            picks = select_by_hvi(
                front_F, F[pool], n, ref=self.hv_reference, believer=self.believer,
                groups=groups, per_group=self.per_parent, box=box,
            )  # fmt: skip
        self.predicted = {archs[pool[i]]: F[pool[i]] for i in picks}
        batch = [archs[pool[i]] for i in picks]
        if n_explore:
            taken = set(batch)
            batch += [a for a in _unique_new(problem, self.rng, 2 * n_explore) if a not in taken][
                :n_explore
            ]
        return batch

    def _anchor_residuals(
        self, problem: SearchProblem, predictors: PredictorEvaluator, X: np.ndarray
    ) -> np.ndarray:
        """Residual (truth - prediction) of each candidate's nearest validated architecture.

        A weak predictor's error is similar for architectures one change apart; anchoring a
        candidate on its nearest validated neighbour (its measured value plus the predicted
        difference) removes most of it. Ties in Hamming distance share the mean residual.
        """
        seen = problem.feasible(list(problem.seen.values()))
        if not seen:
            return np.zeros((len(X), len(problem.keys)))
        S = problem.encode([e.arch for e in seen])
        F_true, _ = problem.matrices(seen)
        F_pred, _ = predicted_matrices(
            predictors, problem.features(S), problem.objectives, problem.constraints
        )
        R = F_true - F_pred
        out = np.empty((len(X), R.shape[1]))
        for start in range(0, len(X), 2000):
            dist = (X[start : start + 2000, None, :] != S[None]).sum(2)
            nearest = dist == dist.min(1, keepdims=True)
            out[start : start + 2000] = (nearest @ R) / nearest.sum(1, keepdims=True)
        return out

    def _score(self, problem: SearchProblem, evals: Sequence[Evaluation]) -> None:
        """Predictor Kendall tau / MAPE on the batch just validated (predicted before it was)."""
        from search.predictors import mape
        from search.ranking import kendall_tau_b

        pairs = [(self.predicted[e.arch], e) for e in evals if e.arch in self.predicted]
        pairs = [(p, e) for p, e in pairs if problem.feasible([e])]
        if len(pairs) < 3:
            return
        F_true, _ = problem.matrices([e for _, e in pairs])
        F_pred = np.stack([p for p, _ in pairs])
        sign = np.array([1.0 if m == "min" else -1.0 for m in problem.modes])
        self.scores = {"n_validated": float(problem.n_validated), "n_pairs": float(len(pairs))}
        for j, key in enumerate(problem.keys):
            true, pred = F_true[:, j] * sign[j], F_pred[:, j] * sign[j]
            self.scores[f"{key}/kendall_tau"] = kendall_tau_b(pred, true)
            # MAPE is undefined for zero targets (a perfect error of 0, say)
            self.scores[f"{key}/mape"] = mape(true, pred) if np.all(true != 0) else float("nan")
        self.score_history.append(dict(self.scores))


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


# ----------------------------------------------------------------------------- PopDB


class ReducedSpace:
    """A space restricted to some choices of each decision (same arch strings as the base).

    Args:
        base: the full space; its encodings index ``base.decisions[d]``.
        allowed: per decision label, the choices kept (in base order).
    """

    def __init__(self, base: Any, allowed: Mapping[str, Sequence[Any]]) -> None:
        self.base = base
        full = base.decisions
        unknown = set(allowed) - set(full)
        if unknown:
            raise KeyError(f"unknown decisions {sorted(unknown)}; decisions: {list(full)}")
        self.index = {d: [list(full[d]).index(c) for c in allowed.get(d, full[d])] for d in full}
        for d, idx in self.index.items():
            if not idx:
                raise ValueError(f"decision {d!r} keeps no choice")
        self._decisions = {d: tuple(full[d][i] for i in idx) for d, idx in self.index.items()}

    @property
    def decisions(self) -> dict[str, tuple[Any, ...]]:
        return dict(self._decisions)

    @property
    def size(self) -> int:
        return int(np.prod([len(c) for c in self._decisions.values()]))

    def encode(self, arch: str) -> np.ndarray:
        full = np.asarray(self.base.encode(arch))
        out = []
        for (d, idx), v in zip(self.index.items(), full, strict=True):
            if int(v) not in idx:
                raise ValueError(f"{arch!r} uses a choice of {d!r} outside the reduced space")
            out.append(idx.index(int(v)))
        return np.array(out, dtype=np.int64)

    def decode(self, vector: Sequence[int]) -> str:
        return self.base.decode(
            [idx[int(v)] for idx, v in zip(self.index.values(), vector, strict=True)]
        )

    def features(self, arch: str) -> np.ndarray:
        """The base space's predictor features (or its encoding)."""
        if hasattr(self.base, "features"):
            return self.base.features(arch)
        return np.asarray(self.base.encode(arch))

    @property
    def feature_choices(self) -> list[int]:
        if hasattr(self.base, "feature_choices"):
            return list(self.base.feature_choices)
        return [len(c) for c in self.base.decisions.values()]

    def sample(self, rng: np.random.Generator, n: int | None = None) -> str | list[str]:
        vecs = np.stack(
            [rng.integers(0, len(idx), size=1 if n is None else n) for idx in self.index.values()],
            1,
        )
        archs = [self.decode(v) for v in vecs]
        return archs[0] if n is None else archs


def popdb_space(
    space: Any,
    archs: Sequence[str],
    threshold: float = 0.01,
    min_cluster_size: int = 50,
    min_samples: int = 10,
) -> tuple[ReducedSpace, dict[str, Any]]:
    """PopDB constraints (Intel section 4.6): HDBSCAN over evaluated configurations.

    Clusters one-hot encodings of ``archs`` with ``sklearn.cluster.HDBSCAN``, takes the
    relative frequency of every (decision, choice) among the non-noise points, and drops the
    choices at or under ``threshold``. A decision keeps at least its most frequent choice.

    Returns:
        The reduced space and a report (cluster count, noise share, dropped choices).
    """
    from sklearn.cluster import HDBSCAN

    decisions = space.decisions
    X = np.stack([np.asarray(space.encode(a)) for a in archs])
    onehot = np.concatenate([np.eye(len(c))[X[:, j]] for j, c in enumerate(decisions.values())], 1)
    labels = HDBSCAN(
        min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True
    ).fit_predict(onehot)
    dense = X[labels >= 0]
    if len(dense) == 0:
        raise ValueError(
            f"HDBSCAN found no cluster among {len(archs)} configurations "
            f"(min_cluster_size={min_cluster_size}); lower it or evaluate more architectures"
        )
    allowed, dropped = {}, {}
    for j, (d, choices) in enumerate(decisions.items()):
        freq = np.bincount(dense[:, j], minlength=len(choices)) / len(dense)
        keep = [c for i, c in enumerate(choices) if freq[i] > threshold]
        allowed[d] = keep or [choices[int(np.argmax(freq))]]
        dropped[d] = [c for c in choices if c not in allowed[d]]
    reduced = ReducedSpace(space, allowed)
    report = {
        "clusters": int(labels.max() + 1),
        "noise_share": float((labels < 0).mean()),
        "dropped": {d: v for d, v in dropped.items() if v},
        "reduced_size": reduced.size,
    }
    return reduced, report


class PopDB(Tactic):
    """Search a space reduced by PopDB constraints learned from another study (section 4.6).

    Args:
        tactic: the tactic run on the reduced space (ConcurrentNAS in the paper), or a builder
            completed with ``algorithm`` (as configs give it).
        url: archive holding the source study.
        study: the source study (e.g. a full search on a similar device).
        threshold: relative frequency at or under which a choice is dropped (1% in the paper).
        min_cluster_size, min_samples: HDBSCAN settings (50 and 10 in the paper's Fig. 4).
    """

    def __init__(
        self,
        tactic: Tactic | Callable[..., Tactic],
        url: str,
        study: str,
        threshold: float = 0.01,
        min_cluster_size: int = 50,
        min_samples: int = 10,
        algorithm: AlgorithmBuilder | None = None,
    ) -> None:
        if not isinstance(tactic, Tactic):
            tactic = tactic(algorithm=algorithm)
        self.tactic = tactic
        self.url, self.study = url, study
        self.threshold, self.min_cluster_size, self.min_samples = (
            threshold,
            min_cluster_size,
            min_samples,
        )

    def setup(self, problem: SearchProblem, rng: np.random.Generator) -> None:
        archive = Archive(self.url)
        try:
            archs = [e.arch for e in archive.evaluations(study=self.study)]
        finally:
            archive.close()
        if not archs:
            raise ValueError(f"study {self.study!r} in {self.url} has no evaluations to cluster")
        self.space, self.report = popdb_space(
            problem.space, archs, self.threshold, self.min_cluster_size, self.min_samples
        )
        log.info("PopDB: %s", self.report)
        self.attach(problem)
        self.tactic.setup(problem, rng)

    def attach(self, problem: SearchProblem) -> None:
        problem.use_space(self.space)
        self.tactic.attach(problem)

    def step(self, problem: SearchProblem) -> None:
        self.tactic.step(problem)

    def done(self, problem: SearchProblem) -> bool:
        return self.tactic.done(problem)

    def predictor_scores(self) -> dict[str, float]:
        return self.tactic.predictor_scores()

    def predictor_history(self) -> list[dict[str, float]]:
        return self.tactic.predictor_history()
