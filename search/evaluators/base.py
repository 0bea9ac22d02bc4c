"""The evaluator interface: an architecture in, named metrics out (Intel section 3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from search.objectives import Constraint, Objective

Metrics = dict[str, float | None]
Target = Objective | Constraint  # anything with metric, device and key


@runtime_checkable
class Evaluator(Protocol):
    """What the search needs from an evaluator."""

    name: str

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        """Everything that determines the metrics ``targets`` of an architecture."""
        ...

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        """Raise a clear error for metrics, devices or bounds this evaluator cannot serve."""
        ...

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        """Metrics of ``arch`` by target key; ``None`` where a value cannot be measured."""
        ...


def clean(value: Any) -> float | None:
    """A metric value as a float, ``None`` for missing or NaN (unmeasurable)."""
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else value
