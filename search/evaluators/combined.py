"""Several evaluators as one: each metric from the first part that serves it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from search.evaluators.base import Evaluator, Metrics, Target
from search.evaluators.sizes import Sized, check_one_network
from search.objectives import Constraint, Objective


class CombinedEvaluator:
    """Several evaluators as one: each metric comes from the first part that serves it.

    Args:
        parts: evaluators in order of preference (e.g. a table for accuracy, then proxies).

    A part sees all of its own targets at once in :meth:`check` (so a table part refuses a
    device on another network size, :func:`search.evaluators.sizes.check_one_network`). Across
    parts, proxy counts on a network of another size than the table's only warn: parameter and
    FLOP counts keep their ranking across sizes (a small space counts fast), a latency does not.
    """

    def __init__(self, parts: Sequence[Evaluator]) -> None:
        if not parts:
            raise ValueError("a combined evaluator needs at least one part")
        self.parts = list(parts)
        self.name = "+".join(p.name for p in self.parts)
        self.kind = "+".join(sorted({getattr(p, "kind", "validation") for p in self.parts}))

    def part_of(self, target: Target) -> Evaluator:
        errors = []
        for part in self.parts:
            try:
                _check_one(part, target)
            except (KeyError, ValueError) as err:
                errors.append(f"{part.name}: {err}")
                continue
            return part
        raise KeyError(f"no evaluator serves {target.key!r}: " + "; ".join(errors))

    def check(self, objectives: Sequence[Objective], constraints: Sequence[Constraint]) -> None:
        owners = {t.key: self.part_of(t) for t in [*objectives, *constraints]}
        sizes: dict[str, Sized] = {}
        for part in self.parts:
            objs = [o for o in objectives if owners[o.key] is part]
            cons = [c for c in constraints if owners[c.key] is part]
            if objs or cons:
                part.check(objs, cons)
                if hasattr(part, "network_sizes"):
                    sizes.update(part.network_sizes([*objs, *cons]))
        check_one_network(sizes, allow_size_mismatch=True)  # across parts: warn only

    def settings(self, targets: Sequence[Target]) -> dict[str, Any]:
        return {
            "evaluator": self.name,
            "parts": {t.key: self.part_of(t).settings([t]) for t in targets},
        }

    def evaluate(self, arch: str, targets: Sequence[Target]) -> Metrics:
        out: Metrics = {}
        for part in self.parts:
            mine = [t for t in targets if self.part_of(t) is part]
            if mine:
                out.update(part.evaluate(arch, mine))
        return out


def _check_one(part: Evaluator, target: Target) -> None:
    if isinstance(target, Constraint):
        part.check([], [target])
    else:
        part.check([target], [])
