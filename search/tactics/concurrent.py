"""ConcurrentNAS (Intel Algorithm 1, section 4.5): validation interleaved with weak predictors.

Each round validates a batch, retrains the predictors on everything validated, searches on
them and selects the next batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from search.archive import Evaluation
from search.evaluators import PredictorEvaluator
from search.pareto import pareto_ranks
from search.problem import SearchProblem
from search.tactics.base import AlgorithmBuilder, Tactic, seed_of, unique_new
from search.tactics.candidates import (
    fit_on_seen,
    hamming_neighbours,
    inner_search,
    predicted_matrices,
)
from search.tactics.selection import reach_box, select_by_ehvi, select_by_hvi


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
    literal form is ``inner_generations > 200, neighbourhood=0, believer=True, anchor=False,
    default_predictor="ridge", target="standard"`` (``conf/tactic/concurrent_paper.yaml``).

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
        self.next_batch = self.initial or unique_new(problem, rng, self.initial_size)
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
            self.inner_X, visited = inner_search(
                self.algorithm_builder,
                problem,
                predictors,
                self._inner_seed(front_X),
                self.inner_generations,
                seed_of(self.rng),
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
        return fit_on_seen(
            problem,
            self.predictor_kinds,
            self.default_predictor,
            seed_of(self.rng),
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
            extra = [a for a in unique_new(problem, self.rng, n) if a not in taken]
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
            batch += [a for a in unique_new(problem, self.rng, 2 * n_explore) if a not in taken][
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
