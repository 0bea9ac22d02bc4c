"""The Python API of the search system: run a tactic over any space and evaluation function.

    from search.runner import run_search
    result = run_search(my_space, [{"metric": "err", "mode": "min"}, {"metric": "cost"}],
                        evaluate=lambda arch: {"err": ..., "cost": ...}, budget=200)
    result.front  # non-dominated evaluations

``my_space`` is any object with ``decisions`` (label -> choices), ``encode``, ``decode`` and
``sample`` (see ``search.problem.Space``); nothing in the package needs editing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from search.algorithms import nsga2
from search.analytics import ReferenceFront, hypervolume
from search.archive import Archive, Evaluation
from search.checkpoint import SearchState
from search.evaluators import Evaluator, FunctionEvaluator
from search.objectives import Constraint, Objective, parse_constraints, parse_objectives
from search.problem import SearchProblem, Space
from search.tactics import FullSearch, Tactic

log = logging.getLogger(__name__)


class SearchCallback:
    """Hooks for progress bars and loggers; all optional."""

    def on_start(self, problem: SearchProblem) -> None: ...

    def on_evaluation(self, problem: SearchProblem, evaluation: Evaluation, paid: bool) -> None: ...

    def on_step(self, problem: SearchProblem, tactic: Tactic) -> None: ...

    def on_end(self, problem: SearchProblem) -> None: ...


@dataclass
class SearchResult:
    """What a search found and what it cost.

    Attributes:
        front: feasible non-dominated evaluations.
        evaluations: every evaluation the search used, in order (validated or served).
        paid: per evaluation, whether this study validated (paid for) it.
        n_validated: validated evaluations charged to the budget.
        keys, modes: objective metric keys and modes.
        reference: the known true front, when the problem has one.
        predictor_scores: last predictor quality figures of the tactic (if it uses predictors).
    """

    front: list[Evaluation]
    evaluations: list[Evaluation]
    paid: list[bool]
    n_validated: int
    keys: list[str]
    modes: list[str]
    reference: ReferenceFront | None = None
    predictor_scores: dict[str, float] = field(default_factory=dict)
    predictor_history: list[dict[str, float]] = field(default_factory=list)
    problem: SearchProblem | None = field(default=None, repr=False)

    @property
    def n_unique(self) -> int:
        return len({e.arch for e in self.evaluations})

    def hv_curve(self) -> list[tuple[int, float]]:
        """(validated evaluations so far, hypervolume) after every validated evaluation.

        The hypervolume is the known true front's fraction when there is one, else the
        hypervolume of the front normalised to the bounding box of all feasible evaluations
        (reference point 1.1).
        """
        feasible = self.problem.feasible(self.evaluations) if self.problem else self.evaluations
        ok = {e.arch for e in feasible}
        F_all, _ = self.problem.matrices(self.evaluations)
        if self.reference is not None:
            score = self.reference.hv_fraction
        else:
            box = F_all[[e.arch in ok for e in self.evaluations]]
            ideal = box.min(0) if len(box) else np.zeros(len(self.keys))
            span = np.where(len(box) and box.max(0) > ideal, box.max(0) - ideal, 1.0)

            def score(F):
                return hypervolume((F - ideal) / span, np.full(len(self.keys), 1.1))

        curve, n, rows = [], 0, []
        for e, p, f in zip(self.evaluations, self.paid, F_all, strict=True):
            if e.arch in ok:
                rows.append(f)
            if p:
                n += 1
                curve.append((n, float(score(np.array(rows))) if rows else 0.0))
        return curve

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: the front with metrics, evaluations used, hypervolume."""
        curve = self.hv_curve()
        out: dict[str, Any] = {
            "front": [{"arch": e.arch, **e.metrics, "evaluator": e.evaluator} for e in self.front],
            "n_validated": self.n_validated,
            "n_unique": self.n_unique,
            "n_served_from_archive": sum(1 for p in self.paid if not p),
            "objectives": [
                {"key": k, "mode": m} for k, m in zip(self.keys, self.modes, strict=True)
            ],
            "hypervolume": curve[-1][1] if curve else 0.0,
            "hv_curve": curve,
            "predictor_scores": self.predictor_scores,
            "predictor_history": self.predictor_history,
        }
        if self.reference is not None and self.front:
            F, _ = self.problem.matrices(self.front)
            out.update(self.reference.report(F))
            out["hv_fraction_at"] = {
                str(n): v for n, v in curve if n in (50, 100, 150, 200, 300, 500)
            }
        return out


def reference_front(evaluator: Any, problem: SearchProblem) -> ReferenceFront | None:
    """The true front when the evaluator knows every architecture's value (a benchmark table)."""
    if not hasattr(evaluator, "true_values") or problem.constraints:
        return None
    try:
        _, values = evaluator.true_values(problem.objectives)
    except ValueError:  # a metric measured on a device: the table holds no ground truth
        return None
    from search.pareto import to_minimization

    return ReferenceFront(to_minimization(values, problem.modes))


def run_search(
    space: Space,
    objectives: Sequence[Objective | Mapping[str, Any]] | Mapping[str, Any],
    evaluator: Evaluator | None = None,
    *,
    evaluate: Callable[[str], Mapping[str, Any]] | None = None,
    tactic: Tactic | None = None,
    budget: int = 500,
    archive: Archive | str = "sqlite://",
    study: str = "search",
    seed: int = 0,
    resume: bool | str = False,
    constraints: Sequence[Constraint | Mapping[str, Any]] | Mapping[str, Any] | None = None,
    callbacks: Sequence[SearchCallback] = (),
) -> SearchResult:
    """Search ``space`` for the Pareto front of ``objectives`` within ``budget`` validations.

    Args:
        space: object with ``decisions``, ``encode``, ``decode`` and ``sample``.
        objectives: two or more ``{metric, mode, device}`` entries (or ``Objective``).
        evaluator: a validation evaluator; or give ``evaluate`` instead.
        evaluate: a function ``arch -> {metric: value}`` used as the validation evaluator.
        tactic: how validations are spent (default: NSGA-II full search, population 50).
        budget: validated evaluations this study may spend.
        archive: an :class:`Archive` or its URL (default: an in-memory SQLite database).
        study: this search's name in the archive.
        seed: seed of the search's ``numpy.random.Generator``.
        resume: ``True``: continue the study from its last checkpoint in the archive (an error
            when the archive has no such study); ``False``: start it (an error when it
            exists); ``"auto"``: resume it if it exists, else start it.
        constraints: bounds such as ``{metric: latency_ms, device: pixel3, op: "<=", value: 10}``.
        callbacks: progress / logging hooks.
    """
    if (evaluator is None) == (evaluate is None):
        raise ValueError("give exactly one of evaluator= or evaluate=")
    if evaluator is None:
        evaluator = FunctionEvaluator(evaluate)
    objectives = parse_objectives(objectives)
    constraints = parse_constraints(constraints)
    tactic = tactic or FullSearch(functools.partial(nsga2, pop_size=50))
    archive = Archive(archive) if isinstance(archive, str) else archive

    hooks = list(callbacks)
    problem = SearchProblem(space, objectives, evaluator, archive, study, budget, constraints)
    info = {
        "objectives": [dataclasses.asdict(o) for o in objectives],
        "constraints": [dataclasses.asdict(c) for c in constraints],
        "settings_key": problem.settings_key,
        "tactic": type(tactic).__name__,
        "seed": seed,
    }
    mode = resume_mode(resume)
    if mode == "true" and study not in archive.studies():
        raise ValueError(
            f"resume=true but archive {archive.url} has no study {study!r} to resume "
            f"(studies: {sorted(archive.studies())}); resume=auto starts it when it is absent"
        )
    existed = archive.open_study(study, info, mode != "false")
    if mode == "auto":
        log.info(
            "resume=auto: %s study %r in archive %s",
            "resuming" if existed else "nothing to resume, starting",
            study,
            archive.url,
        )
    live = [not existed]  # callbacks stay quiet while a resumed search replays its steps

    def on_evaluation(evaluation: Evaluation, paid: bool) -> None:
        if live[0]:
            for h in hooks:
                h.on_evaluation(problem, evaluation, paid)

    problem.on_evaluation = on_evaluation
    tactic.setup(problem, np.random.default_rng(seed))
    tactic.attach(problem)
    step, pending = 0, set()
    if existed:
        step, pending = _replay(tactic, problem, archive, study, seed)
        live[0] = True
    for h in hooks:
        h.on_start(problem)
    while not tactic.done(problem):
        tactic.step(problem)
        step += 1
        if pending:  # the first live step re-sees what the interrupted step had validated
            _count_as_paid(problem, pending, "after the first step past the checkpoint")
            pending = set()
        state = SearchState(step, problem.n_validated, seed, problem.settings_key, info["tactic"])
        archive.save_state(study, step, state.to_json())
        for h in hooks:
            h.on_step(problem, tactic)
    if pending:  # the replay ended the search: nothing re-saw the interrupted step's work
        _count_as_paid(problem, pending, "by the end of the search")
    for h in hooks:
        h.on_end(problem)

    evaluations = list(problem.seen.values())
    paid_archs = {a for _, a in problem.trace}
    return SearchResult(
        front=problem.front(),
        evaluations=evaluations,
        paid=[e.arch in paid_archs for e in evaluations],
        n_validated=problem.n_validated,
        keys=problem.keys,
        modes=problem.modes,
        reference=reference_front(evaluator, problem),
        predictor_scores=tactic.predictor_scores(),
        predictor_history=tactic.predictor_history(),
        problem=problem,
    )


def resume_mode(resume: bool | str) -> str:
    """``resume`` as one of ``"true"``, ``"false"``, ``"auto"`` (bools and their strings)."""
    mode = str(resume).lower()
    if mode not in ("true", "false", "auto"):
        raise ValueError(f"resume must be true, false or auto, got {resume!r}")
    return mode


def _replay(
    tactic: Tactic, problem: SearchProblem, archive: Archive, study: str, seed: int
) -> tuple[int, set[str]]:
    """Re-run a resumed study's tactic up to its checkpointed step (deterministic replay).

    ``problem.evaluate`` serves the study's own archived evaluations as already paid, so the
    replay repeats the trajectory at the cost of the tactic's compute only and validates
    nothing twice. Returns the step reached and the study's archived architectures the replay
    has not re-seen yet (the interrupted step's, which the next step re-sees). If the replay
    diverged (code, a library or the budget changed), it warns and counts every archived
    evaluation of the study as paid at once, so the budget still holds.
    """
    row = archive.load_state(study)
    state = None if row is None else SearchState.from_json(row[1], study, archive.url)
    target = 0 if state is None else state.step
    expected = 0 if state is None else state.n_validated
    if state is not None:
        recorded = (state.seed, state.settings_key, state.tactic)
        ours = (seed, problem.settings_key, type(tactic).__name__)
        if recorded != ours:
            raise ValueError(
                f"cannot resume study {study!r} in archive {archive.url}: its checkpoint has "
                f"(seed, settings_key, tactic) = {recorded}, this search {ours}"
            )
    own = {e.arch for e in archive.evaluations(study=study, key=problem.settings_key)}
    step = 0
    while step < target and not tactic.done(problem):
        tactic.step(problem)
        step += 1
    pending = own - set(problem.seen)
    if step != target or problem.n_validated != expected:
        warnings.warn(
            f"resuming study {study!r}: the replay diverged from the checkpoint (step {step} "
            f"with {problem.n_validated} validated, the checkpoint: step {target} with "
            f"{expected}); the code, a library or the budget changed since it was written. "
            "The search continues from here; the study's archived evaluations count as paid",
            RuntimeWarning,
            stacklevel=3,
        )
        _count_as_paid(problem, pending, "after a diverged replay")
        pending = set()
    log.info("resumed study %r at step %d (%d validated)", study, step, problem.n_validated)
    return step, pending


def _count_as_paid(problem: SearchProblem, archs: set[str], when: str) -> None:
    """Charge the study's archived evaluations of ``archs`` that it has not seen to the budget."""
    stored = problem.archive.lookup(sorted(archs - set(problem.seen)), problem.settings_key)
    if not stored:
        return
    log.warning(
        "%d of study %r's archived evaluations were not re-seen %s: counted as paid",
        len(stored),
        problem.study,
        when,
    )
    for arch in sorted(stored, key=lambda a: stored[a].id or 0):
        problem.seen[arch] = stored[arch]
        problem.n_validated += 1
        problem.trace.append((problem.n_validated, arch))


class ProgressBar(SearchCallback):
    """A tqdm bar over the budget of validated evaluations."""

    def __init__(self, disable: bool = False) -> None:
        self.disable = disable

    def on_start(self, problem: SearchProblem) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=problem.budget,
            initial=problem.n_validated,
            desc="validated",
            unit="eval",
            disable=self.disable,
        )
        self.t0 = time.time()

    def on_evaluation(self, problem: SearchProblem, evaluation: Evaluation, paid: bool) -> None:
        if paid:
            self.bar.update(1)

    def on_step(self, problem: SearchProblem, tactic: Tactic) -> None:
        self.bar.set_postfix(front=len(problem.front()), seen=len(problem.seen))

    def on_end(self, problem: SearchProblem) -> None:
        self.bar.close()
