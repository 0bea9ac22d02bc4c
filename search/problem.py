"""The search problem: a space, objectives, constraints and a budget of validated evaluations.

Every real evaluation goes through :meth:`SearchProblem.evaluate`, which serves repeats from
the archive, stores each new evaluation as soon as it finishes and counts it against the budget,
so no tactic or algorithm can validate an architecture twice or overspend.

The problem is also the boundary between the search and the space's own architecture form
(a string, or a mapping of decision -> choice): the search layer (archive ``arch`` column,
``seen``, tactics) works with *keys*, the space's serialized string form
(``space.serialize(arch)`` where the space has it, else the architecture itself), and only the
space and the evaluators see the parsed form (``space.parse(key)``, else the key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
from pymoo.core.problem import Problem
from pymoo.core.variable import Integer

from search.archive import Archive, Evaluation, settings_key
from search.evaluators import Evaluator
from search.objectives import Constraint, Objective
from search.pareto import non_dominated_mask, to_minimization


class Space(Protocol):
    """What a search needs from a search space (``NB201Space`` is one; users bring their own).

    Optional: ``serialize(arch) -> str`` and ``parse(key) -> arch`` when the space's own
    architecture form is not a string (the search stores and compares the string).
    """

    @property
    def decisions(self) -> dict[str, Sequence[Any]]: ...

    def encode(self, arch: str) -> np.ndarray: ...

    def decode(self, vector: Sequence[int]) -> str: ...

    def sample(self, rng: np.random.Generator, n: int | None = None) -> str | list[str]: ...


def arch_key(space: Any, arch: Any) -> str:
    """The search's key of an architecture: ``space.serialize(arch)``, else ``arch`` itself."""
    serialize = getattr(space, "serialize", None)
    return arch if serialize is None else serialize(arch)


def parse_key(space: Any, key: str) -> Any:
    """The space's own form of a key: ``space.parse(key)``, else the key itself."""
    parse = getattr(space, "parse", None)
    return key if parse is None else parse(key)


class BudgetExhausted(Exception):
    """Raised internally when the budget of validated evaluations is spent."""


class SearchProblem:
    """Objectives over a space, evaluated through an archive under a budget.

    Args:
        space: the search space (``decisions``, ``encode``, ``decode``, ``sample``).
        objectives: two or more objectives.
        evaluator: the validation evaluator.
        archive: where evaluations are stored and served from.
        study: name of this search in the archive (owner of what it validates).
        budget: validated evaluations this study may spend.
        constraints: bounds on metrics; violating or unmeasured solutions are infeasible.
        on_evaluation: called with each evaluation this search uses, validated or served.
    """

    def __init__(
        self,
        space: Space,
        objectives: Sequence[Objective],
        evaluator: Evaluator,
        archive: Archive,
        study: str,
        budget: int,
        constraints: Sequence[Constraint] = (),
        on_evaluation: Callable[[Evaluation, bool], None] | None = None,
    ) -> None:
        if budget < 1:
            raise ValueError(f"budget must be >= 1 validated evaluations, got {budget}")
        self.space, self.objectives, self.constraints = space, list(objectives), list(constraints)
        self.evaluator, self.archive, self.study, self.budget = evaluator, archive, study, budget
        self.on_evaluation = on_evaluation
        evaluator.check(self.objectives, self.constraints)
        targets = {t.key: t for t in [*self.objectives, *self.constraints]}
        self.targets = list(targets.values())
        self.keys = [o.key for o in self.objectives]
        self.modes = [o.mode for o in self.objectives]
        self.settings = evaluator.settings(self.targets)
        self.settings_key = settings_key(self.settings)
        self.num_choices = [len(c) for c in space.decisions.values()]
        # what this search has used, in order: validated by it, or served from the archive
        self.seen: dict[str, Evaluation] = {}
        self.n_validated = 0
        self.trace: list[tuple[int, str]] = []  # (n_validated after, arch) per validation

    def use_space(self, space: Space) -> None:
        """Search a different encoding of the same architectures (e.g. a PopDB-reduced space)."""
        self.space = space
        self.num_choices = [len(c) for c in space.decisions.values()]

    # Evaluation ----------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return self.budget - self.n_validated

    def is_known(self, arch: str) -> bool:
        return arch in self.seen

    # Architecture keys ---------------------------------------------------------------------
    def key(self, arch: Any) -> str:
        """The search's key of an architecture (:func:`arch_key`)."""
        return arch_key(self.space, arch)

    def parse(self, key: str) -> Any:
        """The space's own form of a key, what evaluators get (:func:`parse_key`)."""
        return parse_key(self.space, key)

    def sample(self, rng: np.random.Generator, n: int) -> list[str]:
        """Keys of ``n`` random architectures of the space (repeats possible)."""
        return [self.key(a) for a in self.space.sample(rng, n)]

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        """Evaluations of ``archs`` in order, validating only what the archive lacks.

        Stops early (returns fewer) when the budget runs out before an unknown arch.
        """
        stored = self.archive.lookup([a for a in archs if a not in self.seen], self.settings_key)
        out: list[Evaluation] = []
        for arch in archs:
            if arch in self.seen:
                out.append(self.seen[arch])
                continue
            ev = stored.get(arch)
            # this study's own evaluations found in the archive were paid for before a resume
            paid = ev is None or ev.study == self.study
            if paid and self.remaining <= 0:
                break
            if ev is None:
                start = time.perf_counter()
                metrics = self.evaluator.evaluate(self.parse(arch), self.targets)
                ev, paid = self.archive.add(
                    Evaluation(
                        arch=arch,
                        metrics=metrics,
                        evaluator=self.evaluator.name,
                        settings=self.settings,
                        study=self.study,
                        duration_s=time.perf_counter() - start,
                        created_at=time.time(),
                    )
                )
                paid = paid or ev.study == self.study
            self.seen[arch] = ev
            if paid:
                self.n_validated += 1
                self.trace.append((self.n_validated, arch))
            if self.on_evaluation is not None:
                self.on_evaluation(ev, paid)
            out.append(ev)
        return out

    # Objective matrices --------------------------------------------------------------------
    def matrices(self, evaluations: Sequence[Evaluation]) -> tuple[np.ndarray, np.ndarray]:
        """Minimisation objectives F (n, k) and constraint violation G (n, 1) of evaluations.

        Unmeasured objectives make a solution infeasible (G = 1) and are set to 0 in F: pymoo
        ranks infeasible solutions by violation only, so their F is never compared.
        """
        raw = np.array(
            [
                [np.nan if e.metrics.get(k) is None else e.metrics[k] for k in self.keys]
                for e in evaluations
            ],
            dtype=float,
        ).reshape(len(evaluations), len(self.keys))
        G = np.zeros((len(evaluations), 1))
        for i, e in enumerate(evaluations):
            viol = [c.violation(e.metrics.get(c.key)) for c in self.constraints]
            G[i, 0] = max([*viol, 1.0 if np.isnan(raw[i]).any() else 0.0])
        F = to_minimization(np.nan_to_num(raw, nan=0.0), self.modes)
        return F, G

    def feasible(self, evaluations: Sequence[Evaluation]) -> list[Evaluation]:
        if not evaluations:
            return []
        _, G = self.matrices(evaluations)
        return [e for e, g in zip(evaluations, G[:, 0], strict=True) if g <= 0]

    def front(self, evaluations: Sequence[Evaluation] | None = None) -> list[Evaluation]:
        """Feasible non-dominated evaluations (default: all this search has seen)."""
        evals = self.feasible(list(self.seen.values()) if evaluations is None else evaluations)
        if not evals:
            return []
        F, _ = self.matrices(evals)
        return [e for e, keep in zip(evals, non_dominated_mask(F), strict=True) if keep]

    # pymoo ---------------------------------------------------------------------------------
    def pymoo_problem(self) -> Problem:
        """A pymoo problem over integer encodings (bounds and variable types; no evaluation)."""
        return _encoding_problem(self.num_choices, len(self.objectives))

    def features(self, X: np.ndarray) -> np.ndarray:
        """Predictor features of encodings ``X``: the space's ``features(arch)`` if it has one
        (e.g. NAS-Bench-201's live ops), else the encodings themselves."""
        X = np.asarray(X, dtype=np.int64).reshape(-1, len(self.num_choices))
        featurize = getattr(self.space, "features", None)
        if featurize is None:
            return X
        if len(X) == 0:
            return np.zeros((0, len(self.feature_choices)), dtype=np.int64)
        archs = [self.parse(k) for k in self.decode(X)]
        return np.stack([np.asarray(featurize(a), dtype=np.int64) for a in archs])

    @property
    def feature_choices(self) -> list[int]:
        """Number of values of each predictor feature."""
        return list(getattr(self.space, "feature_choices", self.num_choices))

    def encode(self, archs: Sequence[str]) -> np.ndarray:
        """Integer encodings (n, d) of architecture keys (the space accepts keys)."""
        return np.stack([np.asarray(self.space.encode(a), dtype=np.int64) for a in archs])

    def decode(self, X: np.ndarray) -> list[str]:
        """Architecture keys of integer encodings ``X``."""
        rows = np.rint(np.asarray(X, dtype=float)).astype(int).tolist()
        return [self.key(self.space.decode(x)) for x in rows]


def _encoding_problem(num_choices: Sequence[int], n_obj: int) -> Problem:
    d = len(num_choices)
    xu = np.array(num_choices, dtype=float) - 1
    return Problem(
        n_var=d,
        n_obj=n_obj,
        n_ieq_constr=1,
        xl=np.zeros(d),
        xu=xu,
        vtype=int,
        # explicit integer variables let choice-aware operators (ChoiceRandomMutation) sample
        vars={i: Integer(bounds=(0, int(u))) for i, u in enumerate(xu)},
    )
