"""Objectives and constraints declared in config (``{metric: latency_ms, device: edgegpu}``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("min", "max")
OPERATORS = ("<=", ">=")


def metric_key(metric: str, device: str | None) -> str:
    """Name of a metric in results: ``latency_ms`` on ``edgegpu`` is ``latency_ms_edgegpu``."""
    return metric if device is None else f"{metric}_{device}"


@dataclass(frozen=True)
class Objective:
    """One objective: a metric (on a device) to minimise or maximise."""

    metric: str
    mode: str = "min"
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ValueError(f"an objective needs a metric name, got {self.metric!r}")
        if self.mode not in MODES:
            raise ValueError(
                f"objective {self.metric!r} has mode {self.mode!r}; valid modes: {list(MODES)}"
            )

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.device)


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric, e.g. ``latency_ms <= 10`` on ``pixel3``."""

    metric: str
    op: str
    value: float
    device: str | None = None

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(
                f"constraint on {self.metric!r} has operator {self.op!r}; "
                f"valid operators: {list(OPERATORS)}"
            )
        object.__setattr__(self, "value", float(self.value))

    @property
    def key(self) -> str:
        return metric_key(self.metric, self.device)

    def violation(self, value: float | None) -> float:
        """Amount by which ``value`` breaks the bound (<= 0 when satisfied; 1 if unmeasured)."""
        if value is None or value != value:
            return 1.0
        return value - self.value if self.op == "<=" else self.value - value

    def __str__(self) -> str:
        return f"{self.key} {self.op} {self.value:g}"


def _entries(spec: Mapping[str, Any] | Iterable[Any] | None) -> list[Mapping[str, Any]]:
    if spec is None:
        return []
    if isinstance(spec, Mapping):  # named entries, as config groups write them
        return [v for v in spec.values() if v is not None]
    return list(spec)


def parse_objectives(spec: Mapping[str, Any] | Iterable[Any]) -> list[Objective]:
    """Objectives from config: a list of dicts, or a mapping name -> dict (in order)."""
    objectives = [o if isinstance(o, Objective) else Objective(**dict(o)) for o in _entries(spec)]
    if len(objectives) < 2:
        raise ValueError(
            f"a multi-objective search needs two or more objectives, got "
            f"{[o.key for o in objectives]}"
        )
    keys = [o.key for o in objectives]
    if len(set(keys)) != len(keys):
        raise ValueError(f"objectives repeat a metric: {keys}")
    return objectives


def parse_constraints(spec: Mapping[str, Any] | Iterable[Any] | None) -> list[Constraint]:
    """Constraints from config: a list of dicts, or a mapping name -> dict."""
    return [c if isinstance(c, Constraint) else Constraint(**dict(c)) for c in _entries(spec)]
