"""Validation by a user's own function ``fn(arch) -> {metric: value}``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from search.evaluators.base import Metrics, Target, clean
from search.objectives import Constraint, Objective


class FunctionEvaluator:
    """Validation by a user's function ``fn(arch) -> {metric: value}``.

    Args:
        fn: returns at least the metrics the search asks for (``None``/NaN = unmeasurable).
        name: recorded with each result as ``validation:<name>``.
        settings: what determines the function's results (version, dataset, device
            settings); two searches with equal settings share archived evaluations.
    """

    kind = "validation"

    def __init__(
        self,
        fn: Callable[[str], Mapping[str, Any]],
        name: str = "function",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = f"validation:{name}"
        self._settings = dict(settings or {})

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        return None  # what fn returns is checked on its first result

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {"evaluator": self.name, "keys": sorted(t.key for t in targets), **self._settings}

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        keys = [t.key for t in targets]
        result = self.fn(arch)
        missing = [k for k in keys if k not in result]
        if missing:
            raise KeyError(
                f"evaluation function returned {sorted(result)} for {arch!r}, missing {missing}"
            )
        return {k: clean(result[k]) for k in keys}
