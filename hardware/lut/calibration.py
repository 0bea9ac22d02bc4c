"""Calibrating a LUT's non-op latency: the per-call and fixed terms, and which networks to measure.

``measured - op_sum = n_calls * per_call_ms + fixed_ms``, fitted by bounded least squares where
that predicts held-out calibration networks better than the intercept alone (see
:func:`fit_overheads`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear


def _fit_overhead(calls: np.ndarray, gap: np.ndarray, fastest: float) -> np.ndarray:
    """``(per_call_ms, fixed_ms)`` by least squares, ``per_call_ms >= -fastest``."""
    design = np.column_stack([calls, np.ones_like(calls)])
    bounds = ([-fastest, -np.inf], [np.inf, np.inf])
    return lsq_linear(design, gap, bounds=bounds).x


def _held_out_errors(calls: np.ndarray, gap: np.ndarray, fastest: float) -> dict[str, float]:
    """Leave-one-out mean absolute error (ms) of the intercept-only and the per-call model."""
    fixed, per_call = [], []
    for i in range(gap.size):
        keep = np.arange(gap.size) != i
        fixed.append(abs(gap[i] - np.median(gap[keep])))
        slope, intercept = _fit_overhead(calls[keep], gap[keep], fastest)
        per_call.append(abs(gap[i] - (slope * calls[i] + intercept)))
    return {"fixed": float(np.mean(fixed)), "per_call": float(np.mean(per_call))}


def spanning_subset(n_calls: Sequence[int], op_sums: Sequence[float], k: int) -> list[int]:
    """Indices of ``k`` networks spread evenly over the sorted (op-call count, op sum) order.

    Calibrating on the first ``k`` networks can leave the per-call slope unidentified (similar
    call counts); evenly spaced ranks cover the shortest to the longest network.
    """
    n = len(n_calls)
    if k >= n:
        return list(range(n))
    order = np.lexsort((np.asarray(op_sums, float), np.asarray(n_calls)))
    picks = np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))
    return sorted(int(order[p]) for p in picks)


def fit_overheads(
    measured_ms: Sequence[float],
    op_sums_ms: Sequence[float],
    n_calls: Sequence[int],
    fastest_ms: float,
    names: Sequence[Any] | None = None,
) -> tuple[float, float, dict[str, Any]]:
    """``(per_call_ms, fixed_ms, record)`` fitted to whole-network measurements.

    ``measured - op_sum = n_calls * per_call_ms + fixed_ms`` by least squares, with
    ``per_call_ms >= -fastest_ms``, where that predicts held-out calibration networks better
    (leave-one-out mean absolute error) than the intercept alone; otherwise, and with fewer
    than 3 networks or a single op-call count (slope not identifiable), ``per_call_ms = 0`` and
    ``fixed_ms`` is the median of ``measured - op_sum`` (robust to one disturbed measurement).

    Args:
        measured_ms: measured latency of each calibration network.
        op_sums_ms: its op sum.
        n_calls: its number of op calls (length of its trace).
        fastest_ms: the LUT's fastest op time (bound of a negative per-call term).
        names: the networks' names (recorded).
    """
    measured, sums = np.asarray(measured_ms, float), np.asarray(op_sums_ms, float)
    calls = np.asarray(n_calls, float)
    if not (measured.shape == sums.shape == calls.shape) or measured.size == 0:
        raise ValueError(
            "need equally many (>= 1) measured latencies, op sums and op-call counts, got "
            f"{measured.size}, {sums.size}, {calls.size}"
        )
    gap = measured - sums
    loo = None
    if measured.size >= 3 and np.ptp(calls) > 0:
        # Leave-one-out error of both models: the slope is kept only where it predicts
        # held-out calibration networks better than the intercept alone (a noisy
        # calibration set must not tilt every prediction).
        loo = _held_out_errors(calls, gap, fastest_ms)
    if loo is not None and loo["per_call"] < loo["fixed"]:
        per_call_ms, fixed_ms = map(float, _fit_overhead(calls, gap, fastest_ms))
        rule = (
            "least squares: measured_ms - op_sum_ms = n_calls * per_call_ms + fixed_ms, "
            "per_call_ms >= -min op time (leave-one-out error below the intercept-only rule)"
        )
    else:
        per_call_ms, fixed_ms = 0.0, float(np.median(gap))
        rule = "per_call_ms = 0, fixed_ms = median(measured_ms - op_sum_ms)"
    residual = gap - (calls * per_call_ms + fixed_ms)
    record = {
        "archs": list(names) if names is not None else None,
        "measured_ms": measured.tolist(),
        "op_sum_ms": sums.tolist(),
        "n_calls": calls.astype(int).tolist(),
        "rule": rule,
        "residual_rms_ms": float(np.sqrt(np.mean(residual**2))),
        "leave_one_out_mae_ms": loo,
    }
    return per_call_ms, fixed_ms, record
