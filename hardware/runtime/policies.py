"""Lookup-table level selection: Dynamic-OFA's single-workload policy (section 3.4, case 1)."""

from __future__ import annotations

from collections.abc import Sequence

from hardware.runtime.family import Level


class InfeasibleConstraint(ValueError):
    """No level of the family meets the constraint(s)."""


def select_level(
    levels: Sequence[Level],
    latency_ms: float | None = None,
    acc_top1: float | None = None,
) -> Level:
    """The highest-accuracy level whose profiled latency and accuracy meet the constraints.

    With only the device to itself, the profiled ladder is the truth, so the table alone picks
    the operating point: among the levels with ``latency_ms <= latency_ms`` and
    ``acc_top1 >= acc_top1`` the most accurate one (ties: the faster).

    Args:
        levels: a processor's ladder.
        latency_ms: latency constraint in ms (None: unconstrained).
        acc_top1: accuracy constraint in % (None: unconstrained).

    Raises:
        InfeasibleConstraint: naming the constraint(s) and the family's latency and accuracy
            ranges.
    """
    if not levels:
        raise ValueError("the family has no levels")
    ok = [
        lv
        for lv in levels
        if (latency_ms is None or lv.latency_ms <= latency_ms)
        and (acc_top1 is None or lv.acc_top1 >= acc_top1)
    ]
    if not ok:
        lat = [lv.latency_ms for lv in levels]
        acc = [lv.acc_top1 for lv in levels]
        asked = ", ".join(
            f"{name} {op} {value:g}"
            for name, op, value in (("latency_ms", "<=", latency_ms), ("acc_top1", ">=", acc_top1))
            if value is not None
        )
        raise InfeasibleConstraint(
            f"no level meets {asked}: the family's {len(levels)} levels span latency_ms "
            f"{min(lat):g}-{max(lat):g} and acc_top1 {min(acc):g}-{max(acc):g}"
        )
    return max(ok, key=lambda lv: (lv.acc_top1, -lv.latency_ms))
