"""The Python API with a user's own space and evaluation function (no package edits)."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from search.algorithms import nsga2
from search.analytics import ReferenceFront
from search.pareto import non_dominated_mask
from search.runner import run_search
from search.tactics import ConcurrentNAS, FullSearch


class ToySpace:
    """Four knobs with five levels each; an architecture is a string like ``"w2-d0-k4-e1"``."""

    decisions = {name: tuple(range(5)) for name in ("w", "d", "k", "e")}

    def encode(self, arch: str) -> np.ndarray:
        return np.array([int(part[1:]) for part in arch.split("-")])

    def decode(self, vector) -> str:
        return "-".join(f"{n}{int(v)}" for n, v in zip(self.decisions, vector, strict=True))

    def sample(self, rng: np.random.Generator, n: int | None = None):
        archs = [self.decode(v) for v in rng.integers(0, 5, size=(1 if n is None else n, 4))]
        return archs[0] if n is None else archs


def toy_metrics(arch: str) -> dict[str, float]:
    """A convex trade-off: error falls and cost rises with the knobs, at different rates."""
    x = ToySpace().encode(arch).astype(float)
    return {"error": float(((4 - x) ** 2 * [1, 2, 3, 4]).sum()), "cost_ms": float(x.sum() + x[0])}


OBJECTIVES = [{"metric": "error", "mode": "min"}, {"metric": "cost_ms", "mode": "min"}]


@pytest.fixture(scope="module")
def true_front() -> ReferenceFront:
    space = ToySpace()
    F = np.array(
        [list(toy_metrics(space.decode(v)).values()) for v in itertools.product(range(5), repeat=4)]
    )
    return ReferenceFront(F[non_dominated_mask(F)])


@pytest.mark.parametrize("tactic", ["nsga2", "concurrent"])
def test_user_space_and_function_find_the_known_front(true_front, tactic):
    calls = []

    def evaluate(arch):
        calls.append(arch)
        return toy_metrics(arch)

    builder = functools.partial(nsga2, pop_size=20)
    search = FullSearch(builder) if tactic == "nsga2" else ConcurrentNAS(
        builder, batch_size=10, initial_size=20, inner_generations=20, neighbourhood=1
    )  # fmt: skip
    result = run_search(ToySpace(), OBJECTIVES, evaluate=evaluate, tactic=search, budget=200)
    assert len(calls) == len(set(calls)) == result.n_validated == 200  # of 625 archs
    F = np.array([[e.metrics["error"], e.metrics["cost_ms"]] for e in result.front])
    assert true_front.hv_fraction(F) > 0.97
    assert result.front[0].evaluator == "validation:function"


def test_function_must_return_the_objectives():
    with pytest.raises(KeyError, match="returned \\['error'\\].*missing \\['cost_ms'\\]"):
        run_search(ToySpace(), OBJECTIVES, evaluate=lambda arch: {"error": 1.0}, budget=5)
    with pytest.raises(ValueError, match="exactly one of evaluator= or evaluate="):
        run_search(ToySpace(), OBJECTIVES, budget=5)


class MappingToySpace(ToySpace):
    """The toy space with architectures as mappings (knob -> level), keyed by the string form."""

    def decode(self, vector) -> dict[str, int]:
        return {n: int(v) for n, v in zip(self.decisions, vector, strict=True)}

    def encode(self, arch) -> np.ndarray:  # both forms, as spaces accept
        arch = self.parse(arch) if isinstance(arch, str) else arch
        return np.array([arch[n] for n in self.decisions])

    def serialize(self, arch: dict[str, int]) -> str:
        return ToySpace.decode(self, [arch[n] for n in self.decisions])

    def parse(self, key: str) -> dict[str, int]:
        return self.decode(ToySpace.encode(self, key))


@pytest.mark.parametrize("tactic", ["nsga2", "concurrent"])
def test_a_space_of_mappings_searches_by_its_string_keys(tactic):
    seen_forms = []

    def evaluate(arch):
        seen_forms.append(type(arch))
        return toy_metrics(MappingToySpace().serialize(arch))

    def run(space, fn):
        builder = functools.partial(nsga2, pop_size=10)
        search = FullSearch(builder) if tactic == "nsga2" else ConcurrentNAS(
            builder, batch_size=10, initial_size=10, inner_generations=5, neighbourhood=1
        )  # fmt: skip
        return run_search(space, OBJECTIVES, evaluate=fn, tactic=search, budget=40)

    mapped = run(MappingToySpace(), evaluate)
    assert set(seen_forms) == {dict}  # the evaluator gets the space's own form
    assert all(isinstance(e.arch, str) for e in mapped.evaluations)  # the search, the keys
    plain = run(ToySpace(), toy_metrics)
    assert [e.arch for e in mapped.evaluations] == [e.arch for e in plain.evaluations]
